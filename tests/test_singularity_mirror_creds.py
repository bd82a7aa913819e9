"""The credentials a Singularity job mirrors its run with last as long as the job can: a SAS
that covers the job's own `limits.timeout` plus queueing (or the documented job lifetime), and
no SAS at all for a job that runs as a managed identity — on the real azure-ai-ml SDK against
the Azure ML stand-in and Azurite.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse

from singtools import only_job, sing_env

from singkit.backends.singularity import mirror
from singkit.jobs import control
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit
from singkit.store.model import load_yaml


def sas_left(variables: dict) -> dt.timedelta:
    expiry = dict(urllib.parse.parse_qsl(variables["SINGKIT_BLOB_SAS"]))["se"]
    return dt.datetime.fromisoformat(expiry.replace("Z", "+00:00")) - dt.datetime.now(dt.timezone.utc)


def test_the_sas_covers_the_jobs_own_time_limit_plus_queueing(world):
    """A job whose spec sets limits.timeout (30 days, longer than the default 21) gets a SAS
    that outlives it by the queue allowance; the limit reaches Azure ML as the job's own."""
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py", dry_run=True))
    _, stored, backend = control.open_job(env, job.id)
    path = backend.spec_path(stored, stored.runs[0].id)
    text = path.read_text()
    path.write_text(text + "limits:\n  timeout: 2592000\n")  # 30 days, in seconds (CommandJobLimits)
    assert load_yaml(path)["limits"] == {"timeout": 2592000}
    stored.write_spec({**stored.spec, "dry_run": False})
    backend.submit(stored)
    body = si.job_body(only_job(si))["properties"]
    assert body["limits"]["timeout"] == "P30D"  # the SDK sends it in ISO 8601 (JobLimits.timeout)
    left = sas_left(body["environmentVariables"])
    needed = dt.timedelta(days=30) + mirror.QUEUE
    assert needed - dt.timedelta(hours=1) < left <= needed


def test_an_explicit_lifetime_still_wins(world):
    si, azurite, root = world
    env = sing_env(root, si, azurite, SINGKIT_BLOB_SAS_HOURS="5")
    submit(env, SubmitRequest(target="sing", command="python train.py"))
    left = sas_left(si.job_body(only_job(si))["properties"]["environmentVariables"])
    assert dt.timedelta(hours=4) < left <= dt.timedelta(hours=5)
    assert "SINGKIT_BLOB_SAS_HOURS=5: the mirror's SAS expires before the job may end (28 days" in env.stderr.getvalue()


def test_a_job_with_a_managed_identity_gets_no_sas(world):
    """user-identity-id: the job's identity writes the mirror (blob_sync asks the node's identity
    endpoint, with the identity's client id): no SAS is minted or sent, the URL still is."""
    si, azurite, root = world
    client_id = "0b1c2d3e-0000-4000-8000-000000000001"
    arm = si.add_user_identity("trainer", client_id)
    config = root / "configs" / "singkit.yaml"
    config.write_text(config.read_text().replace("    type: singularity\n", "    type: singularity\n    user-identity-id: trainer\n", 1))
    env = sing_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    variables = si.job_body(only_job(si))["properties"]["environmentVariables"]
    assert variables["_AZUREML_SINGULARITY_JOB_UAI"] == arm and variables["DEFAULT_IDENTITY_CLIENT_ID"] == client_id
    assert "SINGKIT_BLOB_SAS" not in variables
    assert variables["SINGKIT_BLOB_URL"].endswith("/singkit-store") and variables["SINGKIT_BLOB_PREFIX"] == f"jobs/{job.id}/runs/{job.id}.1"
    assert job.runs[0].backend_info()["mirror"]["record"] == "mirror"  # still pulled back by status
