"""A per-project stat cache for code snapshots: (size, mtime, ctime, inode, mode) → content sha256.

git's index does the same for `git status`: a file whose stat is unchanged since it was hashed
is not read again. Like git, the cache distrusts "racy" entries: a file modified within
RACY_NS of the moment its hash was recorded could be modified again without its mtime
moving (filesystems keep coarse clocks: a kernel tick, or whole seconds on some), so such an
entry is hashed again next time. The cache is a cache: a missing, damaged or foreign file
is ignored and rewritten; it lives in the store beside the snapshots, never in the project.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from singkit.fsutil import atomic_write

VERSION = 1
RACY_NS = 3_000_000_000  # beyond any filesystem's timestamp granularity (FAT: 2 s)


def _archive_key(st: os.stat_result) -> list[int]:
    # no ctime: every job hard-links the archive (code.tar.gz), which moves it; a rewrite moves mtime
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode]


class StatCache:
    """What the last snapshots of one project root learnt; `lookup`, `remember`, `save`."""

    def __init__(self, path: Path | None, root: Path, entries: dict[str, list[Any]],
                 archives: dict[str, list[int]] | None = None):
        self.path, self.root = path, root
        self._old = entries
        self._archives = archives or {}  # archive name -> its stat when it was last read whole
        self._new: dict[str, list[Any]] = {}
        self._started = time.time_ns()

    @classmethod
    def load(cls, cache_dir: Path | None, root: Path) -> StatCache:
        """The cache of project `root` in `cache_dir` (None: a cache that remembers nothing)."""
        name = hashlib.sha256(str(root).encode("utf-8", "surrogateescape")).hexdigest()[:20]
        path = cache_dir / f"{name}.json" if cache_dir is not None else None
        entries: dict[str, list[Any]] = {}
        archives: dict[str, list[int]] = {}
        try:
            if path is None:
                raise OSError("no cache")
            doc = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(doc, dict) and doc.get("version") == VERSION and doc.get("root") == str(root):
                stamp = doc.get("stamp_ns")
                files = doc.get("files")
                if isinstance(stamp, int) and isinstance(files, dict):
                    # racy entries (modified too close to when they were hashed) are not trusted
                    entries = {rel: e for rel, e in files.items()
                               if isinstance(e, list) and len(e) == 6 and isinstance(e[1], int) and e[1] < stamp - RACY_NS}
                if isinstance(doc.get("archives"), dict):
                    archives = {k: v for k, v in doc["archives"].items() if isinstance(v, list)}
        except (OSError, ValueError):
            pass
        return cls(path, root, entries, archives)

    def lookup(self, stats: dict[str, os.stat_result]) -> dict[str, str]:
        """{rel: content sha256} for the files (with their current stats) whose stat is unchanged."""
        known: dict[str, str] = {}
        for rel, st in stats.items():
            entry = self._old.get(rel)
            if entry is not None and entry[:5] == _key(st):
                known[rel] = entry[5]
                self._new[rel] = entry
        return known

    def remember(self, rel: str, st: os.stat_result, sha: str) -> None:
        self._new[rel] = [*_key(st), sha]

    def verified(self, archive: Path) -> bool:
        """Was `archive` read whole (check_archive) or written by us, and are its size, mtime and
        inode unchanged since? Then a reuse need not read it again (a rewrite moves the mtime, a
        replacement the inode)."""
        try:
            return self._archives.get(archive.name) == _archive_key(os.stat(archive))
        except OSError:
            return False

    def mark_verified(self, archive: Path) -> None:
        with contextlib.suppress(OSError):
            self._archives = {archive.name: _archive_key(os.stat(archive))}  # this project's latest only

    def save(self) -> None:
        """Write what this snapshot learnt (entries of files no longer taken are dropped). A
        failure to write is no failure of the snapshot: the next one hashes again."""
        if self.path is None:
            return
        doc = {"version": VERSION, "root": str(self.root), "stamp_ns": self._started, "files": self._new,
               "archives": self._archives}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, json.dumps(doc, separators=(",", ":")))
        except OSError:
            pass
