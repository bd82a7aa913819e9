"""Small parts of the Singularity backend: status mapping, log prefixes, the static token
credential, error lines, retries, and scripts/blob_sync.py against Azurite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from singkit.backends.singularity import client, logs, status
from singkit.exceptions import ServiceError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("azure, ours", [
    ("NotStarted", "queued"), ("Queued", "queued"), ("Preparing", "queued"), ("Provisioning", "queued"),
    ("Starting", "queued"), ("Running", "running"), ("Finalizing", "running"), ("Completed", "completed"),
    ("Failed", "failed"), ("NotResponding", "failed"), ("Canceled", "cancelled"), ("CancelRequested", "cancelled"),
])
def test_status_mapping(azure, ours):
    assert status.map_status(azure) == ours


def test_preemption_while_alive_and_when_it_ended_the_job():
    error = {"error": {"code": "JobPreempted", "message": "The job was preempted by a higher priority job"}}
    assert status.map_status("Queued", was_running=True) == "preempted"
    assert status.map_status("Running", error) == "preempted"
    assert status.transition("Queued", was_running=True) == ("preempted", "Azure ML requeued the job (Queued)")
    # an ended job is final: failed, and the reason says why
    assert status.transition("Failed", error) == ("failed", "preempted: JobPreempted: The job was preempted by a higher priority job")
    assert status.transition("Failed", {"error": {"code": "UserError", "message": "exit 1"}}) == ("failed", "UserError: exit 1")
    assert status.transition("CancelRequested") is None
    assert status.transition("Canceled") == ("cancelled", "cancelled in Azure ML")
    assert status.transition("Running", was_running=True) == ("running", None)


@pytest.mark.parametrize("name, nodes, per_node, prefix", [
    ("user_logs/std_log.txt", 1, 1, ""),
    ("user_logs/std_log_process_3.txt", 1, 8, "[rank 3] "),
    ("user_logs/std_log_process_9.txt", 2, 8, "[node 1 rank 9] "),
    ("user_logs/std_log_node_1_process_0.txt", 2, 1, "[node 1] "),
])
def test_log_prefixes(name, nodes, per_node, prefix):
    assert logs.prefix_for(name, nodes, per_node) == prefix


def _jwt(claims: dict) -> str:
    import jwt

    return jwt.encode(claims, "k", algorithm="HS256")


def test_static_token_credential_picks_the_token_by_audience_and_refuses_expired():
    arm = _jwt({"aud": "https://management.azure.com", "exp": time.time() + 600})
    aml = _jwt({"aud": "https://ml.azure.com", "exp": time.time() + 600})
    cred = client.credential_from({client.TOKEN_VAR: arm, client.ML_TOKEN_VAR: aml})
    assert cred.get_token("https://management.azure.com/.default").token == arm
    assert cred.get_token("https://ml.azure.com/.default").token == aml
    assert cred.get_token("https://other/.default").token == arm  # the first one otherwise
    from azure.core.exceptions import ClientAuthenticationError

    stale = client.credential_from({client.TOKEN_VAR: _jwt({"aud": "x", "exp": 1_600_000_000})})
    with pytest.raises(ClientAuthenticationError, match="expired"):
        stale.get_token("https://management.azure.com/.default")


class _Response:
    def __init__(self, code: int, retry_after: str | None = None):
        self.status_code = code
        self.headers = {"Retry-After": retry_after} if retry_after else {}
        self.reason = "x"

    def text(self) -> str:
        return ""


def test_call_retries_transient_errors_with_bounded_backoff():
    from azure.core.exceptions import HttpResponseError

    naps: list[float] = []
    answers = iter([429, 503])

    def flaky() -> str:
        code = next(answers, None)
        if code:
            raise HttpResponseError(message=f"busy {code}", response=_Response(code, "2" if code == 429 else None))
        return "ok"

    assert client.call("doing it", flaky, sleep=naps.append) == "ok"
    assert len(naps) == 2 and 1.5 <= naps[0] <= 2.5  # Retry-After honoured (with jitter)

    def always() -> None:
        raise HttpResponseError(message="Internal error\nCode: X\nMessage: Y", response=_Response(500))

    naps.clear()
    with pytest.raises(ServiceError) as caught:
        client.call("doing it", always, attempts=4, base_delay=1, max_delay=3, sleep=naps.append)
    assert len(naps) == 3 and max(naps) <= 3 * 1.2
    assert str(caught.value) == "doing it: Azure ML kept answering 500 after retries; try again later: Internal error"


def test_call_does_not_retry_refusals():
    from azure.core.exceptions import HttpResponseError

    calls = []

    def refused() -> None:
        calls.append(1)
        raise HttpResponseError(message="nope", response=_Response(403))

    with pytest.raises(ServiceError, match=r"access denied \(403\)"):
        client.call("doing it", refused, sleep=lambda s: None)
    assert len(calls) == 1


def test_blob_sync_mirrors_a_command_into_append_blobs(azurite, azurite_container, tmp_path):
    """scripts/blob_sync.py with a container SAS, wrapping scripts/singkit_entry.py, as in a job."""
    from azure.storage.blob import BlobType

    sas = azurite.container_sas_url(azurite_container.container_name).split("?", 1)[1]
    url = f"{azurite.account_url}/{azurite_container.container_name}"
    script = "import json, os\n" \
             "open(os.environ['SINGKIT_RUN_LOG'], 'a').write(json.dumps({'event': 'metrics', 'step': 1, 'metrics': {'loss': 0.5}}) + '\\n')\n" \
             "print('hello from the job')\n"
    env = {**os.environ, "SINGKIT_BLOB_URL": url, "SINGKIT_BLOB_SAS": sas, "SINGKIT_BLOB_PREFIX": "jobs/job9/runs/job9.1",
           "SINGKIT_SYNC_INTERVAL": "0.05", "RANK": "0"}
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "blob_sync.py"), "--dir", str(tmp_path / "run"), "--",
                             sys.executable, str(ROOT / "scripts" / "singkit_entry.py"), "--tee", "--",
                             sys.executable, "-c", script + "import os; print('sas seen:', 'SINGKIT_BLOB_SAS' in os.environ)"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "hello from the job" in result.stdout and "sas seen: False" in result.stdout
    blobs = {b.name: b for b in azurite_container.list_blobs()}
    assert set(blobs) == {f"jobs/job9/runs/job9.1/{f}" for f in ("run.log", "stdout.log", "stderr.log")}
    assert all(b.blob_type == BlobType.APPENDBLOB for b in blobs.values())
    text = azurite_container.download_blob("jobs/job9/runs/job9.1/run.log").readall().decode()
    events = [json.loads(line) for line in text.splitlines()]
    assert [e.get("status") or e["event"] for e in events] == ["running", "metrics", "completed"]
    assert b"hello from the job" in azurite_container.download_blob("jobs/job9/runs/job9.1/stdout.log").readall()


def test_blob_sync_other_ranks_and_a_failing_command(azurite, azurite_container, tmp_path):
    sas = azurite.container_sas_url(azurite_container.container_name).split("?", 1)[1]
    env = {**os.environ, "SINGKIT_BLOB_URL": f"{azurite.account_url}/{azurite_container.container_name}",
           "SINGKIT_BLOB_SAS": sas, "SINGKIT_BLOB_PREFIX": "jobs/job9/runs/job9.1", "RANK": "3",
           "SINGKIT_SYNC_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "blob_sync.py"), "--",
                             sys.executable, str(ROOT / "scripts" / "singkit_entry.py"), "--", sys.executable, "-c", "raise SystemExit(3)"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert (tmp_path / "rank3" / "run.log").exists()
    names = {b.name for b in azurite_container.list_blobs()}
    assert "jobs/job9/runs/job9.1/ranks/3/run.log" in names
    last = azurite_container.download_blob("jobs/job9/runs/job9.1/ranks/3/run.log").readall().decode().splitlines()[-1]
    assert json.loads(last)["exit_code"] == 3


def test_blob_sync_never_fails_the_job_when_storage_is_unreachable(tmp_path):
    env = {**os.environ, "SINGKIT_BLOB_URL": "http://127.0.0.1:9/acct/c", "SINGKIT_BLOB_SAS": "sv=x&sig=y",
           "SINGKIT_BLOB_PREFIX": "p"}
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "blob_sync.py"), "--dir", str(tmp_path), "--",
                             sys.executable, str(ROOT / "scripts" / "singkit_entry.py"), "--tee", "--",
                             sys.executable, "-c", "print('still trained')"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "still trained" in result.stdout
    assert result.stderr.count("cannot mirror logs") == 1 and "sig=y" not in result.stderr
