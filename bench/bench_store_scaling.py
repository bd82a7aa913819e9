"""Benchmark: listing cost that does not grow with history (issue 14 item 2).

Goals, each measured in this one run (warm: the command already ran once on that store, as on
any store that has been looked at; best of --repeat runs of the whole CLI process). The figure
compared is the CLI process's CPU seconds (user + sys): on a shared machine whose load average
is many times its core count, wall time measures the other work; wall time is printed too.
- `job.status` of a 10,000-run job ≤ 1.0 s, and ≤ 3× the same command on a 100-run job;
- `job.status` of a 10,000-run Singularity sweep still running ≤ 1.0 s, judged on the MEDIAN of
  the warm runs (reliably, not at best): 9,990 runs completed and final on Azure ML, 10 queued and
  not yet sent (storegen.singularity_sweep). A run that is active on Azure ML costs what no store
  change removes (importing azure-ai-ml, over 1 CPU s by itself, and one request per run), so the
  goal measures the store's part of a look;
- `job.list --last 20` and `report.list --runs --last 50`: ≤ 1.3× from the smallest to the
  largest store (1k / 10k / 50k runs by default; 10 runs per job).
Stores are written by tests/storegen.py, whose job.yaml and run.log are what job.submit writes
(job.list and job.status read them). Prints every figure, MET/MISSED per goal; exit 1 on a miss.

    python bench/bench_store_scaling.py [--sizes 1000,10000,50000] [--repeat 3] [--keep DIR] [--quick] [--sweep-only]
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import storegen  # noqa: E402

STATUS_GOAL_S, STATUS_RATIO, GROWTH = 1.0, 3.0, 1.3


def write_store(home: Path, runs: int, runs_per_job: int) -> None:
    """`runs` finished runs in jobs of `runs_per_job` (the last job takes the rest); written
    beside and renamed into place, so a store cut short is never reused by --keep."""
    final, home = home, home.with_name(home.name + ".part")
    shutil.rmtree(home, ignore_errors=True)
    num = 0
    while runs > 0:
        num += 1
        count = min(runs, runs_per_job)
        specs = [storegen.RunSpec({"lr": 0.01 * (k % 5), "seed": k}, storegen.curve(3, 2.0, 1.0),
                                  status="failed" if k % 17 == 0 else "completed",
                                  exit_code=1 if k % 17 == 0 else 0) for k in range(count)]
        storegen.write_job(home, f"job{num}", specs)
        runs -= count
    for job in {"job1", f"job{num}"}:  # read back as job.status reads it: the store measured is one singkit reads
        storegen.check_readable(home, job)
    home.rename(final)


def cli(home: Path, *args: str) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one whole CLI process."""
    env = {**os.environ, "SINGKIT_HOME": str(home), "HOME": str(home.parent)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "singkit", *args], cwd=home.parent, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr.decode()[-500:]}")
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, elapsed


def warm(home: Path, repeat: int, *args: str) -> tuple[float, float, float]:
    """(first run's CPU s, best warm CPU s, best warm wall s) of one command."""
    first, runs = warm_runs(home, repeat, *args)
    return first, min(cpu for cpu, _ in runs), min(wall for _, wall in runs)


def warm_runs(home: Path, repeat: int, *args: str) -> tuple[float, list[tuple[float, float]]]:
    """(first run's CPU s, [(CPU s, wall s) of each warm run]) of one command."""
    first = cli(home, *args)[0]
    return first, [cli(home, *args) for _ in range(repeat)]


def singularity_status(root: Path, repeat: int) -> bool:
    """The Singularity sweep goal (see the module docstring); True when MET."""
    home = root / "sing10000" / ".singkit"
    if not (home / "jobs").is_dir():
        part = home.with_name(home.name + ".part")
        shutil.rmtree(part, ignore_errors=True)
        storegen.singularity_sweep(part, "job1", 10_000, active=10)
        assert storegen.check_readable(part, "job1")["status"] == "running"
        part.rename(home)
    first, runs = warm_runs(home, max(repeat, 5), "job.status", "job1")
    cpus = sorted(cpu for cpu, _ in runs)
    median = statistics.median(cpus)
    print(f"job.status of a 10,000-run Singularity sweep still running: first {first:.3f} CPU s, warm "
          f"{' '.join(f'{c:.3f}' for c in cpus)} CPU s (median {median:.3f}; best wall {min(w for _, w in runs):.3f} s)")
    ok = median <= STATUS_GOAL_S
    print(f"goal job.status of a 10,000-run Singularity sweep still running <= {STATUS_GOAL_S} s (median): "
          f"{median:.3f} CPU s -> {verdict(ok)}")
    return ok


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,50000", help="store sizes in runs, smallest first")
    parser.add_argument("--runs-per-job", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", help="generate the stores here (and reuse them when already there)")
    parser.add_argument("--quick", action="store_true", help="stores of 1k and 10k runs only (--sizes 1000,10000)")
    parser.add_argument("--sweep-only", action="store_true", help="only the Singularity sweep goal")
    args = parser.parse_args()
    if args.quick:
        args.sizes = "1000,10000"
    sizes = [int(s) for s in args.sizes.split(",")]
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    missed = False
    try:
        if args.sweep_only:
            ok = singularity_status(root, args.repeat)
            print(f"(load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs)")
            return 0 if ok else 1
        figures: dict[str, float] = {}
        for label, runs in (("100", 100), ("10000", 10_000)):
            home = root / f"status{label}" / ".singkit"
            if not (home / "jobs").is_dir():
                write_store(home, runs, runs)
            first, best, wall = warm(home, args.repeat, "job.status", "job1")
            figures[label] = best
            print(f"job.status of a {runs:,}-run job: first {first:.3f} CPU s, warm best {best:.3f} CPU s ({wall:.3f} s wall)")
        ok = figures["10000"] <= STATUS_GOAL_S
        missed |= not ok
        print(f"goal job.status 10,000 runs <= {STATUS_GOAL_S} s: {figures['10000']:.3f} CPU s -> {verdict(ok)}")
        ratio = figures["10000"] / figures["100"]
        ok = ratio <= STATUS_RATIO
        missed |= not ok
        print(f"goal job.status 10,000 runs <= {STATUS_RATIO}x 100 runs: {ratio:.2f}x -> {verdict(ok)}")
        missed |= not singularity_status(root, args.repeat)

        listings = {"job.list --last 20": ("job.list", "--last=20"),
                    "report.list --runs --last 50": ("report.list", "--runs", "--last=50")}
        best: dict[str, list[float]] = {name: [] for name in listings}
        for runs in sizes:
            home = root / f"store{runs}" / ".singkit"
            if not (home / "jobs").is_dir():
                start = time.perf_counter()
                write_store(home, runs, args.runs_per_job)
                print(f"generated {runs:,} runs in {time.perf_counter() - start:.1f} s", file=sys.stderr)
            for name, command in listings.items():
                first, fastest, wall = warm(home, args.repeat, *command)
                best[name].append(fastest)
                print(f"{name} at {runs:,} runs: first {first:.3f} CPU s, warm best {fastest:.3f} CPU s ({wall:.3f} s wall)")
        for name, figures_ in best.items():
            growth = figures_[-1] / figures_[0]
            ok = growth <= GROWTH
            missed |= not ok
            print(f"goal {name} growth {sizes[0]:,} -> {sizes[-1]:,} runs <= {GROWTH}x: {growth:.2f}x -> {verdict(ok)}")
        print(f"(load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs)")
        return 1 if missed else 0
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
