"""Command-line start-up against a bare `invoke --version`, in one run (issue 14 item 4).

Goals (ratios of medians): `invoke --list` ≤ 1.2, `invoke config.validate` (the shipped config)
and `invoke job.status JOB` (a 6-run sweep written by tests/storegen.py) ≤ 1.4; `singkit --help`
≤ 1.5 (issue 2, kept by issue 13). `invoke --version` is invoke's own answer, given before it
loads tasks.py: Python and invoke's imports, the floor every command stands on.

Each command runs in a process of its own from the repo root, in interleaved rounds so all see
the same machine state. What is compared is CPU seconds (user + sys of the child,
getrusage(RUSAGE_CHILDREN)): the machine is shared, and wall time there measures the neighbours.

    .venv/bin/python bench/bench_cli_start.py [--quick] [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
INVOKE = str(Path(sys.executable).with_name("invoke"))
SINGKIT = str(Path(sys.executable).with_name("singkit"))
BASE = "invoke --version"
GOALS = {"invoke --list": 1.2, "invoke config.validate": 1.4, "invoke job.status job1": 1.4, "singkit --help": 1.5}


def cpu(argv: list[str], env: dict[str, str]) -> float:
    """CPU seconds (user + sys) of one run of argv, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--quick", action="store_true", help="7 rounds")
    args = parser.parse_args()
    rounds = 7 if args.quick else args.rounds

    import storegen

    commands = {BASE: [INVOKE, "--version"], "invoke --list": [INVOKE, "--list"],
                "invoke config.validate": [INVOKE, "config.validate"],
                "invoke job.status job1": [INVOKE, "job.status", "job1"], "singkit --help": [SINGKIT, "--help"]}
    with tempfile.TemporaryDirectory() as folder:
        storegen.sweep_job(Path(folder) / "store", "job1")
        env = {**os.environ, "SINGKIT_HOME": str(Path(folder) / "store"), "NO_COLOR": "1"}
        for argv in commands.values():
            cpu(argv, env)  # warm the page cache and the caches singkit keeps (.pyc, the SKU catalog)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(rounds):
            for name, argv in commands.items():
                times[name].append(cpu(argv, env))
    medians = {name: statistics.median(t) for name, t in times.items()}
    base = medians[BASE]
    load = os.getloadavg()[0]
    print(f"bench_cli_start: CPU seconds (user+sys) per command, median of {rounds} interleaved rounds; "
          f"load average {load:.2f}")
    met = True
    for name, median in medians.items():
        line = f"{name:<24} {median * 1000:7.1f} ms CPU"
        if name in GOALS:
            ratio, goal = median / base, GOALS[name]
            met = met and ratio <= goal
            line += f"  ratio {ratio:.2f} (goal ≤ {goal})  {'MET' if ratio <= goal else 'MISSED'}"
        print(line)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
