"""Following runs: tailing their output files, and watching a whole job (job.monitor).

Output files are read by byte offset; a line is only passed on once its newline is there
(or the run has ended). Run states are read incrementally from run.log the same way.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING, Any, TextIO

from singkit.store import runlog
from singkit.store.status import LOG_MISSING, RunStatus
from singkit.store.safe import NotAFile, open_stored

if TYPE_CHECKING:
    from singkit.backends.base import Backend
    from singkit.store import Job, Run

POLL = 0.05


class StateWatcher:
    """A run's state, brought up to date from the bytes appended to run.log since last time."""

    def __init__(self, run: Run):
        self.run = run
        self.state = runlog.RunState()
        self.offset = 0
        self.missing = False  # run.log gone from the run's folder: nothing will tell how it ends

    def poll(self) -> runlog.RunState:
        records, self.offset, skipped = runlog.read_counted(self.run.log_path, self.offset)
        self.state.skipped_lines += skipped
        for record in records:
            self.state.apply(record)
        if not self.offset:  # nothing read yet: a run not started, or one whose log was deleted
            self.missing = self.run.log_missing()
        return self.state

    @property
    def over(self) -> bool:
        """Nothing more to wait for: the run ended, or its run.log is missing (job.status: unknown)."""
        return self.state.terminal or self.missing


def last_lines(path: Any, count: int) -> tuple[list[str], int]:
    """The last `count` complete lines of a file and the file size they end at."""
    try:
        with open_stored(path) as fh:  # a link is read as missing, never followed
            data = fh.read()
    except FileNotFoundError:
        return [], 0
    end = data.rfind(b"\n") + 1
    lines = data[:end].decode("utf-8", "replace").splitlines(keepends=True)
    return (lines[-count:] if count else []), end


def follow_lines(run: Run, stream: str = "stdout", follow: bool = False, tail: int | None = None,
                 poll: float = POLL) -> Iterator[str]:
    """Lines of a run's stdout/stderr file; with follow, keep going until the run has ended."""
    path = run.stdout_path if stream == "stdout" else run.stderr_path
    offset = 0
    if tail is not None:
        lines, offset = last_lines(path, tail)
        yield from lines
    watcher = StateWatcher(run)
    pending = b""
    while True:
        watcher.poll()  # before reading: whatever the run wrote is then in the file
        ended = watcher.over
        try:
            with open_stored(path) as fh:
                fh.seek(offset)
                chunk = fh.read()
        except NotAFile:
            raise  # the output being followed turned into a folder or FIFO: say so, never go quiet
        except FileNotFoundError:
            chunk = b""
        offset += len(chunk)
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode("utf-8", "replace") + "\n"
        if not follow or ended:
            if pending:
                yield pending.decode("utf-8", "replace") + "\n"
            return
        if not chunk:
            time.sleep(poll)


def status_counts(states: dict[str, runlog.RunState], missing: Collection[str] = ()) -> str:
    """`2 running, 1 preempted` for the live line; `(3 preemptions)` after, once any run was
    preempted (preempted is not final: such runs are requeued and run again). `missing`: the
    runs whose run.log is gone, counted as `unknown` (status.LOG_MISSING)."""
    counts: collections.Counter[str] = collections.Counter(
        LOG_MISSING if run in missing else s.status for run, s in states.items())
    order = [RunStatus.RUNNING, RunStatus.QUEUED, RunStatus.PREEMPTED, RunStatus.COMPLETED, RunStatus.FAILED,
             RunStatus.CANCELLED, LOG_MISSING]
    text = ", ".join(f"{counts[s]} {s}" for s in order if counts[s])
    preemptions = sum(s.preemptions for s in states.values())
    return text + (f" ({preemptions} preemption{'s' * (preemptions != 1)})" if preemptions else "")


def clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def took(start: float | None, end: float | None) -> str:
    """How long something took (epoch seconds in, text out), written as every job and report
    table writes durations (singkit.fmt.duration: `0.004s`, `25s`, `1m05s`); `-` if unknown."""
    from singkit import fmt

    if start is None or end is None:
        return "-"
    return fmt.duration(max(0.0, end - start))


class JobFollower:
    """Print every run's output as it comes (prefixed by the run id when there are several):
    stdout lines to `out`, stderr lines to `err`. Runs one thread per (run, stream); the
    caller's thread refreshes the backend (which reconciles dead runs) and shows status."""

    def __init__(self, job: Job, backend: Backend, out: TextIO, err: TextIO, runs: list[Run] | None = None,
                 tail: int | None = None, status_line: Callable[[str], None] | None = None):
        self.job, self.backend, self.out, self.err = job, backend, out, err
        self.runs = runs if runs is not None else job.runs
        self.tail = tail
        self.status_line = status_line
        self.lock = threading.Lock()
        self.prefix = len(job.runs) > 1
        self.broken: BrokenPipeError | None = None  # a reader went away (`| head`): raised by follow()
        self.failure: Exception | None = None  # what ended a pump thread: raised by follow(), in the caller's thread
        self.missing: set[str] = set()  # runs whose run.log is gone (not waited for; status_counts' `missing`)

    def _pump(self, run: Run, stream: str) -> None:
        sink = self.out if stream == "stdout" else self.err
        prefix = f"[{run.id}] " if self.prefix else ""
        try:
            for line in self.backend.logs(self.job, run.id, follow=True, stream=stream, tail=self.tail):
                if self.broken:
                    return
                with self.lock:
                    if self.status_line:
                        self.status_line("")  # clear the live line before output goes over it
                    sink.write(prefix + line)
                    sink.flush()
        except BrokenPipeError as error:  # not a thread traceback: the caller's edge ends quietly
            self.broken = error
        except OSError as error:  # a store file that cannot be read: say which, as one line
            from singkit.exceptions import SingkitError

            what = error.strerror or type(error).__name__
            self.failure = SingkitError(f"could not follow {run.id}: {what}: {error.filename or run.dir}")
        except Exception as error:  # noqa: BLE001 - told by the caller's edge in one line, never a thread traceback
            self.failure = error

    def follow(self, refresh_every: float = 2.0, tick: float = 0.2) -> dict[str, runlog.RunState]:
        pumps = {run.id: [threading.Thread(target=self._pump, args=(run, stream), daemon=True)
                          for stream in ("stdout", "stderr")] for run in self.runs}
        threads = [thread for pair in pumps.values() for thread in pair]
        for thread in threads:
            thread.start()
        watchers = [StateWatcher(r) for r in self.runs]
        started = time.time()
        last_refresh = 0.0
        while True:
            if self.broken:
                raise self.broken
            if self.failure:
                raise self.failure
            states = {w.run.id: w.poll() for w in watchers}
            self.missing = {w.run.id for w in watchers if w.missing}
            if all(w.over for w in watchers) and not any(t.is_alive() for t in threads):
                if self.broken:  # a pump may have hit the closed pipe after the check above
                    raise self.broken
                if self.failure:
                    raise self.failure
                return states
            if time.monotonic() - last_refresh > refresh_every:
                last_refresh = time.monotonic()
                self.backend.refresh(self.job)
            # A run that has ended while its output is still being relayed is not shown as ended
            # yet: the line saying so must come after its last output line, not among them.
            draining = any(states[rid].terminal and any(t.is_alive() for t in pair) for rid, pair in pumps.items())
            if self.status_line and not draining:
                with self.lock:
                    self.status_line(f"{self.job.id}: {status_counts(states, self.missing)} · "
                                     f"{clock(time.time() - started)}")
            for thread in threads:
                thread.join(timeout=tick / max(1, len(threads)))
