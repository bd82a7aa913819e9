"""Benchmark: code snapshots against the tools a researcher would compare them with (issue 14).

Goals, each measured side by side in one run (interleaved rounds, medians of --repeat), in CPU
seconds (user + sys: of the child processes, or of this process's threads for `take`), since
wall time on a shared machine is noise:
  - an unchanged dry-run resubmit of a 10k-file project, minus the same command on a 1-file
    project (interpreter, config and store costs cancel out), ≤ 5 × `find -printf` of the tree
    (a stat of every file: the least any "what changed?" check can do); both projects have
    GitHub's Python .gitignore and are no git work trees, so singkit matches its patterns itself;
  - the first snapshot of that tree (singkit.snapshot.take into an empty store) ≤ 1.0 × `tar czf`
    (tar and gzip's CPU together); both archives' sizes are printed beside it. singkit writes
    gzip level 1 (snaparchive.LEVEL says why), `tar czf` level 6: a row for take at level 6 shows
    what the level buys, and is no goal.
Wall seconds are printed too, for the record.

    .venv/bin/python bench/bench_snapshot.py [--files 10000] [--repeat 5] [--quick]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESUBMIT_GOAL = 5.0
FIRST_GOAL = 1.0
CONFIG = "general:\n  experiment: bench\ncompute-targets:\n  local:\n    service: local\n"
# a project has a .gitignore: the patterns of GitHub's Python template (github/gitignore), one line each
GITIGNORE = """__pycache__/ *.py[cod] *$py.class *.so .Python build/ develop-eggs/ dist/ downloads/ eggs/ .eggs/ lib/
lib64/ parts/ sdist/ var/ wheels/ share/python-wheels/ *.egg-info/ .installed.cfg *.egg MANIFEST *.manifest *.spec
pip-log.txt pip-delete-this-directory.txt htmlcov/ .tox/ .nox/ .coverage .coverage.* .cache nosetests.xml
coverage.xml *.cover *.py,cover .hypothesis/ .pytest_cache/ cover/ *.mo *.pot *.log local_settings.py db.sqlite3
db.sqlite3-journal instance/ .webassets-cache .scrapy docs/_build/ .pybuilder/ target/ .ipynb_checkpoints
profile_default/ ipython_config.py .pdm.toml __pypackages__/ celerybeat-schedule celerybeat.pid *.sage.py .env
.venv env/ venv/ ENV/ env.bak/ venv.bak/ .spyderproject .spyproject .ropeproject /site .mypy_cache/ .dmypy.json
dmypy.json .pyre/ .pytype/ cython_debug/""".split()


def make_project(root: Path, files: int) -> Path:
    rng = random.Random(1)
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "singkit.yaml").write_text(CONFIG)
    (root / ".gitignore").write_text("\n".join(GITIGNORE) + "\n")  # not a git work tree: singkit matches it
    words = [f"name_{k}" for k in range(200)]
    for k in range(files):
        path = root / "src" / f"pkg{k % 100}" / f"module_{k}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(f"{rng.choice(words)} = {rng.random()!r}" for _ in range(rng.randint(2, 40))) + "\n")
    old = time.time_ns() - 3600 * 10**9  # written an hour ago, as a real project's files are
    for path in root.rglob("*"):
        os.utime(path, ns=(old, old))
    return root


def _children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """(CPU seconds of the command's processes, wall seconds)."""
    cpu, start = _children(), time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return _children() - cpu, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 rounds (the goals are the same)")
    args = parser.parse_args()
    repeat = 3 if args.quick else args.repeat
    from singkit import snaparchive
    from singkit.snapshot import take

    work = Path(tempfile.mkdtemp(prefix="bench-snapshot-"))
    try:
        big, small = make_project(work / "big", args.files), make_project(work / "small", 1)
        env = {**os.environ, "SINGKIT_HOME": str(work / "store"), "HOME": str(work)}
        submit = [sys.executable, "-m", "singkit", "job.submit", "--target=local", "--dry-run", "--cmd=echo hi"]
        for proj in (big, small):
            timed(submit, proj, env)  # the first snapshot of each, and warm caches
        rounds: dict[str, list[tuple[float, float]]] = {"find": [], "tar": [], "first": [], "first6": [], "big": [], "small": []}
        sizes = {}
        for k in range(repeat):
            rounds["find"].append(timed(["find", str(big / "src"), "-printf", "%s %T@ %p\\n"], work))
            rounds["big"].append(timed(submit, big, env))
            rounds["small"].append(timed(submit, small, env))
            rounds["tar"].append(timed(["tar", "czf", str(work / f"t{k}.tgz"), "-C", str(big), "src"], work))
            cpu, start = time.process_time(), time.perf_counter()  # every thread of this process (gzip's too)
            snap = take(big, ["src"], [], work / f"fresh{k}" / "snapshots", cache_dir=work / f"fresh{k}" / "cache")  # as a submit
            rounds["first"].append((time.process_time() - cpu, time.perf_counter() - start))
            chosen, snaparchive.LEVEL = snaparchive.LEVEL, 6
            try:
                cpu, start = time.process_time(), time.perf_counter()
                snap6 = take(big, ["src"], [], work / f"level6-{k}" / "snapshots", cache_dir=work / f"level6-{k}" / "cache")
                rounds["first6"].append((time.process_time() - cpu, time.perf_counter() - start))
            finally:
                snaparchive.LEVEL = chosen
            sizes = {"tar": (work / f"t{k}.tgz").stat().st_size, "first": snap.path.stat().st_size,
                     "first6": snap6.path.stat().st_size}
        cpu = {name: statistics.median(c for c, _ in values) for name, values in rounds.items()}
        wall = {name: statistics.median(w for _, w in values) for name, values in rounds.items()}
        resubmit = max(cpu["big"] - cpu["small"], 0.0)
        print(f"code snapshots of a {args.files:,}-file project (median of {repeat}; "
              f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs)")
        print(f"{'':44} {'CPU s':>8} {'wall s':>8}")
        for name, label in (("find", "find -printf (stat every file)"), ("big", f"dry-run resubmit, unchanged, {args.files} files"),
                            ("small", "dry-run resubmit, 1-file project"), ("tar", "tar czf of the tree"),
                            ("first", f"first snapshot (take, empty store), level {snaparchive.LEVEL}"),
                            ("first6", "  the same at tar's level 6 (no goal)")):
            print(f"{label:44} {cpu[name]:8.3f} {wall[name]:8.3f}" + (f"   {sizes[name] / 1e6:.2f} MB" if name in sizes else ""))
        r1, r2 = resubmit / cpu["find"], cpu["first"] / cpu["tar"]
        print(f"unchanged resubmit cost {resubmit:.3f} CPU s = {r1:.2f} × find (goal ≤ {RESUBMIT_GOAL}) "
              f"-> {'MET' if r1 <= RESUBMIT_GOAL else 'MISSED'}")
        print(f"first snapshot {r2:.2f} × tar czf in CPU s, archive {sizes['first'] / sizes['tar']:.2f} × its size "
              f"(goal ≤ {FIRST_GOAL}) -> {'MET' if r2 <= FIRST_GOAL else 'MISSED'}")
        return 0 if r1 <= RESUBMIT_GOAL and r2 <= FIRST_GOAL else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
