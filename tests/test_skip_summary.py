"""Issue 13 (point 6): tests skipped for a missing service are said in ONE summary line naming
the services and the one command that installs them — not the same hint once per test — and
still fail under SINGKIT_REQUIRE_SERVICES=1 (CI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
CONFTEST = f"""\
import sys
sys.path.insert(0, {str(TESTS)!r})
from skipsummary import pytest_terminal_summary  # noqa: F401  (as tests/conftest.py does)
"""
TESTS_FILE = """\
import pytest
import services

@pytest.mark.parametrize("n", range(4))
def test_needs_the_engine(n):
    services.require_service("docker engine", "Cannot connect to unix:///nowhere.sock")

def test_needs_azurite():
    services.require_service("azurite", "azurite-blob not found (npm azurite@3.35.0)")

def test_skipped_for_another_reason():
    pytest.skip("not on this platform")

def test_passes():
    pass
"""


def run_pytest(folder: Path, **extra: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "SINGKIT_REQUIRE_SERVICES"}
    environ.update(extra)
    return subprocess.run([sys.executable, "-m", "pytest", "-ra", "-p", "no:cacheprovider", "--rootdir", str(folder),
                           "-c", os.devnull, str(folder)], cwd=folder, env=environ, capture_output=True, text=True,
                          timeout=120)


def make_suite(tmp_path: Path) -> Path:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_needs.py").write_text(TESTS_FILE)
    return tmp_path


def test_service_skips_are_one_line(tmp_path):
    proc = run_pytest(make_suite(tmp_path))
    assert proc.returncode == 0, proc.stdout
    lines = proc.stdout.splitlines()
    hinted = [line for line in lines if ".ci/services.sh" in line]
    command = "bash .ci/services.sh" if os.geteuid() == 0 else "sudo bash .ci/services.sh"
    assert hinted == [f"5 tests skipped for want of docker engine (4), azurite (1): `{command}` installs and "
                      f"starts them, then `make test` again"], proc.stdout
    # the skip for another reason is still listed by -ra; the service skips are not
    assert [line for line in lines if line.startswith("SKIPPED")] == [
        next(line for line in lines if "not on this platform" in line)]
    assert "1 passed, 6 skipped" in lines[-1]


def test_required_services_fail_and_are_not_summarised(tmp_path):
    proc = run_pytest(make_suite(tmp_path), SINGKIT_REQUIRE_SERVICES="1")
    assert proc.returncode == 1
    assert "5 failed, 1 passed, 1 skipped" in proc.stdout.splitlines()[-1]
    assert "skipped for want of" not in proc.stdout
