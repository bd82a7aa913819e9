"""Issue 13 (point 16): what singkit writes lands where a user expects it.

image.pin leaves blank lines and comments where they were (exact bytes of the shipped config);
rendered Dockerfiles and `report.list --export` files stay out of code snapshots.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest

import storegen
from clirunner import cli
from singkit.config import load_config
from singkit.environment import Environment
from singkit.images.pin import pin
from singkit.images.registry import RemoteImage
from singkit.snapshot import code_files
from storegen import RunSpec

REPO = Path(__file__).resolve().parent.parent
DIGEST = "sha256:" + "ab" * 32


def shipped_project(root: Path) -> Path:
    """The shipped config and .gitignore, as a fresh clone has them."""
    (root / "configs").mkdir(parents=True)
    shutil.copyfile(REPO / "configs" / "singkit.yaml", root / "configs" / "singkit.yaml")
    shutil.copyfile(REPO / ".gitignore", root / ".gitignore")
    return root / "configs" / "singkit.yaml"


def env_for(root: Path) -> Environment:
    return Environment(project_root=root, environ={"HOME": str(root)}, stdout=io.StringIO(), stderr=io.StringIO())


def inserted_after(text: str, line: str, new: str) -> str:
    """`text` with `new` inserted right after its only line equal to `line`."""
    lines = text.splitlines(keepends=True)
    index = [i for i, current in enumerate(lines) if current == line + "\n"]
    assert len(index) == 1, line
    return "".join(lines[:index[0] + 1] + [new + "\n"] + lines[index[0] + 1:])


@pytest.mark.parametrize("record, after", [
    ("python", "    image: python:3.11-slim"),                        # followed by a blank line
    ("pytorch", "      - RUN pip install --no-cache-dir torch==2.3.1 numpy"),  # by the next record's comment
])
def test_pin_keeps_blank_lines_and_comments_where_they_were(tmp_path, record, after):
    config = shipped_project(tmp_path)
    before = config.read_text()
    env = env_for(tmp_path)
    result = pin(env, load_config(env), record, RemoteImage(DIGEST, {}))
    assert result.file == config
    # byte for byte: the one new line right under the record's last line, nothing else moved
    assert config.read_text() == inserted_after(before, after, f"    sha256: {DIGEST}")


def test_pin_updates_an_existing_pin_in_place(tmp_path):
    config = shipped_project(tmp_path)
    env = env_for(tmp_path)
    pin(env, load_config(env), "python", RemoteImage(DIGEST, {}))
    first = config.read_text()
    other = "sha256:" + "cd" * 32
    pin(env, load_config(env), "python", RemoteImage(other, {}))
    assert config.read_text() == first.replace(DIGEST, other)


@pytest.mark.parametrize("git", [True, False], ids=["git-work-tree", "plain-folder"])
def test_generated_files_stay_out_of_the_code_snapshot(tmp_path, git):
    shipped_project(tmp_path)
    (tmp_path / "train.py").write_text("print('hi')\n")
    (tmp_path / "dockerfiles").mkdir()
    (tmp_path / "dockerfiles" / "pytorch.Dockerfile").write_text("FROM x\n")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "runs.csv").write_text("a\n")
    if git:
        subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    files = code_files(tmp_path, ["."], [])
    assert "train.py" in files and "configs/singkit.yaml" in files
    assert "dockerfiles/pytorch.Dockerfile" not in files
    assert "reports/runs.csv" not in files


def test_export_with_a_bare_name_goes_under_reports(tmp_path):
    shipped_project(tmp_path)
    storegen.write_job(tmp_path / ".singkit", "job1", [RunSpec({"lr": 0.1}, [(1, {"loss": 0.5})])])
    proc = cli(["report.list", "--runs", "--export", "runs.csv"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    written = tmp_path / "reports" / "runs.csv"
    assert written.is_file() and not (tmp_path / "runs.csv").exists()
    assert "hparams.lr" in written.read_text().splitlines()[0]
    assert proc.stdout == f"{written}\n"
    assert proc.stderr == "wrote 1 row(s) to reports/runs.csv\n"
    # an absolute path is used as written
    target = tmp_path / "elsewhere" / "runs.json"
    target.parent.mkdir()
    proc = cli(["report.list", "--runs", "--export", str(target)], cwd=tmp_path)
    assert proc.returncode == 0 and target.is_file(), proc.stderr
    help_text = " ".join(cli(["report.list", "--help"], cwd=tmp_path).stdout.split())
    assert "a relative FILE goes under reports/" in help_text
