"""The reports' reads through the store's one index (index.sqlite; singkit.store.index).

Listing 10,000 runs must take well under a second, and parsing 10,000 run.logs cannot. The
index keeps each run's fold (singkit.store.fold, as job.status reads it) keyed by its run.log's
size and mtime_ns, and each job.yaml as parsed, the store's one copy (singkit.store.speccache:
keyed by size, mtime_ns and inode, never kept when changed just now): an unchanged file is not
read, a changed one is read again (and its row rewritten). The index is only a cache: one that cannot
be written (read-only store, full disk, locked) leaves reports reading the files, slower; a
damaged one is set aside and rebuilt (Store.cached); a row that does not decode to what it
should hold is read again from the files. The reports' own cache of earlier versions
(reports-cache.sqlite) is removed when found.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from singkit.exceptions import SingkitError
from singkit.reports.source import RunRef, StoreLayout, parse_job_yaml, plain_yaml
from singkit.store import speccache
from singkit.store.fold import RunState

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
        jobs = sorted({ref.job for ref in refs})
        indexed = self._use(lambda index: index.run_folds(None if every_job is not None else jobs), {})
        states: list[RunState | None] = []
        updates, unread = [], []
        for ref in refs:
            try:
                st = os.lstat(ref.log)  # a link is read as missing, as the store reads it
            except (FileNotFoundError, NotADirectoryError):
                states.append(None)
                continue
            state = _indexed(indexed.get(ref.run), ref.job, st)
            if state is None:
                unread.append((len(states), ref, st))
            states.append(state)
        from singkit.store import runlog  # every unread run.log at once: each folder is looked at once

        for (at, ref, st), state in zip(unread, runlog.states([ref.log for _, ref, _ in unread])):
            states[at] = state
            updates.append((ref.run, ref.job, st.st_size, st.st_mtime_ns, state.to_json()))
        self._use(lambda index: index.put_folds(updates), None)
        if every_job is not None:
            self._use(lambda index: index.forget(set(every_job)), None)
        return states

    # -- small values (what the config says, keyed on its files' stamps) ---------------------
    def get_value(self, key: str) -> Any:
        data = _loads(self._use(lambda index: index.get_meta(GENERAL_KEY), None))
        if isinstance(data, dict) and data.get("key") == key:
            return data.get("value")
        return None  # (another stamp, or a value that does not decode: a miss)

    def put_value(self, key: str, value: Any) -> None:
        text = json.dumps({"key": key, "value": value})
        self._use(lambda index: index.set_meta(GENERAL_KEY, text), None)


def _indexed(row: tuple[str, int, int, str] | None, job: str, st: os.stat_result) -> RunState | None:
    """The indexed fold when it is of this job and this very file (size and mtime_ns)."""
    if row is None or row[0] != job or (row[1], row[2]) != (st.st_size, st.st_mtime_ns):
        return None
    return RunState.from_json(_loads(row[3]))  # None for a row that is not a fold


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
