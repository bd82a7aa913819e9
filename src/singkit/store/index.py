"""index.sqlite: a cache of job summaries for fast listing. The files are the truth.

WAL mode so readers never wait for a writer; every writer takes a short IMMEDIATE
transaction with a generous busy timeout (20 concurrent submits each insert one row).
A missing or older-schema index is (re)filled from the job folders.

Only real damage (`file is not a database`, `malformed`) sets the index aside: a fresh one is
built beside it and renamed over it, and the damaged file is kept as index.sqlite.damaged.
An index that is merely busy, read-only or on a full disk (sqlite3.OperationalError) is never
touched, since other processes (job runners) may be using it right now: that is a one-line
SingkitError.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from singkit.exceptions import SingkitError
from singkit.fsutil import file_lock

SCHEMA_VERSION = 1
BUSY_TIMEOUT = 60.0  # seconds a writer waits for another one before giving up
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job TEXT PRIMARY KEY, num INTEGER NOT NULL, target TEXT, service TEXT, status TEXT,
    runs_total INTEGER, runs_done INTEGER, created REAL, started REAL, ended REAL,
    command TEXT, summary TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE TABLE IF NOT EXISTS runs (
    run TEXT PRIMARY KEY, job TEXT NOT NULL, status TEXT, reason TEXT, exit_code INTEGER,
    started REAL, ended REAL, hparams TEXT);
CREATE INDEX IF NOT EXISTS runs_job ON runs(job);
"""


SQLITE_CORRUPT, SQLITE_NOTADB = 11, 26


def damaged(error: BaseException) -> bool:
    """Is this the file's contents being broken (`malformed`, `file is not a database`), not the
    file being busy, read-only or on a full disk (those are OperationalError)?"""
    if not isinstance(error, sqlite3.DatabaseError) or isinstance(error, sqlite3.OperationalError):
        return False
    code = getattr(error, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in (SQLITE_CORRUPT, SQLITE_NOTADB)
    return type(error) is sqlite3.DatabaseError


class Index:
    def __init__(self, path: Path, timeout: float = BUSY_TIMEOUT):
        self.path = Path(path)
        self.timeout = timeout
        self._db: sqlite3.Connection | None = None
        self.rebuilt = False  # True when opening found no usable index (caller refills it)

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            with self._errors():
                self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists()
        try:
            db = self._connect()
            fresh = self._ensure_schema(db) or fresh
        except sqlite3.DatabaseError as error:
            if not damaged(error):
                raise  # busy, read-only, cannot be opened: never taken for damage (see _errors)
            db, fresh = self._replace_damaged(), True
        self.rebuilt = fresh
        return db

    def _connect(self, path: Path | None = None) -> sqlite3.Connection:
        db = sqlite3.connect(path or self.path, timeout=self.timeout, isolation_level=None)
        db.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        return db

    @staticmethod
    def _ensure_schema(db: sqlite3.Connection) -> bool:
        """Create the tables (replacing an older schema); True if they were made empty now.
        A current index is only read here: opening it takes no write lock."""
        if db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return False
        db.execute("BEGIN IMMEDIATE")
        try:
            # again under the lock: a concurrent opener may have just made it
            if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                db.execute("DROP TABLE IF EXISTS jobs")
                db.execute("DROP TABLE IF EXISTS runs")
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return True

    def _replace_damaged(self) -> sqlite3.Connection:
        """Build an empty index in a new file and rename it over the damaged one.

        The damaged file is copied to index.sqlite.damaged and its -wal/-shm are moved beside
        the copy, never deleted: a process that still has them open keeps working on its own
        (old) files, and no stale WAL frame can be replayed into the new index."""
        with self._rebuild_lock():
            try:  # another process may have rebuilt it while we waited for the lock
                db = self._connect()
                self._ensure_schema(db)
                return db
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
        """A damaged, busy or unwritable index as one SingkitError line (the file is left
        exactly as it is); any other SQLite error is a bug and stays what it is."""
        try:
            yield
        except sqlite3.DatabaseError as error:
            text = " ".join(str(error).split())
            if damaged(error):
                raise SingkitError(f"the job index {self.path} is damaged ({text}); move it aside and run "
                                   "`invoke job.list`: it is rebuilt from the job folders") from None
            if isinstance(error, sqlite3.OperationalError):
                raise SingkitError(f"the job index {self.path} cannot be used ({text}); another singkit may "
                                   f"be writing it (retry), or {self.path.parent} is not writable") from None
            raise

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

    def upsert(self, summary: dict[str, Any], runs: list[dict[str, Any]]) -> None:
        """Write one job's row and its runs' rows in one transaction."""
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (summary["job"], summary["num"], summary.get("target"), summary.get("service"),
                 summary["status"], summary["runs_total"], summary["runs_done"], summary.get("created"),
                 summary.get("started"), summary.get("ended"), summary.get("command"),
                 json.dumps(summary, default=str)))
            db.execute("DELETE FROM runs WHERE job = ?", (summary["job"],))
            db.executemany(
                "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?)",
                [(r["run"], summary["job"], r["status"], r.get("reason"), r.get("exit_code"),
                  r.get("started"), r.get("ended"), json.dumps(r.get("hparams") or {}, default=str))
                 for r in runs])

    def remove(self, job: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM jobs WHERE job = ?", (job,))
            db.execute("DELETE FROM runs WHERE job = ?", (job,))

    def statuses(self) -> dict[str, str]:
        """job id → cached status, for every indexed job."""
        db = self.db
        with self._errors():
            return dict(db.execute("SELECT job, status FROM jobs"))

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
            rows = [json.loads(s) for (s,) in db.execute(sql, args)]
        return rows[::-1]
