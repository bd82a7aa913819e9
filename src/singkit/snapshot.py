"""The code snapshot: the project's code dirs as one tar.gz in the store, named by a content hash.

What goes in: every file under `code-dirs` (relative to the project root) that .gitignore
does not ignore and no `code-omit` glob matches. Always left out: VCS folders, the store
itself, virtualenvs (a folder with pyvenv.cfg), __pycache__. In a git work tree git itself
decides what is ignored (`git ls-files`); elsewhere singkit reads the .gitignore files.

The hash covers paths, contents and the executable bit only, so identical code hashes the
same whenever it was written; `snapshots/<sha256>.tar.gz` is written once per hash.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from singkit.exceptions import SingkitError
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
    cache knows nothing (a first snapshot), each byte is read once, hashed while it is archived."""
    root = root.resolve()
    files = code_files(root, code_dirs, omit, exclude)
    cache = StatCache.load(cache_dir, root)
    stats, known = cache.lookup(root, files)
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
    cache.save()
    path = snapshots_dir / f"{sha}.tar.gz"
    if path.exists():
        return Snapshot(sha, path, len(files), total, reused=True)
    return _archive(root, files, stats, snapshots_dir, cache)


def _file_sha(path: Path) -> tuple[str, int]:
    file_digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            file_digest.update(chunk)
            size += len(chunk)
    return file_digest.hexdigest(), size


def _executable(st: os.stat_result) -> bool:
    return bool(st.st_mode & 0o111)


class _Hashing:
    """A file object that hashes what tarfile reads through it: one read per byte."""

    def __init__(self, fh: Any):
        self.fh, self.digest, self.size = fh, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.digest.update(data)
        self.size += len(data)
        return data


def _archive(root: Path, files: list[str], stats: dict[str, os.stat_result], snapshots_dir: Path,
             cache: "StatCache") -> Snapshot:
    """Archive `files`, hashing each as it is read; the archive is named by that hash, so its
    name always matches its bytes (a file edited mid-way is refused, never mislabelled)."""
    snapshots_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".snapshot.", suffix=".tmp", dir=snapshots_dir)
    os.close(fd)
    digest, total = hashlib.sha256(), 0
    try:
        with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
            for rel in files:
                st = stats[rel]
                info = tarfile.TarInfo(rel)
                info.size, info.mtime = st.st_size, int(st.st_mtime)
                info.mode = stat.S_IMODE(st.st_mode)  # of what a symlink points at: os.stat follows it
                with open(root / rel, "rb") as fh:
                    reader = _Hashing(fh)
                    try:
                        tar.addfile(info, reader)
                    except OSError:
                        reader.size = -1
                    if reader.size != st.st_size or fh.read(1):
                        raise SingkitError(f"{rel} changed while the code snapshot was taken; submit again")
                file_sha = reader.digest.hexdigest()
                cache.remember(rel, st, file_sha)
                digest.update(_line(rel, _executable(st), file_sha))
                total += st.st_size
        sha = digest.hexdigest()
        path = snapshots_dir / f"{sha}.tar.gz"
        if path.exists():
            Path(tmp).unlink()
            cache.save()
            return Snapshot(sha, path, len(files), total, reused=True)
        os.chmod(tmp, 0o444)
        os.replace(tmp, path)  # a concurrent submit of the same code writes the same bytes
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    cache.save()
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


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a tar(.gz) into `dest`, refusing the whole archive if any member escapes it."""
    if not archive.exists():
        raise SingkitError(f"{archive} is missing; the job has no code snapshot")
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        members = check_members(tar, dest)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=members, filter="data")
        else:  # Python < 3.11.4: our own check above is the guard
            tar.extractall(dest, members=members)
