"""Issue 13 (points 2 and 6): `make clean` deletes build products only; `make clean-store`
says what the job store holds and asks (or needs CONFIRM=1); `make help` names every target
and variable; `make test` starts the test services where it can (root) before pytest.
Issue 12: `make test` runs `make lint` (ruff, mypy) first and stops on what it finds."""

from __future__ import annotations

import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jobreaper import reaped  # noqa: F401  (autouse: every job ends with its test)

REPO = Path(__file__).resolve().parent.parent
MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="no make on PATH")


def make(folder: Path, *args: str, stdin: int | None = subprocess.DEVNULL, **extra: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SINGKIT_", "MAKEFLAGS", "MFLAGS"))}
    environ.update(extra)
    return subprocess.run([MAKE, "-s", *args], cwd=folder, env=environ, stdin=stdin, capture_output=True,
                          text=True, timeout=120)


def project(root: Path) -> Path:
    """The Makefile, a venv stand-in (the setup stamp, so no target installs anything; `singkit`
    and `python` run this checkout's), a job store with two jobs and three runs made by singkit
    (job1 ran one run to its end, job2 is a dry run of two: runs without folders), and what the
    tools generate."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / "Makefile", root / "Makefile")
    (root / "pyproject.toml").write_text("")
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".venv" / ".singkit-setup").touch()
    for name, run in (("singkit", f"{sys.executable} -m singkit"), ("python", sys.executable)):
        (root / ".venv" / "bin" / name).write_text(f'#!/bin/sh\nexec {run} "$@"\n')
        (root / ".venv" / "bin" / name).chmod(0o755)
    for name in ("ruff", "mypy"):  # lint stand-ins: say they ran (.venv/calls), find nothing
        (root / ".venv" / "bin" / name).write_text(f'#!/bin/sh\necho "{name} $*" >> "$(dirname "$0")/../calls"\n')
        (root / ".venv" / "bin" / name).chmod(0o755)
    (root / "configs").mkdir()
    (root / "configs" / "singkit.yaml").write_text("general: {experiment: x}\ncompute-targets:\n  local: {service: local}\n")
    for args in (["--cmd=echo hi", "--follow"], ["--cmd=true", "--hp=k=1,2", "--dry-run"]):
        done = singkit(root, "job.submit", *args)
        assert done.returncode == 0, done.stderr
    for path in ("reports/.gitkeep", "reports/job1/loss.png", "dockerfiles/.gitkeep", "dockerfiles/pytorch.Dockerfile",
                 "src/pkg/__pycache__/m.pyc", "examples/train.py"):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("x")
    return root


def singkit(root: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SINGKIT_")}
    environ.update(HOME=str(root), SINGKIT_HOME=str(root / ".singkit"), **extra)
    return subprocess.run([str(root / ".venv" / "bin" / "singkit"), *args], cwd=root, env=environ,
                          capture_output=True, text=True, timeout=120)


def test_make_clean_keeps_the_job_store(tmp_path):
    root = project(tmp_path)
    proc = make(root, "clean")
    assert proc.returncode == 0, proc.stderr
    assert (root / ".singkit" / "jobs" / "job1" / "runs" / "job1.1" / "run.log").is_file()
    assert (root / ".singkit" / "jobs" / "job2" / "job.yaml").is_file()
    assert (root / "reports" / ".gitkeep").is_file() and (root / "dockerfiles" / ".gitkeep").is_file()
    assert (root / "examples" / "train.py").is_file()
    for gone in (".venv", "reports/job1", "dockerfiles/pytorch.Dockerfile", "src/pkg/__pycache__"):
        assert not (root / gone).exists(), gone


def test_clean_store_without_a_terminal_needs_confirm(tmp_path):
    root = project(tmp_path)
    proc = make(root, "clean-store")
    assert proc.returncode != 0 and (root / ".singkit" / "jobs").is_dir()
    assert re.match(r"clean-store: \.singkit holds 2 job\(s\), 3 run\(s\), [\d.]+ kB: every job's logs, metrics "
                    r"and outputs\n$", proc.stdout), proc.stdout
    assert "run `make clean-store CONFIRM=1` to delete it" in proc.stderr
    proc = make(root, "clean-store", "CONFIRM=1")
    assert proc.returncode == 0 and not (root / ".singkit").exists(), proc.stderr
    assert re.search(r"^clean-store: deleted \.singkit: 2 job\(s\), 3 run\(s\), [\d.]+ kB$", proc.stdout, re.M)
    assert make(root, "clean-store").stdout == "clean-store: no job store at .singkit; nothing to delete\n"


@pytest.mark.parametrize("answer, kept", [("n", True), ("", True), ("y", False)])
def test_clean_store_asks_on_a_terminal(tmp_path, answer, kept):
    root = project(tmp_path)
    leader, follower = pty.openpty()
    try:
        os.write(leader, f"{answer}\n".encode())
        proc = make(root, "clean-store", stdin=follower)
    finally:
        os.close(leader)
        os.close(follower)
    assert proc.returncode == 0, proc.stderr
    assert "delete it? [y/N]" in proc.stdout
    assert (root / ".singkit").exists() == kept
    assert ("kept .singkit; nothing deleted" in proc.stdout) == kept


def test_clean_store_deletes_singkit_home_when_set(tmp_path):
    root = project(tmp_path / "p")
    store = tmp_path / "store"
    shutil.move(root / ".singkit", store)
    proc = make(root, "clean-store", "CONFIRM=1", SINGKIT_HOME=str(store))
    assert proc.returncode == 0 and not store.exists(), proc.stderr
    assert f"deleted {store}: 2 job(s), 3 run(s)" in proc.stdout


@pytest.mark.parametrize("home", ["reports/store", "reports", ".venv/store", "build/x"])
def test_make_clean_keeps_a_store_inside_what_it_deletes(tmp_path, home):
    """With SINGKIT_HOME=reports/store, `make clean` ran `rm -rf … reports/*/` over the store."""
    root = project(tmp_path)
    shutil.move(root / ".singkit", tmp_path / "moved")
    (root / home).mkdir(parents=True, exist_ok=True)  # reports/ exists: the store's folders go into it
    for part in (tmp_path / "moved").iterdir():
        shutil.move(part, root / home / part.name)
    proc = make(root, "clean", SINGKIT_HOME=home)
    assert proc.returncode == 0, proc.stderr
    assert (root / home / "jobs" / "job1" / "job.yaml").is_file() and (root / home / "jobs" / "job2").is_dir()
    kept = home.split("/")[0] + ("/" if home.startswith("reports/") else "")
    assert f"clean: kept {kept}" in proc.stdout, proc.stdout
    assert not (root / "dockerfiles" / "pytorch.Dockerfile").exists() and not (root / "src/pkg/__pycache__").exists()
    if home != "reports":
        assert not (root / "reports" / "job1").exists()


def test_clean_store_refuses_while_a_job_runs(tmp_path):
    """clean-store deleted the store under a running job: its processes went on, job.cancel could no
    longer find it, and its end recreated the store's index."""
    root = project(tmp_path)
    done = singkit(root, "job.submit", "--cmd=sleep 120")
    assert done.returncode == 0 and done.stdout == "job3\n", done.stderr
    proc = make(root, "clean-store", "CONFIRM=1")
    assert proc.returncode != 0 and (root / ".singkit" / "jobs" / "job3" / "job.yaml").is_file()
    assert proc.stderr.splitlines()[0] == ("clean-store: kept .singkit: job3 is running; cancel first "
                                           "(`invoke job.cancel job3`) or wait until they end"), proc.stderr
    assert proc.stdout == ""
    assert singkit(root, "job.cancel", "job3").returncode == 0
    proc = make(root, "clean-store", "CONFIRM=1")
    assert proc.returncode == 0 and not (root / ".singkit").exists(), proc.stderr
    assert "deleted .singkit: 3 job(s), 4 run(s)" in proc.stdout


def test_make_submit_says_the_job_ended_after_its_last_output_line(tmp_path):
    """"job1: 1 completed" came before the last epoch and "wrote …" lines: the live line announced
    the end while the run's output was still being relayed."""
    root = project(tmp_path)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SINGKIT_", "MAKEFLAGS", "MFLAGS"))}
    environ.update(HOME=str(root), SINGKIT_HOME=str(root / ".singkit"))
    for _ in range(2):  # far more output than one poll relays: the end is seen while it drains
        proc = subprocess.run([MAKE, "-s", "submit", "CMD=seq 1 30000; echo the end"], cwd=root, env=environ,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout[-2000:]
        lines = proc.stdout.splitlines()
        last = lines.index("the end")
        ended = [i for i, line in enumerate(lines) if re.match(r"job\d+:? .*completed", line)]
        assert ended and min(ended) > last, [lines[i] for i in ended]
        assert lines[last - 1] == "30000"


def test_make_help_names_every_target_and_variable():
    text = (REPO / "Makefile").read_text()
    targets = re.search(r"^\.PHONY:(.*)$", text, re.M).group(1).split()
    variables = re.findall(r"^([A-Z]+)\s*\?=", text, re.M)
    assert {"ARGS", "RUN", "JOB", "TARGET", "CONFIRM"} <= set(variables)
    shown = make(REPO, "help").stdout
    for target in targets:
        assert re.search(rf"make (\S+\|)?{re.escape(target)}\b", shown), target
    for variable in variables:
        assert f"{variable}=" in shown, variable
    assert "never the job store" in shown and "CONFIRM=1" in shown


def test_make_help_texts_start_in_one_column():
    """The first lines were one column left of the others; long commands pushed their text right."""
    columns = set()
    for line in make(REPO, "help").stdout.splitlines():
        if line.startswith("make ") and "  " in line:  # a command and its text
            columns.add(len(line) - len(line.split("  ", 1)[1].lstrip()))
        elif line.startswith(" ") and not line.lstrip().startswith("ARGS="):  # a text's next line
            columns.add(len(line) - len(line.lstrip()))
    assert len(columns) == 1, columns


def test_make_test_starts_the_services_as_root_then_runs_pytest_with_them(tmp_path):
    root = project(tmp_path)
    (root / ".ci").mkdir()
    # a stand-in for .ci/services.sh: what the recipe does with it, not what it installs
    (root / ".ci" / "services.sh").write_text(
        'echo ran >> "$(dirname "$0")/ran"; echo "services.sh: ready" >&2\n'
        'echo "export SINGKIT_TEST_AZURITE_CMD=/stand-in/azurite-blob" > "$(dirname "$0")/services.env"\n'
        'cat "$(dirname "$0")/services.env"\n')
    (root / ".venv" / "bin" / "pytest").write_text('#!/bin/sh\necho "pytest $* azurite=$SINGKIT_TEST_AZURITE_CMD"\n')
    (root / ".venv" / "bin" / "pytest").chmod(0o755)
    proc = make(root, "test", "ARGS=-k config")
    assert proc.returncode == 0, proc.stderr
    ran = (root / ".ci" / "ran").exists()
    if os.geteuid() == 0:
        assert ran and proc.stdout == "pytest -q -k config azurite=/stand-in/azurite-blob\n"  # sourced, not printed
        assert "installing and starting the test services" in proc.stderr
    else:
        assert not ran and proc.stdout == "pytest -q -k config azurite=\n"
    # services already in the environment (CI sourced them), or SERVICES=0: not started again
    (root / ".ci" / "ran").unlink(missing_ok=True)
    assert make(root, "test", SINGKIT_TEST_AZURITE_CMD="/ci/azurite").stdout == "pytest -q azurite=/ci/azurite\n"
    assert make(root, "test", "SERVICES=0").returncode == 0
    assert not (root / ".ci" / "ran").exists()


def test_make_test_lints_first_and_stops_on_a_finding(tmp_path):
    root = project(tmp_path)
    calls = root / ".venv" / "calls"
    (root / ".venv" / "bin" / "pytest").write_text(f'#!/bin/sh\necho "pytest $*" >> {calls}\n')
    (root / ".venv" / "bin" / "pytest").chmod(0o755)
    assert make(root, "test", "SERVICES=0").returncode == 0
    assert calls.read_text().splitlines() == ["ruff check --quiet src tests bench", "mypy --no-error-summary", "pytest -q"]
    calls.unlink()
    (root / ".venv" / "bin" / "mypy").write_text('#!/bin/sh\necho "src/singkit/x.py:1: error: planted  [misc]"; exit 1\n')
    proc = make(root, "test", "SERVICES=0")
    assert proc.returncode != 0 and "src/singkit/x.py:1: error: planted" in proc.stdout
    assert calls.read_text().splitlines() == ["ruff check --quiet src tests bench"]  # no pytest after a finding


def test_make_logs_and_cancel_take_a_run_alone(tmp_path):
    """README: `make logs RUN=job3.2` names the job by its run; an empty `--job=` used to refuse it."""
    root = project(tmp_path)
    logs = make(root, "-s", "logs", "RUN=job1.1", HOME=str(root), SINGKIT_HOME=str(root / ".singkit"))
    assert logs.returncode == 0 and "hi" in logs.stdout, logs.stderr
    cancel = make(root, "-s", "cancel", "RUN=job1.1", HOME=str(root), SINGKIT_HOME=str(root / ".singkit"))
    assert cancel.returncode == 0 and "no job given" not in cancel.stderr, cancel.stderr
