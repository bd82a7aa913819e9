"""Hostile command lines (issue 15): each is one stderr line and exit 2 (or a plain success
that says what it did), in bounded time (the subprocess timeout), and leaves nothing written
where it should not be: no job for a refused submit, no file replaced for a refused output path.
"""

from __future__ import annotations

import os
import random
import stat
from pathlib import Path

import pytest

from jobtools import make_env, make_project, run_cli
from singkit.environment import Environment
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit
from storegen import RunSpec, curve, write_job

TIMEOUT = 120


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


@pytest.fixture
def env(project: Path) -> Environment:
    return make_env(project)


def cli(project: Path, env: Environment, *args: str):
    return run_cli(list(args), project, env, timeout=TIMEOUT)


def one_line(done, code: int = 2) -> str:
    assert done.returncode == code, (done.returncode, done.stderr)
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    return done.stderr


@pytest.fixture
def dry(env: Environment) -> str:
    return submit(env, SubmitRequest(command="true", dry_run=True)).id


# -- job and run words ---------------------------------------------------------------------

CONTROL_WORDS = ["job1\n", "job1\r", "\njob1", "job\x1b[31m1", "job1\t", "job1\x7f", "job1\x85", "job1\x07"]


@pytest.mark.parametrize("word", CONTROL_WORDS, ids=[repr(w) for w in CONTROL_WORDS])
def test_a_job_word_with_a_control_character_is_refused_as_such(project: Path, env: Environment, dry: str,
                                                                  word: str) -> None:
    for task in ("job.status", "job.logs", "job.cancel", "report.list"):
        args = [task, f"--job={word}"] if task == "report.list" else [task, word]
        err = one_line(cli(project, env, *args))
        assert "control character" in err and repr(word) in err, err


def test_a_run_word_with_a_control_character_is_refused(project: Path, env: Environment, dry: str) -> None:
    err = one_line(cli(project, env, "job.logs", dry, "--run", "job1.1\n"))
    assert "control character" in err and "'job1.1\\n'" in err


@pytest.mark.parametrize("word", ["../job1", "/etc", "job1/../job1", "job01x", ".."])
def test_a_job_word_that_is_a_path_is_no_job(project: Path, env: Environment, dry: str, word: str) -> None:
    for task in ("job.status", "job.extract"):
        extra = ["--dest", str(project.parent / "x")] if task == "job.extract" else []
        err = one_line(cli(project, env, task, word, *extra))
        assert "no job" in err, err
    assert not (project.parent / "x").exists()


# -- sizes a typo can ask for --------------------------------------------------------------


@pytest.mark.parametrize("args", [["--runs", str(10 ** 20)], ["--runs", "100001"],
                                  ["--runs", "1000", "--hp", "a=" + ",".join(map(str, range(101)))],
                                  ["--hp", "a=" + ",".join(map(str, range(400))), "--hp", "b=" + ",".join(map(str, range(400)))]])
def test_a_job_of_too_many_runs_is_refused_before_anything_is_written(project: Path, env: Environment,
                                                                      args: list[str]) -> None:
    err = one_line(cli(project, env, "job.submit", "--cmd", "true", "--dry-run", *args))
    assert "at most 100000" in err, err
    assert not (project / ".singkit" / "jobs").exists() or not any((project / ".singkit" / "jobs").iterdir())


@pytest.fixture
def metrics_job(env: Environment) -> str:
    write_job(env.home, "job1", [RunSpec(hparams={"lr": 0.1}, metrics=curve(5, 2.0, 0.5))])
    return "job1"


@pytest.mark.parametrize("args", [["--layout", "100000x100000"], ["--layout", "1x101"], ["--layout", "9" * 30 + "x1"],
                                  ["--layout", "2x2x2"], ["--dpi", "100000"], ["--dpi", "0"]])
def test_plot_sizes_past_any_screen_are_refused(project: Path, env: Environment, metrics_job: str,
                                                args: list[str]) -> None:
    one_line(cli(project, env, "report.plot", metrics_job, *args))
    assert not (project / "reports" / metrics_job).exists() or not list((project / "reports" / metrics_job).glob("*.png"))


# -- output paths --------------------------------------------------------------------------


def test_extract_into_a_file_a_device_or_under_a_file_is_refused(project: Path, env: Environment, dry: str) -> None:
    afile = project.parent / "afile"
    afile.write_text("keep\n")
    mtime = afile.stat().st_mtime_ns
    for dest in (afile, Path("/dev/null"), afile / "sub", afile / "sub" / "deeper"):
        err = one_line(cli(project, env, "job.extract", dry, "--dest", str(dest)))
        assert str(dest) in err and "afile" in err or "device" in err, err
    assert afile.read_text() == "keep\n" and afile.stat().st_mtime_ns == mtime
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_outputs_into_a_missing_folder_are_created_and_said(project: Path, env: Environment, metrics_job: str) -> None:
    done = cli(project, env, "report.list", "--runs", "--export", "new/deeper/runs.csv")
    assert done.returncode == 0, done.stderr
    assert "did not exist; created it" in done.stderr and "new/deeper" in done.stderr
    assert (project / "reports" / "new" / "deeper" / "runs.csv").is_file()
    done = cli(project, env, "config.schema", "--out", "schemas/new/singkit.schema.json")
    assert done.returncode == 0, done.stderr
    assert "does not exist; creating it" in done.stderr and (project / "schemas" / "new" / "singkit.schema.json").is_file()


@pytest.mark.parametrize("task", ["report.list", "config.schema"])
def test_outputs_onto_a_folder_a_fifo_or_under_a_file_are_refused(project: Path, env: Environment,
                                                                  metrics_job: str, task: str) -> None:
    afile = project.parent / "afile.csv"
    afile.write_text("keep\n")
    fifo = project.parent / "fifo.csv"
    os.mkfifo(fifo)
    folder = project.parent / "folder.csv"
    folder.mkdir()
    for path in (fifo, folder, afile / "x.csv"):
        args = ["report.list", "--runs", "--export", str(path)] if task == "report.list" else ["config.schema", "--out", str(path)]
        err = one_line(cli(project, env, *args))
        assert str(path) in err, err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and folder.is_dir() and afile.read_text() == "keep\n"


# -- files given as input ------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_import_xt_of_a_binary_file_is_file_line_col(project: Path, env: Environment, seed: int) -> None:
    data = random.Random(seed).randbytes(2000)
    path = project.parent / "xt.yaml"
    path.write_bytes(b"external-services:\n" + data)
    err = one_line(cli(project, env, "config.import-xt", str(path)))
    assert err.startswith(f"{path}:") or err.startswith("xt.yaml:") or "xt.yaml:" in err.split()[0], err


def test_import_xt_of_a_fifo_or_a_folder_is_refused_without_reading(project: Path, env: Environment) -> None:
    fifo = project.parent / "xt.fifo"
    os.mkfifo(fifo)  # nobody writes it: reading it would wait for ever
    err = one_line(cli(project, env, "config.import-xt", str(fifo)))
    assert "not a regular file" in err
    err = one_line(cli(project, env, "config.import-xt", str(project.parent)))
    assert "not a regular file" in err


def test_submit_with_a_project_config_that_is_a_fifo_names_the_fifo(project: Path, env: Environment) -> None:
    # configs/singkit.yaml marks the project even when it is no file; job.submit must say what is
    # wrong with it, not that there is no project.
    config = project / "configs" / "singkit.yaml"
    config.unlink()
    os.mkfifo(config)  # nobody writes it: reading it would wait for ever
    err = one_line(cli(project, env, "job.submit", "--target=local", "--dry-run"))
    assert "FIFO" in err and "no configs/singkit.yaml" not in err, err


@pytest.mark.parametrize("cmd", ["", "   "])
def test_submit_with_an_empty_cmd_is_refused_not_the_default(project: Path, env: Environment, cmd: str) -> None:
    err = one_line(cli(project, env, "job.submit", f"--cmd={cmd}", "--dry-run"))
    assert "--cmd is empty" in err, err
    assert not (env.home / "jobs").exists() or not any((env.home / "jobs").iterdir())
