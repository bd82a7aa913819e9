"""One run's folder, jobs/<jobN>/runs/<jobN.K>/: its files, its events and its summary.

The Job (singkit.store.model) lists its runs and folds their run.log; a Run asks its Job for the
fold, so the one per-command cache of folds lives in one place."""

from __future__ import annotations

import functools
import json
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from singkit.fsutil import atomic_write
from singkit.refs import RUN_ID, shown
from singkit.store import runlog
from singkit.store.records import BACKEND_FIELDS, json_record
from singkit.store.safe import UnsafeStoreContent, check_not_linked, safe_join
from singkit.store.status import LOG_MISSING, STATUSES, RunStatus

if TYPE_CHECKING:
    from singkit.store.model import Job


class Run:
    """One run's folder: jobs/<jobN>/runs/<jobN.K>/."""

    def __init__(self, job: Job, run_id: str, hparams: dict[str, Any] | None = None, linked: bool = True):
        """`linked=False`: the caller saw that runs/<run_id> is no symbolic link (a listing of
        runs/), so the folder's path needs no check of where it leads."""
        self.job = job
        self.id = run_id
        self.hparams = hparams or {}
        # run ids come from job.yaml, which is untrusted: only `jobN.K` of this job names a folder
        match = RUN_ID.match(run_id) if isinstance(run_id, str) else None
        if match is None or match[1] != job.id:
            raise UnsafeStoreContent(f"{job.spec_path}: the run id {shown(str(run_id))} is not a run of {job.id} "
                                     f"({job.id}.K); nothing was read or written (the job folder is damaged or was "
                                     "not written by singkit)")
        if linked:
            safe_join(job.dir / "runs", run_id, "the run id", job.spec_path)  # a link out of runs/ is refused
        # a plain str for the per-run stat of every listing (a 10,000-run job.status makes no Path per run)
        self.log_file = f"{job.runs_folder}{os.sep}{run_id}{os.sep}run.log"

    # Paths are made when asked for: job.status of a 10,000-run job uses none of them
    @functools.cached_property
    def dir(self) -> Path:
        return self.job.dir / "runs" / self.id

    @functools.cached_property
    def log_path(self) -> Path:
        return self.dir / "run.log"

    @functools.cached_property
    def stdout_path(self) -> Path:
        return self.dir / "stdout.log"

    @functools.cached_property
    def stderr_path(self) -> Path:
        return self.dir / "stderr.log"

    @functools.cached_property
    def outputs_dir(self) -> Path:
        return self.dir / "outputs"

    @functools.cached_property
    def backend_path(self) -> Path:
        return self.dir / "backend.json"

    def __repr__(self) -> str:
        return f"Run({self.id!r})"

    @property
    def num(self) -> int:
        return int(self.id.rsplit(".", 1)[1])

    def create(self) -> None:
        """Make the folder and record the run as queued."""
        self.outputs_dir.mkdir(parents=True, exist_ok=True)
        for path in (self.stdout_path, self.stderr_path):
            path.touch()
        self.append("status", status="queued")

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        try:
            check_not_linked(self.log_path)  # never write through a link out of the job folder
        except FileNotFoundError as error:
            raise UnsafeStoreContent(f"{error.filename}: a symbolic link where the store keeps a run's file; "
                                     "nothing was written (the store was damaged or tampered with)") from None
        if log_trouble(self.log_path) in (LINK, NOT_A_FILE):  # (a link only if put there since the check above)
            # a FIFO would hold the append until some reader opened it (for ever); a folder or device
            # is no log either: the readers call such a run `unknown`, and nothing is written into it
            raise UnsafeStoreContent(f"{self.log_path}: not a regular file (a folder, FIFO or device) where the "
                                     "store keeps a run's log; nothing was written (the store was damaged or "
                                     "tampered with)")
        try:
            return runlog.append(self.log_path, event, **fields)
        except FileNotFoundError:
            # the run's folder is missing (a submit killed mid-way by an older singkit, or
            # removed by hand): recreate it so the run can still be given its outcome. Not
            # when the whole job folder is gone: that job was deleted, not damaged.
            if not self.job.dir.is_dir():
                raise
            self.dir.mkdir(parents=True, exist_ok=True)
            return runlog.append(self.log_path, event, **fields)

    def state(self) -> runlog.RunState:
        """The run's fold: parsed at most once per command while run.log is unchanged (see Job.fold)."""
        return self.job.fold(self)

    def set_status(self, status: str, reason: str | None = None, exit_code: int | None = None,
                   **fields: Any) -> bool:
        """Append a status line unless the run already ended; True if it was appended.

        Two writers can still race past the check; readers keep the first terminal line."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        if self.state().terminal:
            return False
        extra = {k: v for k, v in (("reason", reason), ("exit_code", exit_code)) if v is not None}
        self.append("status", status=status, **extra, **fields)
        return True

    def log_missing(self) -> bool:
        """See log_missing (the function): is this run's run.log gone from its folder?"""
        return log_missing(self.log_file)

    def backend_info(self) -> dict[str, Any]:
        return json_record(self.backend_path, BACKEND_FIELDS)

    def write_backend_info(self, info: dict[str, Any]) -> None:
        atomic_write(self.backend_path, json.dumps(info, indent=1, default=str))

    def summary(self, state: runlog.RunState | None = None) -> dict[str, Any]:
        """The run as job.status shows it, a new dict (made once per fold: Job.summary keeps the
        summaries a refresh did not touch)."""
        state = state or self.state()
        data = {"run": self.id, **state.to_dict()}
        if state.queued is None and state.status == RunStatus.QUEUED and self.log_missing():  # (no line at all: rare)
            data.update(status=LOG_MISSING, reason=f"its run.log is missing (deleted or moved?): what {self.id} did "
                                                   "is unknown; its output may still be in stdout.log")
        data["hparams"] = {**self.hparams, **state.hparams}  # the sweep's, then what the job logged
        data["sweep"] = dict(self.hparams)
        return data


MISSING, LINK, NOT_A_FILE = "missing", "a symbolic link", "not a regular file (a folder, FIFO or device)"


def log_trouble(log_file: str | Path) -> str | None:
    """What is in place of a run.log that is no run.log (MISSING, LINK or NOT_A_FILE, words for a
    message); None for a regular file, or when it cannot be told (a permission: not claimed
    wrong, and a write says what is)."""
    try:
        mode = os.lstat(log_file).st_mode
    except FileNotFoundError:
        return MISSING
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    return LINK if stat.S_ISLNK(mode) else NOT_A_FILE


def log_missing(log_file: str) -> bool:
    """Is run.log gone from a run folder that is there (a run that never had a folder is only
    queued)? A folder, FIFO or link in its place is no run.log either (the store reads none of
    them). Nothing then tells what the run did: job.status and the reports show it as `unknown`
    (status.LOG_MISSING), and no outcome is made up for it (a reconciler must not write one)."""
    return log_trouble(log_file) is not None and os.path.isdir(os.path.dirname(log_file))
