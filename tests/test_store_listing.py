"""job.list reads what it shows: with a warm index it stats no job folder, and --last N brings
only the newest N jobs up to date. Counted by wrapping what would be called, never timed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import storegen
from storegen import RunSpec, curve
from singkit.jobs import control
from singkit.store import model


def _store(tmp_path: Path, jobs: int = 6):
    home = tmp_path / ".singkit"
    for num in range(1, jobs + 1):
        storegen.write_job(home, f"job{num}", [RunSpec({"lr": 0.1}, curve(3, 2.0, 1.0))])
    old = os.stat(home / "jobs").st_mtime - 60  # as a store last changed a minute ago
    os.utime(home / "jobs", (old, old))
    return storegen.store_env(tmp_path), home


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each time the store reads which job folders exist (a stat of every one)."""
    seen: list[str] = []
    real = model.Store.job_ids

    def counting(self):
        seen.append("scan")
        return real(self)

    monkeypatch.setattr(model.Store, "job_ids", counting)
    return seen


def test_a_warm_listing_scans_no_job_folder_until_one_is_added_or_removed(tmp_path: Path, scans: list[str]) -> None:
    env, home = _store(tmp_path)
    first = control.list_jobs(env, last=2)
    assert [r["job"] for r in first] == ["job5", "job6"] and scans == ["scan"]
    scans.clear()
    assert control.list_jobs(env, last=2) == first and scans == []  # jobs/ unchanged: the index answers
    shutil.rmtree(home / "jobs" / "job6")  # removed by hand: jobs/ changed, so it is read again
    assert [r["job"] for r in control.list_jobs(env, last=2)] == ["job4", "job5"] and scans == ["scan"]
    scans.clear()
    storegen.write_job(home, "job7", [RunSpec({}, curve(2, 2.0, 1.0))])
    soon = os.stat(home / "jobs").st_mtime + 3600  # changed "just now" for as long as the test runs
    os.utime(home / "jobs", (soon, soon))  # a jobs/ that young is never trusted: scanned every time
    assert [r["job"] for r in control.list_jobs(env, last=1)] == ["job7"]
    assert [r["job"] for r in control.list_jobs(env, last=1)] == ["job7"] and scans == ["scan", "scan"]


def test_last_n_brings_only_the_shown_jobs_up_to_date(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env, home = _store(tmp_path, jobs=4)
    control.list_jobs(env)
    refreshed: list[str] = []
    monkeypatch.setattr(control, "FINISHED", set())  # as if every job were still going
    real = control.refresh
    monkeypatch.setattr(control, "refresh", lambda env_, store, job, backend=None: refreshed.append(job.id) or real(env_, store, job, backend))
    control.list_jobs(env, last=1)
    assert refreshed == ["job4"]
    refreshed.clear()
    control.list_jobs(env, status="completed")  # a filter may match any job: all are refreshed
    assert sorted(refreshed) == ["job1", "job2", "job3", "job4"]


def _age(path: Path) -> None:
    old = os.stat(path).st_mtime - 60  # as written a minute ago: its stamp is trusted and kept
    os.utime(path, (old, old))


def test_a_warm_listing_sees_a_job_yaml_edited_or_removed_since(tmp_path: Path) -> None:
    env, home = _store(tmp_path, jobs=4)
    for num in range(1, 5):
        _age(home / "jobs" / f"job{num}" / "job.yaml")
    for last in (None, 2):
        control.list_jobs(env, last=last)  # warm: every row made from an aged job.yaml
    spec = home / "jobs" / "job4" / "job.yaml"
    spec.write_text(spec.read_text().replace('"name": "local"', '"name": "edited"')
                    .replace("python train.py --epochs 3", "python other.py"))
    (home / "jobs" / "job3" / "job.yaml").unlink()
    for last in (2, None, 2):  # (and the next listing still says so)
        rows = {r["job"]: r for r in control.list_jobs(env, last=last)}
        assert rows["job4"]["target"] == "edited" and rows["job4"]["command"] == "python other.py"
        assert "job3" not in rows
        err = env.stderr.getvalue()
        env.stderr.seek(0), env.stderr.truncate()
        assert "skipped job3" in err and "job.yaml is missing" in err
    assert [r["job"] for r in control.list_jobs(env, target="edited")] == ["job4"]


def test_only_the_listed_jobs_stamps_are_looked_at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env, home = _store(tmp_path, jobs=5)
    for num in range(1, 6):
        _age(home / "jobs" / f"job{num}" / "job.yaml")
    control.list_jobs(env)
    asked: list[list[str]] = []
    real = model.Store.respecced
    monkeypatch.setattr(model.Store, "respecced", lambda self, ids: asked.append(sorted(ids := list(ids))) or real(self, ids))
    control.list_jobs(env, last=2)
    assert asked == [["job4", "job5"]]


@pytest.mark.parametrize("damage", ["removed", "damaged"])
def test_last_n_shows_the_newest_n_that_can_be_read(tmp_path: Path, damage: str) -> None:
    """`job.list --last 1` whose newest job's job.yaml was removed (or damaged) said "no jobs yet";
    a job not finished whose job.yaml was removed was listed from its row after the warning that it
    was skipped (fresh-user findings)."""
    env, home = _store(tmp_path, jobs=3)
    storegen.write_job(home, "job4", [RunSpec({"lr": 0.1}, curve(3, 2.0, 1.0), status="running")])
    for num in range(1, 5):
        _age(home / "jobs" / f"job{num}" / "job.yaml")
    control.list_jobs(env)  # warm: a row for each
    for num in (3, 4):  # the newest two: one finished, one running
        spec = home / "jobs" / f"job{num}" / "job.yaml"
        if damage == "removed":
            spec.unlink()
        else:
            spec.write_text("runs: [unclosed\n")
    for last in (1, 2, None):
        assert [r["job"] for r in control.list_jobs(env, last=last)] == ["job1", "job2"][-(last or 2):]
    err = env.stderr.getvalue()
    assert "skipped job3" in err and "skipped job4" in err
