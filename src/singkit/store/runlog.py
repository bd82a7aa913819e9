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
from pathlib import Path
from typing import Any

from singkit.store.fold import RunState
from singkit.store.safe import open_stored
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
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return [], offset, 0
    end = data.rfind(b"\n") + 1  # a line without its newline yet is still being written
    events, skipped = parse_lines(data[:end].splitlines())
    return events, offset + end, skipped


def parse_lines(lines: list[bytes]) -> tuple[list[dict[str, Any]], int]:
    """(the lines that are JSON objects, decoded; how many non-blank lines are not).

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
