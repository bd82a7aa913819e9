"""The code archive's format (snaparchive.py): what singkit writes is what tarfile writes, byte for
byte, for the same members; the same code gives the same archive; a file that changes size while
it is read is refused (issue 14: the archive is written by hand, one read per byte, for speed)."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import time
from pathlib import Path

import pytest

from singkit import snaparchive
from singkit.exceptions import SingkitError
from singkit.snapshot import take

OLD_NS = time.time_ns() - 7200 * 10**9
CHUNK = 1 << 20
SIZES = {  # the read loop's edges: empty, one block, a chunk, a chunk and a byte, several chunks
    "empty.txt": 0, "one.py": 1, "block.bin": 512, "block1.bin": 513, "chunk.bin": CHUNK, "chunk1.bin": CHUNK + 1,
    "chunks.bin": 3 * CHUNK - 7,
}


def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "pkg").mkdir(parents=True)
    for name, size in SIZES.items():
        (root / "pkg" / name).write_bytes(bytes((k * 7 + len(name)) % 251 for k in range(size)))
    deep = root / ("d" * 60) / ("e" * 70) / ("f" * 80 + ".py")  # a GNU long name
    deep.parent.mkdir(parents=True)
    deep.write_text("LONG = True\n")
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o750)
    (root / "ro.txt").write_text("read-only\n")
    (root / "ro.txt").chmod(0o444)
    for path in [root, *root.rglob("*")]:  # mtimes apart from ctimes: a header taking the wrong one shows
        os.utime(path, ns=(OLD_NS, OLD_NS + 123_456_789))
    return root


def tarfiles_bytes(root: Path, names: list[str]) -> bytes:
    """The tar tarfile itself writes for these files: regular members owned by 0:0 with no user
    or group names, each with its file's mode and whole-second mtime (GNU format)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in names:
            st = os.stat(root / name)
            info = tarfile.TarInfo(name)
            info.mode, info.size, info.mtime = st.st_mode & 0o7777, st.st_size, int(st.st_mtime)
            with open(root / name, "rb") as fh:
                tar.addfile(info, fh)
    return out.getvalue()


def test_the_archive_is_tarfiles_own_tar_byte_for_byte_and_the_same_code_the_same_archive(tmp_path):
    root = project(tmp_path)
    first = take(root, ["."], [], tmp_path / "a" / "snapshots", cache_dir=tmp_path / "a" / "cache")
    names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    ours = gzip.decompress(first.path.read_bytes())
    expected = tarfiles_bytes(root, names)
    # tarfile pads its end to a 10 KiB record; singkit ends at the two zero blocks tar requires
    assert ours == expected[:len(ours)] and not expected[len(ours):].strip(b"\0")
    assert ours.endswith(b"\0" * 1024) and len(ours) % 512 == 0
    # another store, and a warm cache whose archive was removed: the very same bytes
    again = take(root, ["."], [], tmp_path / "b" / "snapshots")
    assert again.path.read_bytes() == first.path.read_bytes()
    first.path.unlink()
    rebuilt = take(root, ["."], [], tmp_path / "a" / "snapshots", cache_dir=tmp_path / "a" / "cache")
    assert rebuilt.path.read_bytes() == again.path.read_bytes() and rebuilt.sha256 == first.sha256


@pytest.mark.parametrize("change", ["grown", "shrunk"])
def test_a_file_whose_size_changes_while_it_is_read_is_refused(tmp_path, monkeypatch, change):
    root = project(tmp_path)
    real_open = os.open

    def changing_open(path, flags, *args, **kwargs):
        if Path(path).name == "chunk1.bin" and not flags & (os.O_WRONLY | os.O_RDWR):
            with open(path, "r+b") as fh:
                fh.seek(0, os.SEEK_END) if change == "grown" else fh.truncate(CHUNK - 5)
                fh.write(b"more" if change == "grown" else b"")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", changing_open)
    with pytest.raises(SingkitError, match="chunk1.bin changed while the code snapshot was taken"):
        take(root, ["."], [], tmp_path / "store" / "snapshots")
    assert list((tmp_path / "store" / "snapshots").iterdir()) == []


def test_the_level_is_chosen_and_the_stream_says_so():
    """gzip records its level class in the header's XFL byte (4: fastest): the archive is written
    at snaparchive.LEVEL, not at a library's default (tarfile 9, gzip 6)."""
    out = io.BytesIO()
    with snaparchive.GzipWriter(out) as writer:
        writer.write(b"x" * 4096)
    assert snaparchive.LEVEL == 1 and out.getvalue()[8] == 4
