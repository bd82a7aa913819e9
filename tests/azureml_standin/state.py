"""What the stand-in remembers: received requests, assets, jobs, logs, faults.

Everything is guarded by one lock because the server answers on many threads
while the test thread drives transitions.
"""

from __future__ import annotations

import copy
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Optional

# Azure ML job statuses (arm JobStatus); set_status accepts any casing.
STATUSES = (
    "NotStarted", "Starting", "Provisioning", "Preparing", "Queued", "Running", "Finalizing",
    "CancelRequested", "Completed", "Failed", "Canceled", "NotResponding", "Paused", "Unknown",
)
# Paused is not final: the ARM JobStatus docs (azure-ai-ml _restclient/arm_ml_service/models/
# _enums.py, "The job is paused") and Singularity's preemptions leave such a job to run again
TERMINAL = {"Completed", "Failed", "Canceled", "NotResponding"}
_BY_LOWER = {s.lower(): s for s in STATUSES} | {"cancelled": "Canceled", "queue": "Queued"}


def canonical_status(status: str) -> str:
    try:
        return _BY_LOWER[status.lower()]
    except KeyError:
        raise ValueError(f"unknown job status {status!r}; expected one of {', '.join(STATUSES)}") from None


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}+00:00"


class Recorded(NamedTuple):
    """One request as received: unpacks as (method, path, body)."""

    method: str
    path: str  # without the query string
    body: Any  # parsed JSON, raw bytes for non-JSON bodies, None when empty


@dataclass
class RequestLog:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    status: int = 0  # what the stand-in answered
    route: str = ""  # route name, "" when unhandled
    at: float = field(default_factory=time.monotonic)  # when it arrived (seconds, monotonic clock)


@dataclass
class Fault:
    pattern: re.Pattern
    status: int
    remaining: Optional[int]  # None: forever
    retry_after: Optional[str]
    body: Optional[dict]
    handled: bool = False  # carry the request out first, then answer the fault (a lost answer)


@dataclass
class Hold:
    """Requests matching `pattern` wait until `release()`; `arrived` is set when one does.

    handled=True: the request is carried out first, then its answer waits (the client never
    learns that its PUT landed if it dies meanwhile). handled=False: the request waits, then
    the connection is closed with no answer and nothing done."""

    pattern: re.Pattern
    handled: bool
    taken: bool = False
    arrived: threading.Event = field(default_factory=threading.Event)  # the request is waiting now
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


@dataclass
class JobState:
    name: str
    body: dict  # the PUT body exactly as the SDK sent it
    resource: dict  # what GET answers (status is filled in on each read)
    status: str = "NotStarted"
    created: float = field(default_factory=time.time)
    started: Optional[float] = None
    ended: Optional[float] = None
    error: Optional[dict] = None
    logs: dict[str, str] = field(default_factory=dict)  # "user_logs/std_log.txt" -> text
    script: list[tuple[str, Optional[str]]] = field(default_factory=list)
    cancel_polls: int = 1  # status reads (cancel polls or GETs) answered CancelRequested before Canceled
    cancel_requests: int = 0
    cancel_delay: float = 0.0  # seconds its nodes take to stop after the first cancel request (slow_cancel)
    cancel_requested_at: Optional[float] = None  # monotonic time of the first cancel request
    preemptions: int = 0  # times preempt() stopped it
    fresh_logs: int = 0  # times requeue() started its logs afresh

    @property
    def properties(self) -> dict:
        return self.body.get("properties", {})


class BlobRequest(NamedTuple):
    """One request a client sent to the blob host through the stand-in's proxy."""

    method: str
    path: str  # /<container>/<blob>, without the query (which holds the SAS)
    range: Optional[str]  # the x-ms-range (or Range) header as sent, e.g. "bytes=1024-33555455"


class State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.requests: list[Recorded] = []
        self.request_log: list[RequestLog] = []
        self.unhandled: list[str] = []  # "GET /path?query" the stand-in had no route for
        self.jobs: dict[str, JobState] = {}
        self.assets: dict[str, dict] = {}  # ARM path (lowercase) -> stored resource
        self.faults: list[Fault] = []
        self.holds: list[Hold] = []
        self.cancel_polls_default = 1
        self.vc_reads = 0  # GETs of a virtual cluster (its quota and regions)
        # (job, file, appended text, fresh): the blob mirror of a job's logs (server.StandIn)
        self.on_log: Optional[Callable[[str, str, str, bool], None]] = None
        self.blob_requests: list[BlobRequest] = []  # what reached the blob host, in order
        self.blob_bytes_down = 0  # bytes the blob host sent back to clients (headers and bodies)

    # --- recording -----------------------------------------------------------
    def record(self, method: str, path: str, query: dict[str, str], body: Any,
               headers: dict[str, str]) -> RequestLog:
        entry = RequestLog(method, path, query, body, headers)
        with self.lock:
            self.requests.append(Recorded(method, path, body))
            self.request_log.append(entry)
        return entry

    def bodies(self, method: str, path_pattern: str) -> list[Any]:
        """Bodies of requests whose method matches and whose path matches the regex."""
        rx = re.compile(path_pattern)
        with self.lock:
            return [r.body for r in self.requests if r.method == method and rx.search(r.path)]

    # --- faults --------------------------------------------------------------
    def fail_next(self, route_pattern: str, status: int, times: Optional[int] = 1,
                  retry_after: Optional[float] = None, body: Optional[dict] = None,
                  handled: bool = False) -> None:
        """Answer ``status`` to the next ``times`` requests matching ``route_pattern``.

        The regex is searched in "METHOD /path" (no query), e.g. ``r"PUT .*/jobs/"``
        or just ``"/jobs/"``. ``times=None`` fails forever. ``retry_after`` adds a
        Retry-After header (seconds; fractions allowed, the SDK sleeps that long).
        ``handled=True`` carries the request out first (the job is created), then fails it.
        ``status=0`` answers nothing: the connection is closed (a reset, as the client sees it).
        """
        ra = None if retry_after is None else (str(int(retry_after)) if float(retry_after).is_integer()
                                                 else str(retry_after))
        with self.lock:
            self.faults.append(Fault(re.compile(route_pattern), status, times, ra, body, handled))

    def hold(self, route_pattern: str, handled: bool = True) -> Hold:
        """Hold the next request matching ``route_pattern`` (see Hold); once only."""
        hold = Hold(re.compile(route_pattern), handled)
        with self.lock:
            self.holds.append(hold)
        return hold

    def take_hold(self, method: str, path: str) -> Optional[Hold]:
        key = f"{method} {path}"
        with self.lock:
            for hold in self.holds:
                if not hold.taken and hold.pattern.search(key):
                    hold.taken = True  # once only; stays listed so StandIn.stop() can release it
                    return hold
        return None

    def take_fault(self, method: str, path: str) -> Optional[Fault]:
        key = f"{method} {path}"
        with self.lock:
            for fault in self.faults:
                if fault.pattern.search(key):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    # --- jobs ----------------------------------------------------------------
    def job(self, name: str) -> JobState:
        with self.lock:
            try:
                return self.jobs[name]
            except KeyError:
                raise KeyError(f"the stand-in has no job {name!r}; it has {sorted(self.jobs)}") from None

    def set_status(self, name: str, status: str, error: Optional[str] = None) -> None:
        """Move a job to ``status`` (any casing: "running", "Completed", "cancelled"...).

        ``error`` (Failed only) becomes the run's error message.
        """
        status = canonical_status(status)
        with self.lock:
            job = self.job(name)
            now = time.time()
            if status in ("Running", "Finalizing") and job.started is None:
                job.started = now
            if status in TERMINAL:
                job.started = job.started or now
                job.ended = now
            if status == "Failed":
                job.error = {"code": "UserError", "message": error or "The job failed (stand-in)."}
            job.status = status

    def append_log(self, name: str, text: str, file: str = "user_logs/std_log.txt") -> str:
        """Append ``text`` to one of the job's log files; returns the whole file."""
        with self.lock:
            job = self.job(name)
            fresh = file not in job.logs
            job.logs[file] = job.logs.get(file, "") + text
            if self.on_log is not None:
                self.on_log(name, file, text, fresh)
            return job.logs[file]

    def preempt(self, name: str, status: str = "Queued") -> None:
        """The platform takes a running job's nodes: it goes back to ``Queued`` (requeued, as
        Singularity does) or to ``Paused``; its logs stay until ``requeue``."""
        status = canonical_status(status)
        if status not in ("Queued", "Paused", "Pausing"):
            raise ValueError(f"preempt to Queued, Paused or Pausing, not {status}")
        with self.lock:
            job = self.job(name)
            if job.status not in ("Running", "Finalizing"):
                raise ValueError(f"job {name} is {job.status}; only a running job is preempted")
            job.preemptions += 1
            self.set_status(name, status)

    def requeue(self, name: str, text: str = "", file: str = "user_logs/std_log.txt") -> None:
        """A preempted job runs again with fresh logs: every log blob is replaced (deleted,
        then ``text`` written as a new blob with a new creation time), status Running."""
        with self.lock:
            job = self.job(name)
            if job.status not in ("Queued", "Paused", "Pausing"):
                raise ValueError(f"job {name} is {job.status}; preempt it first")
            files = sorted(job.logs)
            job.logs.clear()
            job.fresh_logs += 1
            for old in files:  # a blob for every file the run had: the new run recreates them
                self.append_log(name, text if old == file else "", old)
            if file not in files:
                self.append_log(name, text, file)
            self.set_status(name, "Running")

    def record_blob(self, method: str, path: str, range_header: Optional[str]) -> None:
        with self.lock:
            self.blob_requests.append(BlobRequest(method, path, range_header))

    def count_blob_bytes(self, n: int) -> None:
        with self.lock:
            self.blob_bytes_down += n

    def script(self, name: str, steps: list) -> None:
        """Queue transitions applied one per status read (job GET, run GET, run details GET).

        Each step is a status, or ``(status, log_text)``. Lets a test watch the SDK's
        own polling (``jobs.stream``) walk through queued -> running -> completed
        deterministically, without threads or sleeps. Two more steps: ``"Preempt"`` (or
        ``("Preempt", "Paused")``) runs ``preempt``; ``("Requeue", log_text)`` runs ``requeue``.
        """
        norm = [(s, None) if isinstance(s, str) else (s[0], s[1]) for s in steps]
        with self.lock:
            self.job(name).script.extend((s if s in ("Preempt", "Requeue") else canonical_status(s), t) for s, t in norm)

    def slow_cancel(self, name: str, seconds: float) -> None:
        """The job's nodes take `seconds` to stop once cancelled: it stays CancelRequested (the
        cancel poll answers 202, GET says CancelRequested) that long after the first request."""
        with self.lock:
            self.job(name).cancel_delay = float(seconds)

    def settle_cancel(self, job: JobState) -> bool:
        """A status read (job GET or cancel poll) of a job being cancelled. The service moves a
        cancelled job on by itself, whether or not anyone polls the cancel operation: each read
        uses up one of `cancel_polls`; after that, once its nodes have had `cancel_delay` seconds
        to stop, it is Canceled. True when the job is (now) Canceled."""
        with self.lock:
            if job.status != "CancelRequested":
                return job.status == "Canceled"
            if job.cancel_polls > 0:
                job.cancel_polls -= 1
                return False
            if time.monotonic() < (job.cancel_requested_at or 0.0) + job.cancel_delay:
                return False
            self.set_status(job.name, "Canceled")
            return True

    def observe(self, name: str) -> Optional[JobState]:
        """A status read: apply the next scripted step, then return the job."""
        with self.lock:
            job = self.jobs.get(name)
            if job is None:
                return None
            self.settle_cancel(job)
            if job.script:
                status, text = job.script.pop(0)
                if status == "Preempt":
                    self.preempt(name, text or "Queued")
                elif status == "Requeue":
                    self.requeue(name, text or "")
                else:
                    if text:
                        self.append_log(name, text)
                    self.set_status(name, status)
            return job

    def snapshot(self, name: str) -> JobState:
        with self.lock:
            return copy.deepcopy(self.job(name))
