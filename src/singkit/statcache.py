"""A per-project stat cache for code snapshots: (size, mtime, ctime, inode, mode) → content sha256.

git's index does the same for `git status`: a file whose stat is unchanged since it was hashed
is not read again. Like git, the cache distrusts "racy" entries: a file modified within
RACY_NS of the moment its hash was recorded could be modified again without its mtime
moving (filesystems keep coarse clocks: a kernel tick, or whole seconds on some), so such an
entry is hashed again next time. The cache is a cache: a missing, damaged or foreign file
is ignored and rewritten; it lives in the store beside the snapshots, never in the project.

The file is read on every submit, so it is compact and loads without a parse per entry (a JSON
document of 10k entries cost more than the stats it saves):

    MAGIC                                    b"singkit-statcache 2\n"
    one JSON line                            {"root", "stamp_ns", "archives", "count", "names"}
    `names` bytes                            the paths, UTF-8 (surrogateescape), NUL-separated
    `count` records of RECORD.size bytes     size, mtime_ns, ctime_ns, inode, mode; raw sha256

A lookup packs the file's current stat the same way and compares bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import time
from pathlib import Path

from singkit.fsutil import RACY_NS, atomic_write

MAGIC = b"singkit-statcache 2\n"
KEY = struct.Struct("<QqqQQ")  # size, mtime_ns, ctime_ns, inode, mode
RECORD = KEY.size + 32  # the key, then the raw sha256


def _archive_key(st: os.stat_result) -> list[int]:
    # no ctime: every job hard-links the archive (code.tar.gz), which moves it; a rewrite moves mtime
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _key(st: os.stat_result) -> bytes:
    return KEY.pack(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode)


class StatCache:
    """What the last snapshots of one project root learnt; `lookup`, `remember`, `save`."""

    def __init__(self, path: Path | None, root: Path, names: dict[str, int] | None = None,
                 records: bytes = b"", stamp_ns: int = 0, archives: dict[str, list[int]] | None = None):
        self.path, self.root = path, root
        self._names = names or {}  # path -> its record's index in `records`
        self._records = records
        self._trusted_before = stamp_ns - RACY_NS  # entries modified later than this are racy
        self._archives = archives or {}  # archive name -> its stat when it was last read whole
        self._new: dict[str, bytes] = {}  # path -> record, for save
        self._started = time.time_ns()

    @classmethod
    def load(cls, cache_dir: Path | None, root: Path) -> StatCache:
        """The cache of project `root` in `cache_dir` (None: a cache that remembers nothing)."""
        name = hashlib.sha256(str(root).encode("utf-8", "surrogateescape")).hexdigest()[:20]
        path = cache_dir / f"{name}.bin" if cache_dir is not None else None
        try:
            if path is None:
                raise OSError("no cache")
            data = path.read_bytes()
            if not data.startswith(MAGIC):
                raise ValueError("not a stat cache")
            end = data.index(b"\n", len(MAGIC))
            head = json.loads(data[len(MAGIC):end])
            count, size, stamp = head["count"], head["names"], head["stamp_ns"]
            archives = head.get("archives")
            if (head.get("root") != str(root) or not all(isinstance(v, int) and v >= 0 for v in (count, size, stamp))
                    or len(data) != end + 1 + size + count * RECORD):
                raise ValueError("a foreign or cut cache")
            names = data[end + 1:end + 1 + size].decode("utf-8", "surrogateescape").split("\0") if count else []
            if len(names) != count:
                raise ValueError("a damaged cache")
            return cls(path, root, dict(zip(names, range(count))), data[end + 1 + size:], stamp,
                       {k: v for k, v in archives.items() if isinstance(v, list)} if isinstance(archives, dict) else {})
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return cls(path, root)

    def lookup(self, stats: dict[str, os.stat_result]) -> dict[str, str]:
        """{rel: content sha256} for the files (with their current stats) whose stat is unchanged."""
        known: dict[str, str] = {}
        names, records, trusted_before, new = self._names, self._records, self._trusted_before, self._new
        for rel, st in stats.items():
            index = names.get(rel)
            if index is None or st.st_mtime_ns >= trusted_before:  # racy: modified too close to its hashing
                continue
            at = index * RECORD
            record = records[at:at + RECORD]
            if record[:KEY.size] == _key(st):
                known[rel] = record[KEY.size:].hex()
                new[rel] = record
        return known

    def remember(self, rel: str, st: os.stat_result, sha: str) -> None:
        self._new[rel] = _key(st) + bytes.fromhex(sha)
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
        names = "\0".join(self._new).encode("utf-8", "surrogateescape")
        head = {"root": str(self.root), "stamp_ns": self._started, "archives": self._archives,
                "count": len(self._new), "names": len(names)}
        data = b"".join((MAGIC, json.dumps(head, separators=(",", ":")).encode(), b"\n", names, *self._new.values()))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, data)
            self.path.with_suffix(".json").unlink(missing_ok=True)  # what singkit before 2 wrote
        except OSError:
            pass
