"""What runs inside a Singularity job, run here the way Azure ML would run it (the job's own
command, in the uploaded code folder, with the job's environment) against Azurite and the
Azure ML stand-in: the Blob mirror read back into the store; every rank's wrapper leaving the
run's outcome to Azure ML; the SAS the job gets; secrets that only ever go to Azure ML.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest
from singtools import ROOT, assert_no_secret, job_process, only_job, project, sing_env

from singkit.jobs import control
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit


def run_in_job(job, si, name: str, **extra: str) -> subprocess.CompletedProcess:
    argv, env, cwd = job_process(job, si, name, **extra)
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


TRAIN = """\
import singkit_metrics as sm
sm.log_hparams({"lr": 0.1})
for step in range(3):
    sm.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
print("done training")
"""


def test_in_job_mirror_lands_in_the_store(world):
    si, azurite, root = world
    (root / ".gitignore").write_text(".singkit/\n")  # the store is ignored; the in-job scripts must not be
    (root / "train.py").write_text(TRAIN)
    env = sing_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    name = only_job(si)
    uploaded = [b for c in azurite.service_client().list_containers()
                for b in azurite.service_client().get_container_client(c.name).list_blobs()]
    assert any(b.name.endswith("_singkit/blob_sync.py") for b in uploaded)
    assert any(b.name.endswith("_singkit/singkit_metrics.py") for b in uploaded)

    result = run_in_job(job, si, name)
    assert result.returncode == 0, result.stderr
    assert "done training" in result.stdout  # the console, which Azure ML keeps as std_log

    si.set_status(name, "Finalizing")
    going = control.status(env, job.id)["runs"][0]
    # the job's lines came back with the mirror; only Azure ML's state ends the run
    assert going["status"] == "running" and going["exit_code"] is None
    assert going["last_metrics"] == {"loss": pytest.approx(1 / 3)} and going["hparams"]["lr"] == 0.1
    si.set_status(name, "Completed")
    done = control.status(env, job.id)["runs"][0]
    assert done["status"] == "completed" and done["exit_code"] == 0  # the rank's `exit` event
    run = job.runs[0]
    assert "done training" in run.stdout_path.read_text()
    events = [json.loads(line) for line in run.log_path.read_text().splitlines()]
    assert [e["step"] for e in events if e["event"] == "metrics"] == [0, 1, 2]
    assert control.status(env, job.id)["runs"][0]["last_metrics"]["loss"] == pytest.approx(1 / 3)  # no double pull
    # and the report tasks read the remote run exactly like a local one
    from singkit.reports.views import metrics_table

    table = metrics_table(env, job.id)
    assert [row["step"] for row in table.rows] == [0, 1, 2]
    assert [row["metrics.loss"] for row in table.rows] == pytest.approx([1.0, 0.5, 1 / 3])




def test_a_rank_that_ends_first_does_not_end_the_run(world, tmp_path):
    """Rank 0 of a two-node run exits 0 while node 1 still trains: the store must say running
    (not completed) until Azure ML ends the job — then whatever Azure ML says, in job.status
    and report.list alike."""
    si, azurite, root = world
    root = project(tmp_path / "multi", si, azurite, nodes=2)
    env = sing_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    name = only_job(si)
    si.set_status(name, "Running")
    ranks = {"AZUREML_NODE_COUNT": "2", "RANK": "0", "NODE_RANK": "0"}
    assert run_in_job(job, si, name, **ranks).returncode == 0

    from singkit.reports.views import list_table

    run = control.status(env, job.id)["runs"][0]
    assert run["status"] == "running" and run["exit_code"] is None
    assert [r["status"] for r in list_table(env, "runs", job.id).rows] == ["running"]
    assert [json.loads(line)["event"] for line in job.runs[0].log_path.read_text().splitlines()][-1] == "exit"

    si.script(name, [("Running", "node 1 still training\n"), "Failed"])
    assert control.monitor(env, job.id, live=False) == "failed"  # followed to Azure ML's end
    run = control.status(env, job.id)["runs"][0]
    assert run["status"] == "failed" and "The job failed (stand-in)" in run["reason"]
    assert [r["status"] for r in list_table(env, "runs", job.id).rows] == ["failed"]


def test_a_rank_stopped_by_a_cancel_does_not_fail_the_run(world):
    """The cancel's SIGTERM reaches the ranks before Azure ML reports Canceled: the run ends
    `cancelled`, not `failed` from the wrapper's own view of the signal."""
    si, azurite, root = world
    (root / "train.py").write_text("import time\nprint('ready', flush=True)\ntime.sleep(120)\n")
    env = sing_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    name = only_job(si)
    si.set_status(name, "Running")
    argv, job_env, cwd = job_process(job, si, name)
    proc = subprocess.Popen(argv, cwd=cwd, env=job_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        for line in proc.stdout:
            if "ready" in line:
                break
        os.killpg(proc.pid, signal.SIGTERM)  # what the node agent sends on a cancel
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert control.status(env, job.id)["runs"][0]["status"] == "running"  # the mirror brought only an exit
    exits = [e for e in map(json.loads, job.runs[0].log_path.read_text().splitlines()) if e["event"] == "exit"]
    assert [e["exit_code"] for e in exits] == [143]
    assert control.cancel(env, job.id) == [job.runs[0].id]
    assert job.runs[0].state().status == "cancelled"


def sas_parts(sas: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(sas))


def status_of(method: str, url: str, headers: dict[str, str] | None = None, data: bytes = b"") -> int:
    request = urllib.request.Request(url, data=data if method == "PUT" else None, method=method,
                                     headers={"x-ms-version": "2021-12-02", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_job_sas_can_create_and_append_only_and_lives_as_long_as_the_job(world):
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    submit(env, SubmitRequest(target="sing", command="python train.py"))
    variables = si.job_body(only_job(si))["properties"]["environmentVariables"]
    sas, url = variables["SINGKIT_BLOB_SAS"], variables["SINGKIT_BLOB_URL"]
    parts = sas_parts(sas)
    assert set(parts["sp"]) == {"a", "c"}  # no write (overwrite), read, list or delete
    left = dt.datetime.fromisoformat(parts["se"].replace("Z", "+00:00")) - dt.datetime.now(dt.timezone.utc)
    # the job's whole life: Azure ML's 21-day job lifetime plus a week of queueing (mirror.py)
    assert dt.timedelta(days=28) - dt.timedelta(hours=1) < left <= dt.timedelta(days=28)

    # what blob_sync does works with it (create with If-None-Match: *, append blocks) ...
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import blob_sync
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    blobs = blob_sync.AppendBlobs(url, sas)
    blobs.create("jobs/x/runs/x.1/run.log")
    blobs.append("jobs/x/runs/x.1/run.log", b'{"event": "exit"}\n')
    blobs.create("jobs/x/runs/x.1/run.log")  # a requeued job creates again: kept, not replaced
    blobs.append("jobs/x/runs/x.1/run.log", b'{"event": "status"}\n')
    assert azurite.service_client().get_blob_client("singkit-store", "jobs/x/runs/x.1/run.log").download_blob().readall() \
        == b'{"event": "exit"}\n{"event": "status"}\n'
    # ... and nothing else does
    blob = f"{url}/jobs/x/runs/x.1/run.log?{sas}"
    assert status_of("PUT", blob, {"x-ms-blob-type": "BlockBlob", "Content-Length": "1"}, b"x") == 403  # overwrite
    assert status_of("GET", blob) == 403
    assert status_of("DELETE", blob) == 403

    shorter = sing_env(root, si, azurite, SINGKIT_BLOB_SAS_HOURS="5")
    job = submit(shorter, SubmitRequest(target="sing", command="python train.py"))
    name = job.runs[0].backend_info()["azureml_name"]
    parts = sas_parts(si.job_body(name)["properties"]["environmentVariables"]["SINGKIT_BLOB_SAS"])
    left = dt.datetime.fromisoformat(parts["se"].replace("Z", "+00:00")) - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(hours=4) < left <= dt.timedelta(hours=5)


def test_a_literal_secret_from_the_user_config_goes_to_azure_ml_only(world, tmp_path):
    """A secret-named variable with a literal value (allowed in ~/.config/singkit/config.yaml)
    is sent with the job, never written into the Azure ML YAML in the store — also from a
    job.yaml that holds the literal itself (as stored by an earlier singkit)."""
    si, azurite, root = world
    home = tmp_path / "home"  # outside the project: the user's config is not part of the code
    user = home / ".config" / "singkit" / "config.yaml"
    user.parent.mkdir(parents=True)
    user.write_text('setups:\n  s:\n    env: {FROM_SETUP: "1", HF_TOKEN: hf-literal-v4lue, API_KEY: $env:TEST_API_KEY}\n')
    env = sing_env(root, si, azurite, HOME=str(home))
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    variables = si.job_body(only_job(si))["properties"]["environmentVariables"]
    assert variables["HF_TOKEN"] == "hf-literal-v4lue" and variables["FROM_SETUP"] == "1"
    written = (job.dir / "azureml" / f"{job.id}.1.yaml").read_text()
    assert "hf-literal-v4lue" not in written and "HF_TOKEN" not in written and "FROM_SETUP" in written
    assert not [p for p in (job.dir / "azureml").rglob("*") if p.is_file() and b"hf-literal-v4lue" in p.read_bytes()]
    assert_no_secret(env, "s3cr3t", "sig=")

    _, stored, backend = control.open_job(env, job.id)
    stored.write_spec({**stored.spec, "env": {**stored.spec["env"], "HF_TOKEN": "hf-literal-v4lue"}})
    (job.dir / "azureml" / f"{job.id}.1.yaml").unlink()
    backend.prepare(stored)
    assert "hf-literal-v4lue" not in (job.dir / "azureml" / f"{job.id}.1.yaml").read_text()
    backend.submit(stored)
    name = stored.runs[0].backend_info()["azureml_name"]
    assert si.job_body(name)["properties"]["environmentVariables"]["HF_TOKEN"] == "hf-literal-v4lue"
