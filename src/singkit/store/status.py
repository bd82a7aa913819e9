"""singkit's run statuses: the one vocabulary every layer imports (issue 12).

The values are the exact words written into run.log and shown by job.status, job.list and the
reports (and in their --json), so a member compares, hashes and serialises as its string.
`dry-run` is a job's (and its runs') status in listings only: it is never written into run.log.
"""

from __future__ import annotations

from enum import Enum


class RunStatus(str, Enum):  # enum.StrEnum is 3.11+; singkit supports 3.10
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PREEMPTED = "preempted"

    # print, format and f-strings give the word itself, as StrEnum does
    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, format_spec: str) -> str:
        return str.__format__(self, format_spec)


# every status a run.log line may carry, in the order help texts list them
STATUSES: tuple[RunStatus, ...] = tuple(RunStatus)
# final: the first such line in a run.log wins and later status lines are ignored
TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})
# still going (a preempted run is requeued and runs again)
ACTIVE = frozenset({RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PREEMPTED})
# not running now: ended, or stopped by a preemption
STOPPED = TERMINAL | {RunStatus.PREEMPTED}
DRY_RUN = "dry-run"  # the status of a dry run and of its runs in listings (never in run.log)
# a run's status in listings when its run folder is there but its run.log is not (deleted or
# moved by hand: singkit never removes one): what the run did cannot be known (never in run.log)
LOG_MISSING = "unknown"
# a job (or run) that will not change any more
SETTLED = TERMINAL | {DRY_RUN, LOG_MISSING}


def parse(value: object) -> RunStatus | None:
    """The status a run.log line names, or None for anything else (a job writes its own run.log)."""
    if not isinstance(value, str):
        return None
    try:
        return RunStatus(value)
    except ValueError:
        return None
