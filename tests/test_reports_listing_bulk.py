"""The runs listing's rows matched in bulk (reports.cache.SummaryCache._listings_in_bulk, issue 14:
one JSON text of every indexed row, one decode, stamps compared through map) answer exactly
what the per-row match (_match, the general path) answers, on rows that are current, stale, of
another job or run, damaged, or missing; and a text that does not decode whole is left to it."""

from __future__ import annotations

import sqlite3

import pytest
import storegen
from storegen import RunSpec, curve
from singkit.reports import views
from singkit.reports.cache import Listed
from singkit.reports.model import StoreReader

NOW = storegen.T0 + 10_000


def _store(tmp_path, queued: bool = True):
    nan, inf = float("nan"), float("inf")
    home = tmp_path / ".singkit"
    storegen.write_job(home, "job1", [
        RunSpec({"lr": 0.1}, curve(3, 2.0, 1.0), status="completed", exit_code=0),
        RunSpec({"lr": 0.2}, curve(3, 3.0, 1.5), status="failed", exit_code=1),
        RunSpec({"lr": 0.3}, curve(2, 3.0, 1.5), status="running"),
        *([RunSpec({"lr": 0.4}, log=False)] if queued else []),
    ])
    storegen.write_job(home, "job2", [
        RunSpec({"lr": 0.5}, [(0, {"loss": 1.0, "acc": nan}), (1, {"loss": inf})]),
        RunSpec({"lr": 0.6}, curve(4, 2.0, 1.0), nodes=2, status="preempted"),
        RunSpec({"lr": 0.7}, None, status="failed", exit_code=2, reason="boom"),
    ])
    return storegen.store_env(tmp_path)


def _both(env):
    """(bulk, per row): each an (answers, stats) pair as plain data, of every run of the store."""
    with StoreReader(env) as reader:
        names = reader.job_ids()
        specs = reader.cache.job_specs(names)
        refs = [reader.layout.run_ref(name, run) for name in names for run in reader._run_ids(name, specs[name])[0]]
        cache = reader.cache
        bulk = cache._listings_in_bulk(refs, None)
        each = cache._match(refs, None, "listing", Listed.from_texts)
    assert each is not None
    return _plain(bulk), _plain(each)


def _plain(matched):
    if matched is None:
        return None
    out, stats = matched
    return ([None if item is None else repr([getattr(item, name) for name in Listed.__slots__]) for item in out],
            [None if st is None else (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns) for st in stats])


def _listed(env):
    return views.list_table(env, "runs", now=NOW).rows


def test_the_bulk_match_is_the_per_row_match_on_current_and_stale_rows(tmp_path):
    env = _store(tmp_path)
    first = _listed(env)  # (fills the index)
    bulk, each = _both(env)
    assert bulk == each
    assert sum(item is not None for item in bulk[0]) == 6  # every logged run, from its row (job1.4 has no log)
    db = sqlite3.connect(tmp_path / ".singkit/index.sqlite")
    rows = dict(db.execute("SELECT run, listing FROM runs"))
    db.execute("UPDATE runs SET job = 'job2' WHERE run = 'job1.2'")  # a row of another job
    db.execute("UPDATE runs SET listing = ? WHERE run = 'job2.1'", (rows["job2.2"],))  # another run's
    db.execute("UPDATE runs SET listing = replace(listing, '\"boom\", 2,', '\"boom\", true,') WHERE run = 'job2.3'")
    db.commit()
    assert "true" in db.execute("SELECT listing FROM runs WHERE run = 'job2.3'").fetchone()[0]  # (a bool is an int to the check)
    db.close()
    with open(tmp_path / ".singkit/jobs/job1/runs/job1.3/run.log", "a") as fh:  # a stale stamp
        fh.write('{"t": 1732450100.0, "event": "metrics", "step": 9, "metrics": {"loss": 0.25}}\n')
    bulk, each = _both(env)
    assert bulk == each
    assert [item is None for item in bulk[0]] == [False, True, True, True, True, False, False]
    assert _listed(env) != first  # (job1.3 logged one more step)


@pytest.mark.parametrize("bad", ["[1, 2", "1], [2", '1], ["job1.2", "job1", 1, 2, 3, 4, 5', '"text"'])
def test_a_listing_that_breaks_the_whole_text_is_left_to_the_per_row_match(tmp_path, bad):
    env = _store(tmp_path)
    first = _listed(env)
    db = sqlite3.connect(tmp_path / ".singkit/index.sqlite")
    db.execute("UPDATE runs SET listing = ? WHERE run = 'job1.1'", (bad,))
    db.commit()
    db.close()
    bulk, each = _both(env)
    assert bulk is None or bulk == each  # ('"text"' decodes whole: the row alone is refused)
    if bad != '"text"':
        assert bulk is None
    assert each[0][0] is None
    assert _listed(env) == first  # read again from run.log


def test_a_row_of_another_job_is_refused_when_every_row_is_there(tmp_path):
    """Every run logged and indexed (the warm listing's usual case, matched through map alone)
    but one row's job is not its run's: that run is read again, as the per-row match says."""
    env = _store(tmp_path, queued=False)
    first = _listed(env)
    assert all(item is not None for item in _both(env)[0][0])
    db = sqlite3.connect(tmp_path / ".singkit/index.sqlite")
    db.execute("UPDATE runs SET job = 'job2' WHERE run = 'job1.2'")
    db.commit()
    db.close()
    bulk, each = _both(env)
    assert bulk == each
    assert [item is None for item in bulk[0]] == [False, True, False, False, False, False]
    assert _listed(env) == first
