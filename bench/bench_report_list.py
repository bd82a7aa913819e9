"""Benchmark: `report.list` over a store of 10,000 runs. Goal: ≤ 0.5 s.

Measured as a user sees it: the whole `python -m singkit report.list` process (interpreter,
invoke, reading the store, the 10,000-row table on stdout), with the store's index warm —
the state of any store that has been listed once. The cold first listing (every run.log
parsed, the cache filled) and an in-process figure are printed too, for the record.
Each figure is the best of several runs (the machine may be busy with other work).

    python bench/bench_report_list.py [--jobs 100] [--runs-per-job 100] [--keep DIR]
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import _stores  # noqa: E402

GOAL = 0.5


CPU: list[float] = []  # CPU seconds of each CLI run: less sensitive than wall time to a busy machine


def cli(home: Path, *args: str) -> float:
    env = {**os.environ, "SINGKIT_HOME": str(home), "HOME": str(home.parent)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "singkit", "report.list", *args], cwd=home.parent, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"report.list failed: {done.stderr.decode()[-500:]}")
    return elapsed


def in_process(home: Path) -> float:
    from singkit.environment import Environment
    from singkit.reports import render, views

    env = Environment(project_root=home.parent, environ={"SINGKIT_HOME": str(home), "HOME": str(home.parent)},
                      stdout=io.StringIO(), stderr=io.StringIO())
    start = time.perf_counter()
    table = views.list_table(env)
    render.render_text(table.columns, table.rows, table.footer, table.labels)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--runs-per-job", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--keep", help="generate the store here (and reuse it when it is already there)")
    args = parser.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-list-"))
    home = root / ".singkit"
    try:
        if not (home / "jobs").is_dir():
            start = time.perf_counter()
            total = _stores.many_runs(home, args.jobs, args.runs_per_job)
            print(f"generated {total} runs ({args.jobs} jobs) in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        total = args.jobs * args.runs_per_job
        for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):  # cold: no folds kept yet
            (home / name).unlink(missing_ok=True)
        cold = cli(home)
        cold_cpu = CPU[-1]
        warm = [cli(home) for _ in range(args.repeat)]
        warm_cpu = CPU[-args.repeat:]
        filtered = [cli(home, "--filter", "metrics.acc>0.8", "--sort", "acc", "--reverse") for _ in range(3)]
        grouped = [cli(home, "--group", "hparams", "--mean", "acc,loss") for _ in range(3)]
        lib = [in_process(home) for _ in range(args.repeat)]
        load = os.getloadavg()[0]
        rows = [
            ("report.list, warm cache (goal)", min(warm), statistics.median(warm)),
            ("  same, CPU seconds (user + sys)", min(warm_cpu), statistics.median(warm_cpu)),
            ("report.list, cold (first listing)", cold, cold),
            ("  same, CPU seconds (user + sys)", cold_cpu, cold_cpu),
            ("report.list --filter --sort, warm", min(filtered), statistics.median(filtered)),
            ("report.list --group hparams --mean, warm", min(grouped), statistics.median(grouped)),
            ("in process: load + table + text", min(lib), statistics.median(lib)),
        ]
        print(f"report.list over {total:,} runs (load average {load:.2f}, {os.cpu_count()} CPUs)")
        print(f"{'measurement':44} {'best s':>8} {'median s':>9}")
        for name, best, median in rows:
            print(f"{name:44} {best:8.3f} {median:9.3f}")
        ratio = min(warm) / GOAL
        print(f"goal ≤ {GOAL} s: best {min(warm):.3f} s = {ratio:.2f} × goal -> {'MET' if ratio <= 1 else 'MISSED'}")
        return 0 if ratio <= 1 else 1
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
