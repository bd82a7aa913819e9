"""index.sqlite: a cache of job summaries for fast listing. The files are the truth.

WAL mode so readers never wait for a writer; every writer takes a short IMMEDIATE
transaction with a generous busy timeout (20 concurrent submits each insert one row).
A missing or older-schema index is (re)filled from the job folders.

Real damage sets the index aside and a fresh one is built from the files: contents SQLite calls
`file is not a database` / `malformed` (the file is kept as index.sqlite.damaged), a path that
is no regular file (a folder, a FIFO: moved aside as index.sqlite.damaged), tables that are
missing or have other columns (recreated), rows that do not decode (dropped; the store re-reads
those jobs). An index that is merely locked, read-only or on a full disk is never touched, since
other processes (job runners) may be using it right now: that is an IndexUnavailable whose
message says which of the three it is. The store treats that as "no cache" (see Store.save).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from singkit.exceptions import Hint
from singkit.fsutil import file_lock
from singkit.refs import JOB_ID
from singkit.store.foldcache import FOLD_COLUMNS, FoldRows, Stamp, fold_columns
from singkit.store.fold import RunState
from singkit.store.indexerrors import IndexDamaged, IndexUnavailable, damaged, trouble  # noqa: F401 (IndexUnavailable: re-exported)

SCHEMA_VERSION = 8  # 2: runs keep their run.log's stamp and fold (singkit.store.fold); 3: meta; 4: specs;
# 5: specs keyed by inode too, the one cache of parsed job.yaml (singkit.store.speccache);
# 6: runs keyed by run.log's inode and ctime too, with their listing columns (singkit.store.foldcache);
# 7: specs keyed by job.yaml's ctime too; 8: a text json wrote starts with a space (foldcache.JSON_WROTE)
BUSY_TIMEOUT = 60.0  # seconds a writer waits for another one before giving up
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job TEXT PRIMARY KEY, num INTEGER NOT NULL, target TEXT, service TEXT, status TEXT,
    runs_total INTEGER, runs_done INTEGER, created REAL, started REAL, ended REAL,
    command TEXT, summary TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE TABLE IF NOT EXISTS runs (
    run TEXT PRIMARY KEY, job TEXT NOT NULL, status TEXT, reason TEXT, exit_code INTEGER,
    started REAL, ended REAL, hparams TEXT, log_size INTEGER, log_mtime_ns INTEGER, log_ino INTEGER,
    log_ctime_ns INTEGER, fold TEXT, listing TEXT);
CREATE INDEX IF NOT EXISTS runs_job ON runs(job);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS specs (job TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, inode INTEGER,
    ctime_ns INTEGER, spec TEXT);
"""
_FEW = 500  # keys looked up through SQLite's IN; more: one scan of the table is cheaper


# the columns each table must have, in order: a table with others is rebuilt, not queried
COLUMNS = {
    "jobs": ("job", "num", "target", "service", "status", "runs_total", "runs_done", "created", "started",
             "ended", "command", "summary"),
    "runs": ("run", "job", "status", "reason", "exit_code", "started", "ended", "hparams", *FOLD_COLUMNS),
    "meta": ("key", "value"),
    "specs": ("job", "size", "mtime_ns", "inode", "ctime_ns", "spec"),
}
# what a summary row must hold to be listed (anything else is a damaged row)
ROW_TYPES: dict[str, tuple[type, ...]] = {
    "job": (str,), "num": (int,), "status": (str,), "runs_total": (int,), "runs_done": (int,),
    "target": (str, type(None)), "service": (str, type(None)), "command": (str, type(None)),
    "created": (int, float, type(None)), "started": (int, float, type(None)), "ended": (int, float, type(None)),
}


class Index(FoldRows):
    def __init__(self, path: Path, timeout: float = BUSY_TIMEOUT):
        self.path = Path(path)
        self.timeout = timeout
        self._db: sqlite3.Connection | None = None
        self.rebuilt = False  # True when opening found no usable index (caller refills it)
        self.dropped: list[Any] = []  # jobs whose rows did not decode and were removed

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            with self._errors():
                self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists()
        if not fresh and not _regular(self.path):
            # a folder or a FIFO where the file belongs: SQLite can never open it (a FIFO would
            # even block a plain reader), and no other process can be using it as an index
            self._set_aside()
            fresh = True
        try:
            db = self._connect()
            fresh = self._ensure_schema(db) or fresh
        except sqlite3.DatabaseError as error:
            if not damaged(error):
                raise  # busy, read-only, cannot be opened: never taken for damage (see _errors)
            db, fresh = self._replace_damaged(), True
        self.rebuilt = fresh
        return db

    def _set_aside(self) -> None:
        """Move what stands at the index's path to index.sqlite.damaged (replacing an older one)."""
        aside = self.path.with_name(self.path.name + ".damaged")
        with self._rebuild_lock():
            if not self.path.exists() or _regular(self.path):
                return  # another process set it aside while we waited for the lock
            if aside.is_dir() and not aside.is_symlink():
                shutil.rmtree(aside)
            else:
                aside.unlink(missing_ok=True)
            os.replace(self.path, aside)
            for suffix in ("-wal", "-shm"):  # an older index's log must not be replayed into the new one
                with contextlib.suppress(FileNotFoundError):
                    os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")

    def _connect(self, path: Path | None = None) -> sqlite3.Connection:
        # not closed when a PRAGMA fails: closing a connection to a damaged file deletes its
        # -wal/-shm, which _replace_damaged keeps aside
        db = sqlite3.connect(path or self.path, timeout=self.timeout, isolation_level=None)
        db.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        return db

    @staticmethod
    def _ensure_schema(db: sqlite3.Connection) -> bool:
        """Create the tables (replacing an older schema, or tables someone dropped or changed);
        True if they were made empty now. A current index is only read here: opening it takes
        no write lock."""
        if _current(db):
            return False
        db.execute("BEGIN IMMEDIATE")
        try:
            # again under the lock: a concurrent opener may have just made it
            if not _current(db):
                db.execute("DROP TABLE IF EXISTS jobs")
                db.execute("DROP TABLE IF EXISTS runs")
                db.execute("DROP TABLE IF EXISTS meta")
                db.execute("DROP TABLE IF EXISTS specs")
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return True

    def _replace_damaged(self, checked: bool = False) -> sqlite3.Connection:
        """Build an empty index in a new file and rename it over the damaged one.

        The damaged file is copied to index.sqlite.damaged and its -wal/-shm are moved beside
        the copy, never deleted: a process that still has them open keeps working on its own
        (old) files, and no stale WAL frame can be replayed into the new index."""
        with self._rebuild_lock():
            try:  # another process may have rebuilt it while we waited for the lock
                db = self._connect()
                self._ensure_schema(db)
                # `checked`: the damage showed only in use (its header reads fine), so look deeper
                if not checked or db.execute("PRAGMA quick_check").fetchone()[0] == "ok":
                    return db
                db.close()
            except sqlite3.DatabaseError as error:
                if not damaged(error):
                    raise
            new = self.path.with_name(f"{self.path.name}.{os.getpid()}.new")
            for leftover in (new, Path(f"{new}-wal"), Path(f"{new}-shm")):
                leftover.unlink(missing_ok=True)  # this pid's own rebuild that died part-way
            db = self._connect(new)
            self._ensure_schema(db)
            db.close()  # a clean close checkpoints and removes the new file's own -wal/-shm
            aside = self.path.with_name(self.path.name + ".damaged")
            with contextlib.suppress(OSError):
                shutil.copy2(self.path, aside)
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")
            os.replace(new, self.path)
            return self._connect()

    def _rebuild_lock(self):
        """One rebuild at a time per store."""
        return file_lock(self.path.with_name(self.path.name + ".lock"))

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """A damaged, locked, read-only or full index as one SingkitError line (the file is left
        exactly as it is); any other SQLite error is a bug and stays what it is."""
        try:
            yield
        except (sqlite3.DatabaseError, OSError) as error:
            text = " ".join(str(error).split())
            if damaged(error):
                raise IndexDamaged(f"the job index {self.path} is damaged ({text})", hint=Hint.command(
                    "job.list", say="; move it aside and run {}: it is rebuilt from the job folders")) from None
            unavailable = trouble(error, self.path)
            if unavailable is None:
                raise
            raise unavailable from None

    def recover(self) -> None:
        """Set a damaged index aside (as opening one does) and start an empty one; `rebuilt`
        tells the caller to refill it."""
        self.close()
        with self._errors():
            self._db = self._replace_damaged(checked=True)
        self.rebuilt = True

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: committed when the block ends, rolled back if it raises."""
        db = self.db
        with self._errors():
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def upsert(self, summary: dict[str, Any], runs: list[dict[str, Any]],
               folds: dict[str, tuple[Stamp, RunState]] | None = None, keep_others: bool = False,
               meta: dict[str, Any] | None = None) -> None:
        """Write one job's row and its runs' rows in one transaction. `folds`: run id ->
        (run.log stamp, its fold) for the runs whose fold is known (singkit.store.foldcache).
        `keep_others`: `runs` are only the runs that changed; the job's other run rows stay.
        `meta`: keys to set in the same transaction (see set_meta)."""
        folds = folds or {}
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (summary["job"], summary["num"], summary.get("target"), summary.get("service"),
                 summary["status"], summary["runs_total"], summary["runs_done"], summary.get("created"),
                 summary.get("started"), summary.get("ended"), summary.get("command"),
                 json.dumps(summary, default=str)))
            if not keep_others:
                db.execute("DELETE FROM runs WHERE job = ?", (summary["job"],))
            db.executemany(
                f"INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,{','.join('?' * len(FOLD_COLUMNS))})",
                [(r["run"], summary["job"], r["status"], r.get("reason"), r.get("exit_code"),
                  r.get("started"), r.get("ended"), json.dumps(r.get("hparams") or {}, default=str),
                  *fold_columns(r["run"], folds.get(r["run"])))
                 for r in runs])
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list((meta or {}).items()))

    def summary_text(self, job: str) -> str | None:
        """One job's summary JSON text exactly as upsert wrote it; None when it is not indexed."""
        db = self.db
        with self._errors():
            row = db.execute("SELECT summary FROM jobs WHERE job = ?", (job,)).fetchone()
        return row[0] if row and isinstance(row[0], str) else None

    def remove(self, job: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM jobs WHERE job = ?", (job,))
            db.execute("DELETE FROM runs WHERE job = ?", (job,))
            db.execute("DELETE FROM specs WHERE job = ?", (job,))

    # -- job.yaml as JSON (the folds: singkit.store.foldcache.FoldRows) ----------------------------
    def specs(self, jobs: list[str] | None = None) -> dict[str, tuple[int, int, int, int, str]]:
        """job -> (job.yaml size, mtime_ns, inode, ctime_ns, its data as JSON text) as kept by
        put_specs; the caller checks the stamp and decodes the text (singkit.store.speccache.cached)."""
        rows = self._rows("SELECT job, size, mtime_ns, inode, ctime_ns, spec FROM specs", jobs)
        return {job: (size, mtime_ns, inode, ctime_ns, text) for job, size, mtime_ns, inode, ctime_ns, text in rows
                if isinstance(job, str) and isinstance(size, int) and isinstance(mtime_ns, int)
                and isinstance(inode, int) and isinstance(ctime_ns, int) and isinstance(text, str)}

    def put_specs(self, rows: list[tuple[str, int, int, int, int, str]]) -> None:
        """Keep job.yaml files parsed: (job, size, mtime_ns, inode, ctime_ns, data as JSON text)
        each (singkit.store.speccache.row)."""
        if rows:
            with self._write() as db:
                db.executemany("INSERT OR REPLACE INTO specs VALUES (?,?,?,?,?,?)", rows)

    def forget(self, keep: set[str]) -> None:
        """Drop the runs and specs of every job not in `keep` (the job folders there are now)."""
        db = self.db
        with self._errors():
            gone = {(table, job) for table in ("runs", "specs")
                    for (job,) in db.execute(f"SELECT DISTINCT job FROM {table}") if job not in keep}
        if gone:  # (a listing that finds nothing gone takes no write lock)
            with self._write() as db:
                db.executemany("DELETE FROM runs WHERE job IS ?", [(job,) for table, job in gone if table == "runs"])
                db.executemany("DELETE FROM specs WHERE job IS ?", [(job,) for table, job in gone if table == "specs"])

    def _rows(self, sql: str, jobs: list[str] | None) -> list[tuple]:
        """`sql`'s rows (its first column the job) of `jobs`, or of every job (None)."""
        db = self.db
        with self._errors():
            if jobs is not None and len(jobs) <= _FEW:
                if not jobs:
                    return []
                where = " AND " if " WHERE " in sql else " WHERE "
                return db.execute(f"{sql}{where}job IN ({','.join('?' * len(jobs))})", jobs).fetchall()
            rows = db.execute(sql).fetchall()
        if jobs is None:
            return rows
        wanted = set(jobs)
        return [row for row in rows if row[0] in wanted]

    def get_meta(self, key: str) -> Any:
        """A value the store keeps about itself (see Store.sync_index); None when unset."""
        db = self.db
        with self._errors():
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def metas(self, keys: list[str]) -> dict[str, Any]:
        """key -> value of those of `keys` that are set (see get_meta), _FEW keys a query."""
        db = self.db
        found: dict[str, Any] = {}
        with self._errors():
            for i in range(0, len(keys), _FEW):
                chunk = keys[i:i + _FEW]
                found.update(db.execute(f"SELECT key, value FROM meta WHERE key IN ({','.join('?' * len(chunk))})",
                                        chunk).fetchall())
        return found

    def set_meta(self, key: str, value: Any) -> None:
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def statuses(self, last: int | None = None) -> dict[str, str]:
        """job id → cached status, for every indexed job (`last`: the newest N only)."""
        db = self.db
        sql = "SELECT job, status FROM jobs" + (f" ORDER BY num DESC LIMIT {int(last)}" if last else "")
        with self._errors():
            rows = db.execute(sql).fetchall()
        bad = [job for job, status in rows if not (isinstance(job, str) and JOB_ID.match(job) and isinstance(status, str))]
        self._drop(bad)
        return {job: status for job, status in rows if job not in bad}

    def summaries(self, status: str | None = None, target: str | None = None,
                  last: int | None = None) -> list[dict[str, Any]]:
        """Job summaries, oldest first; `last` keeps the newest N after filtering."""
        where, args = [], []
        if status:
            where.append("status = ?")
            args.append(status)
        if target:
            where.append("target = ?")
            args.append(target)
        sql = "SELECT summary FROM jobs" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY num DESC"
        if last:
            sql += f" LIMIT {int(last)}"
        db = self.db
        with self._errors():
            rows = db.execute(sql.replace("SELECT summary", "SELECT job, summary"), args).fetchall()
        good, bad = [], []
        for job, text in rows:
            summary = _decoded(text)
            if summary is not None and summary["job"] == job:
                good.append(summary)
            else:
                bad.append(job)
        self._drop(bad)
        return good[::-1]

    def _drop(self, jobs: list[Any]) -> None:
        """Remove rows that do not decode; `dropped` keeps their jobs so the store indexes them
        again from their folders."""
        if not jobs:
            return
        self.dropped.extend(jobs)
        with self._write() as db:
            for job in jobs:
                db.execute("DELETE FROM jobs WHERE job IS ?", (job,))
                db.execute("DELETE FROM runs WHERE job IS ?", (job,))
                db.execute("DELETE FROM specs WHERE job IS ?", (job,))


def _decoded(text: Any) -> dict[str, Any] | None:
    """A jobs row's summary, or None when it is not one (bad JSON, wrong types)."""
    if not isinstance(text, str):
        return None
    try:
        summary = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(summary, dict):
        return None
    for key, types in ROW_TYPES.items():
        value = summary.get(key)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            return None
    return summary if JOB_ID.match(summary["job"]) else None


def _regular(path: Path) -> bool:
    """Is `path` a regular file (following a link)? False for folders, FIFOs, sockets, devices."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _current(db: sqlite3.Connection) -> bool:
    """Is this index of the current schema, with every table and column in place?"""
    if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
        return False
    return all(tuple(row[1] for row in db.execute(f"PRAGMA table_info({table})")) == columns
               for table, columns in COLUMNS.items())
