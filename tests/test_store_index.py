"""index.sqlite under trouble: busy or unopenable is an error and the file is left alone; only
real damage sets it aside, and never by deleting WAL files some process may hold open."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from singkit.exceptions import SingkitError
from singkit.store import Store
from singkit.store.index import Index


def _store_with_jobs(root: Path, n: int = 2) -> Store:
    store = Store(root)
    for _ in range(n):
        job = store.allocate()
        job.write_spec({"job": job.id, "created": 1.0, "target": {"name": "local"}, "service": {"name": "local"},
                        "command": "true", "runs": [{"run": f"{job.id}.1", "hparams": {}}]})
        job.runs[0].create()
        job.runs[0].set_status("completed", exit_code=0)
        store.save(job)
    return store


def _summary(job: str) -> dict:
    return {"job": job, "num": int(job[3:]), "status": "queued", "runs_total": 0, "runs_done": 0}


def test_a_busy_index_is_an_error_and_is_left_alone(tmp_path: Path) -> None:
    store = _store_with_jobs(tmp_path / "home")
    path = store.index.path
    runner = sqlite3.connect(path, isolation_level=None)  # a job runner in the middle of a write
    runner.execute("BEGIN IMMEDIATE")
    runner.execute("DELETE FROM runs WHERE job = 'job1'")
    wal = Path(f"{path}-wal")
    assert wal.exists()
    busy = Index(path, timeout=0.05)
    assert busy.statuses() == {"job1": "completed", "job2": "completed"}  # WAL readers never wait
    with pytest.raises(SingkitError, match=r"job index .* cannot be used: it is locked \(database is locked\): "
                                           r"another singkit may be writing it \(retry\)"):
        busy.upsert(_summary("job3"), [])
    with pytest.raises(SingkitError, match="database is locked"):
        Index(path, timeout=0.05).remove("job1")
    assert wal.exists() and not path.with_name("index.sqlite.damaged").exists()
    runner.execute("COMMIT")
    assert runner.execute("SELECT count(*) FROM jobs").fetchone()[0] == 2
    busy.upsert(_summary("job3"), [])  # once the writer is done, the same Index works
    assert sorted(busy.statuses()) == ["job1", "job2", "job3"]
    runner.close()


def test_an_index_that_is_a_folder_is_moved_aside_and_rebuilt(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _store_with_jobs(home).close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{home / 'index.sqlite'}{suffix}").unlink(missing_ok=True)
    (home / "index.sqlite").mkdir(parents=True)  # SQLite cannot open it, and no process uses it
    (home / "index.sqlite" / "keep.txt").write_text("mine")
    store = Store(home)
    store.sync_index()
    assert sorted(store.index.statuses()) == ["job1", "job2"]
    assert (home / "index.sqlite.damaged" / "keep.txt").read_text() == "mine"  # moved, never deleted


def test_a_damaged_index_is_replaced_and_its_wal_kept_aside(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _store_with_jobs(home).close()
    path = home / "index.sqlite"
    path.write_bytes(b"this is not sqlite" * 300)
    Path(f"{path}-wal").write_bytes(b"someone's write-ahead log")
    Path(f"{path}-shm").write_bytes(b"someone's shared memory")
    fresh = Store(home)
    fresh.sync_index()
    assert [r["job"] for r in fresh.index.summaries()] == ["job1", "job2"]
    assert path.with_name("index.sqlite.damaged").read_bytes() == b"this is not sqlite" * 300
    assert Path(f"{path}.damaged-wal").read_bytes() == b"someone's write-ahead log"  # moved, not deleted
    assert Path(f"{path}.damaged-shm").exists()  # (SQLite itself rewrites a -shm header when it opens one)
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert not list(home.glob("index.sqlite.*.new*"))


def test_a_failed_remove_rolls_back(tmp_path: Path) -> None:
    store = _store_with_jobs(tmp_path / "home")
    db = store.index.db
    db.execute("CREATE TRIGGER keep_runs BEFORE DELETE ON runs BEGIN SELECT RAISE(ABORT, 'runs are kept'); END")
    with pytest.raises(sqlite3.IntegrityError, match="runs are kept"):
        store.index.remove("job1")
    assert not db.in_transaction  # no lock left behind for the other writers
    assert sorted(store.index.statuses()) == ["job1", "job2"]  # the jobs row came back too
    db.execute("DROP TRIGGER keep_runs")
    Index(store.index.path, timeout=0.05).remove("job2")  # another writer gets in at once
    assert sorted(store.index.statuses()) == ["job1"]
