"""The task edge: whatever goes wrong, the user reads one line and gets an exit code; the
traceback only with --verbose."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import invoke
import pytest
from invoke.exceptions import Exit

from jobtools import make_env, make_project, run_here
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit
from singkit.tasks._edge import task

HINT = "(run again with --verbose for the traceback)"


def _raising(error: BaseException) -> invoke.Task:
    @task
    def boom(c, env):
        raise error

    return boom


@pytest.mark.parametrize("error, line", [
    (OSError(errno.ENOSPC, "No space left on device", "/data/out.bin"), "error: No space left on device: /data/out.bin"),
    (PermissionError(errno.EACCES, "Permission denied"), "error: Permission denied"),
    (sqlite3.OperationalError("database is locked"), f"error: SQLite: database is locked {HINT}"),
    (KeyError("runs"), f"internal error: KeyError: 'runs' {HINT}"),
    (ValueError("two\nlines"), f"internal error: ValueError: two lines {HINT}"),
])
def test_unexpected_errors_are_one_line_exit_1(error: BaseException, line: str, capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Exit) as ended:
        _raising(error)(invoke.Context())
    assert ended.value.code == 1
    assert capsys.readouterr().err == line + "\n"


def test_verbose_adds_the_traceback(capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Exit):
        _raising(KeyError("runs"))(invoke.Context(), verbose=True)
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and "raise error" in err
    assert err.splitlines()[-1] == "internal error: KeyError: 'runs'"


@pytest.mark.parametrize("args, flag", [
    (["job.submit", "--parallel=x"], "parallel"), (["job.submit", "--runs=two"], "runs"),
    (["job.list", "--last=x"], "last"), (["job.logs", "job1", "--tail=x"], "tail"),
    (["job.rerun", "job1", "--parallel=1.5"], "parallel"), (["report.list", "--last=x"], "last"),
])
def test_bad_whole_numbers_are_usage_errors(tmp_path: Path, args: list[str], flag: str) -> None:
    project = make_project(tmp_path)
    done = run_here(args, project, make_env(project))
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"error: --{flag} takes a whole number, not `") and done.stderr.count("\n") == 1, done.stderr


def test_store_under_a_file_is_one_line(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    (tmp_path / "afile").write_text("not a folder\n")
    env = make_env(project)
    env.environ["SINGKIT_HOME"] = str(tmp_path / "afile" / "store")  # type: ignore[index]
    for args in (["job.submit", "--cmd", "true"], ["job.list"]):
        done = run_here(args, project, env)
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith("error: Not a directory: ") and "afile" in done.stderr
        assert "set SINGKIT_HOME to one" in done.stderr


def test_malformed_job_spec_is_one_line_naming_the_file(tmp_path: Path) -> None:
    """It was `internal error: TypeError: 'int' object is not iterable`: the store checks the
    fields it reads (issue 16), so it is bad input naming the file (exit 2)."""
    project = make_project(tmp_path)
    env = make_env(project)
    job = submit(env, SubmitRequest(command="true", dry_run=True))
    # `runs:` is checked as store content (issue 15): one line naming the file, exit 2
    job.spec_path.write_text("job: job1\ntarget: {name: local}\nservice: {name: local, type: local}\nruns: 5\n")
    line = (f"error: {job.spec_path}: `runs` is a whole number 5, expected a list; "
            "the store may be damaged: fix the file, or move its job folder aside")
    done = run_here(["job.status", job.id], project, env)
    assert done.returncode == 2 and done.stderr == line + "\n", done.stderr
    verbose = run_here(["job.status", job.id, "--verbose"], project, env)
    assert verbose.returncode == 2 and verbose.stderr.splitlines()[-1] == line, verbose.stderr


BAD_IMAGE = """\
general:
  experiment: test
dockers:
  bb:
    image: "not an image"
compute-targets:
  docker:
    service: docker
    docker: bb
"""


def test_bad_docker_image_is_a_config_error_at_its_line(tmp_path: Path) -> None:
    project = make_project(tmp_path, BAD_IMAGE)
    env = make_env(project)
    done = run_here(["job.submit", "--target=docker", "--cmd", "true"], project, env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("configs/singkit.yaml:5:12: dockers.bb: `not an image` is not an image reference")
    assert "write `image: host/name:tag`" in done.stderr
