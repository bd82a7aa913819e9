"""What the two embedded backends (local, docker) share: a detached runner process per job.

`submit` starts `python -m singkit.backends.runtime.runner <job dir>` in a session of its own, so the job
outlives the CLI; the runner starts up to `parallel` runs at once through `execute` and
follows each to its end. `refresh` reconciles runs whose runner died; `cancel` records
`cancelled` first, then stops the runs (and, for the whole job, the runner).
"""

from __future__ import annotations

import abc
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from singkit import procs
from singkit.backends.base import Backend
from singkit.backends.runtime.workdir import processes_per_node
from singkit.store import events
from singkit.store.run import log_trouble
from singkit.store.safe import UnsafeStoreContent

if TYPE_CHECKING:
    from singkit.store import Job, Run

# A job whose runner.json is missing this long after creation never got its runner.
RUNNER_GRACE = 60.0
CANCEL_GRACE = 5.0   # seconds between SIGTERM and SIGKILL for the runner itself (runs get the target's grace-seconds)
RUNNER_DRAIN = 15.0  # how long a job cancel waits for the runner to save logs and exit


class EmbeddedBackend(Backend):
    @abc.abstractmethod
    def execute(self, job: Job, run: Run) -> None:
        """Run one run to its end (called by the runner, in a thread); record its outcome."""

    @abc.abstractmethod
    def run_alive(self, job: Job, run: Run) -> bool:
        """Is the run's process/container still going without its runner? (May record the
        outcome it finds, e.g. a container that exited while nobody followed it.)"""

    @abc.abstractmethod
    def stop(self, job: Job, runs: list[Run]) -> None:
        """End the given runs' processes or containers."""

    def submit(self, job: Job) -> None:
        argv = [sys.executable, "-m", "singkit.backends.runtime.runner", str(job.dir)]
        with open(job.dir / "runner.log", "ab") as log:
            popen = subprocess.Popen(argv, cwd=job.dir, env=dict(self.env.environ), stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, start_new_session=True, close_fds=True)
        # the runner records itself too, first thing (see runner.record_self): this write covers
        # a runner that could not even start Python
        job.write_runner_info({**procs.identity(popen.pid), "argv": argv, "started": round(time.time(), 3)})

    def refresh(self, job: Job) -> None:
        states = job.states()
        if all(s.terminal for s in states.values()):
            return
        runner = job.runner_info()
        if procs.alive(runner) or procs.find_runner(job.dir):
            return  # the runner owns its runs and records their outcomes (found by its command line
            # when runner.json is missing: a submit killed right after spawning it)
        if not runner and time.time() - float(job.spec.get("created") or 0) < RUNNER_GRACE:
            return  # being submitted right now
        ran = bool(runner) or any(s.status != "queued" for s in states.values()) or any(r.backend_info() for r in job.runs)
        for run in job.runs:
            if states[run.id].terminal or run.log_missing() or self.run_alive(job, run):
                continue  # (a run whose run.log was deleted: its outcome is unknown, not made up here)
            state = run.state()  # again: the run may have recorded its end just now
            if state.terminal:
                continue
            if not ran:
                reason = "no runner was ever started for this job (the submit was interrupted)"
            elif state.status == "queued":
                reason = f"{runner_text(runner)} died before this run started (killed, or the machine restarted)"
            else:
                reason = (f"the run's process and {runner_text(runner)} are gone without recording an outcome "
                          "(killed, or the machine restarted)")
            if run.set_status("failed", reason=reason):
                events.record(self.env, "reconcile", job=job.id, run=run.id, reason=reason)

    def cancel(self, job: Job, run: str | None = None) -> None:
        """Record `cancelled` for every run still going, then stop them all (and, for the whole
        job, the runner). A run whose run.log cannot be written (missing, a FIFO, folder or link:
        status `unknown`) gets no outcome written, but is stopped like the others when it was
        still going; UnsafeStoreContent names those runs in one line once all the rest is done."""
        runs = [job.run(run)] if run else job.runs
        active = [r for r in runs if not r.state().terminal]
        refused: list[str] = []
        for r in active:  # recorded before anything is killed: the first terminal status wins
            if r.log_missing():
                if self._still_going(job, r):  # else it ended before its log was lost: nothing to do
                    refused.append(r.id)
                continue
            try:
                r.set_status("cancelled", reason="cancelled by the user")
            except UnsafeStoreContent:  # (its log was replaced since we looked)
                refused.append(r.id)
        self.stop(job, active)
        if run is None:
            self._stop_runner(job)
            # a run the runner was starting while we looked would have escaped the first pass
            self.stop(job, [r for r in job.runs if r.backend_info()])
        if refused:
            done = [r.id for r in active if r.id not in refused and r.state().status == "cancelled"]
            troubles = {r.id: log_trouble(r.log_path) for r in active if r.id in refused}
            said = "; ".join(f"{run_id}: its run.log " + (f"is {trouble}" if trouble else "cannot be read")
                             for run_id, trouble in troubles.items())
            raise UnsafeStoreContent(
                f"{said}: `cancelled` could not be recorded, nothing was written; stopped all the same"
                f"{' (the others were cancelled: ' + ', '.join(done) + ')' if done else ''}"
                " (the store was damaged or tampered with)")

    def _still_going(self, job: Job, run: Run) -> bool:
        """Is a run whose run.log is gone still going: its process (container) alive, or not yet
        started by a runner that is?"""
        return self.run_alive(job, run) or (not run.backend_info() and procs.alive(job.runner_info()))

    def _stop_runner(self, job: Job) -> None:
        runner = job.runner_info()
        deadline = time.monotonic() + RUNNER_DRAIN
        while procs.alive(runner) and time.monotonic() < deadline:
            time.sleep(0.05)  # let it save logs and remove containers of the runs it followed
        if procs.alive(runner):
            procs.terminate(procs.family([int(runner["pid"])]), CANCEL_GRACE)


def runner_text(runner: dict) -> str:
    """`the job's runner (pid 123, started 2026-12-01 10:02:03)`, as much as runner.json says."""
    known = []
    if runner.get("pid"):
        known.append(f"pid {runner['pid']}")
    if isinstance(runner.get("started"), (int, float)):
        known.append("started " + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(runner["started"])))
    if not runner:
        known.append("its runner.json is missing")
    return "the job's runner" + (f" ({', '.join(known)})" if known else "")


def stop_processes(infos: list[dict], grace: float = CANCEL_GRACE) -> set[int]:
    """End every process tree whose leader `infos` describe (only the very processes recorded)."""
    leaders = [int(i["pid"]) for i in infos if procs.alive(i)]
    if not leaders:
        return set()
    return procs.terminate(procs.family(leaders), grace)


def exit_reason(code: int) -> tuple[str, str | None, int]:
    """(status, reason, exit code) for a process exit code (negative: killed by that signal)."""
    import signal

    if code == 0:
        return "completed", None, 0
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return "failed", f"killed by {name}", 128 - code
    return "failed", f"exit code {code}", code


def user_spec() -> str | None:
    """uid:gid to run containers as, so files they write are the user's (None on Windows)."""
    if hasattr(os, "getuid"):
        return f"{os.getuid()}:{os.getgid()}"
    return None


# -- processes per node (`processes-per-node`), as Azure ML's PyTorch distribution starts them --
def processes(run: Run, count_gpus: Callable[[], int]) -> int:
    """How many processes the run starts: the target's number, or for `gpus` what `count_gpus`
    finds (asked only then; at least 1, and with no GPU the run's stderr.log says so, since
    the researcher asked for one process per GPU)."""
    value = processes_per_node(run.job.spec)
    if value != "gpus":
        return int(value)
    gpus = count_gpus()
    if gpus > 0:
        return gpus
    with open(run.stderr_path, "ab") as err:
        err.write(b"singkit: processes-per-node: gpus, but no GPU is visible here; starting 1 process\n")
    return 1


def gpu_count(path: str | None, cuda_visible_devices: str | None) -> int:
    """GPUs a process would see: the `GPU ...` lines of `nvidia-smi -L` (nvidia-smi looked up
    on `path`; none: 0), restricted by CUDA_VISIBLE_DEVICES when that is set."""
    smi = shutil.which("nvidia-smi", path=path)
    if smi is None:
        return 0
    try:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return 0
    total = sum(1 for line in listed.stdout.splitlines() if line.startswith("GPU ")) if listed.returncode == 0 else 0
    return visible_gpus(total, cuda_visible_devices)


def visible_gpus(total: int, cuda_visible_devices: str | None) -> int:
    """How many of `total` GPUs CUDA_VISIBLE_DEVICES leaves visible: CUDA reads the list up to
    its first entry that names no device ("" or -1 hide them all)."""
    if cuda_visible_devices is None:
        return total
    count = 0
    for item in cuda_visible_devices.split(","):
        item = item.strip()
        if not ((item.isdigit() and int(item) < total) or item.startswith(("GPU-", "MIG-"))):
            break
        count += 1
    return min(count, total)


def free_port() -> int:
    """A TCP port free on this host right now, for MASTER_PORT (as torchrun picks one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def world_variables(count: int, port: int) -> dict[str, str]:
    """The variables Azure ML's PyTorch distribution gives every process of a one-node run,
    less RANK/LOCAL_RANK, which the launcher sets per process (torch.distributed's env://)."""
    return {"WORLD_SIZE": str(count), "NODE_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
