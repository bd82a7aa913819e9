"""The task surface a newcomer meets: `invoke --list`, per-task help, Make-style JOB= words."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clirunner import run_singkit

ROOT = Path(__file__).resolve().parents[1]
INVOKE = str(Path(sys.executable).with_name("invoke"))


def test_invoke_list_shows_the_four_collections_each_task_with_help():
    result = subprocess.run([INVOKE, "--list"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("  ") and not ln.startswith("    ")]
    names = [ln.split()[0] for ln in lines]
    assert {n.split(".")[0] for n in names} == {"config", "image", "job", "report"}
    assert len(lines) == len([ln for ln in lines if len(ln.split()) > 1]), "a task without one line of help"
    for expected in ("image.wrap", "job.submit", "job.monitor", "job.cancel", "report.plot", "config.validate"):
        assert expected in names


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_of_a_task_with_a_positional_job(flag):
    result = subprocess.run([INVOKE, "job.status", flag], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Options:" in result.stdout and "-j JOB, --job=JOB" in result.stdout and result.stderr == ""


@pytest.mark.parametrize("form", [["JOB=job7"], ["--job=job7"], ["job7"]])
def test_a_job_is_named_as_a_make_word_or_a_flag(tmp_path, form):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "singkit.yaml").write_text("general: {experiment: x}\n")
    result = run_singkit(["job.status", *form], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: no job `job7`"), result.stderr
