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
import fnmatch
import gzip
import hashlib
import os
import subprocess
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from singkit.exceptions import SingkitError, UsageError
from singkit.fsutil import temp_beside
from singkit.gitignore import IgnoreRules

ALWAYS_OMIT_DIRS = {".git", ".hg", ".svn", "__pycache__", ".singkit"}
LARGE = 200 * 1024 * 1024  # warn above this many bytes of code


@dataclass(frozen=True)
class Snapshot:
    sha256: str
    path: Path        # snapshots/<sha256>.tar.gz
    files: int
    bytes: int
    reused: bool      # the store already had this code


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
    root = root.resolve()
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
    venvs: dict[str, bool] = {}
    kept = set()
    for rel in files:
        parts = PurePosixPath(rel).parts
        if any(p in ALWAYS_OMIT_DIRS for p in parts[:-1]) or rel.endswith((".pyc", ".pyo")):
            continue
        if any(rel == e or rel.startswith(e + "/") for e in excluded):
            continue
        if any(_is_venv(root, "/".join(parts[:i]), venvs) for i in range(1, len(parts))):
            continue
        if omitted(rel, omit) or not (root / rel).is_file():
            continue  # deleted since git last saw it, a broken link, a socket...
        kept.add(rel)
    return sorted(kept)


def _is_venv(root: Path, folder: str, cache: dict[str, bool]) -> bool:
    if folder not in cache:
        cache[folder] = (root / folder / "pyvenv.cfg").is_file()
    return cache[folder]


def content_hash(root: Path, files: list[str]) -> tuple[str, int]:
    """sha256 over (path, executable bit, content sha256) of each file; and the total bytes."""
    digest = hashlib.sha256()
    total = 0
    for rel in files:
        path = root / rel
        file_digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                file_digest.update(chunk)
                total += len(chunk)
        executable = "x" if os.access(path, os.X_OK) else "-"
        digest.update(f"{rel}\0{executable}\0{file_digest.hexdigest()}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest(), total


def take(root: Path, code_dirs: list[str], omit: list[str], snapshots_dir: Path,
         exclude: list[Path] = ()) -> Snapshot:
    """Snapshot the project's code into `snapshots_dir` (once per content hash)."""
    root = root.resolve()
    files = code_files(root, code_dirs, omit, exclude)
    sha, total = content_hash(root, files)
    path = snapshots_dir / f"{sha}.tar.gz"
    if path.exists():
        return Snapshot(sha, path, len(files), total, reused=True)
    snapshots_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_beside(path)  # named for this process: a later snapshot sweeps it if a kill left it
    os.close(fd)
    try:
        with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
            for rel in files:
                info = tar.gettarinfo(str(root / rel), arcname=rel)
                if not info.isfile():  # a symlink to a file: store what it points at
                    info = tarfile.TarInfo(rel)
                    info.size = (root / rel).stat().st_size
                    info.mode = 0o755 if os.access(root / rel, os.X_OK) else 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with open(root / rel, "rb") as fh:
                    tar.addfile(info, fh)
        os.chmod(tmp, 0o444)
        os.replace(tmp, path)  # a concurrent submit of the same code writes the same bytes
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Snapshot(sha, path, len(files), total, reused=False)


def check_members(tar: tarfile.TarFile, dest: Path) -> list[tarfile.TarInfo]:
    """Every member, or SingkitError naming the first one that would land outside `dest`
    (absolute paths, `..`, links pointing out, devices)."""
    dest = dest.resolve()
    members = tar.getmembers()
    for member in members:
        name = member.name
        target = (dest / name).resolve()
        if PurePosixPath(name).is_absolute() or (target != dest and dest not in target.parents):
            raise SingkitError(f"archive member `{name}` would land outside {dest}; nothing was extracted")
        if member.issym() or member.islnk():
            base = target.parent if member.issym() else dest
            link = (base / member.linkname).resolve()
            if PurePosixPath(member.linkname).is_absolute() or (link != dest and dest not in link.parents):
                raise SingkitError(f"archive member `{name}` links to `{member.linkname}`, outside {dest}; nothing was extracted")
        elif not (member.isfile() or member.isdir()):
            raise SingkitError(f"archive member `{name}` is a device or fifo; nothing was extracted")
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


def _damaged(archive: Path, error: BaseException) -> UsageError:
    """The one line for a code archive that is not a whole gzip'd tar (a copy cut short, another file)."""
    if isinstance(error, EOFError) or "unexpected end" in str(error) or "ended before" in str(error):
        what = "truncated (the file ends before the archive does)"
    else:
        what = "not a gzip archive of the code (tar.gz)"
    return UsageError(f"{archive}: {what}; the job's code snapshot is damaged: submit the job again from the project "
                      "(`invoke job.submit`) rather than rerunning it")


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
    except DAMAGED as error:
        raise _damaged(archive, error) from None
