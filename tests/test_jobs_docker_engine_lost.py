"""The Docker Engine's connection lost while a docker run goes on (issue 16): a relay in front
of the real engine is killed mid-run and started again. A lost connection is not the run's
outcome: the run stays running, and once the engine answers again its whole output, its real
exit code and the container's removal are all recorded, by the runner or by the next refresh."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from enginerelay import EngineRelay
from jobreaper import reaped  # noqa: F401  (autouse: every job ends with its test)
from jobtools import DOCKER_CONFIG, make_env, make_project, pid_gone, run_cli, wait_done, wait_for
from singkit.jobs import control
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit
from singkit.store import Store

COMMAND = "echo started; sleep 3; echo finished; echo oops >&2"


@pytest.fixture
def relay(docker_host: str) -> Any:
    relay = EngineRelay(docker_host)
    yield relay
    relay.stop()


@pytest.fixture
def project(tmp_path: Path, busybox_image: Any) -> Path:
    return make_project(tmp_path, DOCKER_CONFIG.format(image=busybox_image.ref))


def _labelled(client: Any, job: Any) -> list[dict]:
    return client.api.containers(all=True, filters={"label": [f"singkit.job={job.id}", f"singkit.store={job.store.root}"]})


def _exited(client: Any, job: Any) -> bool:
    found = _labelled(client, job)
    return bool(found) and all(c["State"] == "exited" for c in found)


def test_engine_lost_mid_run_is_not_the_runs_outcome(project: Path, relay: Any, docker_client: Any) -> None:
    env = make_env(project, DOCKER_HOST=relay.url)
    job = submit(env, SubmitRequest(target="docker", command=COMMAND))
    run = job.runs[0]
    wait_for(lambda: run.stdout_path.read_text() == "started\n", what="the container to start")
    relay.kill()
    # the container ends while nobody can reach the engine
    wait_for(lambda: _exited(docker_client, job), what="the container to exit")
    assert run.state().status == "running", run.state()
    relay.start()
    assert wait_done(env, job.id) == "completed"
    state = run.state()
    assert (state.status, state.exit_code, state.reason) == ("completed", 0, None)
    assert run.stdout_path.read_text() == "started\nfinished\n"
    assert run.stderr_path.read_text() == "oops\n"
    assert _labelled(docker_client, job) == []


@pytest.mark.parametrize("backend_json", ["kept", "lost"])
def test_refresh_finds_the_container_when_the_engine_answers_again(project: Path, relay: Any, docker_client: Any,
                                                                 backend_json: str) -> None:
    """The runner is gone too (killed while the engine was away): refresh finds the container
    by its labels (even with backend.json gone), saves its logs and outcome, removes it."""
    env = make_env(project, DOCKER_HOST=relay.url)
    job = submit(env, SubmitRequest(target="docker", command=COMMAND + "; exit 3"))
    run = job.runs[0]
    wait_for(lambda: run.stdout_path.read_text() == "started\n", what="the container to start")
    relay.kill()
    runner = int(job.runner_info()["pid"])
    os.kill(runner, signal.SIGKILL)
    wait_for(lambda: pid_gone(runner), what="the runner to die")
    if backend_json == "lost":
        run.backend_path.unlink()
    wait_for(lambda: _exited(docker_client, job), what="the container to exit")
    summary = control.status(env, job.id)  # the engine does not answer: nothing is decided
    assert summary["runs"][0]["status"] == "running", summary["runs"][0]
    relay.start()
    assert wait_done(env, job.id) == "failed"
    state = run.state()
    assert (state.exit_code, state.reason) == (3, "exit code 3")
    assert run.stdout_path.read_text() == "started\nfinished\n"
    assert _labelled(docker_client, job) == []


# Runs `singkit ARGS`, killing the relay (pid in $TEST_RELAY_PID) just before the runner is spawned:
# the engine is out of reach from the moment the runner starts.
CUT_AT_RUNNER = textwrap.dedent("""
    import os, signal, sys
    relay = int(os.environ.pop("TEST_RELAY_PID"))
    def hook(event, args):
        if event == "subprocess.Popen" and "singkit.backends.runtime.runner" in str(args[1]):
            os.kill(relay, signal.SIGKILL)
    sys.addaudithook(hook)
    sys.argv = ["singkit", *sys.argv[1:]]
    from singkit.cli import main
    main()
""")


def test_a_runner_waits_for_the_engine_before_a_run_starts(project: Path, relay: Any) -> None:
    env = make_env(project, DOCKER_HOST=relay.url)
    done = subprocess.run([sys.executable, "-c", CUT_AT_RUNNER, "job.submit", "--target=docker", "--cmd", "echo hi"],
                          cwd=project, env={**env.environ, "TEST_RELAY_PID": str(relay.proc.pid)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    relay.kill()
    job = Store.of(env).job("job1")
    wait_for(lambda: "waiting for the Docker Engine" in (job.dir / "runner.log").read_text(), timeout=30,
             what="the runner to wait for the engine")
    assert job.runs[0].state().status == "queued"
    relay.start()
    assert wait_done(env, job.id) == "completed"
    assert job.runs[0].stdout_path.read_text() == "hi\n"


def test_status_while_the_engine_drops_mid_refresh_is_one_warning(project: Path, relay: Any) -> None:
    """Refresh of a run whose runner is gone, the engine unreachable: a warning, the run unchanged."""
    env = make_env(project, DOCKER_HOST=relay.url)
    job = submit(env, SubmitRequest(target="docker", command="echo started; sleep 300"))
    run = job.runs[0]
    wait_for(lambda: run.stdout_path.read_text() == "started\n", what="the container to start")
    runner = int(job.runner_info()["pid"])
    os.kill(runner, signal.SIGKILL)
    wait_for(lambda: pid_gone(runner), what="the runner to die")
    relay.kill()
    shown = run_cli(["job.status", job.id], project, env)
    assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
    assert [line for line in shown.stderr.splitlines() if line.startswith("warning: could not refresh")], shown.stderr
    assert run.state().status == "running"
    relay.start()
    cancelled = run_cli(["job.cancel", job.id], project, env)
    assert cancelled.returncode == 0, cancelled.stderr


def test_a_cancel_while_the_engine_is_away_stops_the_container_once_it_answers(project: Path, relay: Any,
                                                                               docker_client: Any) -> None:
    env = make_env(project, DOCKER_HOST=relay.url)
    job = submit(env, SubmitRequest(target="docker", command="echo started; sleep 300"))
    run = job.runs[0]
    wait_for(lambda: run.stdout_path.read_text() == "started\n", what="the container to start")
    relay.kill()
    cancelled = run_cli(["job.cancel", job.id], project, env)
    assert cancelled.returncode == 4 and len(cancelled.stderr.splitlines()) == 1, cancelled.stderr
    assert "Docker Engine" in cancelled.stderr, cancelled.stderr
    assert run.state().status == "cancelled"  # recorded before anything is stopped
    relay.start()
    wait_for(lambda: _labelled(docker_client, job) == [], timeout=120, what="the runner to stop and remove the container")
    assert run.state().status == "cancelled"
