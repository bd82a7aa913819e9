"""Singularity end to end: the real azure-ai-ml MLClient against the loopback Azure ML stand-in
(tests/azureml_standin) and Azurite — submit → monitor → cancel → extract, the job body the
service received, the in-job Blob mirror read back into the store, and the faults (401,
429 then success, 500 forever, network down, 404) as one-line exit-4 errors.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from azureml_standin.fixtures import azureml_standin  # noqa: F401  (the fixture)

from singkit.environment import Environment
from singkit.exceptions import ServiceError
from singkit.jobs import control
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit
from singkit.store import Store

ROOT = Path(__file__).resolve().parents[1]
DIGEST = "ab" * 32
STORE_CONTAINER = "singkit-store"


def project(tmp_path: Path, si, azurite, *, nodes: int = 1, vm_size: str = "NC6s_v3") -> Path:
    root = tmp_path / "proj"
    (root / "configs").mkdir(parents=True)
    (root / "train.py").write_text("print('training')\n")
    (root / "configs" / "singkit.yaml").write_text(f"""\
general:
  experiment: standin-exp
  store: mirror
external-services:
  {si.workspace}:
    type: singularity
    subscription-id: {si.subscription_id}
    resource-group: {si.resource_group}
  singkit-vc:
    type: virtual_cluster
    subscription-id: {si.subscription_id}
    resource-group: {si.resource_group}
  mirror:
    type: storage
    connection-string: $env:TEST_STORE_CONNECTION
    container: {STORE_CONTAINER}
  acr:
    type: registry
    login-server: singkit.azurecr.io
dockers:
  torch:
    image: research/torch:2.1
    registry: acr
    sha256: {DIGEST}
setups:
  s:
    env: {{FROM_SETUP: "1", API_KEY: $env:TEST_API_KEY}}
compute-targets:
  sing:
    service: {si.workspace}
    compute: singkit-vc
    vm-size: {vm_size}
    nodes: {nodes}
    sla: premium
    priority: high
    docker: torch
    setup: s
""")
    return root


def make_env(root: Path, si, azurite, **extra: str) -> Environment:
    token = si.credential().get_token(si.url + "/.default").token
    environ = {**os.environ, "HOME": str(root / "home"), "SINGKIT_HOME": str(root / ".singkit"),
               "SINGKIT_AZURE_TOKEN": token, "SINGKIT_RETRY_BASE_DELAY": "0.01", "SINGKIT_POLL_INTERVAL": "0.01",
               "TEST_STORE_CONNECTION": azurite.connection_string, "TEST_API_KEY": "s3cr3t-api-key", **extra}
    environ.pop("SINGKIT_CONFIG", None)
    return Environment(project_root=root, environ=environ, stdout=io.StringIO(), stderr=io.StringIO())


@pytest.fixture
def world(tmp_path, azureml_standin, azurite):  # noqa: F811
    azurite.service_client().create_container(STORE_CONTAINER)
    root = project(tmp_path, azureml_standin, azurite)
    yield azureml_standin, azurite, root
    azurite.service_client().delete_container(STORE_CONTAINER)


def only_job(si) -> str:
    assert len(si.jobs) == 1, sorted(si.jobs)
    return next(iter(si.jobs))


def test_submit_monitor_cancel_extract(world, tmp_path):
    si, azurite, root = world
    env = make_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py", hp=["lr=0.1"]))
    name = only_job(si)
    info = job.runs[0].backend_info()
    assert info["azureml_name"] == name and name.startswith(f"singkit-{job.id}-1-")
    assert info["studio_url"]

    body = si.job_body(name)["properties"]
    assert body["jobType"] == "Command"
    assert body["computeId"] == si.virtual_cluster_id("singkit-vc")
    assert body["resources"]["instanceType"] == "Singularity.NC6s_v3"
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
    # the YAML on disk is a plain CLI v2 job, and holds no secret
    written = (job.dir / "azureml" / f"{job.id}.1.yaml").read_text()
    assert "s3cr3t" not in written and "SINGKIT_BLOB_SAS" not in written and "sig=" not in written
    assert f"image: singkit.azurecr.io/research/torch@sha256:{DIGEST}" in written
    for path in Path(env.home).rglob("*"):
        if path.is_file() and path.suffix in (".yaml", ".json", ".jsonl", ".log"):
            assert "s3cr3t" not in path.read_text(errors="replace"), path

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


def count(si, method: str, pattern: str) -> int:
    import re

    return sum(1 for r in si.requests if r.method == method and re.search(pattern, r.path))



def assert_nothing_half_recorded(env: Environment) -> None:
    """A refused submit leaves a job whose runs all failed, with no Azure ML job recorded."""
    store = Store.of(env)
    (job_id,) = store.job_ids()
    job = store.job(job_id)
    for run in job.runs:
        assert run.backend_info() == {}
        state = run.state()
        assert state.status == "failed" and state.reason.startswith("submit failed:")


def test_401_is_one_line_exit_4(world):
    si, azurite, root = world
    env = make_env(root, si, azurite)
    si.fail_next(r"PUT .*/jobs/", 401, times=None)
    with pytest.raises(ServiceError) as caught:
        submit(env, SubmitRequest(target="sing", command="python train.py"))
    message = str(caught.value)
    assert "\n" not in message and "401" in message and "az login" in message, message
    assert count(si, "PUT", r"/jobs/") == 1  # an auth failure is not retried
    assert_nothing_half_recorded(env)


def test_429_then_success_is_retried(world):
    si, azurite, root = world
    env = make_env(root, si, azurite)
    si.fail_next(r"PUT .*/jobs/", 429, times=2, retry_after=0.01)
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    assert count(si, "PUT", r"/jobs/") == 3
    assert job.runs[0].backend_info()["azureml_name"] == only_job(si)


def test_500_forever_is_bounded_and_one_line(world):
    si, azurite, root = world
    env = make_env(root, si, azurite)
    si.fail_next(r"PUT .*/jobs/", 500, times=None)
    with pytest.raises(ServiceError) as caught:
        submit(env, SubmitRequest(target="sing", command="python train.py"))
    message = str(caught.value)
    assert "\n" not in message and "500" in message and "after retries" in message, message
    assert caught.value.exit_code == 4
    assert count(si, "PUT", r"/jobs/") == 5  # bounded
    assert_nothing_half_recorded(env)


def test_unknown_workspace_is_404(world):
    si, azurite, root = world
    config = root / "configs" / "singkit.yaml"
    config.write_text(config.read_text().replace(f"  {si.workspace}:\n", "  no-such-ws:\n")
                      .replace(f"service: {si.workspace}", "service: no-such-ws"))
    env = make_env(root, si, azurite)
    with pytest.raises(ServiceError) as caught:
        submit(env, SubmitRequest(target="sing", command="python train.py"))
    assert "404" in str(caught.value) and "workspace no-such-ws" in str(caught.value)
    assert_nothing_half_recorded(env)


def test_expired_token_is_one_line(world):
    si, azurite, root = world
    import jwt

    expired = jwt.encode({"aud": si.url, "tid": si.tenant_id, "exp": 1_600_000_000}, "k", algorithm="HS256")
    env = make_env(root, si, azurite, SINGKIT_AZURE_TOKEN=expired)
    with pytest.raises(ServiceError, match=r"SINGKIT_AZURE_TOKEN expired at 2020-09-13.*az account get-access-token"):
        submit(env, SubmitRequest(target="sing", command="python train.py"))
    assert not si.jobs
    assert_nothing_half_recorded(env)


def test_missing_credential_is_one_line(world):
    si, azurite, root = world
    env = make_env(root, si, azurite, SINGKIT_AZURE_TOKEN="")  # DefaultAzureCredential finds nothing here
    with pytest.raises(ServiceError, match=r"no usable Azure credential: .*; run `az login`, or set SINGKIT_AZURE_TOKEN"):
        submit(env, SubmitRequest(target="sing", command="python train.py"))
    assert not si.jobs
    assert_nothing_half_recorded(env)


def test_network_down_on_cancel(world):
    si, azurite, root = world
    env = make_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    si.stop()
    with pytest.raises(ServiceError) as caught:
        control.cancel(env, job.id)
    assert "\n" not in str(caught.value) and caught.value.exit_code == 4
    assert job.runs[0].state().status == "queued"  # not recorded as cancelled



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
    env = make_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    name = only_job(si)
    uploaded = [b for c in azurite.service_client().list_containers()
                for b in azurite.service_client().get_container_client(c.name).list_blobs()]
    assert any(b.name.endswith("_singkit/blob_sync.py") for b in uploaded)
    assert any(b.name.endswith("_singkit/singkit_metrics.py") for b in uploaded)

    # run the job's command the way Azure ML would: in the uploaded code folder, with its env
    body = si.job_body(name)["properties"]
    run_env = {**body["environmentVariables"], "SINGKIT_SYNC_INTERVAL": "0.05",
               "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    result = subprocess.run(["sh", "-c", body["command"]], cwd=job.dir / "azureml" / "code", env=run_env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "done training" in result.stdout  # the console, which Azure ML keeps as std_log

    si.set_status(name, "Finalizing")
    done = control.status(env, job.id)["runs"][0]
    # the job's own status lines came back with the mirror: its exit code too
    assert done["status"] == "completed" and done["exit_code"] == 0
    assert done["last_metrics"] == {"loss": pytest.approx(1 / 3)} and done["hparams"]["lr"] == 0.1
    si.set_status(name, "Completed")
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


def test_two_nodes_of_eight_gpus_and_per_node_log_prefixes(world, tmp_path):
    si, azurite, root = world
    root = project(tmp_path / "multi", si, azurite, nodes=2, vm_size="Singularity.ND96amsr_A100_v4")
    env = make_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    name = only_job(si)
    body = si.job_body(name)["properties"]
    assert body["resources"]["instanceCount"] == 2
    assert body["resources"]["instanceType"] == "Singularity.ND96amsr_A100_v4"
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
    env = make_env(root, si, azurite)
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
    env = make_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py", runs=2))
    from singkit.backends.singularity.backend import portal_urls

    urls = portal_urls(job)
    assert sorted(urls) == [f"{job.id}.1", f"{job.id}.2"]
    assert all("/runs/singkit-" in u and "wsid=" in u for u in urls.values())


def test_dry_run_writes_a_loadable_spec_without_network(tmp_path):
    """`job.submit --dry-run` on a Singularity target: the CLI v2 YAML in the job folder, its
    path printed, nothing sent anywhere (the cloud points at a closed port, no credential)."""
    from clirunner import run_singkit

    class Nowhere:
        workspace, subscription_id, resource_group = "ws", "00000000-0000-4000-8000-00000000beef", "rg"

    root = project(tmp_path, Nowhere, None)
    result = run_singkit(["job.submit", "--target=sing", "--cmd=python train.py", "--dry-run"], cwd=root, env={
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
    assert check.stdout.split()[:2] == ["True", "Singularity.NC6s_v3"], check.stderr
    # and the portal has nothing to show for a dry run
    portal = run_singkit(["job.portal", job_id], cwd=root, env={"HOME": str(root / "home"), "SINGKIT_HOME": str(root / ".singkit")})
    assert portal.returncode == 2 and "dry run" in portal.stderr


def test_portal_task_prints_the_studio_url(world):
    from clirunner import run_singkit

    si, azurite, root = world
    env = make_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    result = run_singkit(["job.portal", f"JOB={job.id}"], cwd=root, env={"HOME": str(root / "home"), "SINGKIT_HOME": str(root / ".singkit")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == job.runs[0].backend_info()["studio_url"]


def test_preempted_then_requeued_then_failed_with_the_service_reason(world):
    si, azurite, root = world
    env = make_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    name = only_job(si)
    seen = []
    for azure in ("Running", "Queued", "Running"):
        si.set_status(name, azure)
        seen.append(control.status(env, job.id)["runs"][0]["status"])
    assert seen == ["running", "preempted", "running"]
    si.set_status(name, "Failed", error="CUDA out of memory")
    run = control.status(env, job.id)["runs"][0]
    assert run["status"] == "failed" and "CUDA out of memory" in run["reason"]


def test_cloud_from_the_service_record_and_the_metadata_url(world):
    si, azurite, root = world
    config = root / "configs" / "singkit.yaml"
    original = config.read_text()
    named = original.replace(f"    resource-group: {si.resource_group}\n", f"    resource-group: {si.resource_group}\n    cloud: {si.cloud_name}\n", 1)
    config.write_text(named)
    before = os.environ.get("AZUREML_CURRENT_CLOUD")
    job = submit(make_env(root, si, azurite), SubmitRequest(target="sing", command="python train.py"))
    assert job.runs[0].backend_info()["azureml_name"] in si.jobs
    assert os.environ.get("AZUREML_CURRENT_CLOUD") == before  # the SDK's process-wide setting is put back

    from singkit.exceptions import UsageError

    config.write_text(original.replace(f"    resource-group: {si.resource_group}\n", f"    resource-group: {si.resource_group}\n    cloud: AzureMars\n", 1))
    with pytest.raises(UsageError, match=rf"cloud `AzureMars` is not among the clouds .* lists \({si.cloud_name}\)"):
        submit(make_env(root, si, azurite), SubmitRequest(target="sing", command="python train.py"))


def test_unpinned_image_is_refused_at_submit_unless_allowed(tmp_path):
    from clirunner import run_singkit

    class Nowhere:
        workspace, subscription_id, resource_group = "ws", "00000000-0000-4000-8000-00000000beef", "rg"

    root = project(tmp_path, Nowhere, None)
    config = root / "configs" / "singkit.yaml"
    config.write_text(config.read_text().replace(f"    sha256: {DIGEST}\n", ""))
    environ = {"ARM_CLOUD_METADATA_URL": "https://127.0.0.1:9/metadata/endpoints", "SINGKIT_AZURE_TOKEN": "",
               "HOME": str(root / "home"), "SINGKIT_HOME": str(root / ".singkit")}
    refused = run_singkit(["job.submit", "--target=sing", "--cmd=python train.py", "--dry-run"], cwd=root, env=environ)
    assert refused.returncode == 2 and "image.wrap --docker=torch" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    allowed = run_singkit(["job.submit", "--target=sing", "--cmd=python train.py", "--dry-run", "--allow-unpinned"],
                          cwd=root, env=environ)
    assert allowed.returncode == 0, allowed.stderr
    job_id = allowed.stdout.strip()
    spec = (root / ".singkit" / "jobs" / job_id / "azureml" / f"{job_id}.1.yaml").read_text()
    assert "singkit.azurecr.io/research/torch:2.1" in spec
    listed = run_singkit(["job.list", "--json"], cwd=root, env=environ)
    statuses = {j["job"]: j["status"] for j in json.loads(listed.stdout)}
    assert sorted(statuses.values()) == ["dry-run", "failed"], statuses  # the refused one says so
