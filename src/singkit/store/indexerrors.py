"""What can go wrong with the store's index (singkit.store.index), said as one of two errors:
IndexUnavailable (locked, read-only, full: the file is left alone, readers fall back to the job
folders) and IndexDamaged (its contents are broken: it is set aside and rebuilt)."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from singkit.exceptions import SingkitError

SQLITE_CORRUPT, SQLITE_NOTADB = 11, 26
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN = 5, 6, 8, 10, 13, 14


class IndexUnavailable(SingkitError):
    """The index cannot be used right now, its file untouched: `kind` is "full" (no space left on
    the device), "readonly" (the folder or file cannot be written), "locked" (another process
    holds its write lock past the busy timeout) or "unusable" (anything else SQLite or the OS
    refused). Readers fall back to the job folders."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


class IndexDamaged(SingkitError):
    """The index turned out damaged while in use (SQLite: `malformed`); Index.recover rebuilds it."""


def trouble(error: BaseException, path: Path) -> IndexUnavailable | None:
    """`error` (from SQLite or the OS, while using the index at `path`) as an IndexUnavailable
    saying which trouble it is; None when it is not about the file being usable (a bug)."""
    text = " ".join(str(error).split())
    folder = path.parent
    if isinstance(error, OSError):
        kind = {errno.ENOSPC: "full", errno.EDQUOT: "full", errno.EFBIG: "full", errno.EROFS: "readonly",
                errno.EACCES: "readonly", errno.EPERM: "readonly"}.get(error.errno or 0, "unusable")
        text = error.strerror or text
    elif isinstance(error, sqlite3.OperationalError):
        code = (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF
        kind = {SQLITE_FULL: "full", SQLITE_READONLY: "readonly", SQLITE_BUSY: "locked",
                SQLITE_LOCKED: "locked"}.get(code, "")
        if not kind:  # an I/O error or a failed open: SQLite does not say why, the folder does
            kind = _folder_trouble(folder) or ("locked" if "locked" in text else "unusable")
    else:
        return None
    if kind == "full":
        said = f"no space left on device ({folder})"
    elif kind == "readonly":
        said = f"{folder} is read-only or not writable ({text})"
    elif kind == "locked":
        said = f"it is locked ({text}): another singkit may be writing it (retry)"
    else:
        said = text
    return IndexUnavailable(f"the job index {path} cannot be used: {said}", kind)


def _folder_trouble(folder: Path) -> str | None:
    """"full" or "readonly" when the folder's file system says so, else None."""
    try:
        fs = os.statvfs(folder)
    except OSError:
        return None
    if fs.f_flag & os.ST_RDONLY or not os.access(folder, os.W_OK):
        return "readonly"
    if fs.f_bavail == 0:
        return "full"
    return None


def damaged(error: BaseException) -> bool:
    """Is this the file's contents being broken (`malformed`, `file is not a database`), not the
    file being busy, read-only or on a full disk (those are OperationalError)?"""
    if not isinstance(error, sqlite3.DatabaseError) or isinstance(error, sqlite3.OperationalError):
        return False
    code = getattr(error, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in (SQLITE_CORRUPT, SQLITE_NOTADB)
    return type(error) is sqlite3.DatabaseError
