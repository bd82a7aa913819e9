"""The local job store: job folders (the truth) and the SQLite index (a cache over them).

    <root>/jobs/<jobN>/job.yaml                  resolved spec
    <root>/jobs/<jobN>/code.tar.gz               the code snapshot (hard link to snapshots/<sha>.tar.gz)
    <root>/jobs/<jobN>/runner.json               the detached runner: pid, start time, boot id
    <root>/jobs/<jobN>/backend-settled.json      Singularity runs over for good (singkit.backends.singularity.settled)
    <root>/index.sqlite                          the index: jobs, runs' folds, parsed job.yaml (singkit.store.index)
    <root>/jobs/<jobN>/runs/<jobN.K>/run.log     JSONL events (singkit.store.runlog)
    <root>/jobs/<jobN>/runs/<jobN.K>/stdout.log, stderr.log, outputs/, backend.json
    <root>/cache/stat/<hash of a project root>.bin what snapshots learnt (singkit.statcache)
    <root>/cache/runlinks/<jobN>.json            run folders seen without links (singkit.store.runlinks)
    <root>/trees/<sha>/                          a snapshot extracted once, read-only, for the jobs on it (singkit.codetree)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from singkit.exceptions import Hint, SingkitError, UsageError
from singkit.fsutil import atomic_write
from singkit.refs import JOB_ID, check_word, shown  # the grammar the command line reads job words by
from singkit.store import foldcache, runlog, speccache
from singkit.store.fold import RunState
from singkit.store.index import Index, IndexDamaged, IndexUnavailable
from singkit.store.jobspec import JobSpec
from singkit.store.lifecycle import ABANDONED_AFTER, REFUSED, TAKEN_ID, Lifecycle  # noqa: F401 (TAKEN_ID: as before)
from singkit.store.listing import JOBS_STAMP, SPEC_STAMP, Listing  # noqa: F401 (JOBS_STAMP: as before)
from singkit.store.records import RUNNER_FIELDS, StoreDamaged, checked_spec, json_record
from singkit.store.safe import UnsafeStoreContent
from singkit.store.status import DRY_RUN, LOG_MISSING, SETTLED, TERMINAL, RunStatus
from singkit.store.run import Run
from singkit.store.yamlio import DAMAGED_HINT, dump_yaml, load_mapping

T = TypeVar("T")


def is_job_folder(entry: os.DirEntry[str]) -> bool:
    """The store's one rule for which folders under jobs/ are jobs (job.list and the reports
    both follow it): `jobN` folders holding a job.yaml, or being created just now (no job.yaml
    yet, younger than ABANDONED_AFTER); a folder a killed submit left behind is not a job."""
    if not JOB_ID.match(entry.name) or not entry.is_dir():
        return False
    if os.path.exists(os.path.join(entry.path, "job.yaml")):
        return True
    try:
        return time.time() - entry.stat().st_mtime <= ABANDONED_AFTER
    except FileNotFoundError:
        return False


def load_yaml(path: Path) -> dict[str, Any]:
    """A job.yaml (or another store YAML file) as data; one-line errors naming the file: a
    file that is not a YAML mapping is StoreDamaged (exit 2), one that cannot be read at all
    (an I/O error) stays a SingkitError."""
    try:
        data = load_mapping(path)
    except SingkitError as error:
        if DAMAGED_HINT in str(error):
            raise StoreDamaged(str(error)) from None
        raise
    if data is None:
        raise UsageError(f"{path} is missing; the job was never fully created")
    return data


class Job:
    """One job folder: jobs/<jobN>/."""

    def __init__(self, store: Store, job_id: str):
        self.store = store
        self.id = job_id
        self.num = int(JOB_ID.match(job_id).group(1))  # type: ignore[union-attr]
        self.dir = store.jobs_dir / job_id
        self.runs_folder = os.path.join(self.dir, "runs")  # as text: see Run.log_file
        self.spec_path = self.dir / "job.yaml"
        self.code_archive = self.dir / "code.tar.gz"
        self.runner_path = self.dir / "runner.json"
        self._spec: JobSpec | None = None
        # run id -> (run.log stamp, its fold, taken from the index): what this command read so far
        self._folds: dict[str, tuple[foldcache.Stamp, runlog.RunState, bool]] = {}
        self._indexed: dict[str, tuple[foldcache.Stamp, str]] | None = None  # the index's folds, read once
        self._runs: tuple[JobSpec, list[Run]] | None = None  # (the spec they were made from, runs)

    def __repr__(self) -> str:
        return f"Job({self.id!r})"

    @property
    def spec(self) -> JobSpec:
        if self._spec is None:
            self._spec = checked_spec(self.store.job_yaml(self), self.spec_path, self.id)
        return self._spec

    def write_spec(self, spec: JobSpec) -> None:
        atomic_write(self.spec_path, dump_yaml(spec))
        self._spec = spec
        from singkit.store.sweep import CREATING

        with contextlib.suppress(OSError):  # a job with its job.yaml is made: the sweep's marker goes
            (self.dir / CREATING).unlink()

    def use_spec(self, spec: JobSpec) -> None:
        """Work with `spec` before it is written (submit creates the runs' folders first)."""
        self._spec = spec

    @property
    def runs(self) -> list[Run]:
        """The runs job.yaml lists; built once per spec (each checks its folder's path, which
        costs two realpaths: job.status of a 10,000-run job asks four times)."""
        spec = self.spec
        if self._runs is None or self._runs[0] is not spec:
            self._runs = (spec, self._make_runs())
        return list(self._runs[1])

    def _make_runs(self) -> list[Run]:
        listed = self.spec.get("runs") or []
        if not isinstance(listed, list) or not all(isinstance(r, dict) for r in listed):
            raise UnsafeStoreContent(f"{self.spec_path}: `runs` is not a list of runs ({{run: {self.id}.K, hparams: ...}}); "
                                     "the job folder is damaged or was not written by singkit")
        linked = self._linked_runs()
        return [Run(self, r["run"], r.get("hparams") if isinstance(r.get("hparams"), dict) else None,
                    linked=r["run"] in linked) for r in listed]

    def _linked_runs(self) -> set[str]:
        """Names in runs/ that are symbolic links, from one listing (no stat per run folder)."""
        try:
            with os.scandir(self.dir / "runs") as entries:
                return {entry.name for entry in entries if entry.is_symlink()}
        except OSError:
            return set()

    def run(self, ref: str) -> Run:
        """A run by `jobN.K`, `N.K` or `K`; UsageError listing the runs if unknown."""
        check_word(ref, "run")
        runs = {r.id: r for r in self.runs}
        for candidate in (ref, f"{self.id}.{ref}", f"job{ref}"):
            if candidate in runs:
                return runs[candidate]
        raise UsageError(f"no run {shown(ref)} in {self.id}; its runs are {', '.join(runs) or '(none)'}")

    def link_code(self, archive: Path) -> None:
        """Give the job its code snapshot: a hard link to the deduped archive (a copy across devices)."""
        try:
            os.link(archive, self.code_archive)
        except FileExistsError:
            pass
        except OSError:
            shutil.copy2(archive, self.code_archive)

    def runner_info(self) -> dict[str, Any]:
        return json_record(self.runner_path, RUNNER_FIELDS)

    def write_runner_info(self, info: dict[str, Any]) -> None:
        atomic_write(self.runner_path, json.dumps(info, indent=1))

    def fold(self, run: Run) -> runlog.RunState:
        """`run`'s fold (singkit.store.fold), keyed by its run.log's stamp (foldcache.stamp): reused while
        the file is unchanged — from this command's earlier reads, else from the index — and
        parsed from the file otherwise. run.log is append-only, so any write changes the key."""
        try:
            st = os.lstat(run.log_file)  # a link is read as missing (runlog.read); its own stamp does
        except (FileNotFoundError, NotADirectoryError):
            self._folds.pop(run.id, None)
            return runlog.state(run.log_path)
        stamp = foldcache.stamp(st)
        known = self._folds.get(run.id)
        if known is not None and known[0] == stamp:
            return known[1]
        state = self._indexed_fold(run.id, stamp)
        indexed = state is not None
        if state is None:
            state = runlog.state(run.log_path)
        self._folds[run.id] = (stamp, state, indexed)
        return state

    def _indexed_fold(self, run_id: str, stamp: foldcache.Stamp) -> runlog.RunState | None:
        if self._indexed is None:
            self._indexed = self.store.indexed_folds(self.id)
        key, text = self._indexed.get(run_id) or (None, None)
        if key != stamp or text is None:
            return None
        return RunState.from_text(text)  # None for a row that is not a fold

    def known_folds(self, only: set[str] | None = None) -> dict[str, tuple[foldcache.Stamp, runlog.RunState]]:
        """run id -> (run.log stamp, fold) for the folds this command read (`only`: of these runs)."""
        return {run_id: (stamp, state) for run_id, (stamp, state, _) in self._folds.items()
                if only is None or run_id in only}

    def stale_runs(self) -> set[str] | None:
        """The runs whose index rows are not what this command read: their fold was parsed from
        run.log (it grew) or could not be read. None when the job's run rows cannot be kept at
        all: the index was not read, or its runs are not the ones job.yaml lists."""
        runs = self.runs
        indexed = self._indexed
        if indexed is None or len(indexed) != len(runs) or any(r.id not in indexed for r in runs):
            return None
        folds = self._folds
        return {r.id for r in runs if (known := folds.get(r.id)) is None or not known[2]}

    def forget(self) -> None:
        """Drop what this command read (runs, folds): each Run points back at its Job, so a
        10,000-run job is otherwise one big reference cycle that only the cycle collector frees."""
        self._runs, self._folds, self._indexed = None, {}, None

    def states(self) -> dict[str, runlog.RunState]:
        return {r.id: r.state() for r in self.runs}

    def status(self) -> str:
        return overall_status(self.spec, [s.status for s in self.states().values()])

    def summary(self, previous: tuple[dict[str, Any], list[dict[str, Any]]] | None = None,
                again: set[str] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """(job summary, run summaries) as listed and indexed. `previous`: this job's summary as
        made before a refresh, and `again` the runs that refresh may have written (None: any):
        the other runs' summaries are kept from `previous` (no fold lookup per run of a sweep)."""
        spec = self.spec
        if previous is not None and again is not None and len(previous[1]) == len(self.runs):
            runs = [r.summary() if r.id in again or old["run"] != r.id else old for r, old in zip(self.runs, previous[1])]
        else:
            runs = [r.summary() for r in self.runs]
        if spec.get("dry_run"):  # nothing was started, nothing ever will be: settled, not queued
            for r in runs:
                if r["status"] == RunStatus.QUEUED:
                    r["status"] = DRY_RUN
        statuses = [r["status"] for r in runs]
        status = overall_status(spec, statuses)
        started = [r["started"] for r in runs if r.get("started")]
        ended = [r["ended"] for r in runs if r.get("ended")]
        target = spec.get("target") or {}
        summary = {
            "job": self.id, "num": self.num, "target": target.get("name"),
            "service": (spec.get("service") or {}).get("name"), "status": status,
            "runs_total": len(runs), "runs_done": sum(s in SETTLED for s in statuses),
            "created": spec.get("created"), "started": min(started) if started else None,
            # a run whose outcome is unknown has ended too: the job's time must not grow for ever
            "ended": max(ended) if ended and all(s in TERMINAL or s == LOG_MISSING for s in statuses) else None,
            "command": spec.get("command"),
        }
        return summary, runs


class Store(Lifecycle, Listing):
    """One local store root ($SINGKIT_HOME, default <project>/.singkit); how job folders are made
    and removed is singkit.store.lifecycle's, their listing from the index singkit.store.listing's."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.jobs_dir = self.root / "jobs"
        self.snapshots_dir = self.root / "snapshots"
        self.events_path = self.root / "events.jsonl"
        self.index = Index(self.root / "index.sqlite")
        # why the index could not be used (full disk, read-only, locked): from then on this Store
        # works without it, and readers list from the job folders
        self.index_trouble: IndexUnavailable | None = None

    @classmethod
    def of(cls, env: Any) -> Store:
        return cls(env.home)

    def close(self) -> None:
        self.index.close()

    def job_ids(self) -> list[str]:
        """Job folders that hold a spec (or are being created just now), in id order."""
        try:
            entries = list(os.scandir(self.jobs_dir))
        except FileNotFoundError:
            return []
        ids = [entry.name for entry in entries if is_job_folder(entry)]
        return sorted(ids, key=lambda j: int(j[3:]))

    def job(self, ref: str) -> Job:
        """A job by `jobN` or `N`; UsageError naming the closest jobs if unknown."""
        check_word(ref)
        job_id = f"job{ref}" if ref.isdigit() else ref
        # lexists: a job.yaml that is a link, folder or FIFO is the job's, and reading it says what is wrong
        if JOB_ID.match(job_id) and os.path.lexists(self.jobs_dir / job_id / "job.yaml"):
            return Job(self, job_id)
        if JOB_ID.match(job_id):
            try:
                reason = " ".join((self.jobs_dir / (job_id + REFUSED)).read_text().split())
            except (FileNotFoundError, NotADirectoryError):
                pass
            else:
                from singkit.store.sweep import ABANDONED_NOTE

                if reason.startswith(ABANDONED_NOTE.split(":")[0] + ":"):
                    raise UsageError(f"{job_id} was never fully created ({reason[:300]})")
                raise UsageError(f"{job_id} was refused at submit and nothing was started ({reason[:300]})",
                                 hint=Hint.command("report.events", job=job_id, say="; see {}"))
        from singkit.store.sweep import CREATING

        if JOB_ID.match(job_id) and os.path.isdir(self.jobs_dir / job_id) and not os.path.lexists(self.jobs_dir / job_id / CREATING):
            raise StoreDamaged(f"{self.jobs_dir / job_id / 'job.yaml'} is missing: {job_id} cannot be read without it "
                               f"(was it moved or deleted?); put it back, or remove the folder {self.jobs_dir / job_id}")
        raise no_such_job(ref, [known for known in self.job_ids() if known != job_id], self.root)

    def cached(self, use: Callable[[], T], default: T) -> T:
        """`use()` on the index, which is only a cache: a damaged one is rebuilt (empty: the next
        sync_index refills it) and `use` tried again; an unusable one (full disk, read-only,
        locked) is noted in `index_trouble` and `default` returned, as from then on for this Store."""
        for attempt in (1, 2):
            if self.index_trouble is not None:
                return default
            try:
                return use()
            except IndexDamaged:
                if attempt == 2:
                    raise
                try:
                    self.index.recover()
                except IndexUnavailable as error:
                    self.index_trouble = error
            except IndexUnavailable as error:
                self.index_trouble = error
        return default

    def job_yaml(self, job: Job) -> dict[str, Any]:
        """job.yaml's data as parsed, not yet checked (load_yaml; raising what it raises), parsed
        once per version of the file (a 10,000-run sweep's takes over a second): the index's
        row while the file's stamp is the one it was parsed at (singkit.store.speccache). A
        small job.yaml is parsed every time; an index that cannot be used is not asked."""
        before = speccache.trusted_stamp(job.spec_path)
        if before is None or before[0] < speccache.CACHED_FROM_BYTES:
            return load_yaml(job.spec_path)
        data = speccache.cached(self.cached(lambda: self.index.specs([job.id]).get(job.id), None), before)
        if data is None:
            data = load_yaml(job.spec_path)
            row = speccache.row(job.id, before, speccache.trusted_stamp(job.spec_path), data)
            if row is not None:
                self.cached(lambda: self.index.put_specs([row]), None)
        return data

    def save(self, job: Job, summarised: tuple[dict[str, Any], list[dict[str, Any]]] | None = None) -> dict[str, Any]:
        """Write the job's current summary into the index (when it can be written); return it.
        `summarised`: job.summary() as the caller just made it (not made again). Only what
        changed is written (see _stale_rows): a look at a finished 10,000-run job writes
        nothing, one at a running sweep the job's row and the runs whose run.log grew."""
        summary, runs = summarised or job.summary()
        stale = self._stale_rows(job)
        if stale is not None:
            if not stale and self.cached(lambda: self.index.summary_text(job.id), None) == json.dumps(summary, default=str):
                return summary
            changed = [r for r in runs if r["run"] in stale]
            self.cached(lambda: self.index.upsert(summary, changed, job.known_folds(stale), keep_others=True), None)
            return summary
        stamp = speccache.stamp(job.spec_path)
        # the job.yaml the rows are made from, when it is old enough to know by its stamp
        meta = {SPEC_STAMP + job.id: json.dumps(stamp)} if stamp is not None and speccache.settled(stamp) else {}
        self.cached(lambda: self.index.upsert(summary, runs, job.known_folds(), meta=meta), None)
        return summary

    def _stale_rows(self, job: Job) -> set[str] | None:
        """The runs whose index rows a save must write (Job.stale_runs), when the others can be
        kept: they were made from this very job.yaml (its stamp, kept in the index's meta after
        each whole write). None: write every row."""
        if self.index_trouble is not None:
            return None
        stale = job.stale_runs()
        if stale is None:
            return None
        stamp = speccache.stamp(job.spec_path)
        if stamp is None or self.cached(lambda: self.index.get_meta(SPEC_STAMP + job.id), None) != json.dumps(stamp):
            return None
        return stale

    def indexed_folds(self, job_id: str) -> dict[str, tuple[foldcache.Stamp, str]]:
        """The index's run folds of one job (see Index.folds); {} when there is no index yet (a
        read never creates one) or it cannot be used."""
        if not self.index.path.exists():
            return {}
        return self.cached(lambda: self.index.folds(job_id), {})


def overall_status(spec: Mapping[str, Any], statuses: list[str]) -> str:
    """A job's status from its runs'; a dry run is `dry-run` unless preparing it failed."""
    if spec.get("dry_run") and RunStatus.FAILED not in statuses:
        return DRY_RUN
    known = [s for s in statuses if s != LOG_MISSING]  # a run whose log is missing tells nothing
    if statuses and not known:
        return LOG_MISSING
    return runlog.job_status(known)


def no_such_job(ref: str, known: list[str], root: Path) -> UsageError:
    """The error for an unknown job id, naming the closest known ones."""
    import difflib

    if not known:
        return UsageError(f"no job {shown(ref)}: the store {root} has no jobs yet",
                          hint=Hint.command("job.submit", say="; submit one with {}"))
    job_id = f"job{ref}" if ref.isdigit() else ref
    close = difflib.get_close_matches(job_id, known, n=3)
    hint = f"did you mean {', '.join(close)}?" if close else f"the newest are {', '.join(known[-3:])}"
    return UsageError(f"no job {shown(ref)} in {root}; {hint}", hint=Hint.command("job.list"))
