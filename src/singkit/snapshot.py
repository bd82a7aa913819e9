"""The code snapshot: the project's code dirs as one tar.gz in the store, named by a content hash.

What goes in: every file under `code-dirs` (relative to the project root) that .gitignore
does not ignore and no `code-omit` glob matches. Always left out: VCS folders, the store
itself, virtualenvs (a folder with pyvenv.cfg), __pycache__. In a git work tree git itself
decides what is ignored (`git ls-files`); elsewhere singkit reads the .gitignore files.

The hash covers paths, contents and the executable bit only, so identical code hashes the
same whenever it was written; `snapshots/<sha256>.tar.gz` is written once per hash.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import gzip
import hashlib
import os
import stat
import struct
import subprocess
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from singkit.exceptions import Hint, SingkitError, UsageError
from singkit.fsutil import temp_beside
from singkit.gitignore import IgnoreRules
from singkit.statcache import StatCache

ALWAYS_OMIT_DIRS = {".git", ".hg", ".svn", "__pycache__", ".singkit"}
LARGE = 200 * 1024 * 1024  # warn above this many bytes of code


@dataclass(frozen=True)
class Snapshot:
    sha256: str
    path: Path        # snapshots/<sha256>.tar.gz
    files: int
    bytes: int
    reused: bool      # the store already had this code
    notes: tuple[str, ...] = ()  # what the submit should tell the user (links left out, an archive rebuilt)


def omitted(rel: str, patterns: list[str]) -> bool:
    """Does a `code-omit` glob match the path, its file name, or a folder it is in?"""
    parts = PurePosixPath(rel).parts
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for pattern in patterns:
        pattern = pattern.strip().rstrip("/").removeprefix("./")
        if not pattern:
            continue
        if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes):
            return True
        if "/" not in pattern and any(fnmatch.fnmatchcase(part, pattern) for part in parts):
            return True
    return False


def _git_files(root: Path, dirs: list[str]) -> list[str] | None:
    """Files git would consider part of the tree (tracked + untracked-not-ignored), or None
    when `root` is not in a git work tree (or git is missing)."""
    try:
        top = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-toplevel"],
                             capture_output=True, text=True, timeout=30)
        if top.returncode != 0:
            return None
        listing = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others",
                                  "--exclude-standard", "--full-name", "--", *dirs],
                                 capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if listing.returncode != 0:
        return None
    toplevel = Path(top.stdout.strip()).resolve()
    prefix = root.resolve().relative_to(toplevel).as_posix() if root.resolve() != toplevel else ""
    files = []
    for name in listing.stdout.decode("utf-8", "surrogateescape").split("\0"):
        if not name:
            continue
        if prefix:
            if not name.startswith(prefix + "/"):
                continue
            name = name[len(prefix) + 1:]
        files.append(name)
    return files


def _walk_files(root: Path, dirs: list[str]) -> list[str]:
    """Files under `dirs`, honouring every .gitignore on the way down (no git needed)."""
    rules = IgnoreRules(root)
    found = []
    for top in dirs:
        start = (root / top).resolve()
        if start.is_file():
            found.append(start.relative_to(root.resolve()).as_posix())
            continue
        for folder, subdirs, names in os.walk(start):
            rel_folder = Path(folder).relative_to(root.resolve()).as_posix()
            rel_folder = "" if rel_folder == "." else rel_folder
            rules.enter(rel_folder)
            subdirs[:] = sorted(d for d in subdirs if not rules.ignored(_join(rel_folder, d), True))
            found += [_join(rel_folder, n) for n in names if not rules.ignored(_join(rel_folder, n), False)]
    return found


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def code_files(root: Path, code_dirs: list[str], omit: list[str], exclude: list[Path] = ()) -> list[str]:
    """Sorted project-relative POSIX paths of the files the snapshot takes."""
    return sorted(_code_stats(root.resolve(), code_dirs, omit, exclude))


def _code_stats(root: Path, code_dirs: list[str], omit: list[str], exclude: list[Path] = (),
                outside: list[str] | None = None) -> dict[str, os.stat_result]:
    """{project-relative path: os.stat of it} of the files the snapshot takes (root resolved).
    Folder rules are decided once per folder, not once per file: a 10k-file tree costs about a
    stat per file (issue 14). A link to a file outside the project is left out (and named in
    `outside`): the snapshot ships only the project's own files."""
    dirs = [d.strip("/") or "." for d in (code_dirs or ["."])]
    for d in dirs:
        try:  # a `..` or a symlink out of the project would ship a system folder (config validation says so first)
            (root / d).resolve().relative_to(root)
        except (ValueError, OSError, RuntimeError):
            raise UsageError(f"code-dirs names `{d}`, which leads outside the project {root}; list folders inside "
                             "it in general.code-dirs or the target's code-dirs") from None
        if not (root / d).exists():
            raise SingkitError(f"code-dirs names `{d}`, which is not in {root}; fix general.code-dirs or the target's code-dirs")
    files = _git_files(root, dirs)
    if files is None:
        files = _walk_files(root, dirs)
    excluded = []
    for path in exclude:
        try:
            excluded.append(Path(path).resolve().relative_to(root).as_posix())
        except ValueError:
            continue  # outside the project: cannot be in the snapshot anyway
    left_out: dict[str, bool] = {"": False}
    top = str(root)

    def folder_left_out(folder: str) -> bool:
        if folder not in left_out:
            parent, _, name = folder.rpartition("/")
            left_out[folder] = (folder_left_out(parent) or name in ALWAYS_OMIT_DIRS
                                or any(folder == e or folder.startswith(e + "/") for e in excluded)
                                or os.path.isfile(f"{top}/{folder}/pyvenv.cfg"))
        return left_out[folder]

    kept: dict[str, os.stat_result] = {}
    for rel in files:
        if rel.endswith((".pyc", ".pyo")) or folder_left_out(rel.rpartition("/")[0]) or rel in excluded:
            continue
        if omit and omitted(rel, omit):
            continue
        path = f"{top}/{rel}"
        try:
            st = os.stat(path)
        except OSError:
            continue  # deleted since git last saw it, a broken link
        if os.path.islink(path) and not _inside(os.path.realpath(path), top):
            if outside is not None:
                outside.append(rel)  # a link out of the project would ship what it points at
            continue
        if stat.S_ISREG(st.st_mode):  # not a socket, fifo or device
            kept[rel] = st
    return kept


def _inside(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


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
    stats = _code_stats(root, code_dirs, omit, exclude, outside)
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
        with os.fdopen(fd, "wb") as raw, _GzipWriter(raw) as out:
            for rel in files:
                st = stats[rel]
                file_sha = _add_file(out, root, rel, st)
                cache.remember(rel, st, file_sha)
                digest.update(_line(rel, _executable(st), file_sha))
                total += st.st_size
            out.write(_END_OF_ARCHIVE)
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


_END_OF_ARCHIVE = b"\0" * 1024  # two zero blocks (POSIX tar)


def _add_file(out: _GzipWriter, root: Path, rel: str, st: os.stat_result) -> str:
    """One tar member (GNU format: long names as ././@LongLink, which tarfile and tar read),
    read once, chunk by chunk, into the archive and a hash; the file's sha256."""
    out.write(tar_header(rel, stat.S_IMODE(st.st_mode), st.st_size, int(st.st_mtime)))  # a link's target's mode
    file_digest, size = hashlib.sha256(), 0
    fd = os.open(f"{root}/{rel}", os.O_RDONLY | getattr(os, "O_BINARY", 0))  # no io layers: 10k small files
    try:
        while size < st.st_size:
            chunk = os.read(fd, min(1 << 20, st.st_size - size))
            if not chunk:
                break
            file_digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
        if size != st.st_size or os.read(fd, 1):
            raise SingkitError(f"{rel} changed while the code snapshot was taken; submit again")
    finally:
        os.close(fd)
    out.write(b"\0" * (-size % tarfile.BLOCKSIZE))
    return file_digest.hexdigest()


_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s8s32s32s8s8s155s12x")  # one 512-byte tar block


def tar_header(name: str, mode: int, size: int, mtime: int) -> bytes:
    """The header tarfile.TarInfo(name).tobuf(GNU_FORMAT) writes for a regular file owned by
    0:0 (tests check it byte for byte), built directly: tobuf costs more than reading a small file."""
    encoded = name.encode("utf-8", "surrogateescape")
    if len(encoded) > 100 or not 0 <= size < 8**11 or not 0 <= mtime < 8**11:
        info = tarfile.TarInfo(name)
        info.mode, info.size, info.mtime = mode, size, mtime
        return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
    zero = b"0000000\0"
    block = _HEADER.pack(encoded, b"%07o\0" % (mode & 0o7777), zero, zero, b"%011o\0" % size, b"%011o\0" % mtime,
                         b" " * 8, tarfile.REGTYPE, b"", tarfile.GNU_MAGIC, b"", b"", b"", b"", b"")
    return block[:148] + b"%06o\0" % sum(block) + block[155:]


class _GzipWriter:
    """gzip (level 6, as `tar czf`) on a second thread: zlib releases the GIL, so compressing
    overlaps reading and hashing the files, as tar and gzip do in two processes."""

    CHUNK = 1 << 20

    def __init__(self, raw: Any):
        import gzip
        import queue
        import threading

        self._gz = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0)
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

    def __enter__(self) -> _GzipWriter:
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
    from singkit.store.safe import StoreLink, open_stored

    try:
        handle = open_stored(archive)
    except StoreLink as link:
        raise UsageError(f"{archive}: {link.strerror}; a code archive is a file singkit wrote") from None
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
