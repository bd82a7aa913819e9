"""run.log: one JSON object per line, appended by the job, its wrapper, the runner and cancel.

    {"t": 1732450000.12, "event": "status", "status": "running", "reason": "...", "exit_code": 0}
    {"t": ..., "event": "hparams", "hparams": {"lr": 0.1}}
    {"t": ..., "event": "metrics", "step": 10, "metrics": {"loss": 0.52}}

Optional "node": int on any line. Writers append each line with ONE write on an O_APPEND
descriptor, so lines from several processes never interleave. Readers skip any line that is
not a JSON object (a torn last line while a writer is mid-way). A terminal status is final:
the first completed/failed/cancelled line wins and later status lines are ignored.
`preempted` is not final: a preempted run is requeued and runs again; each line that moves a
run into `preempted` from another status counts one preemption.
"""

from __future__ import annotations

import json
from itertools import repeat
from pathlib import Path
from typing import Any

from singkit.store.fold import RunState
from singkit.store.jsonexact import DIGITS, long_integer
from singkit.store.safe import open_stored, read_stored
from singkit.store.status import ACTIVE, STATUSES, TERMINAL, RunStatus

__all__ = ["ACTIVE", "STATUSES", "TERMINAL", "RunState", "RunStatus", "append", "job_status", "read", "state"]


def append(path: Path | str, event: str, **fields: Any) -> dict[str, Any]:
    """Append one event line (with "t" = now) and return it: the same writer jobs use."""
    from singkit.metrics import emit

    record = emit(event, path=path, **fields)
    assert record is not None  # a path was given, so a line was written
    return record


# what json raises for a line it cannot decode: ValueError, or RecursionError for a line nested past
# the interpreter's recursion limit (a job writes its run.log; any line may be anything)
UNDECODABLE = (ValueError, RecursionError)


def read(path: Path | str, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Complete event lines from byte `offset` on, and the offset after the last complete line."""
    records, end, _skipped = read_counted(path, offset)
    return records, end


def read_counted(path: Path | str, offset: int = 0) -> tuple[list[dict[str, Any]], int, int]:
    """As `read`, and how many complete non-blank lines were skipped: not JSON (or nested past
    what json can decode), or JSON that is not an object."""
    try:
        with open_stored(path) as fh:  # a link is read as missing, never followed
            if offset:
                fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return [], offset, 0
    end = data.rfind(b"\n") + 1  # a line without its newline yet is still being written
    events, skipped = decode(data[:end])
    return events, offset + end, skipped


def decode(data: bytes, floats: bool = False) -> tuple[list[dict[str, Any]], int]:
    """(the lines of `data` that are JSON objects, decoded; how many non-blank lines are not):
    the one reader of run.log text (the store's fold, the reports, the plots). Lines are those of
    bytes.splitlines; blank lines count for nothing.

    A clean log (every line exactly `{...}`) is decoded by ONE orjson call over the lines joined
    into an array; anything else goes to `parse_lines`. The result is what json gives line by
    line: orjson's answer is taken only where it cannot differ from json's (no integer of 19 digits,
    which orjson would read as a float past 64 bits; no line opening 256 brackets, where json's
    recursion limit could refuse a line orjson reads; no NaN/Infinity token, which orjson
    refuses). `floats`: the caller turns every number into a float (plots), so the guards for
    big integers and deep lines are not needed."""
    records = _by_orjson(data, floats)
    return (records, 0) if records is not None else parse_lines(data.splitlines())


def _by_orjson(data: bytes, floats: bool = False) -> list[dict[str, Any]] | None:
    """decode's one-call path: the records of a clean log, decoded by orjson where that gives
    json's answer; None for any other log (parse_lines reads it)."""
    body = data[:-1] if data.endswith(b"\n") else data
    # every line exactly `{...}`, decided on the whole text: it starts with `{` and ends with `}`,
    # every newline stands between `}` and `{` (none is left once those are joined), no \r
    # (bytes.splitlines ends a line there too)
    blob = b"[" + body.replace(b"}\n{", b"},{") + b"]"
    if body[:1] == b"{" and body.endswith(b"}") and b"\n" not in blob and b"\r" not in blob:
        count = body.count(b"\n") + 1
        if floats or _orjson_is_json(blob, body):
            try:
                records = _orjson_loads(blob)
            except (ImportError, ValueError):  # (orjson.JSONDecodeError is a ValueError)
                records = None
            # one object per line: a line `{"a": 1}, {"b": 2}` would count two
            if records is not None and len(records) == count and set(map(type, records)) == {dict}:
                return records
    return None


def _orjson_loads(blob: bytes) -> Any:
    import orjson

    if len(blob) < _BIG_BLOB:  # a few hundred objects: fewer than make the collector run long
        return orjson.loads(blob)
    from singkit.gcpause import paused_gc

    with paused_gc():  # fresh dicts by the thousand, no cycles: the collector would rescan them
        return orjson.loads(blob)


_BIG_BLOB = 1 << 16
_DEEP = 256  # brackets a line may open before json's recursion limit could be near (~1000 less the stack)


def _orjson_is_json(blob: bytes, body: bytes) -> bool:
    """Does orjson decode `blob` exactly as json would (given that it decodes it at all)?"""
    digits = blob.translate(DIGITS)  # (one pass: long numbers, then brackets, `[` counted as `{`)
    if long_integer(digits):  # an integer of 19 digits may be past 64 bits, which orjson reads as a float
        return False
    if digits.count(b"{") < _DEEP:  # (`[` and `{` alike)
        return True
    lines = body.split(b"\n")
    return max(map(bytes.count, lines, repeat(b"{"))) + max(map(bytes.count, lines, repeat(b"["))) < _DEEP


def parse_lines(lines: list[bytes]) -> tuple[list[dict[str, Any]], int]:
    """(the lines that are JSON objects, decoded; how many non-blank lines are not), by json.

    One json.loads over the lines joined into an array is several times faster than one per
    line. It is taken when every line is a `{...}` and the array holds one object per line (a
    line such as `{"a": 1}, {"b": 2}` would count two); anything else is read line by line.
    (Lines crafted to be invalid alone yet valid joined could still pass: the job writes its
    own run.log, so that gains it nothing it could not write plainly.)"""
    from singkit.gcpause import paused_gc

    lines = [raw for raw in lines if raw.strip()]
    if lines and all(raw.lstrip()[:1] == b"{" and raw.rstrip()[-1:] == b"}" for raw in lines):
        with paused_gc():  # fresh dicts by the thousand, no cycles: the collector would rescan them
            try:
                records = json.loads(b"[" + b",".join(lines) + b"]")
            except UNDECODABLE:
                records = None
        if records is not None and len(records) == len(lines) and all(type(r) is dict for r in records):
            return records, 0
    events, skipped = [], 0
    for raw in lines:
        try:
            record = json.loads(raw)
        except UNDECODABLE:
            skipped += 1
            continue
        if isinstance(record, dict):
            events.append(record)
        else:
            skipped += 1
    return events, skipped


def events(path: Path | str) -> list[dict[str, Any]]:
    return read(path)[0]


def state(path: Path | str) -> RunState:
    """The run's fold (singkit.store.fold) from its whole run.log."""
    result = RunState()
    records, _end, result.skipped_lines = read_counted(path)
    return result.fold(records)


def states(paths: list[str]) -> list[RunState]:
    """`state` of each path, the files read by safe.read_stored (each folder looked at once)."""
    out = []
    for data in read_stored(paths):
        result = RunState()
        if data is not None:
            end = data.rfind(b"\n") + 1  # (as read_counted: a line without its newline is unfinished)
            records = _by_orjson(data[:end])
            if records is None:
                records, result.skipped_lines = parse_lines(data[:end].splitlines())
                result.fold(records)
            else:
                result.fold(records)
                result.json_exact = True  # all orjson read: no NaN, inf or huge int (see RunState)
        out.append(result)
    return out


def skipped_note(run_id: str, count: int) -> str:
    """What job.status says of a run.log with lines it could not read."""
    return f"note: {run_id}: {count} undecodable run.log line{'s' * (count != 1)} skipped"


def job_status(statuses: list[str]) -> str:
    """One status for a job from its runs': still going while any run is; then the worst outcome."""
    return _job_status(statuses).value


def _job_status(statuses: list[str]) -> RunStatus:
    if not statuses:
        return RunStatus.QUEUED
    if RunStatus.RUNNING in statuses:
        return RunStatus.RUNNING
    if any(s in ACTIVE for s in statuses):
        # some queued/preempted runs and the rest finished: the job is under way
        if any(s in TERMINAL for s in statuses):
            return RunStatus.RUNNING
        return RunStatus.PREEMPTED if RunStatus.PREEMPTED in statuses else RunStatus.QUEUED
    for outcome in (RunStatus.FAILED, RunStatus.CANCELLED):
        if outcome in statuses:
            return outcome
    return RunStatus.COMPLETED
