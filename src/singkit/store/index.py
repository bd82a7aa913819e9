"""index.sqlite: a cache of job summaries for fast listing. The files are the truth.

WAL mode so readers never wait for a writer; every writer takes a short IMMEDIATE
transaction with a generous busy timeout (20 concurrent submits each insert one row).
A missing, damaged or older-schema index is rebuilt from the job folders.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
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


class Index:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self.rebuilt = False  # True when opening found no usable index (caller refills it)

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists()
        try:
            db = self._connect()
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                fresh = True
                with db:
                    db.executescript("DROP TABLE IF EXISTS jobs; DROP TABLE IF EXISTS runs;")
        except sqlite3.DatabaseError:
            # damaged file: set it aside (never delete data we did not write) and start over
            self.path.replace(self.path.with_suffix(".sqlite.damaged"))
            for suffix in ("-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
            db, fresh = self._connect(), True
        db.executescript(_SCHEMA)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self.rebuilt = fresh
        return db

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        db.execute("PRAGMA busy_timeout = 60000")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        return db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def upsert(self, summary: dict[str, Any], runs: list[dict[str, Any]]) -> None:
        """Write one job's row and its runs' rows in one transaction."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
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
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def remove(self, job: str) -> None:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM jobs WHERE job = ?", (job,))
        db.execute("DELETE FROM runs WHERE job = ?", (job,))
        db.execute("COMMIT")

    def statuses(self) -> dict[str, str]:
        """job id → cached status, for every indexed job."""
        return dict(self.db.execute("SELECT job, status FROM jobs"))

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
        rows = [json.loads(s) for (s,) in self.db.execute(sql, args)]
        return rows[::-1]
