"""How job folders come and go: a new job's id (never given out twice), the sweep of folders
submits abandoned half-created, and the removal of a job refused at submit. Store
(singkit.store.model) inherits these."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from typing import TYPE_CHECKING, cast

from singkit.exceptions import SingkitError
from singkit.fsutil import atomic_write

if TYPE_CHECKING:
    from pathlib import Path

    from singkit.store.index import Index
    from singkit.store.model import Job, Store

# jobs/<jobN>.refused: a job removed because its submit was refused before anything started.
# The file keeps the id taken (events.jsonl names it) and says why.
REFUSED = ".refused"
TAKEN_ID = re.compile(r"^job(\d+)(?:\.refused)?$")
# A job folder without job.yaml is being created by a concurrent submit; after this long it
# is taken as abandoned (the submit died) and ignored.
ABANDONED_AFTER = 300.0


class Lifecycle:
    """Making and removing job folders (a mixin: `self` is the Store)."""

    if TYPE_CHECKING:  # what the Store provides
        root: Path
        jobs_dir: Path
        index: Index

    def allocate(self) -> Job:
        """A new, empty job folder with the next free id. mkdir is atomic, so concurrent
        submits (threads or processes) can never get the same id; ids of discarded jobs
        (their `jobN.refused` files) count as taken, so an id is never given out twice."""
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.sweep()
        taken = [int(m.group(1)) for name in os.listdir(self.jobs_dir) if (m := TAKEN_ID.match(name))]
        num = max(taken, default=0) + 1
        while True:
            try:
                os.mkdir(self.jobs_dir / f"job{num}")
            except FileExistsError:
                num += 1
                continue
            if not (self.jobs_dir / f"job{num}{REFUSED}").exists():
                from singkit.store.sweep import mark_creating

                from singkit.store.model import Job  # (model imports this module)

                mark_creating(self.jobs_dir / f"job{num}")  # a sweep leaves it alone while we live
                return Job(cast("Store", self), f"job{num}")
            # created and discarded by another submit since we listed: the marker is written
            # before its folder goes, so seeing no marker here means the id was never used
            os.rmdir(self.jobs_dir / f"job{num}")
            num += 1

    def sweep(self) -> list[str]:
        """Remove job folders submits abandoned half-created (see singkit.store.sweep); the ids
        removed. Never fails: a folder it cannot judge or remove is left for another time."""
        from singkit.store.sweep import sweep

        try:
            from singkit.store.trees import sweep_trees

            sweep_trees(self.root, ABANDONED_AFTER)  # code trees no job folder links any more
        except Exception:  # noqa: BLE001 - tidying up must never cost a submit
            pass
        try:
            return sweep(self.root, self.jobs_dir, ABANDONED_AFTER)
        except Exception:  # noqa: BLE001 - tidying up must never cost a submit
            return []

    def discard(self, job: Job, reason: str) -> None:
        """Remove a job nothing was started for (its submit was refused), keeping its id taken.

        The `jobN.refused` file is written before the folder goes: an allocator that lists the
        folder after it is gone still sees the id taken (see allocate). job.yaml goes first,
        so a removal cut short leaves a folder every reader ignores (see job_ids)."""
        atomic_write(self.jobs_dir / (job.id + REFUSED), reason.strip() + "\n")
        job.spec_path.unlink(missing_ok=True)
        shutil.rmtree(job.dir, ignore_errors=True)
        from singkit.store import runlinks

        with contextlib.suppress(OSError):
            runlinks.cache_path(self.root, job.id).unlink()
        if self.index.path.exists():
            try:
                self.index.remove(job.id)  # a concurrent listing may have indexed it meanwhile
            except SingkitError:
                pass  # busy: the next listing drops the row of a folder that is gone (sync_index)
