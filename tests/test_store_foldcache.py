"""The index's run rows as a cache of folds and listing columns (singkit.store.foldcache, issue 15):
keyed by run.log's size, mtime, inode and ctime; the listing columns derived from the fold by
one function and read back whole; an older index rebuilt, never misread."""

from __future__ import annotations

import json
import os
import sqlite3
import time

import storegen
from storegen import RunSpec, curve
from singkit.reports import render, views
from singkit.reports.cache import Listed
from singkit.reports.model import StoreReader
from singkit.store import foldcache
from singkit.store.fold import RunState
from singkit.store.index import SCHEMA_VERSION
from singkit.store.model import Job, Store

NOW = storegen.T0 + 10_000


def _store(tmp_path, runs):
    storegen.write_job(tmp_path / ".singkit", "job1", runs)
    return storegen.store_env(tmp_path)


def _listed(env):
    """run -> (status, exit_code, metrics) as the runs listing shows them (its light path)."""
    table = views.list_table(env, "runs", now=NOW)
    return {row["run"]: (row["status"], row["exit_code"], row.get("metrics.loss")) for row in table.rows}


def _rewrite_same_size(log, old: str, new: str) -> None:
    """Rewrite run.log in place with `old` replaced by `new` (same length), then put its size and
    mtime back as they were: only its ctime tells (and the inode stays)."""
    assert len(old) == len(new)
    before = os.stat(log)
    text = log.read_text()
    assert old in text
    for _ in range(200):  # the ctime must move: wait for the file system's clock to tick
        with open(log, "r+") as fh:
            fh.write(text.replace(old, new))
        os.utime(log, ns=(before.st_atime_ns, before.st_mtime_ns))
        after = os.stat(log)
        if after.st_ctime_ns != before.st_ctime_ns:
            break
        time.sleep(0.01)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    assert after.st_ctime_ns != before.st_ctime_ns


def test_a_same_size_rewrite_with_its_mtime_put_back_is_read_again(tmp_path):
    """The fold key was size + mtime_ns: a rewrite to the same size with the mtime put back kept
    the old fold, in the listing and in job.status alike."""
    env = _store(tmp_path, [RunSpec({"lr": 0.1}, curve(3, 2.0, 1.0), status="completed", exit_code=0)])
    log = tmp_path / ".singkit/jobs/job1/runs/job1.1/run.log"
    assert _listed(env)["job1.1"][:2] == ("completed", 0)
    store = Store(tmp_path / ".singkit")
    assert Job(store, "job1").runs[0].state().status.value == "completed"
    store.save(Job(store, "job1"))  # job.status keeps its fold too
    store.close()

    _rewrite_same_size(log, '"completed", "exit_code": 0', '"cancelled", "exit_code": 9')
    assert _listed(env)["job1.1"][:2] == ("cancelled", 9)
    store = Store(tmp_path / ".singkit")
    assert Job(store, "job1").runs[0].state().status.value == "cancelled"
    store.close()


def test_a_run_log_replaced_by_another_file_is_read_again(tmp_path):
    """A new file put in place (another inode), same size and mtime: read again."""
    env = _store(tmp_path, [RunSpec({}, curve(3, 2.0, 1.0), status="completed", exit_code=0)])
    log = tmp_path / ".singkit/jobs/job1/runs/job1.1/run.log"
    assert _listed(env)["job1.1"][:2] == ("completed", 0)
    before = os.stat(log)
    other = log.with_name("run.log.new")
    other.write_text(log.read_text().replace('"completed", "exit_code": 0', '"cancelled", "exit_code": 9'))
    os.utime(other, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(other, log)
    assert _listed(env)["job1.1"][:2] == ("cancelled", 9)


def test_listing_columns_are_the_folds_and_a_row_that_is_not_its_runs_is_read_again(tmp_path):
    env = _store(tmp_path, [RunSpec({"lr": 0.1}, curve(3, 2.0, 1.0)), RunSpec({"lr": 0.2}, curve(3, 3.0, 1.5))])
    first = _listed(env)
    db = sqlite3.connect(tmp_path / ".singkit/index.sqlite")
    rows = dict(db.execute("SELECT run, listing FROM runs"))
    folds = dict(db.execute("SELECT run, fold FROM runs"))
    for run, text in rows.items():  # derived from the kept fold by the one function
        assert json.loads(text) == json.loads(json.dumps(foldcache.listing(run, RunState.from_text(folds[run]))))
    # job1.2's row put under job1.1 (it decodes fine, but is another run's), then a row that is no listing
    db.execute("UPDATE runs SET listing = ? WHERE run = 'job1.1'", (rows["job1.2"],))
    db.commit()
    assert _listed(env) == first
    for bad in ("[1, 2", '"text"', json.dumps(["job1.1", "weird", None, None, None, None, 3, 0, {}, {}]),
                json.dumps(["job1.1", {"status": 1}, None, None, None, None, 3, 0, {}, {}]),
                json.dumps(["job1.1", "completed", None, None, None, None, 3, 0, {}, {"loss": [1]}])):
        db.execute("UPDATE runs SET listing = ? WHERE run = 'job1.1'", (bad,))
        db.commit()
        assert _listed(env) == first
    db.close()


def test_listing_reads_what_the_whole_fold_reads(tmp_path):
    """The runs and jobs tables from the listing columns (full=False) are the very tables the
    whole folds make, odd values and all: NaN, inf, missing metrics, nodes, queued runs."""
    nan, inf = float("nan"), float("inf")
    env = _store(tmp_path, [
        RunSpec({"lr": 0.1, "name": "ünïcode-" + "x" * 80}, [(0, {"loss": 1.0, "acc": nan}), (1, {"loss": inf})]),
        RunSpec({"lr": 0.2}, [(0, {"loss": -inf, "other": 3})], status="running"),
        RunSpec({"lr": 0.3}, None, status="failed", exit_code=2, reason="boom"),
        RunSpec({"lr": 0.4}, curve(4, 2.0, 1.0), nodes=2, status="preempted"),
        RunSpec({"lr": 0.5}, log=False),
    ])
    for kind in ("runs", "jobs"):
        with StoreReader(env) as reader:
            full = reader.load(now=NOW, full=True)
            light = reader.load(now=NOW, full=False)
        assert all(r.state is None for j in light for r in j.runs)
        shown = []
        for jobs in (full, light):
            from singkit.reports import rowsets
            from singkit.reports.prefs import MetricPrefs

            table = rowsets.run_table(jobs, MetricPrefs()) if kind == "runs" else rowsets.job_table(jobs, MetricPrefs(), NOW)
            shown.append(render.render_text(table.names, table.rows, labels=table.labels))
        assert shown[0] == shown[1]


def test_an_older_index_is_rebuilt_never_misread(tmp_path):
    """An index of schema 5 (runs keyed by size + mtime only, no listing) whose row matches the
    file's size and mtime but holds another fold: rebuilt, and the file's values shown."""
    env = _store(tmp_path, [RunSpec({}, curve(3, 2.0, 1.0), status="completed", exit_code=0)])
    log = tmp_path / ".singkit/jobs/job1/runs/job1.1/run.log"
    st = os.stat(log)
    wrong = RunState().fold([{"t": 1.0, "event": "status", "status": "failed", "exit_code": 7}]).to_json()
    db = sqlite3.connect(tmp_path / ".singkit/index.sqlite")
    db.executescript("""
        CREATE TABLE jobs (job TEXT PRIMARY KEY, num INTEGER NOT NULL, target TEXT, service TEXT, status TEXT,
            runs_total INTEGER, runs_done INTEGER, created REAL, started REAL, ended REAL, command TEXT,
            summary TEXT NOT NULL);
        CREATE TABLE runs (run TEXT PRIMARY KEY, job TEXT NOT NULL, status TEXT, reason TEXT, exit_code INTEGER,
            started REAL, ended REAL, hparams TEXT, log_size INTEGER, log_mtime_ns INTEGER, fold TEXT);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value);
        CREATE TABLE specs (job TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, inode INTEGER, spec TEXT);
        PRAGMA user_version = 5;""")
    db.execute("INSERT INTO runs VALUES ('job1.1', 'job1', 'failed', NULL, 7, NULL, NULL, '{}', ?, ?, ?)",
               (st.st_size, st.st_mtime_ns, json.dumps(wrong)))
    db.commit()
    db.close()
    assert _listed(env)["job1.1"][:2] == ("completed", 0)
    db = sqlite3.connect(tmp_path / ".singkit/index.sqlite")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 7
    assert [r[1] for r in db.execute("PRAGMA table_info(runs)")][-6:] == list(foldcache.FOLD_COLUMNS)
    assert "ctime_ns" in [r[1] for r in db.execute("PRAGMA table_info(specs)")]  # schema 7: job.yaml keyed by ctime
    db.close()


def test_listed_times_are_the_folds():
    going = RunState().fold([{"t": 5.0, "event": "status", "status": "running"}])
    stopped = RunState().fold([{"t": 5.0, "event": "status", "status": "running"},
                               {"t": 9.0, "event": "status", "status": "preempted"}])
    for state in (RunState(), going, stopped):
        assert Listed.of("job1.1", state).times(100.0) == state.times(100.0)


# run.logs whose folds hold what orjson cannot write as json did: NaN and inf (`last`, a time, a
# step), an int past 64 bits, a lone surrogate, and the plain values around them
ODD_LOGS = {
    "nan-last": '{"t": 1, "event": "metrics", "step": 0, "metrics": {"loss": 1.5}}\n{"t": 2, "event": "metrics", "step": 1, "metrics": {"loss": NaN}}\n',
    "inf": '{"t": Infinity, "event": "metrics", "step": -Infinity, "metrics": {"acc": -Infinity, "x": [NaN]}}\n',
    "big-int": '{"t": 1, "event": "hparams", "hparams": {"seed": 123456789012345678901234567890}}\n'
               '{"t": 2, "event": "metrics", "metrics": {"huge": 1' + "0" * 400 + '}}\n',
    "surrogate": '{"t": 1, "event": "hparams", "hparams": {"name": "a\\ud800b"}}\n',
    "plain": '{"t": 1, "event": "status", "status": "running"}\n{"t": 2, "event": "hparams", "hparams": {"lr": -0.0, "ü": "☃"}}\n'
             '{"t": 3, "event": "metrics", "step": 2, "metrics": {"loss": 1e-300, "n": 9007199254740993}}\n'
             '{"t": 4, "event": "status", "status": "completed", "exit_code": 0}\n',
}


def test_the_index_gives_back_each_fold_and_listing_as_json_wrote_them(tmp_path):
    """put_folds writes orjson (issue 14: the index writes of a cold listing) only where its text
    reads back as the very data, else json as before: RunState.from_text and Listed.from_texts
    give back from each row what they gave from json.dumps' text (orjson writes NaN as null)."""
    from singkit.store import runlog

    home = tmp_path / ".singkit"
    runs = [f"job1.{k}" for k in range(1, len(ODD_LOGS) * 2 + 1)]
    storegen.write_job(home, "job1", [RunSpec(log=False) for _ in runs])
    texts = list(ODD_LOGS.values()) * 2  # (each odd one amid others, in one batch)
    paths = []
    for run, text in zip(runs, texts):
        path = home / "jobs/job1/runs" / run / "run.log"
        path.parent.mkdir(parents=True)
        path.write_text(text)
        paths.append(str(path))
    states = runlog.states(paths)
    # only a log orjson read whole is known to hold nothing orjson would write otherwise
    assert [state.json_exact for state in states] == [False, False, False, False, True] * 2
    store = Store(home)
    try:
        store.index.put_folds([(run, "job1", (k, k, k, k), state) for k, (run, state) in enumerate(zip(runs, states))])
        folds = store.index.run_folds(["job1"], "fold")
        listings = store.index.run_folds(["job1"], "listing")
    finally:
        store.close()

    def same(data) -> str:  # NaN is NaN: compared as json writes it
        return json.dumps(data, default=str)

    for run, state in zip(runs, states):
        assert same(RunState.from_text(folds[run][6]).to_json()) == same(RunState.from_text(
            json.dumps(state.to_json(), default=str)).to_json()) == same(state.to_json()), run
        (got,), (want,) = Listed.from_texts([listings[run][6]], [run]), Listed.from_texts(
            [json.dumps(foldcache.listing(run, state), default=str)], [run])
        assert same([getattr(got, name) for name in Listed.__slots__]) == same([getattr(want, name) for name in Listed.__slots__])
    assert "NaN" in folds["job1.1"][6] and "Infinity" in listings["job1.2"][6]  # (json wrote these)
    assert folds["job1.5"][6].startswith('{"status":"completed"')  # (orjson, no spaces, wrote this one)


def test_an_int_past_64_bits_reads_back_exact_from_the_index(tmp_path):
    """orjson reads an int past 64 bits as a float: a listing and job.status showed such an hparam
    or metric exactly on the first (cold) look and as a float from the index after (a fresh
    user's finding). A text json wrote is json's to read (foldcache.JSON_WROTE)."""
    big, huge, low = 2**64, 2**70 + 1, -(2**63) - 1
    env = _store(tmp_path, [RunSpec({"seed": big}, [(0, {"m": low}), (1, {"m": huge})], status="completed", exit_code=0),
                            RunSpec({"seed": 1}, [(0, {"m": 0.5})], status="completed", exit_code=0)])

    def looks():
        row = views.list_table(env, "runs", now=NOW).rows[0]
        store = Store.of(env)
        try:
            shown = store.job("job1").summary()[1][0]
        finally:
            store.close()
        return row, shown

    for row, shown in (looks(), looks()):  # cold, then from the index
        assert row["hparams.seed"] == big and type(row["hparams.seed"]) is int, row
        assert row["metrics.m"] == huge and type(row["metrics.m"]) is int, row
        assert shown["hparams"]["seed"] == big and type(shown["hparams"]["seed"]) is int, shown
        assert shown["last_metrics"]["m"] == huge and type(shown["last_metrics"]["m"]) is int, shown
