"""Issue 13 (point 9): commands that only read create nothing — no `.singkit/`, no index, no
reports — whether they run outside any project or in a fresh clone that has no store yet."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from clirunner import cli

REPO = Path(__file__).resolve().parent.parent

# (arguments, expected exit code): reading an empty store is 0, naming a job it lacks is 2
READ_ONLY = [
    (["job.list"], 0), (["job.list", "--json"], 0), (["job.list", "--status", "running"], 0),
    (["job.status", "job1"], 2), (["job.logs", "job1"], 2), (["job.monitor", "job1"], 2),
    (["job.portal", "job1"], 2),
    (["report.list"], 0), (["report.list", "--jobs"], 0), (["report.list", "--json"], 0),
    (["report.metrics", "job1"], 2), (["report.log", "job1"], 2), (["report.errors"], 0),
    (["report.events"], 0), (["report.summary", "job1"], 2),
    (["config.show"], 0), (["config.validate"], 0), (["config.skus"], 0), (["config.schema"], 0),
]
FRESH_CLONE = [(["job.list"], 0), (["report.list"], 0), (["report.events"], 0), (["report.errors"], 0),
               (["config.show", "--target=local"], 0), (["config.validate"], 0)]


def tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.mark.parametrize("args, code", READ_ONLY, ids=[" ".join(a) for a, _ in READ_ONLY])
def test_read_only_command_outside_a_project_creates_nothing(tmp_path, args, code):
    folder, home = tmp_path / "empty", tmp_path / "home"
    folder.mkdir()
    home.mkdir()
    proc = cli(args, cwd=folder, env={"HOME": str(home)})
    assert proc.returncode == code, proc.stderr
    assert tree(folder) == []


@pytest.mark.parametrize("args, code", FRESH_CLONE, ids=[" ".join(a) for a, _ in FRESH_CLONE])
def test_read_only_command_in_a_fresh_clone_creates_nothing(tmp_path, args, code):
    project, home = tmp_path / "project", tmp_path / "home"  # (the user's ~/.cache may hold parsed configs)
    (project / "configs").mkdir(parents=True)
    shutil.copyfile(REPO / "configs" / "singkit.yaml", project / "configs" / "singkit.yaml")
    home.mkdir()
    proc = cli(args, cwd=project, env={"HOME": str(home)})
    assert proc.returncode == code, proc.stderr
    assert tree(project) == ["configs", "configs/singkit.yaml"]
