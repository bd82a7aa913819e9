"""Sweeping job folders a submit abandoned half-created (killed, or the disk was full).

A submit makes `jobs/<jobN>/` first and writes job.yaml last (the commit point); a folder that
never got its job.yaml is no job (store.model.is_job_folder), and without a sweep such folders
pile up. One is removed only when nothing of value can be in it and nobody is still making it:
  - no job.yaml and no runner.json (no runner was ever started for it);
  - nothing in it changed for ABANDONED_AFTER seconds;
  - the submit that made it (`.creating`: its pid, start time, boot id) is not alive;
  - no run in it got past `queued`, and no output, log or backend id was written.
Its id stays taken (a `jobN.refused` file says why), as for a refused submit. Submits sweep, under
the store's lock (store.lock), so two of them never sweep at once; reads never change the store.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

CREATING = ".creating"  # in a job folder until job.yaml: who is making it (procs.identity)
LOCK = "store.lock"
ABANDONED_NOTE = ("abandoned: its submit ended before the job was written (killed, or the disk was full); "
                  "the half-created folder was removed")
# what a folder a submit left before job.yaml may hold; anything else means something ran
# depth below the job folder → (folders, files) allowed there: the job folder, runs/, a run, its outputs/
_SHAPE: dict[int, tuple[set[str], set[str]]] = {
    0: ({"runs"}, {"code.tar.gz", CREATING}),
    1: (set(), set()),  # runs/: any run folders, no files
    2: ({"outputs"}, {"run.log", "stdout.log", "stderr.log"}),
    3: (set(), set()),  # an empty outputs/
}


def mark_creating(job_dir: Path) -> None:
    """Record this process as the one making `job_dir` (best effort: a full disk must not stop
    the submit here; the sweep then goes by age alone)."""
    from singkit import procs

    try:
        with open(job_dir / CREATING, "w") as fh:
            json.dump(procs.identity(os.getpid()), fh)
    except OSError:
        pass


def sweep(root: Path, jobs_dir: Path, older_than: float) -> list[str]:
    """Remove the abandoned half-created job folders under `jobs_dir`; the ids removed."""
    from singkit.fsutil import file_lock
    from singkit.refs import JOB_ID

    try:
        candidates = [e for e in os.scandir(jobs_dir)
                      if JOB_ID.match(e.name) and e.is_dir(follow_symlinks=False)
                      and not os.path.lexists(os.path.join(e.path, "job.yaml"))]
    except FileNotFoundError:
        return []
    if not candidates:
        return []
    removed = []
    with file_lock(root / LOCK):
        for entry in candidates:
            folder = Path(entry.path)
            if not abandoned(folder, older_than):
                continue
            marker = jobs_dir / f"{entry.name}.refused"
            try:
                if not marker.exists():
                    marker.write_text(ABANDONED_NOTE + "\n")
                shutil.rmtree(folder)
            except OSError:
                continue  # another time: a sweep is never worth failing a submit for
            removed.append(entry.name)
    return removed


def abandoned(folder: Path, older_than: float) -> bool:
    """Is this job folder one a submit left half-made, with nothing in it worth keeping?"""
    from singkit import procs
    from singkit.store import runlog

    if (folder / "job.yaml").exists() or (folder / "runner.json").exists():
        return False
    if procs.alive(_creator(folder)):
        return False
    newest = 0.0
    for path, dirs, files in os.walk(folder):
        rel = Path(path).relative_to(folder).parts
        newest = max(newest, os.lstat(path).st_mtime)
        allowed_dirs, allowed_files = _SHAPE.get(len(rel), (set(), set()))
        if len(rel) == 1 and rel[0] != "runs" or len(rel) == 3 and rel[2] != "outputs":
            return False
        if len(rel) != 1 and not set(dirs) <= allowed_dirs:
            return False
        for name in files:
            file = os.path.join(path, name)
            info = os.lstat(file)
            newest = max(newest, info.st_mtime)
            if name not in allowed_files:
                return False  # output, a backend id, anything a run or runner wrote
            if name == "run.log":
                state = runlog.state(file)
                if state.status != "queued" or state.started is not None:
                    return False
            elif name in ("stdout.log", "stderr.log") and info.st_size:
                return False
    return time.time() - newest > older_than


def _creator(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / CREATING).read_text())
    except (OSError, ValueError):
        return None
