"""Looking at and steering submitted jobs: status, list, cancel, extract, monitor.

Every read first refreshes the jobs that are not finished (through their backend, which
reconciles runs whose process died), so nothing stays `running` after its runner is gone.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from singkit.backends.base import Backend, backend_for_job
from singkit.environment import Environment
from singkit.exceptions import Hint, JobCancelled, JobFailed, SingkitError, UsageError
from singkit.store import Job, Store, runlog
from singkit.store.status import DRY_RUN, LOG_MISSING, SETTLED, STATUSES

FINISHED = SETTLED


def open_job(env: Environment, job_ref: str) -> tuple[Store, Job, Backend]:
    store = Store.of(env)
    job = store.job(job_ref)
    return store, job, backend_for_job(job, env)


def refresh(env: Environment, store: Store, job: Job, backend: Backend | None = None) -> dict[str, Any]:
    """Bring one job up to date and return its summary (as indexed)."""
    return refreshed(env, store, job, backend)[0]


def refreshed(env: Environment, store: Store, job: Job,
              backend: Backend | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Bring one job up to date: (its summary as indexed, its runs' summaries), from one fold
    of each run (again only when its backend was asked to reconcile: that may record outcomes).
    The backend is made only for a job that is not finished."""
    summarised = job.summary()
    if not job.spec.get("dry_run") and summarised[0]["status"] not in FINISHED:
        changed: set[str] | None = None  # the runs the refresh may have written (None: any)
        try:
            changed = (backend or backend_for_job(job, env)).refresh(job)
        except (SingkitError, OSError) as error:  # OSError: e.g. no space left to record an outcome
            env.err(f"warning: could not refresh {job.id}: {why(error)}")
        if changed != set():  # (a refresh that wrote no run's files leaves every summary as it was)
            summarised = job.summary(previous=summarised, again=changed)
    store.save(job, summarised)
    return summarised


def index_note(env: Environment, store: Store) -> None:
    """The one line saying the job index could not be used (so the job folders were read)."""
    if store.index_trouble is not None:
        env.err(f"note: {store.index_trouble}; read the job folders instead")


def status(env: Environment, job_ref: str) -> dict[str, Any]:
    """The job's summary with its runs, each with status, reason, exit code, hparams, times."""
    store = Store.of(env)
    job = store.job(job_ref)
    try:
        for note in link_notes(job):
            env.err(note)
        summary, runs = refreshed(env, store, job)
        index_note(env, store)
        return {**summary, "runs": runs, "spec": {k: job.spec.get(k) for k in ("command", "parallel", "code", "experiment")}}
    finally:
        job.forget()  # freed now by reference counting, not later by a walk of the cycle collector


def list_jobs(env: Environment, status: str | None = None, target: str | None = None,
              last: int | None = None) -> list[dict[str, Any]]:
    if status and status not in (*STATUSES, DRY_RUN, LOG_MISSING):
        raise UsageError(f"--status={status} is not one of {', '.join(STATUSES)}, {DRY_RUN}, {LOG_MISSING}")
    if last is not None and last < 1:
        raise UsageError(f"--last={last}: give 1 or more")
    store = Store.of(env)
    if _no_store(store):
        return []  # no store here: a listing must not create one (nor its index)

    def skip(job_id: str, error: Exception) -> None:
        env.err(f"warning: skipped {job_id}: {why(error)}")

    store.sync_index(on_error=skip)
    # only the jobs that can be listed are brought up to date: with --last alone, the newest N
    # (and one more for each of them that cannot be read); the runners of all of them are looked
    # for in one listing of the processes
    shown = last if not status and not target else None
    statuses = store.cached_statuses(shown)
    unreadable: set[str] = set()
    looked: set[str] = set()
    with _runners_listed_once(statuses is None or any(c not in FINISHED for c in statuses.values())):
        while statuses is not None:
            fresh = {job_id: cached for job_id, cached in statuses.items() if job_id not in looked}
            looked.update(fresh)
            skipped = _bring_up_to_date(env, store, fresh, skip)
            unreadable |= skipped
            if shown is None or not skipped:
                break
            statuses = store.cached_statuses(shown + len(unreadable))
        rows = store.summaries(status=status, target=target, last=None if last is None else last + len(unreadable),
                               on_error=skip)
        if rows is not None and unreadable:
            rows = [row for row in rows if row["job"] not in unreadable]
            rows = rows[-last:] if last is not None else rows
        if rows is None:  # the index cannot be used (full disk, read-only, locked): the folders are the truth
            rows = _from_folders(env, store, skip, status, target, last)
    index_note(env, store)
    return rows


def _bring_up_to_date(env: Environment, store: Store, statuses: dict[str, str],
                      skip: Callable[[str, Exception], None]) -> set[str]:
    """Refresh the jobs of `statuses` (job -> status in the index) that may have changed: those not
    finished, and finished ones whose job.yaml changed since their row was made (one stamp each).
    The jobs whose job.yaml is gone or does not parse, whose rows must not be listed."""
    unfinished = [job_id for job_id, cached in statuses.items() if cached not in FINISHED]
    respecced = store.respecced(job_id for job_id, cached in statuses.items() if cached in FINISHED)
    unreadable: set[str] = set()
    for job_id in unfinished + respecced:
        try:
            job = store.job(job_id)
            job.spec  # noqa: B018 - a job.yaml gone or damaged is told apart from a refresh that failed
        except Exception as error:  # noqa: BLE001 - one bad job must not end the listing
            skip(job_id, error)
            unreadable.add(job_id)  # its row was made from a job.yaml that is not there any more
            continue
        try:
            refresh(env, store, job)
        except Exception as error:  # noqa: BLE001
            skip(job_id, error)
            if job_id in respecced:
                unreadable.add(job_id)
    return unreadable


def _runners_listed_once(needed: bool) -> contextlib.AbstractContextManager[None]:
    """Reconciling many jobs looks for their runners in one listing of the processes (see
    procs.one_listing); a listing with no job to refresh imports nothing for it."""
    if not needed:
        return contextlib.nullcontext()
    from singkit import procs

    return procs.one_listing()


def _from_folders(env: Environment, store: Store, skip: Any, status: str | None, target: str | None,
                  last: int | None) -> list[dict[str, Any]]:
    """What list_jobs lists, read from every job folder (slower than the index, never wrong)."""
    rows = []
    for job_id in store.job_ids():
        job = Job(store, job_id)
        if not job.spec_path.exists():
            continue  # being created just now
        try:
            rows.append(refresh(env, store, job))
        except Exception as error:  # noqa: BLE001 - one bad job must not end the listing
            skip(job_id, error)
    rows = [r for r in rows if (not status or r["status"] == status) and (not target or r.get("target") == target)]
    return rows[-last:] if last else rows


def _no_store(store: Store) -> bool:
    """True when the store has no jobs folder yet. A store path that cannot be one (a file on
    the way: NotADirectoryError) or cannot be read raises, as opening it would."""
    try:
        os.stat(store.jobs_dir)
    except FileNotFoundError:
        return True
    return False


def nothing_listed(env: Environment, status: str | None = None, target: str | None = None) -> str | None:
    """Why job.list shows nothing: None when the store has no jobs (or no filter was given), else
    which filter excluded every one and what the store holds instead."""
    store = Store.of(env)
    everything = [] if _no_store(store) else store.summaries()
    if everything is None:  # no usable index: the folders say the same, slower
        everything = [s for s in (_summary_or_none(store, job_id) for job_id in store.job_ids()) if s]
    if not everything or not (status or target):
        return None
    given = " ".join(f"--{flag} {value}" for flag, value in (("status", status), ("target", target)) if value)
    known = []
    if status:
        known.append("statuses in the store: " + ", ".join(sorted({str(j["status"]) for j in everything})))
    if target:
        known.append("targets in the store: " + ", ".join(sorted({str(j.get("target")) for j in everything})))
    return f"no jobs match {given} ({'; '.join(known)})"


def _summary_or_none(store: Store, job_id: str) -> dict[str, Any] | None:
    try:
        return Job(store, job_id).summary()[0]
    except Exception:  # noqa: BLE001 - a damaged job was said by the listing already
        return None


def why(error: Exception) -> str:
    """An error as the one line a warning shows."""
    if isinstance(error, SingkitError):
        text = str(error)
    elif isinstance(error, OSError) and error.strerror:
        text = error.strerror + (f": {error.filename}" if error.filename is not None else "")
    else:
        text = f"{type(error).__name__}: {error}"
    return " ".join(text.split())[:500]


def link_notes(job: Job, runs: list[Any] | None = None) -> list[str]:
    """One warning per store file of the job's runs that is a symbolic link (run.log, stdout.log,
    stderr.log, outputs/, or the run folder itself): such files are never read or followed
    (singkit.store.safe), and the user should know why a run shows nothing."""
    from singkit.store import runlinks

    chosen = runs if runs is not None else job.runs
    names = ("run.log", "stdout.log", "stderr.log", "outputs")
    found = runlinks.links(job.store.root, job.id, job.dir, [run.id for run in chosen], names)
    return [f"warning: {link} is a symbolic link in the job store; not read or followed "
            "(the store was damaged or tampered with)" for link in found]


def dry_run_note(job: Job) -> str:
    """What following a dry run says: there is nothing to wait for."""
    return (f"{job.id} is a dry run: nothing was started, so there is no output to follow; "
            f"its spec is {job.spec_path} (run it for real with `invoke job.rerun {job.id}`)")


def cancel(env: Environment, job_ref: str, run: str | None = None) -> list[str]:
    """Cancel the job (or one run); the runs that were still going (empty: nothing to do).
    Raises what the backend raises (e.g. ServiceError naming the runs that did not stop) after
    saving what did change.

    A dry run has nothing to cancel: no backend is asked (a Singularity one would call Azure ML)."""
    store, job, backend = open_job(env, job_ref)
    runs = [job.run(run)] if run else job.runs
    if job.spec.get("dry_run"):
        return []
    pending = [r for r in runs if not r.state().terminal]
    # a run whose run.log is missing or no file (`unknown`) gets no outcome written: the backend
    # stops it if it still goes and says so (UnsafeStoreContent), after cancelling the others
    active = [r.id for r in pending if not r.log_missing()]
    try:
        if pending:
            backend.cancel(job, runs[0].id if run else None)
    finally:
        # a backend that could stop only some runs (a straggler, a refused cancel) raises after
        # recording the others: the index and the audit trail show those all the same
        if active:
            done = [r.id for r in runs if r.id in active and r.state().status == "cancelled"]
            from singkit.store import events

            events.record(env, "cancel", job=job.id, runs=active, **({} if done == active else {"confirmed": done}))
        store.save(job)
    return active


def extract(env: Environment, job_ref: str, dest: Path, what: str = "all") -> tuple[Path, list[str]]:
    """Copy the job's `what` into `dest`; (dest, notes on what was skipped: links out of the
    store, devices). UsageError for a destination that is a file, a device or under one, and for
    one inside the job store: a copy of a run's outputs into those outputs copies itself until
    the path is too deep, and anything else written there pollutes the store."""
    from singkit.outpaths import output_folder

    output_folder(dest, "--dest")
    home, target = env.home.resolve(), dest.resolve()
    if target == home or home in target.parents:
        raise UsageError(f"the destination {dest} is inside the job store ({home}); extract to a folder outside it, "
                         f"e.g. extracted/{job_ref}")
    _store, job, backend = open_job(env, job_ref)
    notes = backend.download(job, dest, what) or []
    return dest, notes


def outcome(status: str, job_id: str) -> None:
    """Raise the exception whose exit code says how the job ended (nothing if it completed)."""
    if status == "failed":
        raise JobFailed(f"{job_id} failed", hint=Hint.command("job.status", job_id, say="; see {} and {}",
                                                              more=(Hint.command("job.logs", job_id),)))
    if status == "cancelled":
        raise JobCancelled(f"{job_id} was cancelled")
    if status == LOG_MISSING:  # not 0: a script must not read success into an outcome nobody knows
        raise SingkitError(f"what {job_id} did is unknown: its runs' run.log files are missing",
                           hint=Hint.command("job.status", job_id, say="; see {}"))


class LiveLine:
    """One status line on stderr, redrawn in place on a terminal, printed on change otherwise."""

    def __init__(self, stream: Any):
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.shown = ""

    def __call__(self, text: str) -> None:
        if self.tty:
            if text != self.shown:
                self.stream.write("\r\033[K" + text)
                self.stream.flush()
                self.shown = text
        elif text and text.split(" · ")[0] != self.shown.split(" · ")[0]:
            self.stream.write(text.split(" · ")[0] + "\n")  # no clock: only real changes
            self.stream.flush()
            self.shown = text

    def close(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()


def monitor(env: Environment, job_ref: str, live: bool = True, json_out: bool = False) -> str:
    """Follow every run's output until the job ends; its final status. Ctrl-C propagates
    (KeyboardInterrupt) and leaves the job running. With json_out the job's stdout goes to
    stderr too, keeping stdout for the JSON printed afterwards."""
    from singkit.backends.follow import JobFollower, status_counts, took

    store, job, backend = open_job(env, job_ref)
    if job.spec.get("dry_run"):
        env.err(dry_run_note(job))
        return store.save(job)["status"]
    line = LiveLine(env.stderr) if live else None
    try:
        out = env.stderr if json_out else env.stdout
        follower = JobFollower(job, backend, out, env.stderr, status_line=line)
        states = follower.follow()
    finally:
        if line:
            line.close()
    summary = store.save(job)
    # the job's own time, from its first run's start to its last run's end (not how long we watched)
    when = (f" in {took(summary['started'], summary['ended'])}" if summary.get("started")
            else "" if follower.missing else " before any run started")
    env.err(f"{job.id} {summary['status']}: {status_counts(states, follower.missing)}{when}")
    for run_id, state in states.items():
        if state.status == "failed" and state.reason:
            env.err(f"  {run_id}: {state.reason}")
        if state.skipped_lines:
            env.err("  " + runlog.skipped_note(run_id, state.skipped_lines))
    return summary["status"]
