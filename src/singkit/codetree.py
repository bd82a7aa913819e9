"""One extracted, read-only code tree per snapshot, shared by every job on it (issue 14).

    <root>/trees/<sha256>/                the snapshot, extracted once; its files and folders read-only
    <root>/trees/<sha256>/.singkit-tree   its manifest (JSON): every entry with kind, mode, size, mtime_ns
    <root>/trees/<sha256>.lock            held while that tree is made, checked or swept
    <root>/jobs/<jobN>/code/              the job's view: its own folders; each file a hard link into
                                          the tree; .singkit-extracted a link to the manifest

Why hard links, not a symlink to the tree: a run's working dir is its code folder and runs write
there (checkpoints, __pycache__, logs). With folders of its own, a file a run adds, renames or
deletes stays in its job. The files themselves are shared and read-only (write bits dropped), so a
run that is not root and opens one for writing gets EACCES. Root ignores permission bits and could
change a shared file in place; so before a job is linked to a tree, the tree is checked against
its manifest (a stat per file) and extracted afresh if anything differs: a later job never sees
another job's edits. Docker runs mount the code folder read-only as well.

A tree is made in trees/.tmp-<sha>-<pid>/ under its lock, then renamed to trees/<sha>: a kill
leaves a .tmp folder, never a half tree under the final name, and the next maker (or the sweep)
removes it. References: the manifest's link count is 1 + the job code folders on it, so the
sweep removes a tree nobody links without reading a single job.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

from singkit.store.trees import MANIFEST, SHA, TREES
from singkit.store.trees import lock as _lock
from singkit.store.trees import remove as _remove

MARKER = ".singkit-extracted"  # in a job's code folder once it is complete
_WRITE = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH

Entry = list[Any]  # [relative path, "d" | "f" | "l", mode, size, mtime_ns] ("l": [path, "l", target])


def job_view(store_root: Path, job_dir: Path, archive: Path, sha: Any) -> Path:
    """Make `job_dir`/code the job's view of its snapshot (idempotent); the code folder.

    `sha`: the snapshot's content hash (job.yaml `code.sha256`); anything but 64 hex digits
    extracts a copy for this job alone, as before shared trees. Raises what safe_extract raises
    (SingkitError, UsageError) for a missing or damaged archive; nothing is left half made."""
    code = job_dir / "code"
    if (code / MARKER).exists():
        return code
    for stale in job_dir.glob("code.part-*"):  # a prepare killed mid-way
        _remove(stale)
    if code.exists():
        _remove(code)  # extracted in place by an older singkit and cut short
    part = job_dir / f"code.part-{os.getpid()}"
    try:
        if not (isinstance(sha, str) and SHA.fullmatch(sha)):
            from singkit.snaparchive import safe_extract

            safe_extract(archive, part)
            (part / MARKER).touch()
        else:
            trees = store_root / TREES
            trees.mkdir(parents=True, exist_ok=True)
            with _lock(trees / f"{sha}.lock"):
                tree, entries = _ensure(trees, sha, archive)
                part.mkdir()
                _pin(tree / MANIFEST, part / MARKER)  # from here on the sweep leaves the tree alone
            _link_view(tree, entries, part)
        os.rename(part, code)
    except BaseException:
        if part.exists():
            _remove(part)
        raise
    return code


def _ensure(trees: Path, sha: str, archive: Path) -> tuple[Path, list[Entry]]:
    """The intact tree for `sha` (made now if missing or changed) and its entries; under its lock."""
    final = trees / sha
    for leftover in trees.glob(f".tmp-{sha}-*"):  # we hold the lock: their makers are gone
        _remove(leftover)
    entries = _manifest(final)
    if entries is not None and _intact(final, entries):
        return final, entries
    if final.exists():  # changed in place (a run as root) or damaged: jobs on it keep their links
        aside = trees / f".tmp-{sha}-old-{os.getpid()}"
        os.rename(final, aside)
        _remove(aside)
    from singkit.snaparchive import safe_extract

    tmp = trees / f".tmp-{sha}-{os.getpid()}"
    try:
        safe_extract(archive, tmp)
        entries = _scan(tmp)
        (tmp / MANIFEST).write_text(json.dumps({"sha256": sha, "entries": entries}))
        _freeze(tmp)
        os.rename(tmp, final)
    except BaseException:
        if tmp.exists():
            _remove(tmp)
        raise
    return final, entries


def _manifest(tree: Path) -> list[Entry] | None:
    try:
        data = json.loads((tree / MANIFEST).read_text())
        entries = data["entries"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return entries if isinstance(entries, list) else None


def _scan(top: Path) -> list[Entry]:
    """Every entry below `top`, parents before children."""
    entries: list[Entry] = []
    for folder, dirs, files in os.walk(top):
        rel = os.path.relpath(folder, top)
        for name in dirs + files:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            relpath = name if rel == "." else os.path.join(rel, name)
            if stat.S_ISLNK(info.st_mode):
                entries.append([relpath, "l", os.readlink(path)])
            elif stat.S_ISDIR(info.st_mode):
                entries.append([relpath, "d", stat.S_IMODE(info.st_mode), 0, 0])
            else:
                entries.append([relpath, "f", stat.S_IMODE(info.st_mode) & ~_WRITE, info.st_size, info.st_mtime_ns])
    return entries


def _intact(tree: Path, entries: list[Entry]) -> bool:
    """Is every file of the manifest there, unchanged (size, mtime, mode) and still read-only?"""
    top = str(tree)
    try:
        for entry in entries:
            if entry[1] == "f":
                info = os.lstat(os.path.join(top, entry[0]))
                if (not stat.S_ISREG(info.st_mode) or info.st_size != entry[3] or info.st_mtime_ns != entry[4]
                        or stat.S_IMODE(info.st_mode) != entry[2]):
                    return False
            elif entry[1] == "l" and os.readlink(os.path.join(top, entry[0])) != entry[2]:
                return False
    except (OSError, IndexError, TypeError):
        return False
    return True


def _freeze(top: Path) -> None:
    """Drop every write bit below `top` (children first, then folders, then `top`)."""
    for folder, _dirs, files in os.walk(top, topdown=False):
        for name in files:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            if not stat.S_ISLNK(info.st_mode):
                os.chmod(path, stat.S_IMODE(info.st_mode) & ~_WRITE)
        os.chmod(folder, stat.S_IMODE(os.lstat(folder).st_mode) & ~_WRITE)


def _link_view(tree: Path, entries: list[Entry], part: Path) -> None:
    """The job's own folders, each file a hard link into `tree` (a copy where linking fails:
    another file system, or the link count limit)."""
    top, dest = str(tree), str(part)
    for entry in entries:
        target = os.path.join(dest, entry[0])
        if entry[1] == "d":
            os.mkdir(target)
        elif entry[1] == "l":
            os.symlink(entry[2], target)
        else:
            source = os.path.join(top, entry[0])
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)


def _pin(manifest: Path, marker: Path) -> None:
    try:
        os.link(manifest, marker)
    except OSError:  # cannot link: the job keeps a copy, and the tree counts as unreferenced
        shutil.copyfile(manifest, marker)
