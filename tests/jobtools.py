"""Helpers for the job tests: a throwaway project with its own store, and waiting on jobs.

Waits poll a condition with a generous deadline (a slow machine waits longer, nothing is
asserted about how long anything took).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from singkit.environment import Environment
from singkit.store import Store

ROOT = Path(__file__).resolve().parents[1]

LOCAL_CONFIG = """\
general:
  experiment: test
  code-omit: ["data/*"]
compute-targets:
  local:
    service: local
"""
# One docker target in the image {image} (format it; busybox_image.ref in most tests): tests that
# need more targets append them under compute-targets, the last key.
DOCKER_CONFIG = """\
general:
  experiment: test
dockers:
  bb:
    image: {image}
compute-targets:
  docker:
    service: docker
    docker: bb
"""


def make_project(tmp_path: Path, config: str = LOCAL_CONFIG, with_example: bool = False) -> Path:
    project = tmp_path / "proj"
    (project / "configs").mkdir(parents=True)
    (project / "configs" / "singkit.yaml").write_text(config)
    (project / "job.sh").write_text("echo job script\n")
    if with_example:
        (project / "examples").mkdir()
        shutil.copy(ROOT / "examples" / "train.py", project / "examples" / "train.py")
    return project


def make_env(project: Path, *, home: Path | None = None, inherit: bool = True, **environ: str) -> Environment:
    """The tests' one Environment maker: project root `project`, its store in project/.singkit, HOME
    `home` (default: beside the project, project.parent/home), stdout and stderr captured in StringIO.

    inherit: start from this process's variables less every SINGKIT_* (a developer's own settings
    must not reach a test); False starts from nothing. `environ` adds or overrides variables.
    The helpers for one kind of test (storegen.store_env, images_helpers.images_env,
    singtools.sing_env) build on this; tests/test_hygiene.py keeps it the only `make_env`.
    """
    base = {k: v for k, v in os.environ.items() if not k.startswith("SINGKIT_")} if inherit else {}
    base.update(HOME=str(home or project.parent / "home"), SINGKIT_HOME=str(project / ".singkit"))
    base.update(environ)  # HOME=… or SINGKIT_HOME=… here wins
    return Environment(project_root=project, environ=base, stdout=io.StringIO(), stderr=io.StringIO())


def wait_for(condition: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def wait_done(env: Environment, job_id: str, timeout: float = 90.0) -> str:
    """Wait until every run of the job has ended; the job's status."""
    from singkit.jobs import control

    def done() -> str | None:
        status = control.status(env, job_id)["status"]
        return status if status in ("completed", "failed", "cancelled") else None

    return wait_for(done, timeout, f"{job_id} to end")


def pid_gone(pid: int) -> bool:
    """No such process, or only its zombie (an exited child nobody reaped yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
        return int(text) if text else None
    except (FileNotFoundError, ValueError):
        return None


def run_cli(args: list[str], project: Path, env: Environment, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m singkit ARGS` in the project, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "singkit", *args], cwd=project, env=dict(env.environ),
                          capture_output=True, text=True, timeout=timeout)


def run_here(args: list[str], project: Path, env: Environment, timeout: float = 120) -> subprocess.CompletedProcess:
    """`run_cli` in this process (clirunner.cli): the same result, no interpreter start-up."""
    from clirunner import cli

    return cli(args, project, environ=dict(env.environ), timeout=timeout)


def store_of(env: Environment) -> Store:
    return Store.of(env)


def age(job: Any, seconds: float = 3600.0) -> None:
    """Make the job look submitted long ago (past the runner's start-up grace)."""
    spec = dict(job.spec)
    spec["created"] = time.time() - seconds
    job.write_spec(spec)
