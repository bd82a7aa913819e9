"""Store content is untrusted input: the one place that turns it into paths and opens its files.

Run folders, logs and outputs come back from job containers (on Singularity through the Blob
mirror), and a store can be shared or copied. So:
- an id read from a store file (a run id in job.yaml, an archive name) becomes a path only
  through `safe_join`, which refuses absolute paths, `..`, empty parts and control characters;
- a store file is opened through `open_stored`, which follows no symbolic link inside the job
  folder (the file itself, its run folder, `runs/`, the job folder): a link there is read as a
  missing file (StoreLink is a FileNotFoundError, so every reader that tolerates a missing file
  tolerates it the same way) and is never followed out of the store;
- `inside(top, path)` says whether a path, links resolved, stays under `top`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from pathlib import Path, PurePosixPath
from collections.abc import Iterator
from typing import BinaryIO

from singkit.exceptions import UsageError
from singkit.refs import shown

CLEAN_AFTER_S = 2.0  # a run folder changed more recently than this is listed on every look (links_in_runs)
JOBS = "jobs"  # the store folder whose children are job folders: links are refused below it


class StoreLink(FileNotFoundError):
    """A store file (or a folder on its way, within the job folder) is a symbolic link: not read."""


class NotAFile(FileNotFoundError):
    """A store file that is no regular file (a folder, a FIFO, a device, a socket): not read. A
    reader that takes a missing file in its stride takes this one too; opening a FIFO would wait
    for a writer for ever."""


class UnsafeStoreContent(UsageError):
    """A name read from the store would leave it (`..`, an absolute path, a link out)."""


def inside(top: Path | str, path: Path | str) -> bool:
    """Does `path`, every link resolved, stay in `top` (or is it `top`)?"""
    top_real, real = os.path.realpath(top), os.path.realpath(path)
    return real == top_real or real.startswith(top_real.rstrip(os.sep) + os.sep)


def safe_join(top: Path, name: str, what: str, source: Path | str | None = None) -> Path:
    """`top / name` for a relative `name` read from the store (a run id, `snapshots/<sha>.tar.gz`).

    Raises UnsafeStoreContent, naming `source` (the file the name was read from), for an absolute
    path, a `..` or empty part, a control character, or a path that resolves outside `top`."""
    text = str(name) if name is not None else ""
    parts = PurePosixPath(text.replace("\\", "/")).parts
    bad = (not text or text.startswith(("/", "\\")) or PurePosixPath(text).is_absolute()
           or any(p in ("..", "") for p in parts) or any(ord(ch) < 32 or ord(ch) == 127 for ch in text)
           or (len(text) > 1 and text[1] == ":"))
    joined = Path(top) / text
    if not bad and len(parts) == 1 and not _is_link(joined):
        return joined  # one plain name that is no link stays in `top`: one lstat, not two realpaths
    if bad or not inside(top, joined):
        where = f"{source}: " if source is not None else ""
        raise UnsafeStoreContent(f"{where}{what} {shown(text)} would lead outside {top}; nothing was read or written "
                                 "(the store was damaged or written by something other than singkit)")
    return joined


def link_in_job(path: Path | str) -> str | None:
    """The first symbolic link among `path` and its folders up to (and including) its job folder
    (the child of a `jobs/` folder); None when there is none or `path` is not in a job folder."""
    return next(filter(_is_link, _job_chain(os.path.abspath(path))), None)


def _job_chain(current: str) -> list[str]:
    """An absolute path and its folders up to its job folder; only the path when it is in no job
    folder. Plain strings: a listing opens 10,000 store files, and Path.parents cost ten times
    the lstats."""
    chain = []
    part = current
    while True:
        chain.append(part)
        parent = os.path.dirname(part)
        if os.path.basename(parent) == JOBS:  # `part` is the job folder: the last one checked
            return chain
        if parent == part:
            return chain[:1]
        part = parent


def links_in_runs(job_dir: Path, run_names: list[str], names: tuple[str, ...],
                  clean: dict[str, list[int]] | None = None) -> list[str]:
    """`link_in_job` of the `names` (run.log, outputs, ...) in each run folder job_dir/runs/<run
    name>, the links found in order, each once: a listing of each run folder instead of an lstat
    per folder of each path (job.status of a 10,000-run job asked 40,000 times).

    `clean` (run folder name -> [ctime_ns, inode], updated here): folders already seen holding
    no such link. A folder whose ctime and inode are unchanged is not listed again: a link can
    only appear in it by adding or renaming an entry, which changes the folder's ctime (which,
    unlike mtime, nobody can set back). A folder changed within CLEAN_AFTER_S of the look is
    not recorded (git's "racy" rule: a change in the same clock tick keeps the ctime)."""
    above = link_in_job(Path(job_dir) / "runs")  # the job folder or its runs/ folder: under every path
    found: list[str] = []

    def note(link: str | None) -> None:
        if link is not None and link not in found:
            found.append(link)

    wanted = frozenset(names)
    runs = os.path.abspath(os.path.join(job_dir, "runs")) + os.sep  # text, not Paths: 10,000 runs
    linked_dirs: set[str] | None = None
    if clean is None:
        try:  # which run folders are links: one listing of runs/, not an lstat per folder
            with os.scandir(runs) as entries:
                linked_dirs = {e.name for e in entries if e.is_symlink()}
        except OSError:
            pass  # not listable: ask each folder
    settled = (time.time() - CLEAN_AFTER_S) * 1e9
    for folder in run_names:
        run_dir = runs + folder
        stamp = None
        if clean is not None and above is None:
            try:
                st = os.lstat(run_dir)
            except OSError:
                continue  # no run folder: nothing in it to be a link
            if stat.S_ISLNK(st.st_mode):
                is_link = True
            else:
                is_link, stamp = False, [st.st_ctime_ns, st.st_ino]
                if clean.get(folder) == stamp:
                    continue
        else:
            is_link = folder in linked_dirs if linked_dirs is not None else _is_link(run_dir)
        if above is not None or is_link:  # rare: the exact walk, path by path
            for name in names:
                note(link_in_job(Path(run_dir) / name))
            continue
        try:
            with os.scandir(run_dir) as entries:
                linked = [e.name for e in entries if e.name in wanted and e.is_symlink()]
        except OSError:
            continue
        for name in names:
            if name in linked:
                note(os.path.join(run_dir, name))
        if stamp is not None:
            if not linked and stamp[0] < settled:
                clean[folder] = stamp  # type: ignore[index]  # (stamp is set only when clean is given)
            else:
                clean.pop(folder, None)  # type: ignore[union-attr]
    return found


def _is_link(path: Path | str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False


def check_not_linked(path: Path | str) -> None:
    """Raise StoreLink when `path` (or a folder on its way within its job folder) is a link."""
    link = link_in_job(path)
    if link is not None:
        raise _link_error(link)


def _link_error(link: str) -> StoreLink:
    try:
        to = f", to {os.readlink(link)!r}"
    except OSError:
        to = ""
    return StoreLink(errno.ELOOP, f"a symbolic link in the job store (not followed{to})", link)


# O_NOFOLLOW refuses a link as the file itself, so only its folders are looked at first
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def open_stored(path: Path | str) -> BinaryIO:
    """Open a store file for reading without following a link (StoreLink if it is one) and only
    if it is a regular file (NotAFile: a folder, FIFO, device or socket)."""
    current = os.path.abspath(path)
    link = next(filter(_is_link, _job_chain(current)[1 if _NOFOLLOW else 0:]), None)
    if link is not None:
        raise _link_error(link)
    try:
        # O_NONBLOCK: a FIFO's open returns at once instead of waiting for a writer (no effect on a file)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        if error.errno == errno.ELOOP:  # the file is a link (or turned into one since the look)
            raise _link_error(current) from None
        if error.errno == errno.ENXIO:  # a socket, or a device with nothing behind it
            raise NotAFile(errno.ENXIO, "not a regular file (not read)", str(path)) from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise NotAFile(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        raise NotAFile(errno.EINVAL, "not a regular file (a FIFO or device; not read)", str(path))
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_stored(paths: list[str]) -> Iterator[bytes | None]:
    """Each file's content in turn (one at a time: a listing's 50,000 run.logs are never all held
    at once) as `open_stored` reads it, None where that raises FileNotFoundError
    (missing, a link on the way, not a regular file); anything else it raises, this raises too.

    For many files in few folders (a listing reads every run.log): a file's folder and the one
    above are opened once and used as they are, relative to the open folder with O_NOFOLLOW (the
    grandparent's own way up to the job folder looked at once per folder), so no link is
    followed and nothing is looked at twice: a link met this way is refused by the open itself,
    race-free. A path this cannot take so (not two folders deep in a job folder, an error) is
    read by `open_stored`, which gives the exact answer and error."""
    top_path, top_fd = None, -1
    try:
        for path in paths:
            current = os.path.abspath(path)
            folder, name = os.path.split(current)
            top, sub = os.path.split(folder)
            if top != top_path:
                if top_fd >= 0:
                    os.close(top_fd)
                top_path, top_fd = top, -1
                # the file, its folder and `top` all in one job folder (what _job_chain of the
                # file would walk), and no link from `top` up to it
                if _NOFOLLOW and os.path.basename(top) != JOBS and _in_job(top) and link_in_job(top) is None:
                    with contextlib.suppress(OSError):
                        top_fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW | os.O_CLOEXEC)
            fd, size = _open_below(top_fd, sub, name) if top_fd >= 0 and sub != JOBS else (-1, 0)
            if fd < 0:
                yield _read_one(path)
                continue
            try:
                data = _read_all(fd, size)
            finally:
                os.close(fd)
            yield data
    finally:
        if top_fd >= 0:
            os.close(top_fd)


def _in_job(folder: str) -> bool:
    """Is the absolute `folder` a job folder or in one?"""
    part = folder
    while True:
        parent = os.path.dirname(part)
        if os.path.basename(parent) == JOBS:
            return True
        if parent == part:
            return False
        part = parent


def _open_below(top_fd: int, sub: str, name: str) -> tuple[int, int]:
    """(descriptor, size) of `sub/name` under the open folder `top_fd`, neither followed if a
    link, opened only if a regular file; (-1, 0) for anything else (the caller asks open_stored
    for its exact answer)."""
    try:
        folder_fd = os.open(sub, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW | os.O_CLOEXEC, dir_fd=top_fd)
    except OSError:
        return -1, 0
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW | os.O_CLOEXEC, dir_fd=folder_fd)
    except OSError:
        return -1, 0
    finally:
        os.close(folder_fd)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return -1, 0
    return fd, st.st_size


def _read_all(fd: int, size: int) -> bytes:
    """Everything in the regular file `fd` (of `size` bytes when it was opened) up to its end:
    one os.read of the size known from fstat (io.FileIO's readall costs a file object, another
    fstat and a seek: a third of reading a listing's 10,000 small run.logs). A file that grew
    since, or a short read, reads on to the end, as readall does."""
    data = os.read(fd, size + 1)
    if len(data) == size:
        return data
    parts = [data]
    while chunk := os.read(fd, max(size, 1 << 16)):
        parts.append(chunk)
    return b"".join(parts)


def _read_one(path: str) -> bytes | None:
    try:
        with open_stored(path) as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def copy_file_out(src: Path, dst: Path, notes: list[str]) -> bool:
    """Copy one store file to `dst` without following a link on either side: a `src` that is a
    link (or lies behind one within its job folder) is skipped with a note; a `dst` that is a
    link is replaced, never written through. True when copied."""
    import shutil

    try:
        with open_stored(src) as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                notes.append(f"skipped {src}: not a regular file")
                return False
            _clear(dst)
            dst.parent.mkdir(parents=True, exist_ok=True)
            with open(dst, "xb") as out:
                shutil.copyfileobj(fh, out, 1 << 20)
        shutil.copystat(src, dst, follow_symlinks=False)
    except StoreLink as link:
        notes.append(f"skipped {link.filename}: {link.strerror}")
        return False
    except FileNotFoundError:
        return False
    return True


def copy_tree_out(src: Path, dst: Path, notes: list[str]) -> None:
    """Copy the folder `src` (a run's outputs) into `dst`. A link inside it is copied as a link
    when it points at something inside `src`, else skipped with a note (a checkpoint folder
    linked to /home/you stays where it is); devices and fifos are skipped. Nothing is written
    through a link already in `dst`: such a link is replaced by what the store holds."""
    import shutil

    link = link_in_job(src)
    if link is not None:
        notes.append(f"skipped {link}: a symbolic link in the job store (not followed)")
        return
    if not os.path.isdir(src):
        return
    real_folder(dst)
    for folder, subdirs, files in os.walk(src):  # followlinks=False: a linked folder is listed, not entered
        rel = os.path.relpath(folder, src)
        out = dst if rel == "." else dst / rel
        for name in [*subdirs, *files]:
            here, there = Path(folder) / name, out / name
            mode = os.lstat(here).st_mode
            if stat.S_ISLNK(mode):
                target = os.readlink(here)
                if inside(src, here) and not os.path.isabs(target):
                    _clear(there)
                    os.symlink(target, there)
                else:
                    notes.append(f"skipped {here}: a link to {target!r}, outside the run's outputs (not followed)")
            elif stat.S_ISDIR(mode):
                real_folder(there)
            elif stat.S_ISREG(mode):
                _clear(there)
                shutil.copy2(here, there, follow_symlinks=False)
            else:
                notes.append(f"skipped {here}: a device, fifo or socket")


def _clear(path: Path) -> None:
    """Remove a file or link at `path` (never a folder's content): a copy then creates it anew."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "a folder is in the way", str(path))
    os.unlink(path)


def real_folder(path: Path) -> None:
    """`path` as a real folder: a link there (an earlier extract's, or one planted in the
    destination) is replaced, not entered."""
    if _is_link(path):
        os.unlink(path)
    path.mkdir(parents=True, exist_ok=True)
