"""A live runner whose runner.json is missing, and a runner killed mid-sweep (issues 15, 16):
a live runner's runs are never failed as orphans, and a dead one's reason says it died."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jobreaper import reaped  # noqa: F401  (autouse: every job ends with its test)
from jobtools import age, make_env, make_project, pid_gone, run_cli, wait_done, wait_for
from singkit.jobs import control
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit
from singkit.store import Store


# Runs `singkit ARGS` and SIGKILLs itself just before it records the runner it spawned: the
# moment a submit killed between spawning the runner and writing runner.json leaves behind.
KILL_BEFORE_RUNNER_JSON = textwrap.dedent("""
    import os, signal, sys
    spawned = []
    def hook(event, args):
        if event == "subprocess.Popen":
            spawned.append(True)
        elif spawned and event == "open" and "runner.json" in str(args[0]):
            os.kill(os.getpid(), signal.SIGKILL)
    sys.addaudithook(hook)
    sys.argv = ["singkit", *sys.argv[1:]]
    from singkit.cli import main
    main()
""")


def _listed(project: Path, env) -> dict[str, str]:
    done = run_cli(["job.list", "--json"], project, env)
    assert done.returncode == 0, done.stderr
    return {j["job"]: j["status"] for j in json.loads(done.stdout)}


def test_a_submit_killed_before_recording_its_runner_loses_no_run(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    killed = subprocess.run([sys.executable, "-c", KILL_BEFORE_RUNNER_JSON, "job.submit", "--cmd", "sleep 2; echo done",
                             "--runs=2"], cwd=project, env=dict(env.environ), capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    job = Store.of(env).job("job1")
    age(job)  # past the start-up grace: only the live runner itself can keep its runs from being failed
    assert _listed(project, env)["job1"] in ("queued", "running")
    assert wait_done(env, job.id) == "completed"
    assert [r.stdout_path.read_text() for r in job.runs] == ["done\n", "done\n"]


def test_a_live_runner_is_found_when_runner_json_is_gone(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    job = submit(env, SubmitRequest(command="sleep 2; echo done", runs=2))
    wait_for(lambda: job.runs[0].state().status == "running", what="the first run to start")
    job.runner_path.unlink()
    age(job)
    assert _listed(project, env)[job.id] == "running"  # the second run, still queued, is not failed
    assert wait_done(env, job.id) == "completed"
    assert all(r.state().status == "completed" for r in job.runs)


@pytest.mark.parametrize("runner_json", ["kept", "lost"])
def test_a_runner_killed_mid_sweep_is_said_to_have_died(tmp_path: Path, runner_json: str) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    job = submit(env, SubmitRequest(command="sleep 1; echo done", runs=3))
    wait_for(lambda: job.runs[0].state().status == "completed", what="the first run to end")
    runner = job.runner_info()
    pid = int(runner["pid"])
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: pid_gone(pid), what="the runner to die")
    if runner_json == "lost":
        job.runner_path.unlink()
    age(job)
    assert wait_done(env, job.id) == "failed"
    reasons = [r["reason"] for r in control.status(env, job.id)["runs"] if r["status"] == "failed"]
    assert reasons, "the runs the runner never started are failed"
    for reason in reasons:
        assert "no runner was ever started" not in reason, reason
        assert "runner" in reason and "died" in reason, reason
        if runner_json == "kept":
            assert f"pid {pid}" in reason and "started " in reason, reason
