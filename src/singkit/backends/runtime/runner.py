"""The detached runner of one job on an embedded target: `python -m singkit.backends.runtime.runner JOB_DIR`.

Started by `job.submit` in a session of its own (it outlives the CLI). It extracts the code,
then runs the job's queued runs through the backend, at most `parallel` at a time, skipping
any that were cancelled while they waited, and keeps the index up to date. Its own output
goes to jobs/<jobN>/runner.log.
"""

from __future__ import annotations

import json
import os
import sys
import time
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from singkit.backends.base import backend_for_job
from singkit.backends.embedded import EmbeddedBackend
from singkit.backends.runtime import workdir
from singkit.environment import Environment
from singkit.exceptions import ExitStatus
from singkit.store import Job, Run, Store


def _one(backend: EmbeddedBackend, job: Job, run: Run, store: Store, lock: threading.Lock) -> None:
    if run.state().status != "queued":
        return  # cancelled (or reconciled) while it waited for a slot
    try:
        backend.execute(job, run)
    except BaseException as error:  # noqa: BLE001 - whatever happens, the run gets an outcome
        traceback.print_exc()
        run.set_status("failed", reason=f"runner error: {type(error).__name__}: {error}"[:500])
    finally:
        with lock:  # one index write at a time from this process
            save(store, job)


def save(store: Store, job: Job) -> None:
    try:
        store.save(job)
    except Exception:  # noqa: BLE001 - the index is a cache; list/status rebuild it
        traceback.print_exc()


def record_self(job_dir: Path) -> None:
    """Write runner.json for this very process: the runner's first act, so a live runner is
    always on record even when the submit that spawned it was killed before recording it
    (refresh would otherwise take its queued runs for orphans)."""
    from singkit import procs
    from singkit.fsutil import atomic_write

    info = {**procs.identity(os.getpid()), "argv": [sys.executable, *sys.argv], "started": round(time.time(), 3)}
    atomic_write(job_dir / "runner.json", json.dumps(info, indent=1))


def run_job(job_dir: Path) -> ExitStatus:
    job_dir = job_dir.resolve()
    record_self(job_dir)
    store = Store(job_dir.parent.parent)
    job = store.job(job_dir.name)
    env = Environment(project_root=Path(job.spec.get("project_root") or job_dir), environ=dict(os.environ),
                      stdout=sys.stdout, stderr=sys.stderr)
    backend = backend_for_job(job, env)
    queued = [r for r in job.runs if r.state().status == "queued"]
    if not isinstance(backend, EmbeddedBackend):
        # only an embedded backend's submit starts this runner: a job of another kind has no
        # process here to run (its service runs it), so its queued runs get an outcome instead
        for run in queued:
            run.set_status("failed", reason=f"runner error: a {backend.name} job does not run on this machine")
        save(store, job)
        return ExitStatus.ERROR
    try:
        workdir.prepare(job)
    except Exception as error:  # noqa: BLE001
        traceback.print_exc()
        for run in queued:
            run.set_status("failed", reason=f"could not prepare the job's code: {error}"[:500])
        save(store, job)
        return ExitStatus.ERROR
    lock = threading.Lock()
    parallel = max(1, int(job.spec.get("parallel") or 1))
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="run") as pool:
        for run in queued:  # a Store each: an sqlite connection serves only the thread that opened it
            pool.submit(_one, backend, job, run, Store(store.root), lock)
    save(store, job)
    return ExitStatus.OK


def main(argv: list[str]) -> ExitStatus:
    if len(argv) != 1:
        print("usage: python -m singkit.backends.runtime.runner JOB_DIR", file=sys.stderr)
        return ExitStatus.USAGE
    return run_job(Path(argv[0]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
