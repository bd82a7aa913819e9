"""The reports' reads through the store's one index (index.sqlite; singkit.store.index).

Listing 50,000 runs must take about a second, and parsing 50,000 run.logs cannot. The index
keeps each run's fold (singkit.store.fold, as job.status reads it) and its listing columns
(singkit.store.foldcache: what the runs and jobs tables show, decoded without the whole fold)
keyed by its run.log's size, mtime_ns, inode and ctime_ns, and each job.yaml as parsed, the
store's one copy (singkit.store.speccache: keyed by size, mtime_ns and inode, never kept when
changed just now): an unchanged file is not read, a changed one is read again (and its row
rewritten). The index is only a cache: one that cannot
be written (read-only store, full disk, locked) leaves reports reading the files, slower; a
damaged one is set aside and rebuilt (Store.cached); a row that does not decode to what it
should hold is read again from the files. The reports' own cache of earlier versions
(reports-cache.sqlite) is removed when found.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Callable
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

from singkit.exceptions import SingkitError
from singkit.reports.source import RunRef, StoreLayout, parse_job_yaml, plain_yaml
from singkit.store import speccache
from singkit.store.fold import RunState
from singkit.store.foldcache import LISTING_LEN, listing, stamp
from singkit.store.status import RunStatus

OLD_CACHE = "reports-cache.sqlite"  # the reports' own copy of the index, before issue 14
GENERAL_KEY = "reports:config-general"  # the index's meta key for what the config says (prefs.py)


class SummaryCache:
    """Folds and job specs for the reports, through the store's index."""

    def __init__(self, layout: StoreLayout):
        from singkit.store.model import Store

        self.layout = layout
        self.damaged: dict[str, str] = {}  # job → why its job.yaml could not be read
        self.store: Store | None = None
        if layout.root.is_dir():  # a read creates nothing where there is no store
            self.store = Store(layout.root)
            _remove_old_cache(layout)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def __enter__(self) -> SummaryCache:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _use(self, read: Any, default: Any) -> Any:
        """`read(index)`, or `default` when there is no store or its index cannot be used."""
        store = self.store
        if store is None:
            return default
        return store.cached(lambda: read(store.index), default)

    # -- job specs ----------------------------------------------------------------------------
    def job_specs(self, jobs: list[str]) -> dict[str, dict[str, Any]]:
        """job.yaml of each job as plain data ({} when the file is missing, and when it cannot
        be read or parsed: then `damaged` maps the job to the one-line reason, and the report
        shows that job from its run folders rather than failing for every job). Read through
        the index's specs rows, the store's one cache of parsed job.yaml (singkit.store.speccache:
        the same rows and rules as job.status)."""
        cached = self._use(lambda index: index.specs(jobs), {})
        specs: dict[str, dict[str, Any]] = {}
        updates = []
        for job in jobs:
            path = self.layout.job_yaml(job)
            before = speccache.trusted_stamp(path)
            hit = speccache.cached(cached.get(job), before)
            if hit is not None:
                specs[job] = hit  # (JSON data: plain already)
                continue
            try:
                data = parse_job_yaml(path)
            except SingkitError as error:
                specs[job] = {}
                self.damaged[job] = str(error)
                continue
            specs[job] = plain_yaml(data)
            row = speccache.row(job, before, speccache.trusted_stamp(path), data)
            if row is not None:
                updates.append(row)
        self._use(lambda index: index.put_specs(updates), None)
        return specs

    # -- run folds ----------------------------------------------------------------------------
    def run_states(self, refs: list[RunRef], every_job: list[str] | None = None) -> list[RunState | None]:
        """The fold of each run's run.log (what job.status reads), None for a run with no log
        yet. `every_job`: the store's jobs, when refs are all their runs: rows of jobs that are
        gone are dropped."""
        return self._kept(refs, every_job, "fold", _state_of, lambda run, state: state)

    def run_listings(self, refs: list[RunRef], every_job: list[str] | None = None) -> list[Listed | None]:
        """The listing columns of each run (foldcache.listing, as a Listed), None for a run with
        no log yet: what the runs and jobs tables show, without decoding whole folds. A run whose
        row is stale is folded from its run.log and its fold kept, as run_states does."""
        return self._kept(refs, every_job, "listing", Listed.from_texts, Listed.of)

    def _kept(self, refs: list[RunRef], every_job: list[str] | None, what: str,
              decode: Callable[[list[str], list[str]], list[Any]], of: Callable[[str, RunState], Any]) -> list[Any]:
        """Per ref: `decode`d from its index row (`what`: "fold" or "listing") while the row's
        stamp is its run.log's, else `of(run, fold)` from the file (and the fold kept); None
        for a run with no log."""
        jobs = sorted({ref.job for ref in refs})
        indexed = self._use(lambda index: index.run_folds(None if every_job is not None else jobs, what), {})
        out: list[Any] = [None] * len(refs)
        hits: list[int] = []
        texts: list[str] = []
        stats: list[os.stat_result | None] = [None] * len(refs)
        lstat, get, regular = os.lstat, indexed.get, stat.S_ISREG
        for i, ref in enumerate(refs):
            try:
                st = lstat(ref.log)  # a link is read as missing, as the store reads it
            except (FileNotFoundError, NotADirectoryError):
                continue
            if not regular(st.st_mode):  # a link, FIFO or folder is no run.log: `unknown`, as job.status says
                continue
            stats[i] = st
            row = get(ref.run)
            if row is not None and row[0] == ref.job and row[2:6] == stamp(st):
                hits.append(i)
                texts.append(row[6])
        decoded = decode(texts, [refs[i].run for i in hits])
        for i, value in zip(hits, decoded):
            out[i] = value
        # not indexed, stale, or a row that is not what it should hold: every such run.log at
        # once (runlog.states looks at each runs/ folder once)
        unread = [i for i, seen in enumerate(stats) if seen is not None and out[i] is None]
        from singkit.store import runlog

        updates = []
        for i, state in zip(unread, runlog.states([refs[i].log for i in unread])):
            ref, seen = refs[i], stats[i]
            assert seen is not None
            updates.append((ref.run, ref.job, stamp(seen), state))
            out[i] = of(ref.run, state)
        self._use(lambda index: index.put_folds(updates), None)
        if every_job is not None:
            self._use(lambda index: index.forget(set(every_job)), None)
        return out

    # -- small values (what the config says, keyed on its files' stamps) ---------------------
    def get_value(self, key: str) -> Any:
        data = _loads(self._use(lambda index: index.get_meta(GENERAL_KEY), None))
        if isinstance(data, dict) and data.get("key") == key:
            return data.get("value")
        return None  # (another stamp, or a value that does not decode: a miss)

    def put_value(self, key: str, value: Any) -> None:
        text = json.dumps({"key": key, "value": value})
        self._use(lambda index: index.set_meta(GENERAL_KEY, text), None)


def _state_of(texts: list[str], runs: list[str]) -> list[RunState | None]:
    """Fold rows' texts as folds (None for a row that is not a fold)."""
    return [RunState.from_json(_loads(text)) for text in texts]


def _remove_old_cache(layout: StoreLayout) -> None:
    """reports-cache.sqlite (and its -wal, -shm, .damaged) of an older singkit: the index holds
    what it did. Only regular files are removed; anything else there is left alone."""
    for suffix in ("", "-wal", "-shm", ".damaged"):
        path = layout.root / f"{OLD_CACHE}{suffix}"
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink():
                path.unlink()


def _loads(text: object) -> object:
    """JSON text from an index row as data; None for anything that does not decode."""
    if not isinstance(text, (str, bytes)):
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


_NUMBER = (int, float, type(None))
# the types of foldcache.listing's items, in order (the run and status are checked apart)
_SHAPE: tuple[Any, ...] = (str, str, (str, type(None)), (int, type(None)), _NUMBER, _NUMBER, int, int, dict, dict)
_STATUSES = frozenset(status.value for status in RunStatus)
_LIST, _FOUR = {list}, {4}


class Listed:
    """One run's listing columns (singkit.store.foldcache.listing) as the runs and jobs tables
    read them: `metrics` maps a metric to [last, last_step, min, max] (the fold's LAST, MIN and
    MAX indexes), `nodes` is how many nodes logged."""

    __slots__ = ("status", "reason", "exit_code", "started", "ended", "metric_lines", "nodes", "hparams", "metrics")

    def __init__(self, data: list[Any]):
        (_, self.status, self.reason, self.exit_code, self.started, self.ended, self.metric_lines, self.nodes,
         self.hparams, self.metrics) = data

    @classmethod
    def of(cls, run: str, state: RunState) -> Listed:
        return cls(listing(run, state))

    @classmethod
    def checked(cls, data: Any, run: str) -> Listed | None:
        """`data` decoded from `run`'s row, when it is foldcache.listing's shape; else None."""
        if type(data) is not list or len(data) != LISTING_LEN or data[0] != run:
            return None
        if not all(map(isinstance, data, _SHAPE)) or data[1] not in _STATUSES:  # (a status is text first)
            return None
        stats = data[9].values()  # (set(map(...)): checked at C speed, 150,000 of them at 50,000 runs)
        if stats and not (set(map(type, stats)) == _LIST and set(map(len, stats)) == _FOUR):
            return None
        return cls(data)

    @classmethod
    def from_texts(cls, texts: list[str], runs: list[str]) -> list[Listed | None]:
        """Rows' listing texts of `runs` (in order) as Listed, None for a row that is not one.
        One orjson call over all of them (json when orjson refuses: the NaN and inf a metric may
        end on), checked column-wise at C speed; any text that breaks the whole sends each row
        to its own decode and check."""
        if not texts:
            return []
        if any(map(str.startswith, texts, repeat(" "))):  # json wrote some (foldcache.JSON_WROTE): json reads all
            data: Any = [_loads(text) for text in texts]
        else:
            data = _loads_all("[" + ",".join(texts) + "]")
        if type(data) is list and len(data) == len(texts) and _all_listings(data, runs):
            return list(map(cls, data))
        if type(data) is not list or len(data) != len(texts):
            data = [_loads(text) for text in texts]
        checked = cls.checked
        return [checked(item, run) for item, run in zip(data, runs)]

    def times(self, now: float) -> tuple[float | None, float | None, float | None]:
        """(started, ended, duration) as RunState.times says them (a run still going: up to `now`)."""
        started, ended = self.started, self.ended
        if started is None:
            return None, None, None
        took = (ended if ended is not None else now) - started
        return started, ended, took if took > 0.0 else 0.0  # max(0.0, took), as RunState.times, without max's call


def _loads_all(text: str) -> object:
    """JSON text as data (orjson; json for what orjson refuses); None when it does not decode."""
    import orjson

    try:
        return orjson.loads(text)
    except ValueError:
        return _loads(text)


def _all_listings(data: list[Any], runs: list[str]) -> bool:
    """Is every item of `data` the listing of the run at its place in `runs` (Listed.checked's
    test, made column by column through map)?"""
    try:
        if set(map(type, data)) != _LIST or set(map(len, data)) != {LISTING_LEN}:
            return False
        if list(map(itemgetter(0), data)) != runs or not set(map(itemgetter(1), data)) <= _STATUSES:
            return False
        for j in range(2, LISTING_LEN):
            if not all(map(isinstance, map(itemgetter(j), data), repeat(_SHAPE[j]))):
                return False
        stats = list(chain.from_iterable(map(dict.values, map(itemgetter(9), data))))
        return set(map(type, stats)) <= _LIST and set(map(len, stats)) <= _FOUR
    except TypeError:  # an unhashable status, say
        return False
