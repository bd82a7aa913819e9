"""A run.log deleted from a run folder (by hand: singkit never removes one): what the run did is
unknown, and job.status says so. Nothing is made up for it (a reconciler once wrote "the runner
died before this run started" into a new run.log), and a finished job's time stops growing."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest

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


def test_the_reports_and_job_list_say_unknown_as_job_status_does(tmp_path: Path) -> None:
    """One status vocabulary: a report read the run as `queued` (no run.log: not started yet),
    and `job.list --status=unknown` refused the status job.list itself shows for such a job."""
    from singkit.reports.model import StoreReader

    env, runs = _job(tmp_path, "completed")
    (runs / "job1.1" / "run.log").unlink()
    assert control.status(env, "job1")["status"] == "unknown"
    for full in (True, False):  # a whole report, and a listing's columns
        with StoreReader(env) as reader:
            assert [r.status for j in reader.load(full=full) for r in j.runs] == ["unknown"]
    assert [row["job"] for row in control.list_jobs(env, status="unknown")] == ["job1"]
    assert control.list_jobs(env, status="completed") == []


def test_following_a_job_whose_run_log_is_gone_ends_and_says_unknown(tmp_path: Path) -> None:
    """job.monitor and job.logs --follow waited for ever on a run whose run.log was deleted (read
    as queued, never ending); now they end, the monitor says unknown and exits 1, not 0."""
    import io
    import threading

    from singkit.backends.follow import follow_lines
    from singkit.exceptions import ExitStatus, SingkitError
    from singkit.store import Store

    env, runs = _job(tmp_path, "completed", "completed")
    (runs / "job1.1" / "run.log").unlink()
    err = io.StringIO()
    env = dataclasses.replace(env, stderr=err, stdout=io.StringIO())
    ended: dict[str, object] = {}

    def watch() -> None:
        ended["status"] = control.monitor(env, "job1", live=False)
        ended["lines"] = list(follow_lines(Store.of(env).job("job1").run("job1.1"), follow=True))

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "following a run whose run.log is gone never ended"
    assert ended["status"] == "completed" and "1 completed, 1 unknown" in err.getvalue()
    (runs / "job1.2" / "run.log").unlink()  # every run's log gone: the job's outcome is unknown
    assert control.monitor(env, "job1", live=False) == "unknown"
    with pytest.raises(SingkitError) as raised:
        control.outcome("unknown", "job1")
    assert raised.value.exit_code == ExitStatus.ERROR and "unknown" in str(raised.value)


@pytest.mark.parametrize("kind", ["folder", "fifo", "link"])
def test_a_run_log_that_is_no_regular_file_is_unknown_too(tmp_path: Path, kind: str) -> None:
    """The store reads none of these as a run.log: the run was `queued` for ever and each look
    warned `could not refresh job1: Is a directory` while the job's time kept growing."""
    import os

    env, runs = _job(tmp_path, "completed", "completed")
    before = control.status(env, "job1")
    log = runs / "job1.1" / "run.log"
    text = log.read_bytes()
    log.unlink()
    if kind == "folder":
        log.mkdir()
    elif kind == "fifo":
        os.mkfifo(log)
    else:
        (tmp_path / "elsewhere.log").write_bytes(text)
        log.symlink_to(tmp_path / "elsewhere.log")
    err = io.StringIO()
    env = dataclasses.replace(env, stderr=err)
    data = control.status(env, "job1")
    assert [r["status"] for r in data["runs"]] == ["unknown", "completed"]
    assert data["status"] == "completed" and data["ended"] == before["ended"]
    assert "could not refresh" not in err.getvalue()
