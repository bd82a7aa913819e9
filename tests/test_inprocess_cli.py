"""The CLI run in this process (clirunner.cli, over singkit.cli.run with an injected Environment)
answers exactly as `python -m singkit` does, and leaves nothing behind for the next command."""

from __future__ import annotations

import io
import logging
import os
import signal
import sys
from pathlib import Path

import pytest

from clirunner import cli, run_singkit
from singkit import cli as singkit_cli
from singkit.environment import Environment

BROKEN = "compute-targets:\n  local:\n    servce: local\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "singkit.yaml").write_text(BROKEN)
    return tmp_path


@pytest.mark.parametrize("args", [
    ["config.validate"], ["job.lst"], ["job.list", "--help"], ["job.list"], ["job.status", "job9"],
    ["--list"], ["job.list", "--last=x"], ["job.status", "RUN=job3.2"],
])
def test_in_process_answers_as_a_process_does(project: Path, args: list[str]) -> None:
    inside, outside = cli(args, project), run_singkit(args, project)
    assert (inside.returncode, inside.stdout, inside.stderr) == (outside.returncode, outside.stdout, outside.stderr)


def test_the_injected_environment_is_the_one_used(project: Path, tmp_path: Path) -> None:
    (project / "configs" / "singkit.yaml").write_text("compute-targets:\n  local:\n    service: local\n")
    out, err = io.StringIO(), io.StringIO()
    env = Environment(project_root=project, environ={"HOME": str(tmp_path), "SINGKIT_HOME": str(tmp_path / "elsewhere")},
                      stdout=out, stderr=err)
    assert singkit_cli.run(["job.status", "job1"], env) == 2
    assert str(tmp_path / "elsewhere") in err.getvalue() and out.getvalue() == ""
    assert not (project / ".singkit").exists()  # the project's default store, which from_os would use


def test_nothing_leaks_into_the_next_command(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # singkit's program sets it False (no -B here)
    logging.getLogger().setLevel(logging.WARNING)

    def state() -> tuple:
        root = logging.getLogger()
        return (os.getcwd(), dict(os.environ), sys.dont_write_bytecode, list(sys.argv),
                {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE)},
                root.level, list(root.handlers))

    before = state()
    for args in (["config.validate"], ["job.list", "--write-pyc"], ["--write-pyc", "job.list"], ["job.status", "job9"]):
        cli(args, project, env={"SINGKIT_HOME": str(project / "store")})
        assert state() == before, args
