"""The store's listing of jobs from its index: which jobs exist (kept in step with jobs/ without a
scan per listing), their indexed statuses and summaries, and which indexed rows no longer match
their job.yaml. Store (singkit.store.model) inherits these."""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from singkit.fsutil import RACY_NS
from singkit.store import speccache

if TYPE_CHECKING:
    from pathlib import Path

    from singkit.store.index import Index, IndexUnavailable
    from singkit.store.model import Job, Store

T = TypeVar("T")

JOBS_STAMP = "jobs_dir_mtime_ns"  # the index's meta key for jobs/'s mtime at the last full scan
SPEC_STAMP = "spec_stamp:"  # + job id: the index's meta key for the job.yaml stamp its run rows were made from


class Listing:
    """What Store lists from its index (a mixin: `self` is the Store)."""

    if TYPE_CHECKING:  # what the Store provides
        root: Path
        jobs_dir: Path
        index: Index
        index_trouble: IndexUnavailable | None

        def cached(self, use: Callable[[], T], default: T) -> T: ...
        def job_ids(self) -> list[str]: ...
        def save(self, job: Job, summarised: Any = None) -> dict[str, Any]: ...

    def cached_statuses(self, last: int | None = None) -> dict[str, str] | None:
        """job id → status as indexed (`last`: of the newest N jobs only); None when the index
        cannot be used (see index_trouble)."""
        return self.cached(lambda: self.index.statuses(last), None)

    def summaries(self, status: str | None = None, target: str | None = None, last: int | None = None,
                  on_error: Callable[[str, Exception], None] | None = None) -> list[dict[str, Any]] | None:
        """Indexed job summaries, oldest first (see Index.summaries); rows that turn out damaged
        are indexed again from their folders. None when the index cannot be used."""
        rows = self.cached(lambda: self.index.summaries(status=status, target=target, last=last), None)
        if rows is not None and (self.index.dropped or self.index.rebuilt):
            self.sync_index(on_error)  # (rows were dropped: sync_index scans the folders whatever jobs/ says)
            self.index.dropped.clear()
            rows = self.cached(lambda: self.index.summaries(status=status, target=target, last=last), None)
        return rows

    def sync_index(self, on_error: Callable[[str, Exception], None] | None = None) -> None:
        """Index job folders the index does not know (a fresh/damaged index, a crashed submit).

        A job that cannot be read is skipped (never fails a listing) and passed to `on_error`;
        one still being created (no job.yaml yet) is skipped silently. An index that cannot be
        used is left alone (index_trouble says why).

        The scan is skipped while jobs/ itself is unchanged since a scan that found every job
        folder indexed (its mtime_ns, kept in the index): a job is added or removed only by
        making or removing its folder there, so a warm listing stats no job folder."""
        jobs_stamp = self._jobs_stamp()
        if jobs_stamp is not None and self.cached(lambda: self.index.get_meta(JOBS_STAMP), None) == jobs_stamp \
                and not self.index.rebuilt and not self.index.dropped:
            return
        known = self.cached_statuses()
        if known is None:
            return
        self.index.rebuilt = False
        complete = True
        for job_id in known:
            if not (self.jobs_dir / job_id).exists():
                # discarded (or deleted by hand) since it was indexed
                self.cached(functools.partial(self.index.remove, job_id), None)
        for job_id in self.job_ids():
            if job_id in known:
                continue
            from singkit.store.model import Job  # (model imports this module)

            job = Job(cast("Store", self), job_id)
            try:
                self.save(job)
            except Exception as error:  # noqa: BLE001 - one damaged job must not hide the others
                complete = False  # (asked again next time: a damaged job is warned of on every listing)
                if on_error is not None and job.spec_path.exists():
                    on_error(job_id, error)
        if complete and jobs_stamp is not None and self.index_trouble is None and not self.index.rebuilt:
            self.cached(lambda: self.index.set_meta(JOBS_STAMP, jobs_stamp), None)

    def _jobs_stamp(self) -> int | None:
        """jobs/'s mtime_ns, when it is old enough to trust: a folder made in the same clock tick
        as the one we saw would leave it unchanged (git's "racy" rule), so a stamp younger than
        fsutil.RACY_NS is never kept. None when there is no jobs/ or it is too young."""
        try:
            st = os.stat(self.jobs_dir)
        except OSError:
            return None
        return st.st_mtime_ns if time.time_ns() - st.st_mtime_ns > RACY_NS else None

    def rebuild_index(self) -> int:
        """Drop and refill the index from the job folders; the number of jobs indexed."""
        for job_id in self.index.statuses():
            self.index.remove(job_id)
        self.sync_index()
        return len(self.index.statuses())

    def respecced(self, job_ids: Iterable[str]) -> list[str]:
        """Of these indexed jobs, those whose job.yaml is not the one their rows were made from
        (the stamp Store.save keeps with each whole write): edited, replaced or removed since, or
        never kept (written within the racy window). One lstat per job and one query per 500:
        job.list --last N asks about N jobs. [] when the index cannot be used."""
        ids = list(job_ids)
        if not ids:
            return []
        kept = self.cached(lambda: self.index.metas([SPEC_STAMP + job_id for job_id in ids]), None)
        if kept is None:
            return []
        jobs = str(self.jobs_dir)
        return [job_id for job_id in ids
                if (now := speccache.stamp(os.path.join(jobs, job_id, "job.yaml"))) is None
                or kept.get(SPEC_STAMP + job_id) != json.dumps(now)]
