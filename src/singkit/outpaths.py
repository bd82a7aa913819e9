"""Where a command writes what the user asked for (`--dest`, `--out`, `--export`): checked first.

One rule for every output path: a folder given must be a folder (or not exist yet: it is
created, and the command says so); a file given must not be a folder or a device, and the
folder it goes in is created when missing (said in one line), unless something on the way is a
file. Each refusal is one UsageError line (exit 2) naming the path and what would be right.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from singkit.exceptions import UsageError
from singkit.refs import shown


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a fifo"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a folder"


def _blocker(path: Path) -> tuple[Path, int] | None:
    """The first existing path among `path`'s parents that is not a folder (and its mode)."""
    for parent in reversed(path.parents):
        try:
            mode = os.stat(parent).st_mode
        except FileNotFoundError:
            return None  # from here down nothing exists yet: mkdir makes it
        except NotADirectoryError:
            continue  # the parent before this one is the file in the way (reported there)
        if not stat.S_ISDIR(mode):
            return parent, mode
    return None


def _checked_text(path: Path, flag: str) -> None:
    text = str(path)
    if not text.strip() or any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise UsageError(f"{flag} {shown(text)}: give a path without control characters")


def output_folder(path: Path, flag: str = "--dest") -> bool:
    """Check a folder to write into; True when it does not exist yet (the caller creates it).
    UsageError when it is a file or device, or lies under a file."""
    _checked_text(path, flag)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except NotADirectoryError:
        mode = None  # a file on the way: found below
    if mode is not None:
        if stat.S_ISDIR(mode):
            return False
        raise UsageError(f"{flag} {path} is {_kind(mode)}, not a folder; give a folder to write into "
                         "(a missing one is created)")
    blocker = _blocker(path)
    if blocker is not None:
        raise UsageError(f"{flag} {path}: {blocker[0]} is {_kind(blocker[1])}, so no folder can be made under it; "
                         "give a folder path")
    return True


def output_file(path: Path, flag: str = "--out") -> Path | None:
    """Check a file to write; the folder that will be created for it (None when it exists).
    UsageError when `path` is a folder or a device, or something on the way is a file."""
    _checked_text(path, flag)
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        what = "a folder" if stat.S_ISDIR(mode) else _kind(mode)
        raise UsageError(f"{flag} {path} is {what}; give the name of a file to write")
    folder = path.parent
    if os.path.isdir(folder):
        return None
    blocker = _blocker(path)
    if blocker is not None:
        raise UsageError(f"{flag} {path}: {blocker[0]} is {_kind(blocker[1])}, so no file can be written under it; "
                         "give another path")
    return folder
