"""A rebuildable SQLite cache of run summaries and job specs: $SINGKIT_HOME/reports-cache.sqlite.

Listing 10,000 runs must take well under a second, and parsing 10,000 run.logs cannot. Each
run.log's folded summary is kept with the file's size, mtime_ns and inode (grouped per job):
unchanged files are not read at all, a file that only grew is read from the offset where we
stopped (logs are append-only), anything else is read again. Deleting the file loses nothing.
If the cache cannot be opened or written (read-only store, locked), reports still work, slower.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from singkit.reports import runstate
from singkit.reports.source import RunRef, StoreLayout, read_jsonl, read_yaml

CACHE_NAME = "reports-cache.sqlite"
SCHEMA_VERSION = 6  # bump when the folded state's shape changes: old caches are dropped

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bundles (job TEXT PRIMARY KEY, bundle TEXT);
CREATE TABLE IF NOT EXISTS jobs (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, spec TEXT);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT);
"""


class SummaryCache:
    def __init__(self, layout: StoreLayout, path: Path | None = None):
        self.layout = layout
        self.db: sqlite3.Connection | None = None
        path = path or layout.root / CACHE_NAME
        if layout.root.is_dir():
            try:
                self.db = _connect(path)
            except sqlite3.Error:
                self.db = None  # unusable cache: read the files every time

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None

    def __enter__(self) -> "SummaryCache":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- job specs ----------------------------------------------------------------------------
    def job_specs(self, jobs: list[str]) -> dict[str, dict[str, Any]]:
        """job.yaml of each job as plain data ({} when the file is missing)."""
        cached: dict[str, tuple] = {}
        if self.db is not None:
            cached = {row[0]: row[1:] for row in self._select("SELECT path, size, mtime_ns, spec FROM jobs", ())}
        specs: dict[str, dict[str, Any]] = {}
        updates = []
        for job in jobs:
            path = self.layout.job_yaml(job)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                specs[job] = {}
                continue
            hit = cached.get(str(path))
            if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
                specs[job] = json.loads(hit[2])
                continue
            specs[job] = read_yaml(path)
            updates.append((str(path), st.st_size, st.st_mtime_ns, json.dumps(specs[job], default=str)))
        self._write("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?)", updates)
        return specs

    # -- run summaries ------------------------------------------------------------------------
    def run_states(self, refs: list[RunRef], whole_store: bool = False) -> list[dict[str, Any] | None]:
        """The folded state of each run's run.log, None for a run with no log yet.

        The cache keeps one bundle per job (the stamps and states of all its runs, one JSON
        text): a single parse per job is a third cheaper than one per run. A job whose logs
        changed has its bundle rewritten. `whole_store`: refs cover every job in the store,
        so bundles of jobs that are gone are dropped.
        """
        by_job: dict[str, list[int]] = {}
        for i, ref in enumerate(refs):
            by_job.setdefault(ref.job, []).append(i)
        bundles = self._bundles(set(by_job), whole_store)
        states: list[dict[str, Any] | None] = [None] * len(refs)
        updates = []
        for job, indexes in by_job.items():
            old = bundles.get(job) or {"stamps": {}, "states": {}}
            new: dict[str, dict] = {"stamps": {}, "states": {}}
            changed = len(old["stamps"]) != len(indexes)
            for i in indexes:
                ref = refs[i]
                try:
                    st = os.stat(ref.log)
                except (FileNotFoundError, NotADirectoryError):
                    changed = changed or ref.run in old["stamps"]
                    continue
                stamp, state = self._state(ref, st, old["stamps"].get(ref.run), old["states"].get(ref.run))
                changed = changed or stamp is not old["stamps"].get(ref.run)
                new["stamps"][ref.run], new["states"][ref.run] = stamp, state
                states[i] = state
            if changed:
                updates.append((job, json.dumps(new)))
        self._write("INSERT OR REPLACE INTO bundles VALUES (?, ?)", updates)
        if whole_store:
            self._write("DELETE FROM bundles WHERE job = ?", [(job,) for job in bundles if job not in by_job])
        return states

    @staticmethod
    def _state(ref: RunRef, st: os.stat_result, stamp: list | None, state: dict | None) -> tuple[list, dict]:
        """(stamp, state) of one run.log: the cached one while the file is unchanged, the cached
        state folded on with what was appended when it only grew, else read from the start.
        A stamp is [size, mtime_ns, inode, offset reached, last line unterminated]."""
        if stamp is not None and state is not None:
            size, mtime_ns, ino, offset, unterminated = stamp
            if size == st.st_size and mtime_ns == st.st_mtime_ns and ino == st.st_ino:
                return stamp, state
            if ino == st.st_ino and not unterminated and st.st_size > size:
                events, end, unterm = read_jsonl(ref.log, offset)
                return [st.st_size, st.st_mtime_ns, st.st_ino, end, unterm], runstate.fold(state, events)
        events, end, unterm = read_jsonl(ref.log)
        return [st.st_size, st.st_mtime_ns, st.st_ino, end, unterm], runstate.fold(runstate.new_state(), events)

    def _bundles(self, jobs: set[str], whole_store: bool) -> dict[str, dict]:
        if self.db is None:
            return {}
        if whole_store or len(jobs) > 20:
            rows = self._select("SELECT job, bundle FROM bundles", ())
        else:
            rows = [r for job in jobs for r in self._select("SELECT job, bundle FROM bundles WHERE job = ?", (job,))]
        out = {}
        for job, text in rows:
            try:
                bundle = json.loads(text)
            except ValueError:
                continue  # a damaged bundle: read that job's logs again
            if isinstance(bundle, dict) and isinstance(bundle.get("stamps"), dict) and isinstance(bundle.get("states"), dict):
                out[job] = bundle
        return out

    # -- small values (what the config says, keyed on its files' stamps) ---------------------
    def get_value(self, key: str) -> Any:
        rows = self._select("SELECT value FROM kv WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else None

    def put_value(self, key: str, value: Any) -> None:
        prefix = key.split(":", 1)[0] + ":"
        self._write("DELETE FROM kv WHERE key LIKE ? AND key != ?", [(prefix + "%", key)])  # older stamps
        self._write("INSERT OR REPLACE INTO kv VALUES (?, ?)", [(key, json.dumps(value))])

    # -- sqlite plumbing ----------------------------------------------------------------------
    def _select(self, sql: str, args: tuple) -> list[tuple]:
        try:
            return self.db.execute(sql, args).fetchall() if self.db is not None else []
        except sqlite3.Error:
            return []

    def _write(self, sql: str, rows: list[tuple]) -> None:
        if self.db is None or not rows:
            return
        try:
            with self.db:
                self.db.executemany(sql, rows)
        except sqlite3.Error:
            pass  # a locked or read-only cache only costs speed, never a report


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=5)
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            db.executescript("DROP TABLE IF EXISTS runs; DROP TABLE IF EXISTS bundles; DROP TABLE IF EXISTS jobs; DROP TABLE IF EXISTS kv;")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.executescript(_SCHEMA)
    except sqlite3.Error:
        db.close()
        raise
    return db
