"""`invoke --list` wall time against a bare `invoke --version`, in one run (goal: ratio ≤ 1.5).

Both are run alternately from the repo root, so they see the same machine state; the median
of each is compared.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INVOKE = str(Path(sys.executable).with_name("invoke"))
GOAL = 1.5
ROUNDS = 15


def wall(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> int:
    for argv in ([INVOKE, "--version"], [INVOKE, "--list"]):
        wall(argv)  # warm the page cache and .pyc files
    bare, listing = [], []
    for _ in range(ROUNDS):
        bare.append(wall([INVOKE, "--version"]))
        listing.append(wall([INVOKE, "--list"]))
    b, l = statistics.median(bare), statistics.median(listing)
    ratio = l / b
    print(f"invoke --version  median {b * 1000:7.1f} ms  ({ROUNDS} runs)")
    print(f"invoke --list     median {l * 1000:7.1f} ms  ({ROUNDS} runs)")
    print(f"ratio {ratio:.2f}  (goal ≤ {GOAL})  {'OK' if ratio <= GOAL else 'OVER GOAL'}")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
