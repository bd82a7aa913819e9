"""`invoke --list` and `singkit --help` wall time against a bare `invoke --version`, in one run
(goal: each ratio ≤ 1.5; issue 2, kept by issue 13).

All are run in turn from the repo root, so they see the same machine state; the median of
each is compared. `invoke --list` loads tasks.py, which hands the command line to singkit's
program; `singkit --help` is that program's own help (its core options and the task list).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INVOKE = str(Path(sys.executable).with_name("invoke"))
SINGKIT = str(Path(sys.executable).with_name("singkit"))
GOAL = 1.5
ROUNDS = 15


def wall(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> int:
    commands = {"invoke --version": [INVOKE, "--version"], "invoke --list": [INVOKE, "--list"],
                "singkit --help": [SINGKIT, "--help"]}
    for argv in commands.values():
        wall(argv)  # warm the page cache and .pyc files
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(ROUNDS):
        for name, argv in commands.items():
            times[name].append(wall(argv))
    medians = {name: statistics.median(t) for name, t in times.items()}
    base = medians["invoke --version"]
    met = True
    for name, median in medians.items():
        line = f"{name:<17} median {median * 1000:7.1f} ms  ({ROUNDS} runs)"
        if name != "invoke --version":
            ratio = median / base
            met = met and ratio <= GOAL
            line += f"  ratio {ratio:.2f} (goal ≤ {GOAL})  {'MET' if ratio <= GOAL else 'MISSED'}"
        print(line)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
