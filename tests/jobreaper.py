"""Teardown for tests that start jobs: whatever the test did (or failed to do), cancel every
job of every store under its tmp_path, then end every process still carrying one of those
stores in its environment (runners, entry wrappers, `setsid sleep` escapees).

    from jobreaper import reaped  # noqa: F401  (an autouse fixture: importing it is enough)
"""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path

import pytest

from singkit.environment import Environment


def store_processes(under: Path) -> dict[int, Path]:
    """pid → store of every process whose SINGKIT_HOME lies under `under` (Linux /proc)."""
    found: dict[int, Path] = {}
    prefix = str(under.resolve())
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        for item in environ:
            if item.startswith(b"SINGKIT_HOME="):
                home = os.fsdecode(item[len(b"SINGKIT_HOME="):])
                if home == prefix or home.startswith(prefix + os.sep):
                    found[int(entry.name)] = Path(home)
    return found


def reap(under: Path) -> list[int]:
    """Cancel every job of the stores under `under`, then SIGKILL what is left; the pids killed."""
    from singkit.jobs import control
    from singkit.store import Store

    homes = {p.parent for p in under.glob("**/.singkit/jobs")} | set(store_processes(under).values())
    for home in homes:
        env = Environment(project_root=home.parent, environ={**os.environ, "SINGKIT_HOME": str(home)},
                          stdout=io.StringIO(), stderr=io.StringIO())
        for job_id in Store(home).job_ids():
            try:
                control.cancel(env, job_id)
            except Exception:  # noqa: BLE001 - teardown: a damaged job must not stop the others
                continue
    left = sorted(store_processes(under))
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


@pytest.fixture(autouse=True)
def reaped(tmp_path: Path):
    """Runs after every test of a module that imports it, passed or failed."""
    yield
    reap(tmp_path)
