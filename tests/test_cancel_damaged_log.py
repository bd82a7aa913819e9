"""Issue 14 (fix-jobs, point 1): `job.cancel` of a job one of whose run.log files is damaged (a
FIFO, a folder, a symbolic link: status `unknown`) still cancels every other run, stops the
damaged run's process too, names it in one line and exits 2; on a job that has ended it says there
is nothing to cancel. No outcome is written for the damaged run. Jobs are written by a real submit
(local backend) and damaged as a tampered store would be, as in tests/test_hostile_store.py."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from jobreaper import reaped  # noqa: F401  (autouse: cancels whatever a test started)
from jobtools import DOCKER_CONFIG, make_env, make_project, pid_gone, run_cli, wait_done, wait_for
from singkit.environment import Environment
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit
from singkit.store import Run

TIMEOUT = 120
KINDS = ["fifo", "folder", "link"]


@pytest.fixture
def env(tmp_path: Path) -> Environment:
    return make_env(make_project(tmp_path))


def cli(env: Environment, *args: str) -> tuple[int, list[str]]:
    done = run_cli(list(args), env.project_root, env, timeout=TIMEOUT)
    return done.returncode, done.stderr.splitlines()


def damage(run: Run, kind: str, elsewhere: Path) -> None:
    """Put a FIFO, a folder or a link (to a log outside the store) where the run's run.log was."""
    run.log_path.unlink()
    if kind == "fifo":
        os.mkfifo(run.log_path)
    elif kind == "folder":
        run.log_path.mkdir()
    else:
        elsewhere.write_text("")
        run.log_path.symlink_to(elsewhere)


def pid(run: Run) -> int:
    return int(run.backend_info()["pid"])


@pytest.mark.parametrize("kind", KINDS)
def test_cancel_stops_every_run_when_one_run_log_is_damaged_and_names_that_run(env: Environment, tmp_path: Path,
                                                                              kind: str) -> None:
    job = submit(env, SubmitRequest(command="sleep 300", runs=3, parallel=3))
    wait_for(lambda: all(r.backend_info().get("pid") and r.state().status == "running" for r in job.runs),
             TIMEOUT, "three running runs")
    damaged = job.runs[1]
    damage(damaged, kind, tmp_path / "elsewhere.log")
    pids = [pid(r) for r in job.runs]
    code, lines = cli(env, "job.cancel", job.id)
    assert code == 2 and len(lines) == 1, lines
    said = "a symbolic link" if kind == "link" else "not a regular file"
    assert lines[0].startswith(f"error: {damaged.id}: its run.log is {said}"), lines
    for healthy in (job.runs[0], job.runs[2]):
        assert healthy.state().status == "cancelled"  # recorded, as for any cancel
    assert all(pid_gone(p) for p in pids)  # the damaged run was stopped with the others
    assert damaged.log_path.is_symlink() or not damaged.log_path.is_file()  # nothing was written in its place
    if kind == "link":
        assert (tmp_path / "elsewhere.log").read_text() == ""  # not through the link either
    shown = json.loads(run_cli(["job.status", job.id, "--json"], env.project_root, env, timeout=TIMEOUT).stdout)
    assert {r["run"]: r["status"] for r in shown["runs"]}[damaged.id] == "unknown"


@pytest.mark.parametrize("kind", [*KINDS, "missing"])
def test_cancel_of_an_ended_job_with_a_damaged_run_log_has_nothing_to_cancel(env: Environment, tmp_path: Path,
                                                                             kind: str) -> None:
    job = submit(env, SubmitRequest(command="true", runs=2, parallel=2))
    assert wait_done(env, job.id) == "completed"
    damaged = job.runs[1]
    if kind == "missing":
        damaged.log_path.unlink()
    else:
        damage(damaged, kind, tmp_path / "elsewhere.log")
    code, lines = cli(env, "job.cancel", job.id)
    assert code == 0 and len(lines) == 1 and "nothing to cancel" in lines[0], lines
    assert job.runs[0].state().status == "completed"  # untouched
    assert not damaged.log_path.is_file() or damaged.log_path.is_symlink()  # no outcome made up for it


def test_docker_cancel_with_a_damaged_run_log_removes_every_container_and_names_that_run(
        tmp_path: Path, busybox_image: Any, docker_host: str, docker_client: Any) -> None:
    config = DOCKER_CONFIG + "    grace-seconds: 1\n"  # the shell in the container may wait on the FIFO
    env = make_env(make_project(tmp_path, config.format(image=busybox_image.ref)))
    job = submit(env, SubmitRequest(target="docker", command="echo started; sleep 300", runs=2, parallel=2))
    wait_for(lambda: all(r.stdout_path.read_text() == "started\n" for r in job.runs), TIMEOUT, "two containers")
    damaged = job.runs[1]
    damage(damaged, "fifo", tmp_path / "elsewhere.log")
    code, lines = cli(env, "job.cancel", job.id)
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"error: {damaged.id}: "), lines
    assert job.runs[0].state().status == "cancelled"
    left = docker_client.api.containers(all=True, filters={"label": [f"singkit.job={job.id}",
                                                                     f"singkit.store={job.store.root}"]})
    assert left == []  # the damaged run's container was stopped and removed with the other one
