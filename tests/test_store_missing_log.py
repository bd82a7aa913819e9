"""A run.log deleted from a run folder (by hand: singkit never removes one): what the run did is
unknown, and job.status says so. Nothing is made up for it (a reconciler once wrote "the runner
died before this run started" into a new run.log), and a finished job's time stops growing."""

from __future__ import annotations

from pathlib import Path

import storegen
from storegen import RunSpec, curve

from singkit.jobs import control


def _job(tmp_path: Path, *statuses: str):
    home = tmp_path / ".singkit"
    storegen.write_job(home, "job1", [RunSpec({"lr": 0.1 * k}, curve(3, 2.0, 1.0), status=status)
                                      for k, status in enumerate(statuses, start=1)])
    return storegen.store_env(tmp_path), home / "jobs" / "job1" / "runs"


def test_a_completed_runs_deleted_log_is_unknown_and_the_jobs_time_stops(tmp_path: Path) -> None:
    env, runs = _job(tmp_path, "completed", "completed")
    before = control.status(env, "job1")
    (runs / "job1.1" / "run.log").unlink()
    for _ in range(2):  # (the second look is warm: the index has the job's rows)
        data = control.status(env, "job1")
        one, two = data["runs"]
        assert one["status"] == "unknown" and "run.log is missing" in one["reason"]
        assert one["started"] is None and one["ended"] is None
        assert two == before["runs"][1]
        assert data["status"] == "completed" and data["runs_done"] == 2
        assert data["ended"] == before["ended"] is not None  # not "up to now": the job has ended
    assert not (runs / "job1.1" / "run.log").exists()  # no outcome written for it


def test_a_dead_runner_is_reconciled_without_an_outcome_for_the_run_whose_log_is_gone(tmp_path: Path) -> None:
    env, runs = _job(tmp_path, "completed", "running")  # no runner.json, created long ago: its runner is gone
    (runs / "job1.1" / "run.log").unlink()
    data = control.status(env, "job1")
    assert [r["status"] for r in data["runs"]] == ["unknown", "failed"]
    assert "gone without recording an outcome" in data["runs"][1]["reason"]
    assert not (runs / "job1.1" / "run.log").exists()
    assert data["status"] == "failed" and data["ended"] is not None


def test_a_run_that_never_had_a_folder_is_only_queued(tmp_path: Path) -> None:
    import time

    home = tmp_path / ".singkit"  # being submitted just now: nothing is reconciled yet
    storegen.write_job(home, "job1", [RunSpec({}, curve(3, 2.0, 1.0), status="running"), RunSpec({}, log=False)],
                       created=time.time())
    env = storegen.store_env(tmp_path)
    assert [r["status"] for r in control.status(env, "job1")["runs"]] == ["running", "queued"]
