"""File writes that never leave a half-written file behind, nor litter beside it."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path

# A temporary file is named `.<target>.p<pid>.<random>.tmp` beside its target (a rename is atomic
# only within one file system): the pid tells a later writer whether it was left by a process
# that died (kill -9) and may be swept, or belongs to a writer still at work.
_TEMP = re.compile(r"^\..+\.p(\d+)\.[a-z0-9_]{8}\.tmp$")
# git's "racy" rule, the store's one window for it: a file (or folder) changed less than this
# before its stamp was taken may change again within the same clock tick and keep that stamp, so
# nothing is kept or trusted by such a stamp. Beyond any filesystem's timestamp granularity (FAT:
# 2 s). Used by the snapshots' stat cache, the parsed job.yaml, the Singularity settled record
# and job.list's trust in jobs/'s mtime.
RACY_NS = 3_000_000_000
LEGACY_AGE = 3600.0  # seconds: a temp named without a pid (earlier versions) is swept after this


def atomic_write(path: Path | str, data: str | bytes, mode: int | None = None) -> None:
    """Write `data` to a temp file beside `path`, fsync it, then rename it over `path`.

    A symlink is followed, so writing into a linked config updates the file it points at.
    Temps that killed writers left in the folder are swept first."""
    path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        there: int | None = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # (what Path.exists takes for no file)
        there = None
    if there is not None and not stat.S_ISREG(there) and not stat.S_ISDIR(there):  # a FIFO, device, socket: never replaced
        raise OSError(errno.EEXIST, "not a regular file; not replaced", str(path))
    if mode is None and there is not None:
        mode = stat.S_IMODE(there)
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode if mode is not None else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_cache(path: Path, blob: bytes) -> None:
    """Write a cache file whole (a temp file renamed over `path`), without fsync: a copy a crash
    cut short does not decode, or names another stamp, and is then ignored like a missing one.
    A link at `path` is replaced, never written through (store folders are untrusted)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_cache(path: Path) -> bytes | None:
    """A cache file's bytes, or None when it is missing or no regular file: a link is not
    followed, a FIFO is not waited on (O_NONBLOCK), a folder or device is not read. The reader
    that goes with write_cache, for caches outside the store (store files: store/safe.open_stored)."""
    import stat

    try:  # any file that cannot be read is a cache miss, never an error
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    except OSError:
        return None
    finally:
        os.close(fd)


def temp_beside(path: Path) -> tuple[int, str]:
    """(fd, name) of a new temp file in `path`'s folder, named for `path` and this process;
    leftovers of dead writers in that folder are removed first (sweep_temps)."""
    import tempfile  # here: tempfile brings shutil, random, bz2, lzma into every command that reads (issue 14)

    sweep_temps(path)
    return tempfile.mkstemp(prefix=f".{path.name}.p{os.getpid()}.", suffix=".tmp", dir=path.parent)


def sweep_temps(path: Path | str) -> list[Path]:
    """Remove the temp files a killed writer left in `path`'s folder: those whose process is gone,
    and (for `path` itself) pid-less ones older than LEGACY_AGE. Never raises; returns what went."""
    path = Path(path)
    legacy = re.compile(r"^\." + re.escape(path.name) + r"\.[a-z0-9_]{8}\.tmp$")
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(".tmp")):
            continue
        match = _TEMP.match(name)
        try:
            if match:
                if _alive(int(match.group(1))):
                    continue
            elif not legacy.match(name) or now - entry.stat(follow_symlinks=False).st_mtime < LEGACY_AGE:
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process, or a number no process can have: keep it
    return True


@contextlib.contextmanager
def file_lock(lock_path: Path | str) -> Iterator[None]:
    """Hold an exclusive advisory lock on `lock_path` (created if missing) across processes.

    Where fcntl does not exist the body runs unlocked: the lock guards against a second
    singkit process, never against corruption."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def folder_lock(folder: Path | str) -> Iterator[None]:
    """Hold an exclusive advisory lock on a folder itself, across processes: it creates no lock
    file, so a user's committed folder (configs/) gets no litter, and the lock outlives the
    renames that replace files in it. Unlocked where fcntl or a folder descriptor is missing."""
    try:
        import fcntl

        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
