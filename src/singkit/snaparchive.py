"""The code snapshot's file format: a gzip'd GNU tar written member by member, and read back safely.

Written by snapshot.py one file at a time (tar_header + the bytes, hashed as they pass: one read
per byte); read by check_archive (every byte, without extracting) and safe_extract (refusing the
whole archive when a member would land outside its folder). Members are regular files owned by
0:0 with the file's mode and whole-second mtime, exactly what tarfile writes for them.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import stat
import struct
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from singkit.exceptions import Hint, SingkitError, UsageError

END_OF_ARCHIVE = b"\0" * 1024  # two zero blocks (POSIX tar)


_READ = os.O_RDONLY | getattr(os, "O_BINARY", 0)
_CHUNK = 1 << 20
_PAD = b"\0" * tarfile.BLOCKSIZE


def add_file(out: GzipWriter, root: str, rel: str, st: os.stat_result) -> str:
    """One tar member (GNU format: long names as ././@LongLink, which tarfile and tar read),
    read once into the archive and a hash; the file's sha256. SingkitError when the file's size
    is not the one `st` says (it changed while the snapshot was taken).

    A small file costs one read: asking one byte more than its size also shows its end (a
    regular file reads short only at its end), where a second read would only say so again."""
    size = st.st_size
    out.write(tar_header(rel, stat.S_IMODE(st.st_mode), size, int(st.st_mtime)))  # a link's target's mode
    file_digest, got = hashlib.sha256(), 0
    fd = os.open(f"{root}/{rel}", _READ)  # no io layers: 10k small files
    try:
        while True:
            asked = min(_CHUNK, size + 1 - got)
            chunk = os.read(fd, asked)
            if not chunk:
                break
            got += len(chunk)
            if got > size:
                break
            file_digest.update(chunk)
            out.write(chunk)
            if got == size and len(chunk) < asked:
                break
    finally:
        os.close(fd)
    if got != size:
        raise SingkitError(f"{rel} changed while the code snapshot was taken; submit again")
    out.write(_PAD[:-size % tarfile.BLOCKSIZE])
    return file_digest.hexdigest()


_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s8s32s32s8s8s155s12x")  # one 512-byte tar block
_ZERO = b"0000000\0"  # uid, gid
# the checksum of a header is the sum of its bytes (its own field counted as spaces): the fields
# that never change are summed once here, so a header sums only its name, mode, size and mtime
_FIXED_SUM = sum(_ZERO * 2 + b" " * 8 + tarfile.REGTYPE + tarfile.GNU_MAGIC)


def tar_header(name: str, mode: int, size: int, mtime: int) -> bytes:
    """The header tarfile.TarInfo(name).tobuf(GNU_FORMAT) writes for a regular file owned by
    0:0 (tests check it byte for byte), built directly: tobuf costs more than reading a small file."""
    encoded = name.encode("utf-8", "surrogateescape")
    if len(encoded) > 100 or not 0 <= size < 8**11 or not 0 <= mtime < 8**11:
        info = tarfile.TarInfo(name)
        info.mode, info.size, info.mtime = mode, size, mtime
        return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
    fields = (b"%07o\0" % (mode & 0o7777), b"%011o\0" % size, b"%011o\0" % mtime)
    checksum = b"%06o\0 " % (_FIXED_SUM + sum(encoded) + sum(b"".join(fields)))
    return _HEADER.pack(encoded, fields[0], _ZERO, _ZERO, fields[1], fields[2], checksum, tarfile.REGTYPE, b"",
                        tarfile.GNU_MAGIC, b"", b"", b"", b"", b"")


# gzip level 1, chosen, not a default (tarfile's "w:gz" is 9, gzip's and `tar czf`'s 6): the archive
# stays in the local store, one per distinct code version; what leaves the machine for Singularity
# is the extracted code folder, which azure-ai-ml uploads file by file. So the level trades CPU in
# every first snapshot, which the researcher waits for, against local disk only. Measured (issue
# 14): a 10k-file source tree, 14.1 MB of tar, is 3.10 MB at level 1 and 2.76 MB at 6 (+12 %) for
# a third of the CPU (0.10 s against 0.34 s); pandas' package tree, 83 MB, 27.3 MB against 23.5
# (+16 %) for 0.4 of it; random bytes (a checkpoint) do not compress at any level.
LEVEL = 1


class GzipWriter:
    """gzip (LEVEL) on a second thread: zlib releases the GIL, so compressing overlaps reading
    and hashing the files, as tar and gzip do in two processes."""

    CHUNK = 1 << 20

    def __init__(self, raw: Any, level: int | None = None):
        import gzip
        import queue
        import threading

        self._gz = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=LEVEL if level is None else level, mtime=0)
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._buffer = bytearray()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="singkit-gzip", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._gz.write(data)
                except BaseException as error:  # raised again by __exit__, in the caller's thread
                    self._error = error

    def write(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= self.CHUNK:
            self._queue.put(bytes(self._buffer))
            self._buffer.clear()

    def __enter__(self) -> GzipWriter:
        return self

    def __exit__(self, kind: Any, error: Any, tb: Any) -> None:
        if kind is None and self._buffer:
            self._queue.put(bytes(self._buffer))
        self._queue.put(None)
        self._thread.join()
        if kind is None:
            self._gz.close()
            if self._error is not None:
                raise self._error


def check_members(tar: tarfile.TarFile, dest: Path) -> list[tarfile.TarInfo]:
    """Every member, or SingkitError naming the first one that would land outside `dest`
    (absolute paths, `..`, links pointing out, devices)."""
    dest = dest.resolve()
    members = tar.getmembers()
    for member in members:
        name = member.name
        target = (dest / name).resolve()
        if PurePosixPath(name).is_absolute() or (target != dest and dest not in target.parents):
            raise UsageError(f"archive member `{name}` would land outside {dest}; nothing was extracted")
        if member.issym() or member.islnk():
            base = target.parent if member.issym() else dest
            link = (base / member.linkname).resolve()
            if PurePosixPath(member.linkname).is_absolute() or (link != dest and dest not in link.parents):
                raise UsageError(f"archive member `{name}` links to `{member.linkname}`, outside {dest}; nothing was extracted")
        elif not (member.isfile() or member.isdir()):
            raise UsageError(f"archive member `{name}` is a device or fifo; nothing was extracted")
    return members


@contextlib.contextmanager
def _opened(archive: Path) -> Iterator[tarfile.TarFile]:
    """The code archive opened for reading, without following a link (singkit.store.safe)."""
    from singkit.store.safe import NotAFile, StoreLink, open_stored

    try:
        handle = open_stored(archive)
    except (StoreLink, NotAFile) as odd:
        raise UsageError(f"{archive}: {odd.strerror}; a code archive is a file singkit wrote") from None
    with handle, tarfile.open(fileobj=handle, mode="r:*") as tar:
        yield tar


def _read_to_end(tar: tarfile.TarFile) -> None:
    """Read the gzip stream past the tar's last member to its end, where gzip checks its CRC: a
    changed byte may leave the tar readable, with other contents (BadGzipFile if it was)."""
    while tar.fileobj is not None and tar.fileobj.read(1 << 20):
        pass


def _damaged(archive: Path, error: BaseException) -> UsageError:
    """The one line for a code archive that is not a whole gzip'd tar (a copy cut short, another file)."""
    if isinstance(error, EOFError) or "unexpected end" in str(error) or "ended before" in str(error):
        what = "truncated (the file ends before the archive does)"
    elif "CRC" in str(error) or "length" in str(error).lower():
        what = "damaged (its gzip checksum fails: bytes changed since singkit wrote it)"
    else:
        what = "not a gzip archive of the code (tar.gz)"
    return UsageError(f"{archive}: {what}; the job's code snapshot is damaged", hint=Hint.command(
        "job.submit", say=": submit the job again from the project ({}) rather than rerunning it"))


# what reading a damaged tar.gz raises: tarfile's own error, gzip's (BadGzipFile is an OSError),
# zlib's, and EOFError for a stream cut short
DAMAGED = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)


def check_archive(archive: Path) -> int:
    """Read the whole code archive without extracting it; its number of members. UsageError for a
    missing, damaged or truncated archive, or one with a member that would leave the folder it is
    extracted into (`../`, absolute, a link out, a device): what a run would find only later."""
    if not archive.exists():
        raise UsageError(f"{archive} is missing; the job has no code snapshot")
    where = Path(tempfile.gettempdir()) / "singkit-check" / "code"  # a name only: nothing is written there
    try:
        with _opened(archive) as tar:
            members = check_members(tar, where)
            for member in members:  # every byte read: a truncated stream shows here, not in the run
                if member.isfile():
                    handle = tar.extractfile(member)
                    if handle is not None:
                        while handle.read(1 << 20):
                            pass
            _read_to_end(tar)
    except DAMAGED as error:
        raise _damaged(archive, error) from None
    except SingkitError as error:
        said = str(error).replace(str(where.resolve()), "the job's code folder")
        raise UsageError(f"{archive}: {said}; the archive is refused (it was not written by singkit)") from None
    return len(members)


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a tar(.gz) into `dest`, refusing the whole archive if any member escapes it;
    UsageError for a damaged or truncated archive (one line, naming it)."""
    if not archive.exists():
        raise SingkitError(f"{archive} is missing; the job has no code snapshot")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with _opened(archive) as tar:
            members = check_members(tar, dest)
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=members, filter="data")
            else:  # Python < 3.11.4: our own check above is the guard
                tar.extractall(dest, members=members)
            _read_to_end(tar)
    except DAMAGED as error:
        raise _damaged(archive, error) from None
