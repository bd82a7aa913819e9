"""Issue 13 ("Done when"): the README's tour, typed top to bottom in a fresh copy of the
project, does what the README says it does.

Only marked blocks count, so the rest of the README can change freely:

    <!-- tour -->                 a ```sh block: each line is a command, run in order (its `# …`
                                  comment is dropped), which must exit 0; or a ```python block,
                                  run with the venv's python, which must exit 0 and print nothing
    <!-- tour-output: COMMAND --> a ```text block: lines that must appear, in this order, in what
                                  COMMAND (run earlier) printed — stdout and stderr as a terminal
                                  shows them; `…` stands for anything, and a line of `…` alone
                                  for any number of lines; runs of spaces match any spacing

The copy holds the project's files (git's view of the working tree: tracked and new files,
nothing ignored). Its `.venv` borrows this venv's programs with the setup stamp set, so
`make submit` skips the pip install a real fresh clone does; everything after that is the
real thing: make, the tasks, the job runner, train.py, seaborn.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from jobreaper import reaped  # noqa: F401  (autouse: a job the tour leaves running ends with the test)

REPO = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^<!-- (?P<mark>tour|tour-output: (?P<cmd>[^\n]+?)) -->\n```(?P<lang>\w*)\n(?P<body>.*?)^```",
                   re.M | re.S)
NOT_RUN = {"make test": "it runs this very suite"}


@dataclass
class Block:
    kind: str  # "sh", "python" or "output"
    body: str
    command: str = ""  # of an output block
    lines: list[str] = field(default_factory=list)


def tour_blocks(readme: str) -> list[Block]:
    blocks = []
    for match in BLOCK.finditer(readme):
        if match["cmd"]:
            blocks.append(Block("output", match["body"], match["cmd"].strip()))
        else:
            blocks.append(Block(match["lang"] or "sh", match["body"]))
    return blocks


def commands(block: Block) -> list[str]:
    """The commands of a sh block, without their comments."""
    found = []
    for line in block.body.splitlines():
        line = re.sub(r"(^|\s+)#\s.*$", "", line).strip()
        if line:
            found.append(line)
    return found


def line_pattern(shown: str) -> re.Pattern[str]:
    parts = [re.sub(r"(\\\s)+", r"\\s+", re.escape(part.strip())) for part in shown.split("…")]
    return re.compile(r"\s*" + ".*".join(parts) + r"\s*")


def assert_shows(printed: str, shown: str, command: str) -> None:
    """Every line of `shown` matches a line of `printed`, in order; a `…` line skips any lines."""
    lines, at = printed.splitlines(), 0
    for want in [w for w in shown.splitlines() if w.strip() and w.strip() != "…"]:
        pattern = line_pattern(want)
        while at < len(lines) and not pattern.fullmatch(lines[at]):
            at += 1
        assert at < len(lines), f"README says `{command}` shows {want!r}; it printed:\n{printed}"
        at += 1


def fresh_copy(root: Path) -> Path:
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout.decode().split("\0")
    files = [name for name in listed if name and os.path.lexists(REPO / name)]
    root.mkdir(parents=True)
    copied = subprocess.run(["cp", "-a", "--parents", "-t", str(root), *files], cwd=REPO, capture_output=True, text=True)
    assert copied.returncode == 0, copied.stderr
    venv = root / ".venv"
    venv.mkdir()
    for part in ("bin", "lib", "lib64", "include"):  # the programs and the site-packages they import
        if (Path(sys.prefix) / part).exists():
            (venv / part).symlink_to(Path(sys.prefix) / part)
    if (Path(sys.prefix) / "pyvenv.cfg").is_file():  # tests run from the project's venv, as make test runs them
        (venv / "pyvenv.cfg").write_text((Path(sys.prefix) / "pyvenv.cfg").read_text())
    (venv / ".singkit-setup").touch()  # newer than the copied pyproject.toml: make setup is done
    return root


def test_the_readme_tour(tmp_path):
    blocks = tour_blocks((REPO / "README.md").read_text())
    assert [b.kind for b in blocks].count("sh") >= 2 and any(b.kind == "output" for b in blocks), \
        "the README's tour blocks are not marked (<!-- tour --> before a ```sh block)"
    project, home = fresh_copy(tmp_path / "clone"), tmp_path / "home"
    home.mkdir()
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("SINGKIT_", "VIRTUAL_ENV", "MAKEFLAGS", "MFLAGS", "PYTHONPATH"))}
    environ.update(HOME=str(home), PATH=f"{project / '.venv' / 'bin'}{os.pathsep}{environ.get('PATH', '')}",
                   SINGKIT_HOME=str(project / ".singkit"),  # the default, said so the reaper finds its jobs
                   COLUMNS="120")
    printed: dict[str, str] = {}
    ran = 0
    for block in blocks:
        if block.kind == "output":
            assert block.command in printed, f"tour-output for `{block.command}`, which the tour has not run yet"
            assert_shows(printed[block.command], block.body, block.command)
            continue
        if block.kind == "python":
            proc = subprocess.run([str(project / ".venv" / "bin" / "python"), "-c", block.body], cwd=project,
                                  env=environ, capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0 and proc.stdout == "", (block.body, proc.stdout, proc.stderr)
            ran += 1
            continue
        for command in commands(block):
            if command in NOT_RUN:
                continue
            proc = subprocess.run(["bash", "-c", command], cwd=project, env=environ, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
            assert proc.returncode == 0, f"`{command}` exited {proc.returncode}:\n{proc.stdout}"
            printed[command] = proc.stdout
            ran += 1
    assert ran >= 5


def test_tour_blocks_are_found_and_matched():
    """The extraction and matching the tour relies on (no project needed)."""
    readme = ("text\n<!-- tour -->\n```sh\nmake a   # comment\n\nmake b\n```\n<!-- tour-output: make a -->\n"
              "```text\nfirst\n…\nlast … s\n```\n```sh\nnot marked\n```\n")
    blocks = tour_blocks(readme)
    assert [(b.kind, b.command) for b in blocks] == [("sh", ""), ("output", "make a")]
    assert commands(blocks[0]) == ["make a", "make b"]
    assert_shows("noise\nfirst\nx\ny\nlast  one in 8.4 s\n", blocks[1].body, "make a")
    with pytest.raises(AssertionError, match="README says `make a` shows 'last … s'"):
        assert_shows("first\nlast\n", blocks[1].body, "make a")
