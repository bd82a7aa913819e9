"""The test helpers clean up after themselves: a failing job test leaves no process behind,
and the Chromium helper writes nothing into the real home folder. And the helpers have one home
each: no test module (nor benchmark) imports a test module, and the tests' Environment maker
`make_env` is defined in tests/jobtools.py only."""

from __future__ import annotations

import ast
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


def layout_faults(root: Path) -> list[str]:
    """file:line of each import of a test module (test_*) and each `make_env` not from
    tests/jobtools.py, under root/tests and root/bench; [] when there is none."""
    home = root / "tests" / "jobtools.py"
    faults = []
    for path in sorted([*(root / "tests").rglob("*.py"), *(root / "bench").rglob("*.py")]):
        where = path.relative_to(root)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            imported: list[tuple[str, str | None]] = []  # (dotted module, name bound as)
            if isinstance(node, ast.Import):
                imported = [(a.name, a.asname) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                imported = [(f"{base}.{a.name}".strip("."), a.asname or a.name) for a in node.names]
                if node.module and any(part.startswith("test_") for part in node.module.split(".")):
                    faults.append(f"{where}:{node.lineno}: imports the test module {node.module}")
                    continue
            for dotted, bound in imported:
                if isinstance(node, ast.Import) and any(part.startswith("test_") for part in dotted.split(".")):
                    faults.append(f"{where}:{node.lineno}: imports the test module {dotted}")
                elif isinstance(node, ast.ImportFrom) and dotted.rsplit(".", 1)[-1].startswith("test_"):
                    faults.append(f"{where}:{node.lineno}: imports the test module {dotted}")
                elif bound == "make_env" and dotted != "jobtools.make_env":
                    faults.append(f"{where}:{node.lineno}: binds make_env to {dotted}")
            defined = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "make_env"
            assigned = isinstance(node, (ast.Assign, ast.AnnAssign)) and any(
                isinstance(t, ast.Name) and t.id == "make_env"
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))
            if (defined or assigned) and path != home:
                faults.append(f"{where}:{node.lineno}: defines make_env (its one place is tests/jobtools.py)")
    return faults


def test_no_test_module_imports_another_and_make_env_has_one_home() -> None:
    assert layout_faults(TESTS.parent) == []


def test_the_layout_check_sees_each_kind_of_fault(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "bench").mkdir()
    (tmp_path / "tests" / "jobtools.py").write_text("def make_env(root):\n    return root\n")
    (tmp_path / "tests" / "test_a.py").write_text(
        "from test_b import helper\nimport tests.test_c\nfrom tests import test_d\nfrom . import test_e\n"
        "from singtools import sing_env as make_env\nfrom jobtools import make_env as fine\n")
    (tmp_path / "tests" / "storegen.py").write_text("def make_env(root):\n    return root\n")
    (tmp_path / "bench" / "bench_x.py").write_text("def main():\n    from test_f import x\n    make_env = x\n")
    assert layout_faults(tmp_path) == [
        "bench/bench_x.py:2: imports the test module test_f",
        "bench/bench_x.py:3: defines make_env (its one place is tests/jobtools.py)",
        "tests/storegen.py:1: defines make_env (its one place is tests/jobtools.py)",
        "tests/test_a.py:1: imports the test module test_b",
        "tests/test_a.py:2: imports the test module tests.test_c",
        "tests/test_a.py:3: imports the test module tests.test_d",
        "tests/test_a.py:4: imports the test module test_e",
        "tests/test_a.py:5: binds make_env to singtools.sing_env",
    ]
