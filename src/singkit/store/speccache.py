"""job.yaml, parsed once per version: the index's `specs` rows, keyed by the file's stamp.

A sweep's job.yaml lists every run (10,000 runs: ~1 MB), and every command that looks at the
job reads it. job.submit writes it as JSON-formatted YAML (store.yamlio), which one orjson call
parses; a job.yaml of block YAML (an older singkit's, a hand-written one, data JSON cannot hold)
takes over a second even with libyaml's C parser, since PyYAML builds every value in Python.
The one copy of what was parsed is a row of the index's `specs` table (singkit.store.index: one
query serves the reports thousands of jobs at once):

    (job, size, mtime_ns, inode, ctime_ns, <job.yaml's data as JSON text>)

read back (orjson: ~100x faster than the YAML) while job.yaml's size, mtime_ns, inode and
ctime_ns are the ones it was parsed at. job.yaml is only ever replaced whole by singkit
(atomic_write: a new inode); an edit in place to the same size with its mtime put back (`touch
-r`) still moves ctime, which no one can set. A file changed within fsutil.RACY_NS of being
parsed is never kept (git's "racy" rule: an edit in the same clock tick keeps mtime_ns). The row holds the
data as parsed (before Job.spec's checks, which run on every read); data that JSON cannot hold
exactly (a date, a non-text key, NaN) is never kept. A row that does not decode to a mapping is
ignored (and rewritten). Store.job_yaml and reports.cache.SummaryCache.job_specs read and write
the rows through the functions here, so both see the same data under the same rules.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import Any

from singkit.fsutil import RACY_NS


# Job.spec keeps a row of its own only for a bigger job.yaml: one write transaction per job is
# more than parsing a few hundred runs costs (a first job.list of 5,000 jobs would write 5,000).
# The reports keep every job's row, all in one transaction.
CACHED_FROM_BYTES = 16_384
Stamp = tuple[int, int, int, int]  # (size, mtime_ns, inode, ctime_ns)
Row = tuple[str, int, int, int, int, str]  # (job, size, mtime_ns, inode, ctime_ns, JSON text): Index.put_specs


def stamp(path: Path | str) -> Stamp | None:
    """(size, mtime_ns, inode, ctime_ns) of the file itself (a link is not followed); None if missing."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns


def trusted_stamp(path: Path | str) -> Stamp | None:
    """stamp(path) when no link lies on the way from its job folder (the parser refuses such a
    file, and a cached copy must not answer for it); else None."""
    from singkit.store.safe import JOBS, link_in_job

    # the usual case, <jobs>/<jobN>/job.yaml, in plain strings: the reports ask for every job
    # (safe.link_in_job's Paths cost 10x the two lstats)
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    if os.path.basename(os.path.dirname(folder)) != JOBS:
        return stamp(path) if link_in_job(path) is None else None
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or os.path.islink(folder):
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns


def settled(at: Stamp) -> bool:
    """Is a file of this stamp old enough that a change would show in its stamp (git's racy rule)?
    mtime decides, as for run.logs (foldcache): ctime is in the key, so an edit with its mtime put
    back is seen, unless it falls in the very tick of an earlier edit made just before a parse."""
    return time.time_ns() - at[1] > RACY_NS


def cached(row: tuple[int, int, int, int, str] | None, at: Stamp | None) -> dict[str, Any] | None:
    """The data in an index row (size, mtime_ns, inode, ctime_ns, text; Index.specs) when it was kept for a
    file of stamp `at`; None for another stamp, no stamp, or text that is not a JSON mapping."""
    if row is None or at is None or tuple(row[:4]) != at:
        return None
    try:
        import orjson

        data = orjson.loads(row[4])
    except (ValueError, TypeError, ImportError):
        return None
    return data if isinstance(data, dict) else None


def row(job: str, before: Stamp | None, after: Stamp | None, data: Any) -> Row | None:
    """The row to keep for `data`, parsed from a file stamped `before` when its reading began and
    `after` when it ended; None when it must not be kept: the file changed meanwhile or too
    recently to trust its stamp, or JSON would not give back exactly `data`."""
    if before is None or after != before or not settled(after) or not isinstance(data, dict):
        return None
    try:
        import orjson

        blob = orjson.dumps(data)
        if orjson.loads(blob) != data:
            return None  # (NaN, a tuple): parse the YAML each time instead
    except (TypeError, ValueError, ImportError):
        return None  # a date, a non-text key, an int past 64 bits
    return (job, *after, blob.decode())
