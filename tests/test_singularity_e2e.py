"""Singularity end to end: the real azure-ai-ml MLClient against the loopback Azure ML stand-in
(tests/azureml_standin) and Azurite — submit → monitor → cancel → extract, the job body the
service received, logs, preemption, clouds, dry runs. The helpers (project, sing_env) are in
tests/singtools.py, the `world` fixture in conftest.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from singtools import DIGEST, assert_no_secret, only_job, project, sing_env

from singkit.jobs import control
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit


def test_submit_monitor_cancel_extract(world, tmp_path):
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py", hp=["lr=0.1"]))
    name = only_job(si)
    info = job.runs[0].backend_info()
    assert info["azureml_name"] == name and name.startswith(f"singkit-{job.id}-1-")
    assert info["studio_url"]

    body = si.job_body(name)["properties"]
    assert body["jobType"] == "Command"
    assert body["computeId"] == si.virtual_cluster_id("singkit-vc")
    assert body["resources"]["instanceType"] == "Singularity.NC6_v3"
    assert body["resources"]["instanceCount"] == 1
    aisc = body["resources"]["properties"]["AISuperComputer"]
    assert (aisc["slaTier"], aisc["priority"]) == ("Premium", "High")
    assert body["experimentName"] == "standin-exp" and body["displayName"] == f"{job.id}.1"
    assert body["tags"]["singkit.job"] == job.id
    variables = body["environmentVariables"]
    assert variables["SINGKIT_RUN"] == f"{job.id}.1" and variables["SINGKIT_HP_LR"] == "0.1"
    assert variables["FROM_SETUP"] == "1" and variables["API_KEY"] == "s3cr3t-api-key"
    assert variables["SINGKIT_BLOB_PREFIX"] == f"jobs/{job.id}/runs/{job.id}.1" and "sig=" in variables["SINGKIT_BLOB_SAS"]
    assert "blob_sync.py" in body["command"] and "singkit_entry.py" in body["command"]
    # singkit's variables are the ones a local run of the same job gets (one list, backends.runtime.workdir),
    # less the host paths, which each rank sets inside the job
    from singkit.backends.runtime.workdir import host_paths, run_environment

    local = run_environment(job.runs[0], host_paths(job.runs[0]), {}, env.environ)
    paths = {"SINGKIT_RUN_DIR", "SINGKIT_RUN_LOG", "SINGKIT_OUTPUTS", "SINGKIT_CODE"}
    assert {k: v for k, v in local.items() if k.startswith("SINGKIT_") and k not in paths} \
        == {k: v for k, v in variables.items() if k.startswith("SINGKIT_") and not k.startswith(("SINGKIT_BLOB_", "SINGKIT_NODES"))}
    # the YAML on disk is a plain CLI v2 job, and holds no secret
    written = (job.dir / "azureml" / f"{job.id}.1.yaml").read_text()
    assert "s3cr3t" not in written and "SINGKIT_BLOB_SAS" not in written and "sig=" not in written
    assert f"image: singkit.azurecr.io/research/torch@sha256:{DIGEST}" in written
    assert_no_secret(env, "s3cr3t", "sig=", variables["SINGKIT_BLOB_SAS"])

    # the service moves the job along; status maps and logs stream
    si.set_status(name, "Queued")
    assert control.status(env, job.id)["runs"][0]["status"] == "queued"
    si.set_status(name, "Running")
    si.append_log(name, "epoch 1 loss 0.5\n")
    assert control.status(env, job.id)["runs"][0]["status"] == "running", env.stderr.getvalue()
    _, stored, backend = control.open_job(env, job.id)
    assert list(backend.logs(stored, f"{job.id}.1")) == ["epoch 1 loss 0.5\n"]

    # cancel waits for the service to confirm
    assert control.cancel(env, job.id) == [f"{job.id}.1"]
    assert si.jobs[name].cancel_requests >= 1 and si.jobs[name].status == "Canceled"
    state = stored.runs[0].state()
    assert state.status == "cancelled"
    assert control.cancel(env, job.id) == []  # idempotent

    # extract brings Azure ML's logs and outputs into the store and out
    si.put_output(name, "outputs/model.txt", "weights")
    dest = tmp_path / "out"
    control.extract(env, job.id, dest, "all")
    assert (dest / "runs" / f"{job.id}.1" / "outputs" / "model.txt").read_text() == "weights"
    assert "epoch 1" in (stored.runs[0].dir / "azureml-logs" / "user_logs" / "std_log.txt").read_text()
    assert "epoch 1" in (dest / "runs" / f"{job.id}.1" / "azureml-logs" / "user_logs" / "std_log.txt").read_text()
    assert (dest / "azureml" / f"{job.id}.1.yaml").is_file() and (dest / "code" / "train.py").is_file()
    assert_no_secret(env, "s3cr3t", "sig=", variables["SINGKIT_BLOB_SAS"], also=(dest,))


def test_two_nodes_of_eight_gpus_and_per_node_log_prefixes(world, tmp_path):
    si, azurite, root = world
    root = project(tmp_path / "multi", si, azurite, nodes=2, vm_size="Singularity.ND96amrs_A100_v4", per_node="gpus")
    env = sing_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    name = only_job(si)
    body = si.job_body(name)["properties"]
    assert body["resources"]["instanceCount"] == 2
    assert body["resources"]["instanceType"] == "Singularity.ND96amrs_A100_v4"
    assert body["distribution"] == {"distributionType": "PyTorch", "processCountPerInstance": 8}
    scale = body["resources"]["properties"]["AISuperComputer"]["scalePolicy"]
    assert scale["minInstanceTypeCount"] == scale["maxInstanceTypeCount"] == 2
    si.set_status(name, "Running")
    si.append_log(name, "rank zero says hi\n", file="user_logs/std_log_process_0.txt")
    si.append_log(name, "rank nine says hi\n", file="user_logs/std_log_process_9.txt")
    _, stored, backend = control.open_job(env, job.id)
    assert list(backend.logs(stored, f"{job.id}.1")) == [
        "[node 0 rank 0] rank zero says hi\n", "[node 1 rank 9] rank nine says hi\n"]


def test_monitor_follows_until_the_service_says_completed(world):
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    name = only_job(si)
    si.script(name, ["Queued", ("Running", "step 1\n"), ("Running", "step 2\n"), "Finalizing", "Completed"])
    final = control.monitor(env, job.id, live=False)
    assert final == "completed"
    out = env.stdout.getvalue()
    assert out.index("step 1") < out.index("step 2")
    statuses = [e["status"] for e in map(json.loads, job.runs[0].log_path.read_text().splitlines()) if e["event"] == "status"]
    # (whether a refresh saw "running" depends on which poll the scripted steps landed on)
    assert statuses[0] == "queued" and statuses[-1] == "completed"


def test_portal_urls(world):
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py", runs=2))
    from singkit.backends.singularity.backend import portal_urls

    urls = portal_urls(job)
    assert sorted(urls) == [f"{job.id}.1", f"{job.id}.2"]
    assert all("/runs/singkit-" in u and "wsid=" in u for u in urls.values())


def test_dry_run_writes_a_loadable_spec_without_network(tmp_path):
    """`job.submit --dry-run` on a Singularity target: the CLI v2 YAML in the job folder, its
    path printed, nothing sent anywhere (the cloud points at a closed port, no credential)."""
    from clirunner import cli

    class Nowhere:
        workspace, subscription_id, resource_group = "ws", "00000000-0000-4000-8000-00000000beef", "rg"

    root = project(tmp_path, Nowhere, None)
    result = cli(["job.submit", "--target=sing", "--cmd=python train.py", "--dry-run"], cwd=root, env={
        "ARM_CLOUD_METADATA_URL": "https://127.0.0.1:9/metadata/endpoints", "SINGKIT_AZURE_TOKEN": "",
        "HOME": str(root / "home"), "SINGKIT_HOME": str(root / ".singkit")})
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    spec = root / ".singkit" / "jobs" / job_id / "azureml" / f"{job_id}.1.yaml"
    assert str(spec) in result.stderr
    assert "cloud metadata" not in result.stderr and "experimental" not in result.stderr  # offline, and quiet
    text = spec.read_text()
    assert "SINGKIT_BLOB_SAS" not in text and "API_KEY" not in text  # secrets only ever go at submit
    check = subprocess.run([sys.executable, "-c", (
        "import sys; from azure.ai.ml import load_job; j = load_job(sys.argv[1]); "
        "r = j._validate(); print(r.passed, j.resources.instance_type, j.compute)"), str(spec)],
        capture_output=True, text=True, timeout=120)
    assert check.stdout.split()[:2] == ["True", "Singularity.NC6_v3"], check.stderr
    # and the portal has nothing to show for a dry run
    portal = cli(["job.portal", job_id], cwd=root, env={"HOME": str(root / "home"), "SINGKIT_HOME": str(root / ".singkit")})
    assert portal.returncode == 2 and "dry run" in portal.stderr


def test_portal_task_prints_the_studio_url(world):
    from clirunner import cli

    si, azurite, root = world
    env = sing_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    result = cli(["job.portal", f"JOB={job.id}"], cwd=root, env={"HOME": str(root / "home"), "SINGKIT_HOME": str(root / ".singkit")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == job.runs[0].backend_info()["studio_url"]


def test_preempted_then_requeued_then_failed_with_the_service_reason(world):
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    name = only_job(si)
    seen = []
    for azure in ("Running", "Queued", "Queued", "Running"):
        si.set_status(name, azure)
        seen.append(control.status(env, job.id)["runs"][0]["status"])
    assert seen == ["running", "preempted", "preempted", "running"]  # the second poll of a requeued run: still preempted
    # the ranks' `exit` lines as the Blob mirror brings them: the preempted attempt's 143, then
    # this attempt's 3; the failure is the LAST attempt's
    for code in (143, 0, 3):
        job.runs[0].append("exit", exit_code=code, rank=0)
    si.set_status(name, "Failed", error="CUDA out of memory")
    run = control.status(env, job.id)["runs"][0]
    assert run["status"] == "failed" and "CUDA out of memory" in run["reason"] and run["exit_code"] == 3


def test_cloud_from_the_service_record_and_the_metadata_url(world):
    si, azurite, root = world
    config = root / "configs" / "singkit.yaml"
    original = config.read_text()
    named = original.replace(f"    resource-group: {si.resource_group}\n", f"    resource-group: {si.resource_group}\n    cloud: {si.cloud_name}\n", 1)
    config.write_text(named)
    before = os.environ.get("AZUREML_CURRENT_CLOUD")
    job = submit(sing_env(root, si, azurite), SubmitRequest(target="sing", command="python train.py"))
    assert job.runs[0].backend_info()["azureml_name"] in si.jobs
    assert os.environ.get("AZUREML_CURRENT_CLOUD") == before  # the SDK's process-wide setting is put back

    from singkit.exceptions import UsageError

    config.write_text(original.replace(f"    resource-group: {si.resource_group}\n", f"    resource-group: {si.resource_group}\n    cloud: AzureMars\n", 1))
    with pytest.raises(UsageError, match=rf"cloud `AzureMars` is not among the clouds .* lists \({si.cloud_name}\)"):
        submit(sing_env(root, si, azurite), SubmitRequest(target="sing", command="python train.py"))


def test_unpinned_image_is_refused_at_submit_unless_allowed(tmp_path):
    from clirunner import cli

    class Nowhere:
        workspace, subscription_id, resource_group = "ws", "00000000-0000-4000-8000-00000000beef", "rg"

    root = project(tmp_path, Nowhere, None)
    config = root / "configs" / "singkit.yaml"
    config.write_text(config.read_text().replace(f"    sha256: {DIGEST}\n", ""))
    environ = {"ARM_CLOUD_METADATA_URL": "https://127.0.0.1:9/metadata/endpoints", "SINGKIT_AZURE_TOKEN": "",
               "HOME": str(root / "home"), "SINGKIT_HOME": str(root / ".singkit")}
    refused = cli(["job.submit", "--target=sing", "--cmd=python train.py", "--dry-run"], cwd=root, env=environ)
    assert refused.returncode == 2 and "image.wrap --docker=torch" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    allowed = cli(["job.submit", "--target=sing", "--cmd=python train.py", "--dry-run", "--allow-unpinned"],
                          cwd=root, env=environ)
    assert allowed.returncode == 0, allowed.stderr
    job_id = allowed.stdout.strip()
    spec = (root / ".singkit" / "jobs" / job_id / "azureml" / f"{job_id}.1.yaml").read_text()
    assert "singkit.azurecr.io/research/torch:2.1" in spec
    listed = cli(["job.list", "--json"], cwd=root, env=environ)
    statuses = {j["job"]: j["status"] for j in json.loads(listed.stdout)}
    assert statuses == {job_id: "dry-run"}, statuses  # the refused one left no job, only a submit-refused event
