"""Issue 14 (fix-jobs, point 2): a run.log that is a FIFO nobody reads (a damaged or tampered
store) makes the in-job writers fail at once with one line, not wait for a reader for ever."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ENTRY = REPO / "src" / "singkit" / "data" / "singkit_entry.py"
# a hang shows as TimeoutExpired: far longer than either writer needs, far shorter than for ever
LIMIT = 60

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")


def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "run.log"
    os.mkfifo(path)
    return path


def test_singkit_metrics_emit_into_a_fifo_fails_at_once_and_names_it(tmp_path: Path) -> None:
    log = fifo(tmp_path)
    script = "import singkit_metrics as sm; sm.log_metrics({'loss': 0.5}, step=1)"
    environ = {**os.environ, "SINGKIT_RUN_LOG": str(log), "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-c", script], env=environ, capture_output=True, text=True,
                          timeout=LIMIT, stdin=subprocess.DEVNULL)
    assert done.returncode != 0
    assert "cannot write the run log" in done.stderr and str(log) in done.stderr, done.stderr


def test_singkit_metrics_still_appends_to_a_regular_run_log(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    script = "import singkit_metrics as sm; sm.log_metrics({'loss': 0.5}, step=1); sm.log_metrics({'loss': 0.4})"
    environ = {**os.environ, "SINGKIT_RUN_LOG": str(log), "PYTHONPATH": str(REPO / "src")}
    subprocess.run([sys.executable, "-c", script], env=environ, check=True, timeout=LIMIT)
    assert len(log.read_text().splitlines()) == 2


def test_the_runner_entry_with_a_fifo_run_log_says_so_in_one_line_and_starts_nothing(tmp_path: Path) -> None:
    fifo(tmp_path)
    marker = tmp_path / "started"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SINGKIT_")}
    done = subprocess.run([sys.executable, str(ENTRY), "--run-dir", str(tmp_path), "--", "touch", str(marker)],
                          env=environ, capture_output=True, text=True, timeout=LIMIT, stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1 and "cannot write the run log" in done.stderr, done.stderr
    assert not marker.exists()  # no outcome could be recorded: the command was not run


def test_the_in_job_writers_do_not_write_through_a_link_put_in_place_of_run_log(tmp_path: Path) -> None:
    outside = tmp_path / "outside.log"
    outside.write_text("")
    log = tmp_path / "run.log"
    log.symlink_to(outside)
    environ = {**os.environ, "SINGKIT_RUN_LOG": str(log), "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-c", "import singkit_metrics as sm; sm.log_metrics({'loss': 0.5})"],
                          env=environ, capture_output=True, text=True, timeout=LIMIT, stdin=subprocess.DEVNULL)
    assert done.returncode != 0 and "cannot write the run log" in done.stderr, done.stderr
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SINGKIT_")}
    done = subprocess.run([sys.executable, str(ENTRY), "--run-dir", str(tmp_path), "--", "true"],
                          env=environ, capture_output=True, text=True, timeout=LIMIT, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert outside.read_text() == ""
