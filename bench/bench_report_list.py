"""Benchmark: the full `report.list --runs` over a store of 50,000 runs (issue 14). Goals:
- warm (the store's index holds every run's fold, as after any listing): ≤ 1.0 s;
- cold (no index yet: every run.log read and folded): ≤ 0.5× the bare JSON parse of every
  run.log — a plain Python loop json.loads-ing each line of each file — measured in this run,
  in rounds interleaved with the cold listings.

Measured as a user sees it: the whole `python -m singkit report.list --runs` process (interpreter,
invoke, reading the store, the table on stdout). The figure compared is the process's CPU seconds
(user + sys): on a shared machine wall time measures the other work (it is printed too). The store
is written by tests/storegen.py (what job.submit writes; read back through the store's readers).
Prints each goal with MET/MISSED; exit 1 on a miss.

    python bench/bench_report_list.py [--jobs 500] [--runs-per-job 100] [--steps 50] [--keep DIR] [--quick]
                                      [--warm-only]

--warm-only skips the cold rounds (minutes at 50,000 runs) and judges the warm goal alone.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _stores  # noqa: E402

WARM_GOAL_S, COLD_RATIO = 1.0, 0.5
BARE_PARSE = r"""
import glob, json, sys
lines = 0
for path in glob.glob(sys.argv[1] + "/jobs/*/runs/*/run.log"):
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                try:
                    json.loads(line)
                except ValueError:
                    continue
                lines += 1
print(lines)
"""

# What any warm listing must do at least, in a bare interpreter: list each runs/ folder (a run
# folder job.yaml does not name is listed too), lstat each run.log (a run.log may grow at any
# time: its stamp is the only way to know its row is current), fetch the listing rows and decode
# them. Printed beside the warm listing (not a goal): at 50,000 runs it is most of the 1.0 s.
WARM_FLOOR = r"""
import os, sqlite3, sys
import orjson
home = sys.argv[1]
runs = [f"{home}/jobs/{job.name}/runs/{run.name}" for job in os.scandir(home + "/jobs")
        for run in os.scandir(job.path + "/runs") if run.is_dir(follow_symlinks=False)]
stats = [os.lstat(run + "/run.log") for run in runs]
db = sqlite3.connect(f"file:{home}/index.sqlite?mode=ro", uri=True)
rows = db.execute("SELECT job, run, log_size, log_mtime_ns, log_ino, log_ctime_ns, listing FROM runs").fetchall()
print(len(stats), len(orjson.loads("[" + ",".join(row[6] for row in rows) + "]")))
"""


def child(argv: list[str], home: Path) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one whole process."""
    env = {**os.environ, "SINGKIT_HOME": str(home), "HOME": str(home.parent)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=home.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[1:4])} failed: {done.stderr.decode()[-500:]}")
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, elapsed


def report_list(home: Path, *args: str) -> tuple[float, float]:
    return child([sys.executable, "-m", "singkit", "report.list", "--runs", *args], home)


def drop_index(home: Path) -> None:
    for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):  # cold: no fold kept yet
        (home / name).unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--runs-per-job", type=int, default=100)
    parser.add_argument("--steps", type=int, default=50, help="metric lines per run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="10,000 runs of 20 steps, 2 rounds")
    parser.add_argument("--keep", help="generate the store here (and reuse it when it is already there)")
    parser.add_argument("--warm-only", action="store_true", help="only the warm listings (no cold rounds)")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.runs_per_job, args.steps, args.repeat = 100, 100, 20, 2
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-list-"))
    home = root / ".singkit"
    try:
        if not (home / "jobs").is_dir():
            start = time.perf_counter()
            part = root / ".singkit.part"  # renamed into place once whole: --keep never reuses half a store
            shutil.rmtree(part, ignore_errors=True)
            total = _stores.many_runs(part, args.jobs, args.runs_per_job, args.steps)
            part.rename(home)
            print(f"generated {total:,} runs ({args.jobs} jobs) in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        total = args.jobs * args.runs_per_job
        cold, bare = [], []
        for _ in range(0 if args.warm_only else args.repeat):  # interleaved: both see the same machine and page cache
            bare.append(child([sys.executable, "-c", BARE_PARSE, str(home)], home))
            drop_index(home)
            cold.append(report_list(home))
        if args.warm_only:
            report_list(home)  # (the index filled, if it was not)
        warm, floor = [], []
        for _ in range(args.repeat):  # interleaved, as the cold rounds
            floor.append(child([sys.executable, "-c", WARM_FLOOR, str(home)], home))
            warm.append(report_list(home))
        filtered = report_list(home, "--filter", "metrics.acc>0.8", "--sort", "acc", "--reverse")
        grouped = report_list(home, "--group", "hparams", "--mean", "acc,loss")
        rows = [("bare JSON parse of every run.log (baseline)", bare), ("report.list --runs, cold (no index)", cold),
                ("warm floor: lstat, fetch, decode (no goal)", floor),
                ("report.list --runs, warm", warm), ("report.list --filter --sort, warm", [filtered]),
                ("report.list --group hparams --mean, warm", [grouped])][2 if args.warm_only else 0:]
        print(f"report.list over {total:,} runs, {args.steps} steps each "
              f"(load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs)")
        print(f"{'measurement':46} {'best CPU s':>10} {'best wall s':>11}")
        for name, figures in rows:
            print(f"{name:46} {min(c for c, _ in figures):10.3f} {min(w for _, w in figures):11.3f}")
        best_warm = min(c for c, _ in warm)
        print(f"warm listing / warm floor: {best_warm / min(c for c, _ in floor):.2f}x (information, not a goal)")
        goals = [(f"warm report.list --runs at {total:,} runs <= {WARM_GOAL_S} s", best_warm <= WARM_GOAL_S,
                  f"{best_warm:.3f} CPU s")]
        if cold:
            ratio = min(c for c, _ in cold) / min(c for c, _ in bare)
            goals.append((f"cold report.list --runs <= {COLD_RATIO}x the bare parse", ratio <= COLD_RATIO, f"{ratio:.2f}x"))
        missed = False
        for goal, ok, said in goals:
            missed |= not ok
            print(f"goal {goal}: {said} -> {'MET' if ok else 'MISSED'}")
        return 1 if missed else 0
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
