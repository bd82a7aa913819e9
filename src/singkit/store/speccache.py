"""job.yaml, parsed once per version: a JSON copy of the checked spec keyed by the file's stamp.

A sweep's job.yaml lists every run (10,000 runs: ~1 MB of YAML, over a second to parse even
with libyaml's C parser, since PyYAML builds every value in Python), and every command that
looks at the job reads it. The store keeps what it parsed in

    <root>/cache/spec/<jobN>.json   {"stamp": [size, mtime_ns, inode], "spec": <the checked spec>}

and reads that back (orjson: ~100x faster) while job.yaml's size, mtime_ns and inode are the
ones it was parsed at. job.yaml is only ever replaced whole (atomic_write: a new inode), and a
file changed within RACY_S of being parsed is never cached (git's "racy" rule: an edit in the
same clock tick keeps mtime_ns), so a cached spec is never older than the file. The copy is
only a cache: one that is missing, unreadable, damaged or of another shape is ignored (and
rewritten); a spec that JSON cannot hold exactly (a date, a non-text key) is not cached.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from singkit.fsutil import temp_beside

RACY_S = 2.0  # a job.yaml changed more recently than this is parsed, not cached
# a smaller job.yaml (a few hundred runs) parses in a few ms: not worth a file per job (the
# first job.list of a store with 5,000 jobs would write 5,000)
CACHED_FROM_BYTES = 16_384
Stamp = tuple[int, int, int]


def cache_path(root: Path, job_id: str) -> Path:
    """Where the parsed spec of `job_id` is kept in the store at `root`."""
    return Path(root) / "cache" / "spec" / f"{job_id}.json"


def stamp(path: Path | str) -> Stamp | None:
    """(size, mtime_ns, inode) of the file itself (a link is not followed); None if missing."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


def load(path: Path, cache: Path, parse: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The spec in job.yaml at `path`: the cached copy at `cache` while job.yaml is unchanged,
    else `parse()` (which reads and checks the file, raising what it raises), cached when the
    file is old enough to trust, big enough to be worth it and JSON holds the spec exactly."""
    from singkit.store.safe import link_in_job

    before = stamp(path) if link_in_job(path) is None else None  # a link: parse() refuses it as it does
    if before is not None:
        cached = _read(cache, before)
        if cached is not None:
            return cached
    data = parse()
    after = stamp(path)
    if after is not None and after == before and settled(after) and after[0] >= CACHED_FROM_BYTES:
        _write(cache, after, data)
    return data


def settled(at: Stamp) -> bool:
    """Is a file of this stamp old enough that a change would show in its stamp (git's racy rule)?"""
    return time.time() - at[1] / 1e9 > RACY_S


def _read(cache: Path, want: Stamp) -> dict[str, Any] | None:
    try:
        import orjson

        with open(cache, "rb") as fh:
            record = orjson.loads(fh.read())
    except (OSError, ValueError, ImportError):
        return None
    if not isinstance(record, dict) or record.get("stamp") != list(want):
        return None
    spec = record.get("spec")
    return spec if isinstance(spec, dict) else None


def _write(cache: Path, at: Stamp, data: dict[str, Any]) -> None:
    try:
        import orjson

        blob = orjson.dumps({"stamp": list(at), "spec": data})
        if orjson.loads(blob)["spec"] != data:
            return  # JSON would change it (NaN, a date, a tuple): parse the YAML each time instead
        write_cache(cache, blob)
    except (OSError, TypeError, ValueError, ImportError):
        with contextlib.suppress(OSError):
            os.unlink(cache)  # never leave an older copy that a reused stamp could match


def write_cache(path: Path, blob: bytes) -> None:
    """Write a cache file whole (a temp file renamed over it), without fsync: a copy a crash cut
    short does not decode, or names another stamp, and is then ignored like a missing one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
