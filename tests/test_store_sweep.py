"""Job folders a submit abandoned half-created (issue 16): swept by the next submit once they are
old, nobody is still making them and nothing of value is in them; their ids stay taken."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from jobreaper import reaped  # noqa: F401  (autouse: every job ends with its test)
from jobtools import make_env, make_project, run_here, wait_done
from singkit import procs
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit
from singkit.store import runlog

HOUR = 3600.0


def _half(jobs: Path, name: str, age: float = HOUR, creator: dict | None = None, output: bool = False) -> Path:
    """A folder as a submit killed before job.yaml leaves it (code linked, runs queued)."""
    folder = jobs / name
    run = folder / "runs" / f"{name}.1"
    (run / "outputs").mkdir(parents=True)
    (folder / "code.tar.gz").write_bytes(b"\x1f\x8b")
    for log in ("stdout.log", "stderr.log"):
        (run / log).touch()
    runlog.append(run / "run.log", "status", status="queued")
    if creator is not None:
        (folder / ".creating").write_text(json.dumps(creator))
    if output:
        (run / "outputs" / "model.pt").write_text("weights")
    old = time.time() - age
    for path in sorted(folder.rglob("*"), reverse=True) + [folder]:
        os.utime(path, (old, old))
    return folder


def test_a_submit_sweeps_abandoned_half_created_job_folders(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    first = submit(env, SubmitRequest(command="true"))
    assert wait_done(env, first.id) == "completed"
    jobs = env.home / "jobs"
    dead = procs.identity(os.getpid()) | {"pid": 2 ** 22 + 7}  # a submit long gone
    abandoned = [_half(jobs, "job2", creator=dead), _half(jobs, "job3")]
    young = _half(jobs, "job4", age=5)  # a concurrent submit may be making it right now
    live = _half(jobs, "job5", creator=procs.identity(os.getpid()))  # its submit still runs
    valuable = _half(jobs, "job6", output=True)  # a run wrote outputs: never deleted by a sweep

    second = submit(env, SubmitRequest(command="true"))
    assert second.id == "job7"  # ids of swept folders stay taken
    assert not any(f.exists() for f in abandoned)
    assert all(f.is_dir() for f in (young, live, valuable))
    assert (jobs / "job2.refused").exists() and (jobs / "job3.refused").exists()
    assert wait_done(env, second.id) == "completed"
    shown = run_here(["job.status", "job2"], project, env)
    assert shown.returncode == 2 and len(shown.stderr.splitlines()) == 1, shown.stderr
    assert "job2 was never fully created" in shown.stderr, shown.stderr
    listed = json.loads(run_here(["job.list", "--json"], project, env).stdout)
    assert [j["job"] for j in listed if j["job"] != "job4"] == ["job1", "job7"], listed
