"""Benchmark: `report.plot` over 100 runs × 10,000 steps.
Goal (issue 14): ≤ 0.5 × a bare pandas + seaborn script drawing the same data (bench/_baseline_plot.py).

Both are measured the same way in the same run: a fresh process each (imports included),
alternating, best and median of several rounds. The goal is judged on CPU seconds (user + sys of
the child, getrusage): on a shared machine wall time is mostly the neighbours' load. Wall seconds
are printed too.

    python bench/bench_report_plot.py [--runs 100] [--steps 10000] [--rounds 3] [--keep DIR] [--quick]
"""

from __future__ import annotations

import argparse
import os
import resource
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

GOAL = 0.5


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one fresh process running `argv`."""
    cpu, start = _child_cpu(), time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed, cpu = time.perf_counter() - start, _child_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} failed: {done.stderr.decode()[-800:]}")
    return cpu, elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", help="generate the store here (and reuse it when it is already there)")
    parser.add_argument("--quick", action="store_true", help="one round, and only the goal's two commands")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 1
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
        rows = [("report.plot --aggregate none (a line per run)", ours), ("bare pandas + seaborn script", base)]
        if not args.quick:
            rows += [("report.plot (default: mean ± std per hparam set)", [timed(plot_argv, root, env) for _ in range(2)]),
                     ("report.plot --aggregate mean --band std --smooth 0.6",
                      [timed(plot_argv + ["--aggregate=mean", "--band=std", "--smooth=0.6"], root, env) for _ in range(2)])]
        print(f"report.plot over {args.runs} runs × {args.steps:,} steps, 2 metrics "
              f"(load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs)")
        print(f"{'measurement':52} {'best CPU s':>10} {'median CPU s':>12} {'best wall s':>11}")
        for name, values in rows:
            cpu = [c for c, _ in values]
            print(f"{name:52} {min(cpu):10.2f} {statistics.median(cpu):12.2f} {min(w for _, w in values):11.2f}")
        ratio = min(c for c, _ in ours) / min(c for c, _ in base)
        median = statistics.median(c for c, _ in ours) / statistics.median(c for c, _ in base)
        wall = min(w for _, w in ours) / min(w for _, w in base)
        print(f"goal report.plot ≤ {GOAL} × the bare script (CPU): {ratio:.2f} × (median {median:.2f} ×, wall {wall:.2f} ×) "
              f"-> {'MET' if ratio <= GOAL else 'MISSED'}")
        return 0 if ratio <= GOAL else 1
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
