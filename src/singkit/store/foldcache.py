"""The index's `runs` rows as a cache of each run's fold (singkit.store.fold) and of its listing
columns, both keyed by the run.log's stamp (issue 14, 15).

A run's row keeps, beside job.status's columns:
- the run.log's stamp: size, mtime_ns, inode and ctime_ns. run.log is append-only, so any write
  changes size and mtime; a rewrite to the same size with its mtime put back (`touch -r`,
  os.utime) still moves ctime, and a new file put in place has another inode;
- `fold`: the whole fold as JSON (RunState.to_json), for the views that need all of it (nodes,
  summaries, plots, job.status);
- `listing`: the few values a run's listing row shows, derived from the fold by `listing` (the
  one function that makes them), as one small JSON array. A warm `report.list` decodes these,
  not 50,000 whole folds.
Both are written together from the same RunState, so they never disagree.
"""

from __future__ import annotations

import json
import os
from typing import Any

from singkit.store.fold import RunState

Stamp = tuple[int, int, int, int]  # run.log's (size, mtime_ns, inode, ctime_ns)
FOLD_COLUMNS = ("log_size", "log_mtime_ns", "log_ino", "log_ctime_ns", "fold", "listing")
LISTING_LEN = 10


def stamp(st: os.stat_result) -> Stamp:
    """The key a run.log's cached fold is kept under."""
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns


def listing(run: str, state: RunState) -> list[Any]:
    """The listing columns of one run, as plain JSON data:
    [run, status, reason, exit_code, started, ended, metric_lines, nodes, hparams, metrics]
    where started/ended are RunState.times' (ended None: still going, measured up to now),
    nodes is how many nodes logged, hparams what the run logged, and metrics maps each metric
    to the first four of the fold's stats ([last, last_step, min, max]: the fold's LAST, MIN
    and MAX indexes hold). `run` is kept to check a decoded row is the run's own."""
    started, ended, _ = state.times(0.0)  # (the duration is the reader's: it may run up to now)
    return [run, state.status.value, state.reason, state.exit_code, started, ended, state.metric_lines,
            len(state.nodes), state.hparams, {name: stats[:4] for name, stats in state.metrics.items()}]


def fold_columns(run: str, fold: tuple[Stamp, RunState] | None) -> tuple[Any, ...]:
    """The FOLD_COLUMNS values of one run's row (all None when its fold is not known)."""
    if fold is None:
        return (None,) * len(FOLD_COLUMNS)
    key, state = fold
    return (*key, *json_texts([state.to_json(), listing(run, state)]))


def json_texts(values: list[Any], exact: bool = False) -> list[str]:
    """Each value as JSON text that reads back (RunState.from_text, Listed.from_texts) as exactly
    what json.dumps(value, default=str) read back as. orjson writes it, 4-6x faster (a cold listing
    of 10,000 runs writes 30,000 texts), where its text gives back the very value: checked for
    the whole batch by one decode and compare, unless `exact` says the caller knows (values of a
    RunState.json_exact fold: the check costs four times the writing). orjson writes NaN and inf
    as null (a fold's `last` may be either) and refuses an int past 64 bits or a lone surrogate:
    a value holding any is written by json, as before (NaN, Infinity: json and the readers' json
    fallback read them), after a space (JSON allows it: JSON_WROTE). A reader gives a text that
    starts with it to json, never to orjson, which reads an int past 64 bits as a float."""
    try:
        import orjson
    except ImportError:
        return [JSON_WROTE + json.dumps(value, default=str) for value in values]
    dumps = orjson.dumps
    blobs: list[bytes | None] = []
    for value in values:
        try:
            blobs.append(dumps(value))
        except TypeError:  # an int past 64 bits, a lone surrogate, a type json writes with str()
            blobs.append(None)
    if None not in blobs and (exact or orjson.loads(b"[" + b",".join(blobs) + b"]") == values):  # type: ignore[arg-type]
        return [blob.decode() for blob in blobs]  # type: ignore[union-attr]
    return [blob.decode() if blob is not None and orjson.loads(blob) == value else JSON_WROTE + json.dumps(value, default=str)
            for blob, value in zip(blobs, values)]


JSON_WROTE = " "  # the first character of a text json_texts had json write: json reads it back


# rows whose stamp is four integers and whose text is text (SQLite checks the types: C speed)
_KEPT = ("typeof(log_size) = 'integer' AND typeof(log_mtime_ns) = 'integer' AND typeof(log_ino) = 'integer' "
         "AND typeof(log_ctime_ns) = 'integer' AND typeof({}) = 'text' AND typeof(run) = 'text'")


class FoldRows:
    """The runs table's fold and listing reads and writes (a part of singkit.store.index.Index,
    which gives `db`, `_errors`, `_write` and `_rows`)."""

    def folds(self, job: str) -> dict[str, tuple[Stamp, str]]:
        """run id -> (run.log stamp, the fold's JSON text) as indexed for one job's runs (those
        indexed with a fold); the caller decodes and checks the text (RunState.from_text)."""
        db = self.db  # type: ignore[attr-defined]
        with self._errors():  # type: ignore[attr-defined]
            rows = db.execute("SELECT run, log_size, log_mtime_ns, log_ino, log_ctime_ns, fold FROM runs "
                              f"WHERE job = ? AND {_KEPT.format('fold')}", (job,)).fetchall()
        return {row[0]: (row[1:5], row[5]) for row in rows}

    def run_folds(self, jobs: list[str] | None = None, what: str = "fold") -> dict[str, tuple]:
        """run id -> (job, run, size, mtime_ns, inode, ctime_ns, JSON text) of `jobs`' runs (None:
        every job's), for runs indexed with a fold: the row as SQLite gives it (row[2:6] is the
        run.log's stamp). `what`: "fold" (the whole fold; the caller checks it with
        RunState.from_text) or "listing" (the listing columns; see `listing`)."""
        column = {"fold": "fold", "listing": "listing"}[what]
        rows = self._rows(  # type: ignore[attr-defined]
            f"SELECT job, run, log_size, log_mtime_ns, log_ino, log_ctime_ns, {column} FROM runs "
            f"WHERE {_KEPT.format(column)}", jobs)
        return {row[1]: row for row in rows}

    def put_folds(self, rows: list[tuple[str, str, Stamp, RunState]]) -> None:
        """Keep folds read from run.logs: (run, job, run.log stamp, fold) each. A run the store
        indexed keeps its row and gets the fold; a run it has not gets a row."""
        if not rows:
            return
        updates = ", ".join(f"{c} = excluded.{c}" for c in FOLD_COLUMNS)
        # per run: its hparams, fold and listing columns, encoded in two batches: folds known exact
        # (RunState.json_exact) and the others (checked)
        values: tuple[list[Any], list[Any]] = ([], [])
        for run, _job, _key, state in rows:
            values[state.json_exact].extend((state.hparams or {}, state.to_json(), listing(run, state)))
        texts = (iter(json_texts(values[False])), iter(json_texts(values[True], exact=True)))
        with self._write() as db:  # type: ignore[attr-defined]
            db.executemany(
                f"INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,{','.join('?' * len(FOLD_COLUMNS))}) "
                f"ON CONFLICT(run) DO UPDATE SET {updates}",
                [(run, job, state.status.value, state.reason, state.exit_code, state.started, state.ended,
                  next(batch := texts[state.json_exact]), *key, next(batch), next(batch))
                 for run, job, key, state in rows])
