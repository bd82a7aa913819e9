"""Cancelling the runs of a Singularity job at once: every cancel request first, then one wait.

A sweep of N runs is N Azure ML jobs. Cancelling them one after the other, each waiting for
Azure ML's word, costs N × (the slowest stop) and, on the first run that will not stop in
time, leaves the rest running. Here:

  1. send    for each run still going, POST its cancel (`MLClient.jobs.begin_cancel`, which
             answers 202), from a small thread pool, so one slow answer does not hold back the
             others. `polling=False` (azure-core's LRO convention: the generated begin_cancel
             takes NoPolling then) — the job's own state is what counts, read below, not the
             operation's. A cancel Azure ML refuses because the job is ending or has ended
             ("is an error", Azure/azureml-assets#2496) is settled by reading that state.
  2. wait    one shared deadline (SINGKIT_CANCEL_TIMEOUT, default 900 s, for the whole job —
             not per run): each round sleeps the poll interval, then reads the state of every
             run not yet final, concurrently (job_status). Azure ML accepts a cancel long before
             the nodes stop (the job stays CancelRequested), so only a final state counts.
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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from singkit.backends.singularity import client as aml, status as states
from singkit.exceptions import ServiceError, SingkitError

if TYPE_CHECKING:
    from singkit.store.model import Run
    from singkit.backends.singularity.backend import SingularityBackend

TIMEOUT_VAR = "SINGKIT_CANCEL_TIMEOUT"
TIMEOUT = 900.0  # seconds for the whole job to confirm; Singularity's nodes get a grace period to stop
WORKERS = 8  # requests in flight at once: within requests' pool of 10 connections per host, so reused


@dataclass
class Pending:
    """One run being cancelled: what was sent, what Azure ML last said, what went wrong."""

    run: Run
    info: dict[str, Any]
    name: str                       # its Azure ML job name
    status: str = ""                # Azure ML's last word ("CancelRequested", "Canceled", ...)
    error: str | None = None        # one line: why its cancel could not be sent or read

    @property
    def final(self) -> bool:
        return bool(self.status) and states.is_final(self.status)


def job_status(ml: Any, name: str) -> str:
    """Azure ML's state word for job `name`: the same GET as `ml.jobs.get` (api-version
    2024-01-01-preview), without building the SDK's Job entity from it, which costs twice the
    request itself in CPU — a sweep's reads share one interpreter. `JobOperations._get_job` is
    private: when it moves, `ml.jobs.get` is used (tests/test_singularity_cancel.py notices)."""
    light = getattr(ml.jobs, "_get_job", None)
    if light is None:
        return states.text(ml.jobs.get(name).status)
    return states.text(getattr(getattr(light(name), "properties", None), "status", None))


def _each(items: list[Pending], fn: Callable[[Pending], None]) -> None:
    """fn(item) for every item, at most WORKERS at once (the SDK's HTTP calls release the GIL
    while they wait); fn records its own errors, anything else propagates."""
    if len(items) == 1:
        fn(items[0])
        return
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(items)), thread_name_prefix="singkit-cancel") as pool:
        list(pool.map(fn, items))


def cancel_runs(backend: SingularityBackend, ml: Any, runs: Iterable[tuple[Any, dict[str, Any]]]) -> None:
    """Cancel these (run, backend info) pairs — runs with an Azure ML job — and wait for all.

    Raises ServiceError (one line, every unsettled run named) when some could not be cancelled
    or did not stop within SINGKIT_CANCEL_TIMEOUT seconds, the others recorded first; UsageError
    for a SINGKIT_CANCEL_TIMEOUT that is not a number of seconds, before anything is sent."""
    pending = [Pending(run, info, str(info["azureml_name"])) for run, info in runs]
    if not pending:
        return
    timeout = _timeout(backend.env.environ)

    def post(p: Pending) -> None:
        from azure.core.exceptions import HttpResponseError

        try:
            ml.jobs.begin_cancel(p.name, polling=False)
        except HttpResponseError as error:
            if aml.status_of(error) not in (400, 409):
                raise
            current = job_status(ml, p.name)
            if not (states.is_final(current) or current.lower() == "finalizing"):
                raise
            p.status = current  # refused because it is ending on its own: the wait reads it to its end

    def send(p: Pending) -> None:
        try:
            backend.call(f"cancelling {p.run.id} ({p.name})", lambda: post(p))
        except SingkitError as error:
            p.error = str(error)

    def read(p: Pending) -> None:
        try:
            p.status = backend.call(f"reading the status of {p.run.id}", lambda: job_status(ml, p.name))
        except SingkitError as error:
            p.error = str(error)

    _each(pending, send)
    deadline = time.monotonic() + timeout
    waiting = [p for p in pending if p.error is None and not p.final]
    while waiting:  # read each at least once after its cancel, then until final or the deadline
        time.sleep(backend.poll)  # first: no job stops the instant its cancel is accepted
        _each(waiting, read)
        waiting = [p for p in waiting if p.error is None and not p.final]
        if time.monotonic() >= deadline:
            break
    _each([p for p in pending if p.final], lambda p: _record(backend, ml, p))
    unsettled = [p for p in pending if not p.final]
    if unsettled:
        raise ServiceError(_stragglers(unsettled, len(pending), timeout))


def _record(backend: SingularityBackend, ml: Any, p: Pending) -> None:
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
