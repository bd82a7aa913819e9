"""The store's shared code trees, as the sweep sees them: `trees/<sha>/` with its manifest, made
by singkit.codetree (which extracts them and links jobs to them). The sweep lives here, in the
store, so a store never imports the snapshot code above it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TREES = "trees"
MANIFEST = ".singkit-tree"
SHA = re.compile(r"[0-9a-f]{64}")


def sweep_trees(store_root: Path, older_than: float) -> list[str]:
    """Remove the shared trees no job code folder has linked for `older_than` seconds, and the
    half-made ones of dead makers; the hashes removed. Never raises for a tree it cannot judge."""
    trees = store_root / TREES
    try:
        entries = list(os.scandir(trees))
    except FileNotFoundError:
        return []
    removed = []
    now = time.time()
    for entry in entries:
        name = entry.name
        sha = name[5:69] if name.startswith(".tmp-") else name
        if not SHA.fullmatch(sha) or not (name == sha or name.startswith(".tmp-")):
            continue
        if name == sha and not unused(trees / sha, now, older_than):
            continue
        try:
            with lock(trees / f"{sha}.lock"):
                if name == sha and not unused(trees / sha, now, older_than):
                    continue
                if (trees / name).exists():
                    remove(trees / name)  # a .tmp one's maker is dead: we hold its lock
                    removed.append(sha)
                if not (trees / sha).exists():
                    with contextlib.suppress(OSError):
                        os.unlink(trees / f"{sha}.lock")
        except OSError:
            continue
    return removed


def unused(tree: Path, now: float, older_than: float) -> bool:
    # the manifest's ctime changes with every link made or removed: "unlinked since then"
    try:
        info = os.lstat(tree / MANIFEST)
    except FileNotFoundError:
        return tree.is_dir() and now - os.lstat(tree).st_mtime > older_than
    return info.st_nlink <= 1 and now - info.st_ctime > older_than


def remove(path: Path) -> None:
    """rmtree that first gives back the write bit a frozen folder lacks (for a user who is not root)."""
    def retry(func: Any, failed: str, _error: Any) -> None:
        parent = os.path.dirname(failed)
        os.chmod(parent, stat.S_IMODE(os.lstat(parent).st_mode) | stat.S_IWUSR | stat.S_IXUSR)
        func(failed)

    shutil.rmtree(path, onerror=retry)


@contextlib.contextmanager
def lock(path: Path) -> Iterator[None]:
    """An flock on `path` that survives the sweep unlinking it: after locking, the name must
    still be the file locked, else another file took its place and we lock that one."""
    import fcntl

    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                yield
                return
        finally:
            os.close(fd)  # closing releases the flock
