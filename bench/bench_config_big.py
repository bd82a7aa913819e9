"""Benchmark (issue 15): a huge config validates in time linear in its size.

A 60,000-target config (~5 MB, one flow mapping per target) is validated cold (a fresh HOME:
no parsed-document cache, no validation seal) as `python -m singkit config.validate`, and so
is one with an eighth of the targets. Goal: the big one costs at most LINEAR_SLACK × 8 times
the small one (linear, with room for a loaded machine); anything quadratic costs ~64 times.
Pure-Python ruamel parses ~4,000 lines a second, so the big cold run takes a minute or two;
a warm run (the parsed document cached) is printed for information.

    .venv/bin/python bench/bench_config_big.py [--targets 60000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LINEAR_SLACK = 1.5
FRACTION = 8


def write_project(root: Path, targets: int) -> Path:
    config = root / "configs" / "singkit.yaml"
    config.parent.mkdir(parents=True)
    lines = ["compute-targets:"]
    lines += [f"  target-{i:05d}: {{service: local, nodes: 1, description: a target of the big config {i}}}"
              for i in range(targets)]
    config.write_text("\n".join(lines) + "\n")
    return config


def validate(root: Path, home: Path) -> float:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SINGKIT_", "XDG_"))}
    environ["HOME"] = str(home)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "singkit", "config.validate"], cwd=root, env=environ,
                            capture_output=True, text=True, timeout=1800)
    took = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"config.validate failed: {result.stderr.strip()}")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=60_000)
    parser.add_argument("--keep", type=Path, help="build the projects here and keep them")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="singkit-bench-big-"))
    try:
        small, big = work / "small", work / "big"
        write_project(small, args.targets // FRACTION)
        size = write_project(big, args.targets).stat().st_size
        t_small = validate(small, work / "home-small")
        t_big = validate(big, work / "home-big")
        t_warm = validate(big, work / "home-big")
        ratio = t_big / t_small
        goal = LINEAR_SLACK * FRACTION
        print(f"config.validate, cold: {args.targets // FRACTION:,} targets {t_small:.1f} s; {args.targets:,} targets "
              f"({size / 2**20:.1f} MB) {t_big:.1f} s; ratio {ratio:.1f} (goal ≤ {goal:.0f}: linear); warm {t_warm:.1f} s")
        return 0 if ratio <= goal else 1
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
