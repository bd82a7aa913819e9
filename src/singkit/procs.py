"""Processes by identity, not just by pid: a pid is reused after its process dies (or after a
reboot), so a process is recorded as (pid, start time, boot id) and only that one counts as
alive. Linux reads /proc; elsewhere only the pid is checked.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PROC = Path("/proc")


def boot_id() -> str | None:
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], ppid [1], ...)."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2:].split()


def start_time(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[19]) if fields else None  # field 22 of stat: starttime in clock ticks


def identity(pid: int) -> dict[str, Any]:
    """What to record about a process so that `alive` can recognise it later."""
    return {"pid": pid, "start": start_time(pid), "boot_id": boot_id(), "host": socket.gethostname()}


def alive(info: dict[str, Any] | None) -> bool:
    """Is the very process `info` describes still running (zombies count as ended)?"""
    if not info or not info.get("pid"):
        return False
    pid = int(info["pid"])
    if info.get("boot_id") and boot_id() and info["boot_id"] != boot_id():
        return False
    if PROC.is_dir():
        fields = _stat(pid)
        if fields is None or fields[0] in ("Z", "X"):
            return False
        # where /proc exists every record singkit writes has the start time: one without it (a
        # damaged backend.json) names some process, not ours, and must never be signalled
        try:
            return int(fields[19]) == int(info["start"])
        except (KeyError, TypeError, ValueError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _all() -> list[tuple[int, int, int]]:
    """(pid, ppid, session id) of every process we can see."""
    found = []
    for entry in PROC.iterdir() if PROC.is_dir() else ():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields:
                found.append((int(entry.name), int(fields[1]), int(fields[3])))
    return found


def family(leaders: list[int]) -> set[int]:
    """The leaders, everything in their sessions, and all their descendants (even ones that
    started a session of their own): the whole tree a cancel has to end."""
    table = _all()
    members = {p for p in leaders if p > 1}
    members |= {pid for pid, _ppid, sid in table if sid in members}
    grew = True
    while grew:
        grew = False
        for pid, ppid, _sid in table:
            if ppid in members and pid not in members:
                members.add(pid)
                grew = True
    members.discard(os.getpid())
    return members


def terminate(pids: set[int], grace: float = 5.0) -> set[int]:
    """SIGTERM every pid, wait up to `grace` seconds, SIGKILL what is left; the pids signalled."""
    signalled = set()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
            signalled.add(pid)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + grace
    remaining = set(signalled)
    while remaining and time.monotonic() < deadline:
        remaining = {p for p in remaining if _running(p)}
        if remaining:
            time.sleep(0.05)
    for pid in remaining:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return signalled


def _running(pid: int) -> bool:
    fields = _stat(pid)
    if fields is not None:
        return fields[0] not in ("Z", "X")
    if PROC.is_dir():
        return False
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


RUNNER_MODULE = "singkit.backends.runtime.runner"
# a runner started before the runtime moved beside the backends (issue 12) still runs by this name
RUNNER_MODULES = (RUNNER_MODULE, "singkit.jobs.runner")


def find_runner(job_dir: Path) -> dict[str, Any] | None:
    """The identity (as `identity` gives it) of a live `python -m singkit.backends.runtime.runner JOB_DIR`
    for this job folder, found by its command line; None when there is none (or no /proc).

    runner.json can be missing while the runner lives (a submit killed between spawning it and
    recording it, a file removed by hand): its runs must not be taken for orphans then.
    Inside `one_listing()` the processes are listed once for every job asked about."""
    if not PROC.is_dir():
        return None
    if _listing:
        runners = _listing[-1]
        if runners is None:
            runners = _listing[-1] = _runner_pids()
    else:
        runners = _runner_pids()
    for pid in runners.get(_resolved(job_dir), ()):
        info = identity(pid)
        if alive(info):
            return info
    return None


# the runner listing of each open one_listing() block (None until find_runner first needs it)
_listing: list[dict[Path, list[int]] | None] = []


@contextlib.contextmanager
def one_listing() -> Iterator[None]:
    """Within the block find_runner lists the processes once, when first asked, and answers every
    job from that list: job.list reconciling a thousand jobs whose runners died reads /proc once,
    not once per job. A runner that starts later is known by its runner.json, which `alive`
    reads as always, or by its job being too young to judge (embedded.RUNNER_GRACE)."""
    _listing.append(None)
    try:
        yield
    finally:
        _listing.pop()


def _runner_pids() -> dict[Path, list[int]]:
    """Every process that runs a job's runner: its job folder (resolved) -> pids, in /proc order."""
    found: dict[Path, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [os.fsdecode(a) for a in argv if a]
        if not any(m in words for m in RUNNER_MODULES) or words[-1] in RUNNER_MODULES:
            continue
        target = Path(words[-1])
        if not target.is_absolute():
            try:
                target = Path(os.readlink(entry / "cwd")) / target
            except OSError:
                continue
        found.setdefault(_resolved(target), []).append(int(entry.name))
    return found


def _resolved(path: Path) -> Path:
    try:
        return Path(path).resolve()
    except OSError:
        return Path(os.path.abspath(path))
