"""The code snapshot: the project's code dirs as one tar.gz in the store, named by a content hash.

What goes in is snapfiles.py's (code-dirs minus .gitignore, code-omit and what is never code);
the archive's format is snaparchive.py's. The hash covers paths, contents and the executable bit
only, so identical code hashes the same whenever it was written; `snapshots/<sha256>.tar.gz` is
written once per hash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from singkit.exceptions import UsageError
from singkit.fsutil import temp_beside
from singkit.snaparchive import END_OF_ARCHIVE, GzipWriter, add_file, check_archive, safe_extract
from singkit.snapfiles import code_files, code_stats
from singkit.statcache import StatCache

# what callers import from here: the snapshot, and the few parts of its modules a job needs
__all__ = ["Snapshot", "check_archive", "code_files", "content_hash", "safe_extract", "take"]


@dataclass(frozen=True)
class Snapshot:
    sha256: str
    path: Path        # snapshots/<sha256>.tar.gz
    files: int
    bytes: int
    reused: bool      # the store already had this code
    notes: tuple[str, ...] = ()  # what the submit should tell the user (links left out, an archive rebuilt)


def content_hash(root: Path, files: list[str]) -> tuple[str, int]:
    """sha256 over (path, executable bit, content sha256) of each file; and the total bytes."""
    digest, total = hashlib.sha256(), 0
    for rel in files:
        path = root / rel
        file_digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                file_digest.update(chunk)
                total += len(chunk)
        digest.update(_line(rel, os.access(path, os.X_OK), file_digest.hexdigest()))
    return digest.hexdigest(), total


def _line(rel: str, executable: bool, file_sha: str) -> bytes:
    return f"{rel}\0{'x' if executable else '-'}\0{file_sha}\n".encode("utf-8", "surrogateescape")


def take(root: Path, code_dirs: list[str], omit: list[str], snapshots_dir: Path,
         exclude: list[Path] = (), cache_dir: Path | None = None) -> Snapshot:
    """Snapshot the project's code into `snapshots_dir` (once per content hash).

    Cost follows what changed (issue 14): a stat cache in `cache_dir` (statcache.py) answers the
    hash of every file whose stat is unchanged, so an unchanged resubmit reads no file; when the
    cache knows nothing (a first snapshot), each byte is read once, hashed while it is archived.
    A reused archive is read whole (check_archive: it may be damaged or not singkit's) unless the
    cache saw it whole, or wrote it, with the stat it has now. UsageError for a damaged one."""
    root = root.resolve()
    outside: list[str] = []
    stats = code_stats(root, code_dirs, omit, exclude, outside)
    files = sorted(stats)
    notes = (f"left out {len(outside)} link(s) to files outside the project: {', '.join(outside[:5])}"
             f"{' …' if len(outside) > 5 else ''} (the snapshot takes only the project's own files; copy "
             "what a job needs into the project or mount it as an input)",) if outside else ()
    snap = _take(root, files, stats, snapshots_dir, cache_dir)
    return dataclasses.replace(snap, notes=notes + snap.notes)


def _take(root: Path, files: list[str], stats: dict[str, os.stat_result], snapshots_dir: Path,
          cache_dir: Path | None) -> Snapshot:
    cache = StatCache.load(cache_dir, root)
    known = cache.lookup(stats)
    if not known and files:
        return _archive(root, files, stats, snapshots_dir, cache)  # nothing to skip: hash while archiving
    digest, total = hashlib.sha256(), 0
    for rel in files:
        file_sha = known.get(rel)
        if file_sha is None:
            file_sha, size = _file_sha(root / rel)
            cache.remember(rel, stats[rel], file_sha)
        digest.update(_line(rel, _executable(stats[rel]), file_sha))
        total += stats[rel].st_size
    sha = digest.hexdigest()
    path = snapshots_dir / f"{sha}.tar.gz"
    if not path.exists():
        return _archive(root, files, stats, snapshots_dir, cache)
    if not cache.verified(path):  # written by an earlier submit: it may have been damaged since
        try:
            check_archive(path)
        except UsageError as damaged:
            # the project holds the files: write the archive anew (jobs that hold the damaged one
            # keep their own hard link to it; their reruns say it is damaged)
            path.unlink(missing_ok=True)
            snap = _archive(root, files, stats, snapshots_dir, cache)
            return dataclasses.replace(snap, notes=(f"{damaged}".split(";")[0] + "; written anew from the project",))
        cache.mark_verified(path)
    cache.save()
    return Snapshot(sha, path, len(files), total, reused=True)


def _file_sha(path: Path) -> tuple[str, int]:
    file_digest, size = hashlib.sha256(), 0
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        while chunk := os.read(fd, 1 << 20):
            file_digest.update(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return file_digest.hexdigest(), size


def _executable(st: os.stat_result) -> bool:
    return bool(st.st_mode & 0o111)


def _archive(root: Path, files: list[str], stats: dict[str, os.stat_result], snapshots_dir: Path,
             cache: StatCache) -> Snapshot:
    """Archive `files`, hashing each as it is read; the archive is named by that hash, so its
    name always matches its bytes (a file edited mid-way is refused, never mislabelled)."""
    snapshots_dir.mkdir(parents=True, exist_ok=True)
    # named for this process: a later snapshot sweeps it if a kill left it
    fd, tmp = temp_beside(snapshots_dir / "snapshot.tar.gz")
    digest, total = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as raw, GzipWriter(raw) as out:
            for rel in files:
                st = stats[rel]
                file_sha = add_file(out, str(root), rel, st)
                cache.remember(rel, st, file_sha)
                digest.update(_line(rel, _executable(st), file_sha))
                total += st.st_size
            out.write(END_OF_ARCHIVE)
        sha = digest.hexdigest()
        path = snapshots_dir / f"{sha}.tar.gz"
        if path.exists():
            Path(tmp).unlink()
            if not cache.verified(path):
                check_archive(path)
            cache.mark_verified(path)
            cache.save()
            return Snapshot(sha, path, len(files), total, reused=True)
        os.chmod(tmp, 0o444)
        os.replace(tmp, path)  # a concurrent submit of the same code writes the same bytes
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    cache.mark_verified(path)
    cache.save()
    return Snapshot(sha, path, len(files), total, reused=False)
