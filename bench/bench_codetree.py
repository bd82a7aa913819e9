"""Benchmark: a job's code folder on a resubmit of unchanged code (issue 14, shared code trees).

Before shared trees every job extracted its own copy of the snapshot (singkit.snapshot.safe_extract
into jobs/<jobN>/code); now the second and later jobs on a snapshot hard-link its one extracted
tree (singkit.codetree.job_view). Both are measured in one run on the same archive: a project
with one big file (a checkpoint, say: random bytes) and a few small ones.
Goal: the shared-tree code folder ≤ 0.05 × the per-job extraction, and no bytes copied.

    .venv/bin/python bench/bench_codetree.py [--mb 500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

GOAL = 0.05


def make_project(root: Path, mb: int) -> None:
    (root / "src").mkdir(parents=True)
    for k in range(20):
        (root / "src" / f"m{k}.py").write_text(f"x = {k}\n" * 50)
    block = os.urandom(1 << 20)  # deflate's window is 32 KiB: repeated 1 MiB blocks do not compress
    with open(root / "src" / "model.bin", "wb") as fh:
        for _ in range(mb):
            fh.write(block)


def disk_bytes(folder: Path) -> int:
    """Bytes of the files in `folder` that no other folder shares (a hard link costs nothing)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink() and p.stat().st_nlink == 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from singkit.codetree import job_view
    from singkit.snapshot import safe_extract, take

    work = Path(tempfile.mkdtemp(prefix="bench-codetree-"))
    try:
        make_project(work / "project", args.mb)
        store = work / "store"
        start = time.perf_counter()
        snap = take(work / "project", ["src"], [], store / "snapshots")
        took = time.perf_counter() - start
        jobs = store / "jobs"
        for k in range(args.repeat + 1):
            (jobs / f"job{k}").mkdir(parents=True)
        job_view(store, jobs / "job0", snap.path, snap.sha256)  # the first job makes the shared tree
        before, after, copied, linked = [], [], 0, 0
        for k in range(1, args.repeat + 1):
            start = time.perf_counter()
            safe_extract(snap.path, jobs / f"old{k}" / "code")
            before.append(time.perf_counter() - start)
            copied = disk_bytes(jobs / f"old{k}" / "code")
            shutil.rmtree(jobs / f"old{k}")
            start = time.perf_counter()
            code = job_view(store, jobs / f"job{k}", snap.path, snap.sha256)
            after.append(time.perf_counter() - start)
            linked = disk_bytes(code)
        b, a = statistics.median(before), statistics.median(after)
        ratio = a / b
        print(f"code folder of a resubmitted job, {args.mb} MB file + 20 small ones (median of {args.repeat}; "
              f"snapshot taken once in {took:.1f} s; load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs)")
        print(f"{'per-job extraction (before: safe_extract)':48} {b:8.3f} s   {copied / 2**20:8.1f} MiB written")
        print(f"{'shared tree, hard links (codetree.job_view)':48} {a:8.3f} s   {linked / 2**20:8.1f} MiB written")
        met = ratio <= GOAL and linked < (1 << 20)
        print(f"shared tree {ratio:.4f} × per-job extraction (goal ≤ {GOAL}, nothing copied) -> {'MET' if met else 'MISSED'}")
        return 0 if met else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
