"""A dry run is settled the moment it is written: nothing to follow, nothing to cancel.
And job.monitor on a finished job says how long the job took, not how long it watched."""

from __future__ import annotations

import json
from pathlib import Path

from jobreaper import reaped  # noqa: F401  (autouse: every job ends with its test)
from jobtools import make_env, make_project, run_here, wait_done
from singtools import NOWHERE, SINGULARITY
from singkit.jobs import control
from singkit.backends.follow import took
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit


def _dry(project: Path, env, *args: str) -> str:
    done = run_here(["job.submit", "--dry-run", *args], project, env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_dry_run_is_settled_monitor_logs_cancel_return_at_once(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    job_id = _dry(project, env, "--cmd", "echo hi", "--hp", "k=1,2")
    data = json.loads(run_here(["job.status", job_id, "--json"], project, env).stdout)
    assert data["status"] == "dry-run" and [r["status"] for r in data["runs"]] == ["dry-run", "dry-run"]
    table = json.loads(run_here(["report.list", "--json", f"--job={job_id}"], project, env).stdout)
    assert [row["status"] for row in table] == ["dry-run", "dry-run"]  # the reports agree
    for args in (["job.monitor", job_id], ["job.logs", job_id, "--follow"], ["job.logs", job_id]):
        done = run_here(args, project, env, timeout=60)  # used to wait for the runs forever
        assert done.returncode == 0 and done.stdout == "", (args, done.stderr)
        assert f"{job_id} is a dry run: nothing was started" in done.stderr, done.stderr
    for _ in range(2):  # idempotent
        done = run_here(["job.cancel", job_id], project, env)
        assert done.returncode == 0, done.stderr
        assert done.stderr == f"nothing to cancel: {job_id} is a dry run (nothing was started)\n"
    assert control.cancel(env, job_id) == []
    assert control.status(env, job_id)["status"] == "dry-run"  # still: cancel wrote nothing
    assert not (env.home / "jobs" / job_id / "runs").exists()
    assert [e["event"] for e in json.loads(run_here(["report.events", "--json"], project, env).stdout)] == ["submit"]


def test_a_singularity_dry_run_is_cancelled_without_asking_azure_ml(tmp_path: Path) -> None:
    project = make_project(tmp_path, SINGULARITY)
    env = make_env(project, **NOWHERE)
    job_id = _dry(project, env, "--target=sing", "--cmd=python train.py")
    for args in (["job.cancel", job_id], ["job.monitor", job_id], ["job.logs", job_id, "--follow"]):
        done = run_here(args, project, env, timeout=60)
        assert done.returncode == 0 and "dry run" in done.stderr, (args, done.stderr)
    assert control.status(env, job_id)["status"] == "dry-run"


def test_monitor_of_a_finished_job_says_how_long_the_job_took(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    job = submit(env, SubmitRequest(command="sleep 1.2"))
    assert wait_done(env, job.id) == "completed"
    data = control.status(env, job.id)
    done = run_here(["job.monitor", job.id], project, env)
    assert done.returncode == 0, done.stderr
    line = done.stderr.splitlines()[-1]
    assert line == f"{job.id} completed: 1 completed in {took(data['started'], data['ended'])}", line
    assert took(data["started"], data["ended"]) != "0.0s"  # the job slept; watching it took no time
