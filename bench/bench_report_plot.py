"""Benchmark: `report.plot` over 100 runs × 10,000 steps.
Goal: ≤ 1.5 × a bare pandas + seaborn script drawing the same data (bench/_baseline_plot.py).

Both are measured the same way in the same run: a fresh process each (imports included),
alternating, best and median of several rounds.

    python bench/bench_report_plot.py [--runs 100] [--steps 10000] [--rounds 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _stores  # noqa: E402

GOAL = 1.5


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} failed: {done.stderr.decode()[-800:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", help="generate the store here (and reuse it when it is already there)")
    args = parser.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-plot-"))
    home = root / ".singkit"
    env = {**os.environ, "SINGKIT_HOME": str(home), "HOME": str(root), "MPLBACKEND": "Agg"}
    try:
        if not (home / "jobs" / "job1").is_dir():
            start = time.perf_counter()
            _stores.big_curves(home, args.runs, args.steps)
            print(f"generated {args.runs} runs × {args.steps} steps in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        # like for like: the baseline draws a line per run, which is `--aggregate=none` (the default
        # draws repeats of an hparam set as their mean ± std, fewer lines: timed on its own line)
        plot_argv = [sys.executable, "-m", "singkit", "report.plot", "JOB=job1"]
        ours_argv = plot_argv + ["--aggregate=none"]
        base_argv = [sys.executable, str(HERE / "_baseline_plot.py"), str(home), "job1", str(root / "baseline.png")]
        ours, base = [], []
        for _ in range(args.rounds):
            ours.append(timed(ours_argv, root, env))
            base.append(timed(base_argv, root, env))
        default = [timed(plot_argv, root, env) for _ in range(2)]
        agg = [timed(plot_argv + ["--aggregate=mean", "--band=std", "--smooth=0.6"], root, env) for _ in range(2)]
        print(f"report.plot over {args.runs} runs × {args.steps:,} steps, 2 metrics "
              f"(load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs)")
        print(f"{'measurement':52} {'best s':>8} {'median s':>9}")
        for name, values in [("report.plot --aggregate none (a line per run)", ours), ("bare pandas + seaborn script", base),
                             ("report.plot (default: mean ± std per hparam set)", default),
                             ("report.plot --aggregate mean --band std --smooth 0.6", agg)]:
            print(f"{name:52} {min(values):8.2f} {statistics.median(values):9.2f}")
        ratio = min(ours) / min(base)
        print(f"goal ≤ {GOAL} × baseline: {ratio:.2f} × (median {statistics.median(ours) / statistics.median(base):.2f} ×) "
              f"-> {'MET' if ratio <= GOAL else 'MISSED'}")
        return 0 if ratio <= GOAL else 1
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
