"""The command line's own mistakes and a reader that goes away: `singkit` parse errors are one
line, exit 2, with a hint; a closed pipe ends the command quietly (exit 141, like SIGPIPE)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobreaper import reaped  # noqa: F401  (autouse: every job ends with its test)
from jobtools import make_env, make_project, run_cli, wait_done
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit

SIGPIPE_EXIT = 141


@pytest.mark.parametrize("args, expected", [
    (["job.sumbit"], "error: no task `job.sumbit`; did you mean job.submit? (`singkit --list` lists the tasks)"),
    (["report.lsit", "--runs"], "error: no task `report.lsit`; did you mean report.list?"),
    (["report.metrics"], "error: report.metrics needs its job: `singkit report.metrics JOB`"),
    (["job.list", "--bogus"], "error: unknown option --bogus for job.list"),
    (["job.list", "--lats=3"], "error: unknown option --lats for job.list; did you mean --last?"),
    (["job.list", "--last"], "error: --last needs a value: --last=VALUE"),
    (["--bogus"], "error: unknown option --bogus"),
    (["job.status", "--bogus"], "error: unknown option --bogus"),
    (["job.status", "--bogus=1"], "error: unknown option --bogus"),
])
def test_parse_errors_are_usage_errors_with_a_hint(tmp_path: Path, args: list[str], expected: str) -> None:
    project = make_project(tmp_path)
    done = run_cli(args, project, make_env(project))
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(expected), done.stderr


def _closed_pipe_run(args: list[str], project: Path, env) -> subprocess.CompletedProcess:
    """Run with stdout on a pipe nobody reads any more (its read end closed before the start)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "singkit", *args], cwd=project, env=dict(env.environ),
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    # nothing on the run's stderr: `--follow` relays it from its own thread, which may legitimately
    # print before the stdout thread finds the pipe closed
    job = submit(env, SubmitRequest(command="echo out", hp=["k=1,2"]))
    assert wait_done(env, job.id) == "completed"
    for args in (["job.list"], ["job.status", job.id], ["job.logs", job.id], ["job.logs", job.id, "--follow"],
                 ["job.list", "--json"], ["report.list"], ["job.monitor", job.id]):
        done = _closed_pipe_run(args, project, env)
        # monitor's own progress line may reach stderr before its first stdout write fails
        progress = {f"{job.id}: 2 completed\n"} if args[0] == "job.monitor" else set()
        assert done.returncode == SIGPIPE_EXIT and done.stderr in {"", *progress}, (args, done.stderr)


@pytest.mark.parametrize("args", [["config.skus", "-h"], ["--list"], ["--help"]])
def test_invokes_own_output_to_a_closed_pipe_ends_quietly(tmp_path: Path, args: list[str]) -> None:
    project = make_project(tmp_path)
    done = _closed_pipe_run(args, project, make_env(project))
    assert done.returncode == SIGPIPE_EXIT and done.stderr == "", done.stderr


def test_head_dash_1_through_a_real_pipeline(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    job = submit(env, SubmitRequest(command="seq 1 200000"))  # far more than a pipe holds
    assert wait_done(env, job.id) == "completed"
    for args in (["job.logs", job.id], ["job.logs", job.id, "--follow"]):
        writer = subprocess.Popen([sys.executable, "-m", "singkit", *args], cwd=project, env=dict(env.environ),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        head = subprocess.Popen(["head", "-1"], stdin=writer.stdout, stdout=subprocess.PIPE)
        writer.stdout.close()  # only head reads it now
        first, _ = head.communicate(timeout=120)
        err = writer.stderr.read()
        assert writer.wait(timeout=120) == SIGPIPE_EXIT and err == b"", err
        assert first == b"1\n"


def test_usage_words_still_work(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    assert run_cli(["--version"], project, env).returncode == 0
    assert run_cli(["job.list"], project, env).returncode == 0
    helped = run_cli(["job.status", "--help"], project, env)
    assert helped.returncode == 0 and "--job=JOB" in helped.stdout
