"""A warm look at a job (issue 14 item 2): job.yaml is parsed once per version of the file, a
look that changes nothing writes nothing to the index, and every real change is still seen."""

from __future__ import annotations

import datetime
import json
import os
import sqlite3
from pathlib import Path

import storegen
from storegen import RunSpec

from singkit.fsutil import atomic_write
from singkit.store import Store
from singkit.store.speccache import cached as decoded
from singkit.store.yamlio import dump_block_yaml


BIG = 500  # runs: a job.yaml past speccache.CACHED_FROM_BYTES


def _job(home: Path, runs: int = 3, aged: bool = True, **spec) -> Path:
    folder = storegen.write_job(home, "job1", [RunSpec({"lr": 0.1 * k}, storegen.curve(3, 2.0, 1.0)) for k in range(runs)],
                                **spec)
    if aged:
        _age(folder / "job.yaml")
    return folder / "job.yaml"


def _age(path: Path, seconds: int = 3600) -> None:
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - seconds * 10**9))


def _edit_in_place_keeping_stamp(path: Path, old: str, new: str) -> None:
    """Same size, same inode, same mtime_ns: only ctime (which no one can set) tells the change."""
    assert len(old) == len(new)
    st = os.stat(path)
    text = path.read_text()
    assert old in text
    with open(path, "r+") as fh:
        fh.write(text.replace(old, new))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_ino == st.st_ino and os.stat(path).st_size == st.st_size


def _command(home: Path) -> str:
    store = Store(home)
    try:
        return store.job("job1").spec["command"]
    finally:
        store.close()


def _spec_row(home: Path) -> tuple[int, int, int, int, str] | None:
    """job1's row in the index's specs table (size, mtime_ns, inode, ctime_ns, JSON text), None if none."""
    if not (home / "index.sqlite").exists():
        return None
    with sqlite3.connect(home / "index.sqlite") as db:
        return db.execute("SELECT size, mtime_ns, inode, ctime_ns, spec FROM specs WHERE job = 'job1'").fetchone()


def _report_command(home: Path) -> str:
    from singkit.reports.cache import SummaryCache
    from singkit.reports.source import StoreLayout

    with SummaryCache(StoreLayout(home)) as cache:
        return cache.job_specs(["job1"])["job1"]["command"]


def test_job_yaml_is_parsed_once_per_version_and_every_change_is_seen(tmp_path: Path) -> None:
    home = tmp_path / "store"
    spec = _job(home, BIG)
    assert _command(home) == "python train.py --epochs 3"
    assert _spec_row(home) is not None
    # edited in place to the same size, inode and mtime_ns: ctime moved, so it is seen (it was
    # not, before ctime was in the key: a fresh user's finding)
    _edit_in_place_keeping_stamp(spec, "--epochs 3", "--epochs 4")
    assert _command(home) == "python train.py --epochs 4"
    assert _report_command(home) == "python train.py --epochs 4"
    # rewritten as singkit writes it (a new inode), even to the same size and mtime: seen
    st = os.stat(spec)
    atomic_write(spec, spec.read_text().replace("--epochs 4", "--epochs 5"))
    os.utime(spec, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _command(home) == "python train.py --epochs 5"
    # edited in place to another size: seen
    with open(spec, "r+") as fh:
        text = fh.read().replace("--epochs 5", "--epochs 66")
        fh.seek(0)
        fh.write(text)
    _age(spec)
    assert _command(home) == "python train.py --epochs 66"


def test_a_job_yaml_changed_just_now_is_parsed_every_time(tmp_path: Path) -> None:
    home = tmp_path / "store"
    spec = _job(home, BIG, aged=False)  # written this very second: an edit in the same tick keeps its mtime_ns
    assert _command(home) == "python train.py --epochs 3"
    assert _report_command(home) == "python train.py --epochs 3"
    assert _spec_row(home) is None  # (by either reader)
    _edit_in_place_keeping_stamp(spec, "--epochs 3", "--epochs 4")
    assert _command(home) == "python train.py --epochs 4"
    assert _report_command(home) == "python train.py --epochs 4"


def test_a_damaged_spec_row_is_ignored_and_rewritten(tmp_path: Path) -> None:
    home = tmp_path / "store"
    _job(home, BIG)
    assert _command(home) == "python train.py --epochs 3"
    row = _spec_row(home)
    assert row is not None
    for damage in ("\x00not json", "[1, 2]", '{"command": "x"', 7, None):
        with sqlite3.connect(home / "index.sqlite") as db:
            db.execute("UPDATE specs SET spec = ? WHERE job = 'job1'", (damage,))
        assert _command(home) == "python train.py --epochs 3", damage
        assert _report_command(home) == "python train.py --epochs 3", damage
    with sqlite3.connect(home / "index.sqlite") as db:  # another file's stamp, same job
        db.execute("UPDATE specs SET spec = ?, inode = inode + 1 WHERE job = 'job1'", (json.dumps({"command": "x"}),))
    assert _command(home) == "python train.py --epochs 3"
    assert _report_command(home) == "python train.py --epochs 3"
    assert _spec_row(home) == row  # rewritten


def test_a_spec_json_cannot_hold_exactly_is_parsed_each_time(tmp_path: Path) -> None:
    home = tmp_path / "store"
    spec = _job(home, BIG)
    data = json.loads(spec.read_text())  # (JSON-formatted YAML, as job.submit writes it)
    spec.write_text(dump_block_yaml({**data, "noted": datetime.date(2024, 1, 2)}))  # a hand edit: YAML reads a date
    _age(spec)
    for _ in range(2):
        assert Store(home).job("job1").spec["noted"] == datetime.date(2024, 1, 2)
        assert _report_command(home) == "python train.py --epochs 3"
    assert _spec_row(home) is None


def test_a_report_and_job_status_agree_on_a_job_yaml_rewritten_to_the_same_size_and_mtime(tmp_path: Path) -> None:
    """Both read the one cache with one key: a job.yaml replaced as singkit replaces it (a new
    inode), to the same size and the same mtime_ns, is parsed again by both (the reports' old
    key, size and mtime_ns alone, kept showing the old file)."""
    home = tmp_path / "store"
    spec = _job(home, 3)  # small: only the reports keep its row
    assert _report_command(home) == _command(home) == "python train.py --epochs 3"
    kept = _spec_row(home)
    assert kept is not None and decoded(kept, kept[:4])["command"] == "python train.py --epochs 3"
    st = os.stat(spec)
    atomic_write(spec, spec.read_text().replace("--epochs 3", "--epochs 5"))
    os.utime(spec, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (os.stat(spec).st_size, os.stat(spec).st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert _command(home) == "python train.py --epochs 5"
    assert _report_command(home) == "python train.py --epochs 5"
    assert _report_command(home) == _command(home)  # (now from the row rewritten for the new file)


def _runs_rows(home: Path) -> dict[str, str]:
    with sqlite3.connect(home / "index.sqlite") as db:
        return dict(db.execute("SELECT run, hparams FROM runs"))


def _all_rows(home: Path) -> list[tuple]:
    """Every row but the run.logs' inode and ctime (a copy's files have others)."""
    with sqlite3.connect(home / "index.sqlite") as db:
        runs = [c for (c,) in db.execute("SELECT name FROM pragma_table_info('runs')") if c not in ("log_ino", "log_ctime_ns")]
        return [*db.execute("SELECT * FROM jobs ORDER BY job"), *db.execute(f"SELECT {', '.join(runs)} FROM runs ORDER BY run")]


def _rebuilt(home: Path, copy: Path) -> Path:
    """A copy of the store whose index is made anew from the job folders."""
    import shutil

    shutil.copytree(home / "jobs", copy / "jobs")
    Store(copy).rebuild_index()
    return copy


def test_a_look_that_changes_nothing_writes_nothing_to_the_index(tmp_path: Path) -> None:
    home = tmp_path / "store"
    spec = _job(home)
    first = Store(home)
    summary = first.save(first.job("job1"))
    assert first.index.db.total_changes > 0
    first.close()

    again = Store(home)
    assert again.save(again.job("job1")) == summary
    assert again.index.db.total_changes == 0  # nothing new: no row written
    again.close()

    # a run.log line more: the job's row and that run's row are written, no other
    Store(home).job("job1").runs[1].append("metrics", metrics={"loss": 0.5}, step=3)
    news = Store(home)
    news.save(news.job("job1"))
    assert news.index.db.total_changes == 2
    news.close()
    assert _all_rows(home) == _all_rows(_rebuilt(home, tmp_path / "rebuilt"))

    # job.yaml rewritten by hand (the sweep's values, not a run.log): the run rows follow it
    data = json.loads(spec.read_text())
    data["runs"][0]["hparams"]["bs"] = 8
    atomic_write(spec, json.dumps(data, indent=2))
    _age(spec)
    edited = Store(home)
    edited.save(edited.job("job1"))
    assert edited.index.db.total_changes > 0
    edited.close()
    assert json.loads(_runs_rows(home)["job1.1"]) == {"lr": 0.0, "bs": 8}


def _link_notes(home: Path) -> list[str]:
    from singkit.jobs import control

    return control.link_notes(Store(home).job("job1"))


def test_a_link_planted_after_a_look_is_warned_of_on_the_next(tmp_path: Path, monkeypatch) -> None:
    from singkit.store import safe
    from singkit.store.runlinks import cache_path as links_cache

    home = tmp_path / "store"
    _job(home)
    assert _link_notes(home) == []
    assert not links_cache(home, "job1").exists()  # folders changed just now: not taken as seen
    monkeypatch.setattr(safe, "CLEAN_AFTER_S", -1.0)  # as if they were older (a ctime cannot be set back)
    assert _link_notes(home) == []
    assert sorted(json.loads(links_cache(home, "job1").read_bytes())) == ["job1.1", "job1.2", "job1.3"]
    assert _link_notes(home) == []  # (now from the cache)
    secret = tmp_path / "secret.txt"
    secret.write_text("not the store's\n")
    log = home / "jobs" / "job1" / "runs" / "job1.2" / "stdout.log"
    log.unlink()
    log.symlink_to(secret)  # the folder's ctime changes with it
    notes = _link_notes(home)
    assert len(notes) == 1 and str(log) in notes[0], notes
    assert _link_notes(home) == notes  # and on every look after


def test_a_fifo_where_the_link_cache_is_kept_is_only_a_full_look(tmp_path: Path, monkeypatch) -> None:
    from singkit.store import safe
    from singkit.store.runlinks import cache_path as links_cache

    home = tmp_path / "store"
    _job(home)
    monkeypatch.setattr(safe, "CLEAN_AFTER_S", -1.0)
    cache = links_cache(home, "job1")
    cache.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(cache)  # nobody writes it: an open that waits for a writer would never return
    assert _link_notes(home) == []
    assert sorted(json.loads(cache.read_bytes())) == ["job1.1", "job1.2", "job1.3"]  # rewritten as a file
