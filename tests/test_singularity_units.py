"""Small parts of the Singularity backend: status mapping, log prefixes, the static token
credential, error lines, retries, and scripts/blob_sync.py against Azurite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from singkit.backends.singularity import client, logs, status
from singkit.singularity import catalog
from singkit.exceptions import ServiceError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("azure, ours", [
    ("NotStarted", "queued"), ("Queued", "queued"), ("Preparing", "queued"), ("Provisioning", "queued"),
    ("Starting", "queued"), ("Running", "running"), ("Finalizing", "running"), ("Completed", "completed"),
    ("Failed", "failed"), ("NotResponding", "failed"), ("Canceled", "cancelled"), ("CancelRequested", "cancelled"),
    # ARM JobStatus Paused and RunHistory RunStatus Pausing (azure-ai-ml 1.35.2 _restclient enums): not over
    ("Paused", "preempted"), ("Pausing", "preempted"), ("Unapproved", "queued"),
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
    assert status.transition("Paused") == ("preempted", "Azure ML paused the job (Paused)")
    assert not status.is_final("Paused")


def test_run_state_counts_preemptions_and_preempted_is_not_final():
    from singkit.store import runlog

    state = runlog.RunState()
    for s in ("queued", "running", "preempted", "preempted", "running", "preempted", "queued", "running"):
        state.apply({"event": "status", "status": s, "t": 1.0, **({"reason": "Azure ML paused the job (Paused)"}
                                                                 if s == "preempted" else {})})
        assert not state.terminal
        assert (state.reason is not None) == (state.status == "preempted")  # no stale reason once running again
    assert state.preemptions == 2 and state.to_dict()["preemptions"] == 2
    state.apply({"event": "status", "status": "completed", "t": 2.0})
    state.apply({"event": "status", "status": "preempted", "t": 3.0})  # after the final status: ignored
    assert state.status == "completed" and state.preemptions == 2


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


# -- the in-job wrapper on a platform that decides the outcome itself (Singularity) ----------
@pytest.mark.parametrize("flag, env", [(["--exit-event"], {}), ([], {"SINGKIT_EXIT_EVENT": "1"})])
def test_entry_with_exit_event_writes_no_final_status(tmp_path, flag, env):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "singkit_entry.py"), "--run-dir", str(tmp_path), *flag,
                             "--", sys.executable, "-c", "raise SystemExit(3)"],
                            env={**os.environ, "SINGKIT_NODE": "1", "RANK": "9", **env}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    events = [json.loads(line) for line in (tmp_path / "run.log").read_text().splitlines()]
    assert [(e["event"], e.get("status")) for e in events] == [("status", "running"), ("exit", None)]
    assert events[-1]["exit_code"] == 3 and events[-1]["node"] == 1 and events[-1]["rank"] == 9
    assert events[-1]["reason"] == "exit code 3"


def test_entry_without_it_still_ends_the_run(tmp_path):
    """local and docker runs: the wrapper's final status line is the run's outcome, as before."""
    subprocess.run([sys.executable, str(ROOT / "scripts" / "singkit_entry.py"), "--run-dir", str(tmp_path),
                    "--", sys.executable, "-c", "pass"], env={k: v for k, v in os.environ.items() if k != "SINGKIT_EXIT_EVENT"},
                   check=True, timeout=60)
    last = json.loads((tmp_path / "run.log").read_text().splitlines()[-1])
    assert (last["event"], last["status"], last["exit_code"]) == ("status", "completed", 0)


# -- the Blob mirror read back: a pull killed half-way ---------------------------------------
PULL = """\
import io, json, os, sys
from pathlib import Path
from typing import Any
from singkit.backends.singularity import mirror
from singkit.config import load_config
from singkit.environment import Environment
from singkit.store import Store
root, home, job_id, info = sys.argv[1:5]
env = Environment(project_root=Path(root), environ=dict(os.environ), stdout=io.StringIO(), stderr=sys.stderr)
mirror.pull(load_config(env), env.environ, json.loads(info), Store(Path(home)).job(job_id).runs[0])
"""


def test_a_pull_killed_between_two_files_copies_nothing_twice(azurite, azurite_container, tmp_path):
    import select

    from singkit.backends.singularity import mirror
    from singkit.config import load_config
    from singkit.environment import Environment
    from singkit.store import Store

    root, home = tmp_path / "proj", tmp_path / "proj" / ".singkit"
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "singkit.yaml").write_text(
        "general:\n  store: mirror\nexternal-services:\n  mirror:\n    type: storage\n"
        f"    connection-string: $env:TEST_STORE_CONNECTION\n    container: {azurite_container.container_name}\n")
    environ = {**os.environ, "TEST_STORE_CONNECTION": azurite.connection_string, "HOME": str(tmp_path / "home")}
    job = Store(home).allocate()
    job.write_spec({"job": job.id, "target": {"name": "sing"}, "service": {"name": "sing", "type": "singularity"},
                    "runs": [{"run": f"{job.id}.1", "hparams": {}}]})
    run = job.runs[0]
    run.create()
    prefix = f"jobs/{job.id}/runs/{run.id}"
    remote_log = "".join(json.dumps({"t": i, "event": "metrics", "step": i, "metrics": {"loss": 1 / (i + 1)}}) + "\n" for i in range(50))
    stdout = b"x" * (1 << 20)  # more than a pipe holds: the pull blocks writing it
    for name, data in (("run.log", remote_log.encode()), ("stdout.log", stdout)):
        azurite_container.get_blob_client(f"{prefix}/{name}").upload_blob(data, blob_type="AppendBlob")
    info = {"mirror": {"record": "mirror", "prefix": prefix}}
    local_before = run.log_path.read_text()

    run.stdout_path.unlink()
    os.mkfifo(run.stdout_path)  # the second file: the pull stops in it until killed
    reader = os.open(run.stdout_path, os.O_RDONLY | os.O_NONBLOCK)
    proc = subprocess.Popen([sys.executable, "-c", PULL, str(root), str(home), job.id, json.dumps(info)],
                            env=environ, stderr=subprocess.PIPE, text=True)
    try:
        got = b""
        while not got and proc.poll() is None:  # the pull has reached stdout.log once it writes there
            select.select([reader], [], [], 1.0)
            try:
                got = os.read(reader, 1)
            except BlockingIOError:
                pass
            if not got:
                time.sleep(0.01)
        proc.kill()
        _, err = proc.communicate(timeout=60)
    finally:
        os.close(reader)
    assert got, err
    run.stdout_path.unlink()

    env = Environment(project_root=root, environ=environ)
    mirror.pull(load_config(env), environ, info, run)
    assert run.log_path.read_text() == local_before + remote_log  # each remote line once
    assert run.stdout_path.read_bytes() == stdout


# -- blob_sync never fails the job it wraps ---------------------------------------------------
def _serve(answer: bytes) -> tuple[str, Any]:
    """A loopback TCP server giving every connection `answer` after reading its request."""
    import socket
    import threading

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)

    def loop() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                    conn.sendall(answer)
                except OSError:
                    pass

    threading.Thread(target=loop, daemon=True).start()
    return f"http://127.0.0.1:{sock.getsockname()[1]}", sock


def _http(body: bytes, ctype: str = "application/json") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype.encode() + b"\r\nContent-Length: " + str(len(body)).encode() + \
        b"\r\nConnection: close\r\n\r\n" + body


@pytest.mark.parametrize("case", ["identity answers {}", "identity answers html", "storage answers garbage"])
def test_blob_sync_survives_any_error_of_the_mirror(tmp_path, case):
    """KeyError/ValueError from a managed-identity reply, http.client.HTTPException from a
    garbled answer: one line on stderr; the training runs and its exit code is the job's."""
    answer = {"identity answers {}": _http(b"{}"), "identity answers html": _http(b"<html>sign in</html>", "text/html"),
              "storage answers garbage": b"garbage\r\n\r\n"}[case]
    url, sock = _serve(answer)
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("SINGKIT_BLOB_SAS", "IDENTITY_ENDPOINT", "MSI_ENDPOINT")}
        env.update(SINGKIT_BLOB_URL=f"{url}/acct/c", SINGKIT_BLOB_PREFIX="p", SINGKIT_SYNC_INTERVAL="0.05")
        if case.startswith("identity"):
            env.update(IDENTITY_ENDPOINT=f"{url}/token", IDENTITY_HEADER="h")
        else:
            env["SINGKIT_BLOB_SAS"] = "sv=x&sig=y"
        result = subprocess.run([sys.executable, str(ROOT / "scripts" / "blob_sync.py"), "--dir", str(tmp_path), "--",
                                 sys.executable, str(ROOT / "scripts" / "singkit_entry.py"), "--tee", "--",
                                 sys.executable, "-c", "print('still trained'); raise SystemExit(5)"],
                                env=env, capture_output=True, text=True, timeout=60)
    finally:
        sock.close()
    assert result.returncode == 5 and "still trained" in result.stdout
    assert result.stderr.count("cannot mirror logs") == 1 and "Traceback" not in result.stderr, result.stderr
    assert "sig=y" not in result.stderr


def test_a_registry_token_that_is_not_json_is_one_line_service_error():
    from singkit.exceptions import ServiceError
    from singkit.imageref import Reference
    from singkit.images.registry import RegistryClient

    token_url, token_sock = _serve(_http(b"<html>corporate proxy login</html>", "text/html"))
    challenge = f'Bearer realm="{token_url}/token",service="registry"'.encode()
    registry_url, registry_sock = _serve(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: " + challenge +
                                         b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    try:
        host = registry_url.removeprefix("http://")
        with pytest.raises(ServiceError) as caught:
            RegistryClient(host).digest(Reference.parse(f"{host}/team/app:1"))
    finally:
        token_sock.close()
        registry_sock.close()
    message = str(caught.value)
    assert "\n" not in message and "not a JSON object (text/html)" in message and host in message


# -- hints for sizes singkit does not know -------------------------------------------------------------
@pytest.mark.parametrize("typed, words", [
    ("NC4as_T4_v3", "no size in singkit's catalog has T4 GPUs"),  # never a V100 size for a T4
    ("NC24rs_v3", "Azure VM size name; Singularity's instance type for that machine is `NC24r_v3` (4 x V100"),
    ("NC24rx_v3", "nearest known: `NC24r_v3`, `NC24_v3` ("),  # the NC series first, not ND24_v4
    ("ND96isr_H100_v5", "Azure VM size name; Singularity's instance type for that machine is `ND96r_H100_v5` (8 x H100"),
    ("Standard_ND12_H100_v5", "have no `Standard_` prefix; nearest known: `ND12_H100_v5`"),
    ("Standard_NC4as_T4_v3", "no size in singkit's catalog has T4 GPUs"),
    ("80G8-A100-NvLink", "Amulet's sku shorthand (8 x A100 80GB per node)"),
    ("2x40G4-A100", "sizes with that: `ND48_v4`; its `2x` is `nodes: 2`"),
    ("1xC1", "(CPU only per node)"),
])
def test_unknown_size_hints(typed, words):
    message = catalog.unknown_message(catalog.shipped(), typed)
    assert words in message, message

