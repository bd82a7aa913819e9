"""Exit codes are one enum (DESIGN.md's table): scripts branch on them, so each value is pinned,
and no exit code is spelled as a bare number in the package."""

from __future__ import annotations

import ast
from pathlib import Path

from singkit.exceptions import (ConfigError, ExitStatus, JobCancelled, JobFailed, ServiceError, SingkitError,
                                UsageError)

SRC = Path(__file__).resolve().parents[1] / "src" / "singkit"


def test_the_codes_scripts_rely_on() -> None:
    assert {s.name: int(s) for s in ExitStatus} == {
        "OK": 0, "ERROR": 1, "USAGE": 2, "CANCELLED": 3, "SERVICE": 4, "INTERRUPTED": 130, "SIGPIPE": 141}
    assert [e.exit_code for e in (SingkitError, JobFailed, UsageError, ConfigError, JobCancelled, ServiceError)] == [
        ExitStatus.ERROR, ExitStatus.ERROR, ExitStatus.USAGE, ExitStatus.USAGE, ExitStatus.CANCELLED, ExitStatus.SERVICE]


def _literal_exit_codes(tree: ast.AST) -> list[int]:
    """Lines where an exit code is a number: `Exit(code=130)`, `SystemExit(0)`, `sys.exit(2)`,
    `exit_code = 4` in a class body, `return "…", 4` from the edge's describe."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            values = [*node.args[:1], *(k.value for k in node.keywords if k.arg == "code")]
            if name in ("Exit", "SystemExit", "exit") and any(isinstance(v, ast.Constant) and isinstance(v.value, int)
                                                               for v in values):
                found.append(node.lineno)
        elif isinstance(node, ast.ClassDef):
            for stmt in node.body:
                target = getattr(stmt, "target", None) or (stmt.targets[0] if isinstance(stmt, ast.Assign) else None)
                if (isinstance(target, ast.Name) and target.id == "exit_code"
                        and isinstance(getattr(stmt, "value", None), ast.Constant)
                        and isinstance(stmt.value.value, int)):
                    found.append(stmt.lineno)
        elif isinstance(node, ast.FunctionDef) and node.name in ("describe", "main", "run_job", "pipe_closed"):
            for ret in ast.walk(node):
                if isinstance(ret, ast.Return) and ret.value is not None:
                    last = ret.value.elts[-1] if isinstance(ret.value, ast.Tuple) else ret.value
                    if isinstance(last, ast.Constant) and isinstance(last.value, int):
                        found.append(ret.lineno)
    return found


def test_no_exit_code_is_a_bare_number() -> None:
    offenders = []
    # data/ runs inside the job's image with the standard library only (no singkit to import);
    # its codes are the wrapped command's, as a shell reports them (127: cannot start)
    for path in sorted(p for p in SRC.rglob("*.py") if "data" not in p.relative_to(SRC).parts):
        offenders += [f"{path.relative_to(SRC)}:{line}" for line in _literal_exit_codes(ast.parse(path.read_text()))]
    assert offenders == [], f"spell these as ExitStatus members: {offenders}"
