"""Generated stores for the report benchmarks (the same layout tests/storegen.py writes; job.yaml
by the store's own writer, as job.submit writes it)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import storegen  # noqa: E402


def many_runs(home: Path, jobs: int = 100, runs_per_job: int = 100, steps: int = 50) -> int:
    """`jobs` sweep jobs of `runs_per_job` runs, each logging `steps` lines of 3 metrics."""
    lrs = [0.1, 0.03, 0.01, 0.003, 0.001]
    total = 0
    for j in range(1, jobs + 1):
        runs = []
        for k in range(runs_per_job):
            lr = lrs[k % len(lrs)]
            status = "failed" if k % 17 == 0 else "running" if k % 29 == 0 else "completed"
            metrics = storegen.curve(steps, 2.0, 0.2 + lr * 3 + 0.001 * k, val_loss=0.5)
            runs.append(storegen.RunSpec(hparams={"lr": lr, "bs": 32 * (1 + k % 3), "seed": k // 15},
                                         metrics=metrics, status=status,
                                         exit_code=1 if status == "failed" else 0 if status == "completed" else None))
        storegen.write_job(home, f"job{j}", runs, target="eus-v100", service="sing", service_type="singularity",
                           **{"price-per-hour": 3.06, "vm-size": "ND12_v2"})
        total += len(runs)
    storegen.check_readable(home, f"job{jobs}")  # as job.status reads it: what is measured is what singkit reads
    return total


def big_curves(home: Path, runs: int = 100, steps: int = 10_000) -> list[Path]:
    """One job of `runs` runs with `steps` metric lines each (loss, acc)."""
    folder = home / "jobs" / "job1"
    data = {"job": "job1", "target": {"name": "local", "service": "local", "nodes": 1},
            "service": {"name": "local", "type": "local"}, "command": "python train.py", "created": 1732450000,
            "runs": [{"run": f"job1.{k}", "hparams": {"lr": [0.1, 0.01, 0.001][k % 3], "seed": k}} for k in range(1, runs + 1)]}
    logs = []
    for k in range(1, runs + 1):
        log = folder / "runs" / f"job1.{k}" / "run.log"
        storegen.fast_metrics_log(log, steps, seed=k)
        logs.append(log)
    storegen.write_spec(folder, data)
    return logs
