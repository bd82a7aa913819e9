"""A rebuildable SQLite cache of run summaries and job specs: $SINGKIT_HOME/reports-cache.sqlite.

Listing 10,000 runs must take well under a second, and parsing 10,000 run.logs cannot. Each
run.log's folded summary is kept with the file's size, mtime_ns and inode (grouped per job):
unchanged files are not read at all, a file that only grew is read from the offset where we
stopped (logs are append-only), anything else is read again. Deleting the file loses nothing.
If the cache cannot be opened or written (read-only store, locked), reports still work, slower.
A damaged cache is never fatal and never kept: a file that is not a database (or a folder, a
FIFO) is set aside as reports-cache.sqlite.damaged and a new one made; tables of another shape
are recreated; a row that does not decode to what it should hold is read again from the files.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import stat
from pathlib import Path
from typing import Any

from singkit.exceptions import SingkitError
from singkit.reports.source import RunRef, StoreLayout, read_jsonl, read_yaml
from singkit.store.fold import RunState

CACHE_NAME = "reports-cache.sqlite"
SCHEMA_VERSION = 7  # bump when the folded state's shape changes: old caches are dropped

COLUMNS = {"bundles": ("job", "bundle"), "jobs": ("path", "size", "mtime_ns", "spec"), "kv": ("key", "value")}
_FEW = 500  # keys looked up one by one (SQLite's IN); more: one scan of the table is cheaper
_SCHEMA = """
CREATE TABLE IF NOT EXISTS bundles (job TEXT PRIMARY KEY, bundle TEXT);
CREATE TABLE IF NOT EXISTS jobs (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, spec TEXT);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT);
"""


class SummaryCache:
    def __init__(self, layout: StoreLayout, path: Path | None = None):
        self.layout = layout
        self.db: sqlite3.Connection | None = None
        self.damaged: dict[str, str] = {}  # job → why its job.yaml could not be read
        path = path or layout.root / CACHE_NAME
        self.path = path
        if layout.root.is_dir():
            self.db = _open(path)

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
        """job.yaml of each job as plain data ({} when the file is missing, and when it cannot
        be read or parsed: then `damaged` maps the job to the one-line reason, and the report
        shows that job from its run folders rather than failing for every job)."""
        cached: dict[str, tuple] = {}
        if self.db is not None:
            paths = [str(self.layout.job_yaml(job)) for job in jobs]
            cached = {row[0]: row[1:] for row in self._select_in("SELECT path, size, mtime_ns, spec FROM jobs", "path", paths)}
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
                spec = _loads(hit[2])
                if isinstance(spec, dict):
                    specs[job] = spec
                    continue  # (a row that does not decode to a mapping: read the file again)
            try:
                specs[job] = read_yaml(path)
            except SingkitError as error:
                specs[job] = {}
                self.damaged[job] = str(error)
                continue
            updates.append((str(path), st.st_size, st.st_mtime_ns, json.dumps(specs[job], default=str)))
        self._write("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?)", updates)
        return specs

    # -- run summaries ------------------------------------------------------------------------
    def run_states(self, refs: list[RunRef], whole_store: bool = False) -> list[RunState | None]:
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
        states: list[RunState | None] = [None] * len(refs)
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
                new["states"] = {run: state.to_json() for run, state in new["states"].items()}
                updates.append((job, json.dumps(new)))
        self._write("INSERT OR REPLACE INTO bundles VALUES (?, ?)", updates)
        if whole_store:
            self._write("DELETE FROM bundles WHERE job = ?", [(job,) for job in bundles if job not in by_job])
        return states

    @staticmethod
    def _state(ref: RunRef, st: os.stat_result, stamp: list | None, state: RunState | None) -> tuple[list, RunState]:
        """(stamp, state) of one run.log: the cached one while the file is unchanged, the cached
        state folded on with what was appended when it only grew, else read from the start.
        A stamp is [size, mtime_ns, inode, offset reached, last line unterminated]."""
        if stamp is not None and state is not None:
            size, mtime_ns, ino, offset, unterminated = stamp
            if size == st.st_size and mtime_ns == st.st_mtime_ns and ino == st.st_ino:
                return stamp, state
            if ino == st.st_ino and not unterminated and st.st_size > size:
                events, end, unterm = read_jsonl(ref.log, offset)
                return [st.st_size, st.st_mtime_ns, st.st_ino, end, unterm], state.fold(events)
        events, end, unterm = read_jsonl(ref.log)
        return [st.st_size, st.st_mtime_ns, st.st_ino, end, unterm], RunState().fold(events)

    def _bundles(self, jobs: set[str], whole_store: bool) -> dict[str, dict]:
        if self.db is None:
            return {}
        rows = self._select_in("SELECT job, bundle FROM bundles", "job", None if whole_store else sorted(jobs))
        out = {}
        for job, text in rows:
            bundle = _bundle(_loads(text))
            if bundle is not None:
                out[job] = bundle
            # (a damaged bundle: that job's logs are read again, and the bundle rewritten)
        return out

    # -- small values (what the config says, keyed on its files' stamps) ---------------------
    def get_value(self, key: str) -> Any:
        rows = self._select("SELECT value FROM kv WHERE key = ?", (key,))
        return _loads(rows[0][0]) if rows else None  # (a value that does not decode is a miss)

    def put_value(self, key: str, value: Any) -> None:
        prefix = key.split(":", 1)[0] + ":"
        self._write("DELETE FROM kv WHERE key LIKE ? AND key != ?", [(prefix + "%", key)])  # older stamps
        self._write("INSERT OR REPLACE INTO kv VALUES (?, ?)", [(key, json.dumps(value))])

    # -- sqlite plumbing ----------------------------------------------------------------------
    def _select(self, sql: str, args: tuple) -> list[tuple]:
        try:
            return self.db.execute(sql, args).fetchall() if self.db is not None else []
        except sqlite3.Error as error:
            self._check(error)
            return []

    def _select_in(self, sql: str, column: str, keys: list[str] | None) -> list[tuple]:
        """`sql`'s rows whose `column` is one of `keys` (None: every row). A few keys are looked
        up by the primary key, so a listing of the newest jobs reads their rows, not the table's."""
        if keys is None or len(keys) > _FEW:
            rows = self._select(sql, ())
            if keys is None:
                return rows
            wanted = set(keys)
            return [row for row in rows if row[0] in wanted]
        return self._select(f"{sql} WHERE {column} IN ({','.join('?' * len(keys))})", tuple(keys)) if keys else []

    def _write(self, sql: str, rows: list[tuple]) -> None:
        if self.db is None or not rows:
            return
        try:
            with self.db:
                self.db.executemany(sql, rows)
        except sqlite3.Error as error:
            self._check(error)  # a locked or read-only cache only costs speed, never a report

    def _check(self, error: sqlite3.Error) -> None:
        """Damage found in use (`malformed`): set the file aside and go on with a new cache."""
        from singkit.store.index import damaged

        if self.db is None or not damaged(error):
            return
        self.db.close()
        self.db = None
        with contextlib.suppress(OSError):
            _set_aside(self.path)
        self.db = _open(self.path)


def _open(path: Path) -> sqlite3.Connection | None:
    """The cache at `path`, made new when what is there is damaged; None when it cannot be used
    (read-only, locked, full disk): reports then read the files every time."""
    try:
        if path.exists() and not _regular(path):
            _set_aside(path)  # a folder or FIFO: SQLite cannot use it (a FIFO can even block)
        return _connect(path)
    except sqlite3.DatabaseError as error:
        from singkit.store.index import damaged

        if not damaged(error) or not _regular(path):
            return None  # locked, read-only, full: the file is fine, or may be in use
    except OSError:
        return None
    try:  # `file is not a database`, `malformed`: it is a cache, start again
        _set_aside(path)
        return _connect(path)
    except (sqlite3.Error, OSError):
        return None


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _set_aside(path: Path) -> None:
    """Move a damaged cache to <name>.damaged (replacing an older one) and drop its -wal/-shm,
    which belong to it alone."""
    aside = path.with_name(path.name + ".damaged")
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside)
    else:
        aside.unlink(missing_ok=True)
    os.replace(path, aside)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=5)
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        current = version == SCHEMA_VERSION and all(
            tuple(row[1] for row in db.execute(f"PRAGMA table_info({table})")) in ((), columns)
            for table, columns in COLUMNS.items())
        if not current:  # an older cache, or tables someone changed: they are rebuilt
            db.executescript("DROP TABLE IF EXISTS runs; DROP TABLE IF EXISTS bundles; DROP TABLE IF EXISTS jobs; DROP TABLE IF EXISTS kv;")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.executescript(_SCHEMA)
    except sqlite3.Error:
        db.close()
        raise
    return db


def _loads(text: object) -> object:
    """JSON text from a cache row as data; None for anything that does not decode."""
    if not isinstance(text, (str, bytes)):
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _bundle(data: object) -> dict[str, dict[str, Any]] | None:
    """{"stamps": {run: [size, mtime_ns, ino, offset, unterminated]}, "states": {run: RunState}} from
    a cache row's data; None when any stamp or state is not of its shape (what _state and the
    readers rely on): that job's logs are then read again."""
    if not isinstance(data, dict):
        return None
    stamps, states = data.get("stamps"), data.get("states")
    if not isinstance(stamps, dict) or not isinstance(states, dict) or set(stamps) != set(states):
        return None
    for stamp in stamps.values():
        if not (isinstance(stamp, list) and len(stamp) == 5 and all(isinstance(v, int) for v in stamp)):
            return None
    folds = {run: RunState.from_json(state) for run, state in states.items()}
    if any(state is None for state in folds.values()):
        return None
    return {"stamps": stamps, "states": folds}
