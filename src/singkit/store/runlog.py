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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from singkit.store.safe import open_stored
from singkit.store.status import ACTIVE, STATUSES, TERMINAL, RunStatus, parse

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
    events, skipped = [], 0
    for raw in data[:end].splitlines():
        try:
            record = json.loads(raw)
        except UNDECODABLE:
            skipped += bool(raw.strip())
            continue
        if isinstance(record, dict):
            events.append(record)
        else:
            skipped += 1
    return events, offset + end, skipped


def events(path: Path | str) -> list[dict[str, Any]]:
    return read(path)[0]


@dataclass
class RunState:
    """What a run's events say about it."""

    status: RunStatus = RunStatus.QUEUED
    reason: str | None = None
    exit_code: int | None = None
    queued: float | None = None
    started: float | None = None
    ended: float | None = None
    hparams: dict[str, Any] = field(default_factory=dict)
    last_metrics: dict[str, Any] = field(default_factory=dict)
    last_step: int | None = None
    preemptions: int = 0  # times the run moved into `preempted` (repeated preempted lines count once)
    skipped_lines: int = 0  # run.log lines no reader could use (see read_counted): said, never fatal

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def apply(self, record: dict[str, Any]) -> None:
        kind = record.get("event")
        if kind == "status":
            status = parse(record.get("status"))
            if status is None:
                return
            if self.terminal:
                # the first final status wins (a cancel's); the process's own exit code, recorded by
                # its wrapper just after, completes it (SIGTERM: 143)
                if status in TERMINAL and self.exit_code is None and _whole(record.get("exit_code")) is not None:
                    self.exit_code = record["exit_code"]
                return
            if status == RunStatus.PREEMPTED and self.status != RunStatus.PREEMPTED:
                self.preemptions += 1
            if status in (RunStatus.QUEUED, RunStatus.RUNNING) and self.status == RunStatus.PREEMPTED:
                self.reason = None  # going again: why it was stopped is history (the count keeps it)
            self.status = status
            # a run.log is written by the job itself: a field of the wrong type is not trusted
            t = _number(record.get("t"))
            if status == RunStatus.QUEUED and self.queued is None:
                self.queued = t
            if status == RunStatus.RUNNING and self.started is None:
                self.started = t
            if status in TERMINAL:
                self.ended = t
                self.reason = _text(record.get("reason"))
                self.exit_code = _whole(record.get("exit_code"))
            elif status == RunStatus.PREEMPTED:
                self.reason = _text(record.get("reason"))
        elif kind == "hparams" and isinstance(record.get("hparams"), dict):
            self.hparams.update(record["hparams"])
        elif kind == "metrics" and isinstance(record.get("metrics"), dict):
            self.last_metrics.update(record["metrics"])
            if _whole(record.get("step")) is not None:
                self.last_step = record["step"]

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "reason": self.reason, "exit_code": self.exit_code,
                "queued": self.queued, "started": self.started, "ended": self.ended,
                "hparams": self.hparams, "last_metrics": self.last_metrics, "last_step": self.last_step,
                "preemptions": self.preemptions, "skipped_lines": self.skipped_lines}


def _number(value: Any) -> float | None:
    """A time from a run.log line: a number (not true/false), else None."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def state(path: Path | str) -> RunState:
    result = RunState()
    records, _end, result.skipped_lines = read_counted(path)
    for record in records:
        result.apply(record)
    return result


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
