"""The test helpers clean up after themselves: a failing job test leaves no process behind,
and the Chromium helper writes nothing into the real home folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import services
from jobreaper import reap, store_processes

TESTS = Path(__file__).resolve().parent

FAILING_JOB_TEST = '''
from jobreaper import reaped  # noqa: F401
from jobtools import make_env, make_project, wait_for
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit


def test_fails_while_its_job_runs(tmp_path):
    env = make_env(make_project(tmp_path))
    job = submit(env, SubmitRequest(command='setsid sleep 301 & sleep 300', runs=2, parallel=1))
    wait_for(lambda: job.runs[0].state().status == "running" and job.runs[0].backend_info(), what="the run")
    assert False, "a test that fails with its job still running"
'''


def test_a_failing_job_test_leaves_no_process(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(FAILING_JOB_TEST)
    base = tmp_path / "inner"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SINGKIT_")}
    environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), environ.get("PYTHONPATH", "")) if p)
    try:
        inner = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={base}",
                                "test_inner.py"], cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=300)
        assert inner.returncode == 1 and "1 failed" in inner.stdout, inner.stdout + inner.stderr
        assert store_processes(base) == {}  # runner, wrapper, shell, sleep and the setsid escapee: all gone
        statuses = {p.parent.name: p.read_text().count('"cancelled"') for p in base.glob("**/runs/*/run.log")}
        assert sorted(statuses) == ["job1.1", "job1.2"] and all(statuses.values()), statuses
    finally:
        reap(base)  # whatever happened above, nothing outlives this test


def test_chromium_helper_keeps_out_of_the_real_home(chromium: services.Chromium, tmp_path: Path, monkeypatch) -> None:
    real_home = tmp_path / "real-home"
    real_home.mkdir()
    monkeypatch.setenv("HOME", str(real_home))
    for name in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(name, raising=False)
    page = tmp_path / "page.html"
    page.write_text("<p id=x>hello</p>")
    browser = services.Chromium(chromium.path, tmp_path / "chromium")
    assert "hello" in browser.dump_dom(page.as_uri())
    assert list(real_home.iterdir()) == []
    assert "--disable-crash-reporter" in browser.args()
    assert (tmp_path / "chromium" / "home").is_dir()
