"""What a code snapshot takes: the files under `code-dirs`, each with the stat it was taken with.

Every file under `code-dirs` (relative to the project root) that .gitignore does not ignore and
no `code-omit` glob matches. Always left out: VCS folders, the store itself, virtualenvs (a folder
with pyvenv.cfg), __pycache__, bytecode. In a git work tree git itself decides what is ignored
(`git ls-files`); elsewhere singkit reads the .gitignore files (gitignore.py) while it walks.

Cost (issue 14): an unchanged resubmit is meant to cost about what `find -printf` of the tree
costs, so the walk is os.scandir with one stat per file (a folder's listing already says what is
a folder or a link), path strings rather than Path objects, and every folder rule (ignore files,
left-out folders) decided once per folder, not once per file.
"""

from __future__ import annotations

import fnmatch
import os
import stat
import subprocess
from collections.abc import Callable, Collection, Sequence
from pathlib import Path, PurePosixPath

from singkit.exceptions import SingkitError, UsageError
from singkit.gitignore import IgnoreRules, ignored_by

ALWAYS_OMIT_DIRS = {".git", ".hg", ".svn", "__pycache__", ".singkit"}
BYTECODE = (".pyc", ".pyo")


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
    return [rel for rel, _entry in _walk(str(root.resolve()), dirs, IgnoreRules(root.resolve()))]


def _walk(top: str, dirs: list[str], rules: IgnoreRules, prune: Collection[str] = frozenset(),
          skip_venvs: bool = False, left_out: Callable[[str], bool] = lambda folder: False,
          ) -> list[tuple[str, os.DirEntry[str] | None]]:
    """(path relative to `top`, its DirEntry: None for a code dir that is a file) of the files
    under `dirs` that no .gitignore ignores; folders in `prune` (or named in ALWAYS_OMIT_DIRS, or
    virtualenvs with `skip_venvs`) are not entered, nor a code dir in a folder `left_out` says is
    (asked once per code dir: below it the walk decides). A link to a folder is not followed."""
    found: list[tuple[str, os.DirEntry[str] | None]] = []
    stack: list[str] = []
    for d in dirs:
        start = os.path.realpath(f"{top}/{d}")
        rel = os.path.relpath(start, top).replace(os.sep, "/")
        if os.path.isfile(start):
            if not left_out(rel.rpartition("/")[0]):
                found.append((rel, None))
        elif not left_out("" if rel == "." else rel):
            stack.append("" if rel == "." else rel)
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(f"{top}/{folder}" if folder else top) as listing:
                entries = list(listing)
        except OSError:
            continue
        if skip_venvs and folder and any(e.name == "pyvenv.cfg" and _is_file(e) for e in entries):
            continue  # a virtualenv: none of its files are code
        chain = rules.chain(folder)
        prefix = f"{folder}/" if folder else ""
        for entry in entries:
            rel = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in ALWAYS_OMIT_DIRS and rel not in prune and not (chain and ignored_by(chain, rel, True)):
                    stack.append(rel)
            elif not (entry.is_symlink() and _is_dir(entry)) and not (chain and ignored_by(chain, rel, False)):
                found.append((rel, entry))
    return found


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link loop: os.walk counts it a file too (the stat later leaves it out)
        return False


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:  # a link loop: no file, as os.path.isfile says
        return False


def code_files(root: Path, code_dirs: list[str], omit: list[str], exclude: Sequence[Path] = ()) -> list[str]:
    """Sorted project-relative POSIX paths of the files the snapshot takes."""
    return sorted(code_stats(root.resolve(), code_dirs, omit, exclude))


def code_stats(root: Path, code_dirs: list[str], omit: list[str], exclude: Sequence[Path] = (),
               outside: list[str] | None = None) -> dict[str, os.stat_result]:
    """{project-relative path: os.stat of it} of the files the snapshot takes (root resolved).
    A link to a file outside the project is left out (and named in `outside`): the snapshot
    ships only the project's own files. UsageError for a code dir that leads outside the
    project, SingkitError for one that is missing."""
    dirs = [d.strip("/") or "." for d in (code_dirs or ["."])]
    for d in dirs:
        try:  # a `..` or a symlink out of the project would ship a system folder (config validation says so first)
            (root / d).resolve().relative_to(root)
        except (ValueError, OSError, RuntimeError):
            raise UsageError(f"code-dirs names `{d}`, which leads outside the project {root}; list folders inside "
                             "it in general.code-dirs or the target's code-dirs") from None
        if not (root / d).exists():
            raise SingkitError(f"code-dirs names `{d}`, which is not in {root}; fix general.code-dirs or the target's code-dirs")
    excluded = set()
    for given in exclude:
        try:
            excluded.add(Path(given).resolve().relative_to(root).as_posix())
        except ValueError:
            continue  # outside the project: cannot be in the snapshot anyway
    top = str(root)
    left_out: dict[str, bool] = {"": False}

    def folder_left_out(folder: str) -> bool:
        if folder not in left_out:
            parent, _, name = folder.rpartition("/")
            left_out[folder] = (folder_left_out(parent) or name in ALWAYS_OMIT_DIRS or folder in excluded
                                or os.path.isfile(f"{top}/{folder}/pyvenv.cfg"))
        return left_out[folder]

    files = _git_files(root, dirs)
    if files is None:  # the walk leaves out folders itself: no question per file
        listed = _walk(top, dirs, IgnoreRules(root), excluded, skip_venvs=True, left_out=folder_left_out)
    else:
        listed = [(rel, None) for rel in files if not folder_left_out(rel.rpartition("/")[0])]
    kept: dict[str, os.stat_result] = {}
    for rel, entry in listed:
        if rel.endswith(BYTECODE) or rel in excluded or (omit and omitted(rel, omit)):
            continue
        try:  # one stat per file: a link's own stat says it is one, only then is its target's read
            st = entry.stat(follow_symlinks=False) if entry is not None else os.lstat(f"{top}/{rel}")
            if stat.S_ISLNK(st.st_mode):
                path = f"{top}/{rel}"
                st = os.stat(path)
                if not _inside(os.path.realpath(path), top):
                    if outside is not None:
                        outside.append(rel)  # a link out of the project would ship what it points at
                    continue
        except OSError:
            continue  # deleted since git last saw it, a broken link
        if stat.S_ISREG(st.st_mode):  # not a socket, fifo or device
            kept[rel] = st
    return kept


def _inside(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")
