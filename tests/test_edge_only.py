"""Only the edge talks to the process's own streams (ARCHITECTURE.md: only the edge prints):
library code writes through the Environment it was given (`env.err`, `env.warn`, `env.out`),
so an in-process CLI run, a test or the detached runner decides where its words go."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "singkit"
# the edges: the CLI and its tasks, the detached runner's entry point (its stderr is runner.log),
# the Environment's defaults, and data/ (the in-job wrapper: a program of its own in the image)
EDGES = ("tasks", "cli.py", "backends/runtime/runner.py", "environment.py", "data", "__main__.py")


def _library_files() -> list[Path]:
    return [p for p in sorted(SRC.rglob("*.py"))
            if not any(p.relative_to(SRC).as_posix().startswith(edge) for edge in EDGES)]


def _own_stream_uses(tree: ast.AST) -> list[int]:
    """Lines with `print(...)` or `sys.stdout` / `sys.stderr`."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
            lines.append(node.lineno)
        elif (isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr")
              and getattr(node.value, "id", None) == "sys"):
            lines.append(node.lineno)
    return lines


def test_library_code_never_writes_to_the_process_streams() -> None:
    offenders = [f"{p.relative_to(SRC)}:{line}" for p in _library_files() for line in _own_stream_uses(ast.parse(p.read_text()))]
    assert offenders == [], f"write through the Environment (env.err / env.warn / env.out): {offenders}"


# Library text that still spells a command, by file: config problems, notes and file headers that
# are not raised as a SingkitError yet (issue 12 item 5). This only shrinks: a new message names
# its command through `Hint` and lets the edge spell it.
NOT_YET_HINTS = {
    "backends/singularity/cancel.py": 1, "backends/singularity/preflight.py": 2, "config/amlt_import.py": 2,
    "config/amlt_jobs.py": 4, "config/schema.py": 1, "config/xt/__init__.py": 1, "config/xt/records.py": 2,
    "configcheck.py": 2, "imageref.py": 2, "images/pin.py": 1, "jobs/control.py": 1, "jobs/submit.py": 1,
    "reports/prefs.py": 1, "singularity/catalog.py": 2,
}


def _commands_spelled(tree: ast.AST) -> int:
    """String constants (docstrings aside) that spell `invoke TASK` or `make TARGET`."""
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return sum(1 for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
               and id(n) not in docs and re.search(r"(`|\(|^)(invoke [a-z]+\.|make [a-z])", n.value))


def test_library_messages_name_commands_as_hints() -> None:
    spelled = {}
    for path in _library_files():
        count = _commands_spelled(ast.parse(path.read_text()))
        if count:
            spelled[path.relative_to(SRC).as_posix()] = count
    grown = {f: n for f, n in spelled.items() if n > NOT_YET_HINTS.get(f, 0)}
    assert grown == {}, f"name the command with exceptions.Hint (the edge spells it): {grown}"


def test_the_edge_spells_a_hint() -> None:
    from singkit.environment import Environment
    from singkit.exceptions import Hint, JobFailed, UsageError
    from singkit.tasks._edge import describe

    env = Environment(project_root=SRC)
    error = UsageError("no local image x:1", hint=Hint.command("image.build", docker="x", say="; run {} first"))
    assert describe(error, env) == ("error: no local image x:1; run `invoke image.build --docker=x` first", 2)
    assert error.message == "no local image x:1" and error.hint.argv() == ["image.build", "--docker=x"]
    both = JobFailed("job3 failed", hint=Hint.command("job.status", "job3", say="; see {} and {}",
                                                       more=(Hint.command("job.logs", "job3"),)))
    assert describe(both, env)[0] == "error: job3 failed; see `invoke job.status job3` and `invoke job.logs job3`"
