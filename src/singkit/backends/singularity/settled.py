"""The runs of a Singularity job that are over for good, kept so a look skips them.

A sweep of 10,000 runs has 10,000 backend.json files; while any run is still active,
`refresh` read all of them on every job.status only to learn that almost none needs Azure ML
again (issue 14: job.status of a 10,000-run job ≤ 1.0 s). A run that is terminal in the store and
either final on Azure ML or never sent there changes again only through a new job.yaml (the one
writer that adds or resets runs), so the job folder keeps

    <jobN>/backend-settled.json   {"spec": [size, mtime_ns, inode] of job.yaml, "over": [run ids]}

and `refresh` reads backend.json only for the other runs while job.yaml has that stamp. A
job.yaml changed within the store's racy window (fsutil.RACY_NS) is not trusted to show a
change in its stamp (git's racy rule), so nothing is kept for it yet. The file is a cache: a missing, damaged, foreign or linked one only
costs the full look."""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from singkit.store.model import Job

NAME = "backend-settled.json"


def over(job: Job) -> set[str]:
    """Run ids a look at this very job.yaml found over for good (none when there is no record)."""
    from singkit.store.safe import open_stored
    from singkit.store.speccache import stamp

    try:
        with open_stored(job.dir / NAME) as fh:  # no link followed, no FIFO waited on
            kept = json.loads(fh.read())
        now = stamp(job.spec_path)
        if now is None or kept.get("spec") != list(now):
            return set()
        return {run for run in kept["over"] if isinstance(run, str)}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return set()


def keep(job: Job, runs: set[str]) -> None:
    """Record `runs` (the caller has just seen each one over for good) for this job.yaml."""
    from singkit.fsutil import write_cache
    from singkit.store.speccache import settled, stamp

    now = stamp(job.spec_path)
    if now is None or not settled(now):  # the store's one racy rule for job.yaml
        return
    with contextlib.suppress(OSError):  # only a cache: a read-only store just looks again next time
        write_cache(job.dir / NAME, json.dumps({"spec": list(now), "over": sorted(runs)}).encode())
