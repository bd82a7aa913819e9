"""Issue 13 (point 10): `import singkit_metrics as sm` — the README's in-job snippet — works in
a script run directly in the project's venv, and logs to a local run folder there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SNIPPET = """\
import singkit_metrics as sm
sm.log_hparams({"lr": 0.1})
sm.log_metrics({"loss": 0.5, "acc": 0.8}, step=10)
(sm.outputs_dir() / "model.txt").write_text("w")
"""


def run_script(cwd: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    """The venv's python, as a user runs it: no PYTHONPATH, no singkit job variables."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("SINGKIT_")}
    environ.update(extra)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=120)


def project(root: Path) -> Path:
    (root / "configs").mkdir(parents=True)
    shutil.copyfile(REPO / "configs" / "singkit.yaml", root / "configs" / "singkit.yaml")
    return root


def only_run(root: Path) -> Path:
    runs = list((root / "local-runs").iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def test_the_readme_snippet_runs_in_the_venv_and_logs_to_a_local_run(tmp_path):
    root = project(tmp_path / "proj")
    (root / "src").mkdir()
    proc = run_script(root / "src", "-c", SNIPPET)  # from a subfolder: the project's store all the same
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # stdout is the script's own
    run = only_run(root / ".singkit")
    assert proc.stderr == (f"singkit_metrics: not inside a singkit job; logging to "
                           f"{run / 'run.log'}\n")
    events = [json.loads(line) for line in (run / "run.log").read_text().splitlines()]
    assert [(e["event"], e.get("hparams") or e.get("metrics")) for e in events] == [
        ("hparams", {"lr": 0.1}), ("metrics", {"loss": 0.5, "acc": 0.8})]
    assert events[1]["step"] == 10
    assert (run / "outputs" / "model.txt").read_text() == "w"
    assert sorted(p.name for p in root.iterdir()) == [".singkit", "configs", "src"]


def test_singkit_home_and_no_project(tmp_path):
    folder = tmp_path / "anywhere"
    folder.mkdir()
    proc = run_script(folder, "-c", SNIPPET)
    assert proc.returncode == 0 and proc.stdout == "", proc.stderr
    assert "logging to .singkit/local-runs/" in proc.stderr  # relative to where it ran
    assert (only_run(folder / ".singkit") / "run.log").is_file()
    proc = run_script(folder, "-c", SNIPPET, SINGKIT_HOME=str(tmp_path / "store"))
    assert proc.returncode == 0, proc.stderr
    assert (only_run(tmp_path / "store") / "outputs" / "model.txt").is_file()


def test_the_example_imports_it_plainly_and_runs_in_the_venv(tmp_path):
    source = (REPO / "examples" / "train.py").read_text()
    assert "import singkit_metrics as metrics" in source and "from singkit import metrics" not in source
    root = project(tmp_path / "proj")
    proc = run_script(root, str(REPO / "examples" / "train.py"), "--epochs", "1", "--step-time", "0")
    assert proc.returncode == 0, proc.stderr
    assert "singkit_metrics" not in proc.stdout
    run = only_run(root / ".singkit")
    assert (run / "outputs" / "model.json").is_file() and (run / "run.log").stat().st_size > 0


def test_the_package_ships_the_top_level_module():
    """A wheel carries src/singkit_metrics.py as `singkit_metrics` (pyproject), and
    `singkit.metrics` is the same code, not a second copy."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["py-modules"] == ["singkit_metrics"] and setuptools["package-dir"] == {"": "src"}
    import singkit_metrics
    from singkit import metrics

    assert Path(singkit_metrics.__file__).resolve() == REPO / "src" / "singkit_metrics.py"
    assert metrics.emit is singkit_metrics.emit and metrics.outputs_dir is singkit_metrics.outputs_dir
