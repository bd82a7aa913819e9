"""No import cycle in singkit, and no arrow from a lower layer up (issue 12; ARCHITECTURE.md).

Two checks, as pip-tools' tests/test_circular_imports.py does the first:
- every module imported ALONE in a fresh interpreter: a cycle between modules only shows on a cold
  import (whichever module of the cycle comes first decides whether it breaks), so each module
  gets its own subprocess; they run in a thread pool, since each spends its time in a child;
- the import graph read from the source (module-level AND function-level imports, so a lazy import
  that points upward counts too): no cycle between packages, and no package importing from a
  layer above its own. LAYERS is ARCHITECTURE.md's table as data; the two are kept in step.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import singkit

PACKAGE = Path(singkit.__file__).resolve().parent

# Layer of each part of singkit (a subpackage, or a module directly under singkit/), bottom = 0.
# A part may import from its own layer and the layers below it, never from above; and no two
# parts may import each other, even in one layer (that is a cycle between packages).
LAYERS: dict[str, int] = {
    # 0 leaves: no singkit imports above them
    **dict.fromkeys(("singkit", "exceptions", "environment", "refs", "fsutil", "fmt", "suggest", "imageref",
                     "timeouts", "outpaths", "procs", "gcpause", "macros", "backendkinds", "metrics", "data"), 0),
    # 1 store: job folders, the index, run.log, code snapshots
    **dict.fromkeys(("store", "snapshot", "snapfiles", "snaparchive", "statcache", "gitignore", "codetree"), 1),
    # 2 what singkit knows of Singularity targets and data mounts, over plain records
    **dict.fromkeys(("singularity", "mounts"), 2),
    # 3 config: layered YAML, schema, write-back, import; the checks over a whole config
    **dict.fromkeys(("config", "configcheck"), 3),
    "images": 4,
    "backends": 5,  # the local/docker runtime (backends/runtime/) lives here, beside its backends
    **dict.fromkeys(("jobs", "reports"), 6),
    **dict.fromkeys(("cli", "launch", "tasks", "__main__"), 7),
}

# `python -m singkit` runs the program when imported; it is the edge's entry, not a library module.
NOT_IMPORTED_ALONE = {"singkit.__main__"}


def _modules() -> dict[str, Path]:
    """Every module of singkit: dotted name -> source file (a package by its __init__.py)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ["singkit", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def part(module: str) -> str:
    """The layer table's key of a module: its subpackage, or the module under singkit/ itself."""
    names = module.split(".")
    return names[1] if len(names) > 1 else names[0]


def imported(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """(singkit module imported, line) for every import statement anywhere in the file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            # `from singkit.store import runlog` imports the module singkit.store.runlog
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for name in names:
            while name not in MODULES and "." in name:  # `import singkit.x.Name` names its module
                name = name.rpartition(".")[0]
            if name in MODULES:
                yield name, node.lineno


def part_edges() -> dict[tuple[str, str], list[str]]:
    """(importing part, imported part) -> the `module:line -> module` imports behind it."""
    edges: dict[tuple[str, str], list[str]] = {}
    for module, path in MODULES.items():
        for target, line in imported(module, path):
            if part(module) != part(target):
                edges.setdefault((part(module), part(target)), []).append(f"{module}:{line} -> {target}")
    return {key: sorted(set(why)) for key, why in edges.items()}


def test_every_part_of_singkit_has_a_layer():
    assert sorted({part(m) for m in MODULES} - set(LAYERS)) == []


def test_no_part_imports_from_a_layer_above_its_own():
    upward = [f"{a} (layer {LAYERS[a]}) -> {b} (layer {LAYERS[b]}): {', '.join(why)}"
              for (a, b), why in sorted(part_edges().items()) if LAYERS.get(a, 0) < LAYERS.get(b, 0)]
    assert not upward, "\n".join(upward)


def test_no_cycle_between_packages():
    edges = part_edges()
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)

    def reaches(start: str, goal: str) -> bool:
        seen, todo = {start}, [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    cyclic = [f"{a} -> {b}: {', '.join(why)}" for (a, b), why in sorted(edges.items()) if reaches(b, a)]
    assert not cyclic, "\n".join(cyclic)


@pytest.fixture(scope="module")
def cold_imports() -> dict[str, subprocess.CompletedProcess[str]]:
    """Each module imported in an interpreter of its own, with no PYTHON* variable set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}

    def one(module: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", f"import {module}"], env=env, capture_output=True,
                              text=True, timeout=120)

    wanted = [m for m in MODULES if m not in NOT_IMPORTED_ALONE]
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return dict(zip(wanted, pool.map(one, wanted)))


@pytest.mark.parametrize("module", [m for m in MODULES if m not in NOT_IMPORTED_ALONE])
def test_module_imports_alone_in_a_fresh_interpreter(module, cold_imports):
    done = cold_imports[module]
    assert done.returncode == 0, done.stderr.strip().splitlines()[-3:]
