"""Azure ML job states → singkit's six run statuses.

Sources for the vocabulary (azure-ai-ml 1.35.2, the pinned SDK):
- ARM JobStatus, `_restclient/arm_ml_service/models/_enums.py` (= Microsoft Learn
  "MachineLearningJobStatus"): NotStarted, Starting, Provisioning, Preparing, Queued, Running,
  Finalizing, CancelRequested, Completed, Failed, Canceled, NotResponding, Paused, Unknown.
  Paused: "The job is paused" — it lives on and may run again.
- RunHistory RunStatus, `_restclient/runhistory/models/_azure_machine_learning_workspaces_enums.py`
  (and SpanStatus in `_enums.py`): adds Pausing and Unapproved.
- A Singularity job that was running and is `Queued` again was preempted and requeued.
- The SDK's own `operations/_run_history_constants.py` lists Paused among TERMINAL_STATUSES
  (its `jobs.stream` stops there); singkit does not: a paused or requeued Singularity job is
  `preempted` and goes back to `running` when the service runs it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from singkit.store.status import RunStatus

QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED, PREEMPTED = (
    RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.PREEMPTED)
# Azure ML states (lower case) after which a job never changes again
AZURE_FINAL = frozenset({"completed", "failed", "canceled", "notresponding"})

_MAP = {
    "notstarted": QUEUED, "queued": QUEUED, "preparing": QUEUED, "provisioning": QUEUED,
    "starting": QUEUED, "unknown": QUEUED, "unapproved": QUEUED,
    # stopped by the platform (or a user) but not over: singkit's `preempted` (see the docstring)
    "pausing": PREEMPTED, "paused": PREEMPTED,
    "running": RUNNING, "finalizing": RUNNING,
    "completed": COMPLETED,
    "failed": FAILED, "notresponding": FAILED,
    "canceled": CANCELLED, "cancelled": CANCELLED, "cancelrequested": CANCELLED,
}
# Words Singularity uses in a job's error when the platform, not the user, ended it.
_PREEMPTION_WORDS = ("preempt", "evict", "spotinterruption", "lowpriorityvm")


def text(value: Any) -> str:
    """Azure ML states arrive as str or as an enum (JobStatus.RUNNING): the service's word."""
    return str(getattr(value, "value", value) or "Unknown")


def is_final(azure_status: Any) -> bool:
    return text(azure_status).replace(" ", "").lower() in AZURE_FINAL


def map_status(azure_status: str | None, error: Mapping[str, Any] | str | None = None,
               was_running: bool = False) -> str:
    """singkit's status for an Azure ML state.

    `preempted` is what the service says while the job lives on: requeued after it had been
    running, or still going with a preemption notice. A job that *ended* because of a
    preemption is `failed` (singkit's `preempted` is not final; the reason says preempted)."""
    status = _MAP.get(str(azure_status or "unknown").replace(" ", "").lower(), QUEUED)
    if status == PREEMPTED:
        return PREEMPTED
    if status in (QUEUED, RUNNING) and (was_running and status == QUEUED or (error and is_preemption(error))):
        return PREEMPTED
    return status


def transition(azure_status: str | None, error: Any = None, was_running: bool = False) -> tuple[str, str | None] | None:
    """The status line to record for what Azure ML says — (status, reason) — or None for
    nothing yet (a cancel is only recorded once Azure ML confirms it)."""
    key = str(azure_status or "unknown").replace(" ", "").lower()
    if key == "cancelrequested":
        return None
    status = map_status(azure_status, error if key not in ("failed", "notresponding", "canceled") else None, was_running)
    if status == FAILED:
        reason = error_reason(error) or f"Azure ML status {azure_status}"
        return FAILED, (f"preempted: {reason}" if error and is_preemption(error) else reason)
    if status == CANCELLED:
        return CANCELLED, "cancelled in Azure ML"
    if status == PREEMPTED:
        said = "paused" if key in ("paused", "pausing") else "requeued"
        return PREEMPTED, error_reason(error) or f"Azure ML {said} the job ({azure_status})"
    return status, None


def is_preemption(error: Mapping[str, Any] | str) -> bool:
    text = (str(error) if not isinstance(error, Mapping) else " ".join(str(v) for v in _walk(error))).lower().replace(" ", "")
    return any(word in text for word in _PREEMPTION_WORDS)


def _walk(node: Any) -> list[Any]:
    if isinstance(node, Mapping):
        return [x for v in node.values() for x in _walk(v)]
    if isinstance(node, list):
        return [x for v in node for x in _walk(v)]
    return [node]


def error_reason(error: Any) -> str:
    """One line from an Azure ML error object (code: message), or ''."""
    if not error:
        return ""
    if isinstance(error, Mapping):
        inner = error.get("error", error)
        if isinstance(inner, Mapping):
            code, message = inner.get("code"), inner.get("message")
            return " ".join(f"{code}: {message}".split()) if code else " ".join(str(message or inner).split())
    return " ".join(str(error).split())[:300]
