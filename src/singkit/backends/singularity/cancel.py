"""Cancelling the runs of a Singularity job at once: every cancel request first, then one wait.

A sweep of N runs is N Azure ML jobs. Cancelling them one after the other, each waiting for
Azure ML's word, costs N × (the slowest stop) and, on the first run that will not stop in
time, leaves the rest running. Here:

  1. send    for each run still going: read its state, and POST its cancel
             (`MLClient.jobs.begin_cancel`, which answers 202 and hands back a poller that polls
             the operation on its own thread — azure.core.polling.LROPoller). The requests go
             from a small thread pool, so one slow answer does not hold back the others.
  2. wait    one shared deadline (SINGKIT_CANCEL_TIMEOUT, default 900 s, for the whole job —
             not per run): each round reads the state of every run not yet final, concurrently,
             then sleeps the poll interval. Azure ML accepts a cancel long before the nodes stop
             (the job stays CancelRequested), so only a final state counts.
  3. record  runs Azure ML confirms Canceled become `cancelled`; a run that ended on its own
             meanwhile is refreshed to what it ended as.

Every run is sent its cancel and read at least once after, whatever happens to the others.
What did not settle — a cancel Azure ML refused after retries, a run still stopping at the
deadline — is raised together as one ServiceError naming each run (exit 4); the runs that did
stop are recorded first. Repeating the cancel is safe: finished runs are not asked again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from singkit.backends.singularity import status as states
from singkit.exceptions import ServiceError, SingkitError

TIMEOUT_VAR = "SINGKIT_CANCEL_TIMEOUT"
TIMEOUT = 900.0  # seconds for the whole job to confirm; Singularity's nodes get a grace period to stop
WORKERS = 16  # requests in flight at once (a sweep of 20 sends in two waves of 16 + 4)


@dataclass
class Pending:
    """One run being cancelled: what was sent, what Azure ML last said, what went wrong."""

    run: Any
    info: dict[str, Any]
    name: str                       # its Azure ML job name
    status: str = ""                # Azure ML's last word ("CancelRequested", "Canceled", ...)
    error: str | None = None        # one line: why its cancel could not be sent or read
    poller: Any = field(default=None, repr=False)  # the SDK's LROPoller (polls on its own thread)

    @property
    def final(self) -> bool:
        return bool(self.status) and states.is_final(self.status)


def _each(items: list[Pending], fn: Callable[[Pending], None]) -> None:
    """fn(item) for every item, at most WORKERS at once; fn records its own errors."""
    if len(items) == 1:
        fn(items[0])
        return
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(items)), thread_name_prefix="singkit-cancel") as pool:
        list(pool.map(fn, items))


def cancel_runs(backend: Any, ml: Any, runs: Iterable[tuple[Any, dict[str, Any]]]) -> None:
    """Cancel these (run, backend info) pairs — runs with an Azure ML job — and wait for all.

    Raises ServiceError (one line, every unsettled run named) when some could not be cancelled
    or did not stop within SINGKIT_CANCEL_TIMEOUT seconds; the others are recorded first."""
    pending = [Pending(run, info, str(info["azureml_name"])) for run, info in runs]
    if not pending:
        return
    timeout = _timeout(backend.env.environ)

    def send(p: Pending) -> None:
        try:
            p.status = states.text(backend.call(f"reading the status of {p.run.id}", lambda: ml.jobs.get(p.name)).status)
            if not p.final:  # idempotent: a job that has ended is not asked again
                p.poller = backend.call(f"cancelling {p.run.id} ({p.name})", lambda: ml.jobs.begin_cancel(p.name))
        except SingkitError as error:
            p.error = str(error)

    def read(p: Pending) -> None:
        try:
            p.status = states.text(backend.call(f"reading the status of {p.run.id}", lambda: ml.jobs.get(p.name)).status)
        except SingkitError as error:
            p.error = str(error)

    _each(pending, send)
    deadline = time.monotonic() + timeout
    waiting = [p for p in pending if p.error is None and not p.final]
    while waiting:  # read each at least once after its cancel, then until final or the deadline
        _each(waiting, read)
        waiting = [p for p in waiting if p.error is None and not p.final]
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(backend.poll)
    for p in pending:
        if p.final:
            _record(backend, ml, p)
    unsettled = [p for p in pending if not p.final]
    if unsettled:
        raise ServiceError(_stragglers(unsettled, len(pending), timeout))


def _record(backend: Any, ml: Any, p: Pending) -> None:
    p.info.update(azure_status=p.status, final=True)
    p.run.write_backend_info(p.info)
    if p.status == "Canceled":
        p.run.set_status("cancelled", reason="cancelled by the user")
    else:  # it ended on its own first: record what it ended as
        backend._refresh_run(ml, p.run, p.info)


def _stragglers(unsettled: list[Pending], total: int, timeout: float) -> str:
    """One line naming every run that did not settle, and why."""
    parts = []
    for p in unsettled:
        if p.error is not None:  # its own line already names the run and what was being done
            parts.append(p.error)
        else:
            parts.append(f"{p.run.id} ({p.name}) still {p.status or 'unknown'} {timeout:g} s after its cancel ({TIMEOUT_VAR})")
    job = unsettled[0].run.job.id
    text = (f"{len(unsettled)} of {total} runs of {job} not confirmed cancelled: {'; '.join(parts)}; "
            f"the others are cancelled; check `invoke job.status {job}` later, or cancel again")
    return " ".join(text.split())


def _timeout(environ: Any) -> float:
    text = environ.get(TIMEOUT_VAR) or str(TIMEOUT)
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0:
        from singkit.exceptions import UsageError

        raise UsageError(f"{TIMEOUT_VAR}={text} is not a number of seconds (0 or more); e.g. {TIMEOUT_VAR}=900")
    return value
