"""Generated job stores for report tests and benchmarks, written in the store's fixed layout.

The files are written the way the store and the in-job metrics API write them (runs/<run>/
run.log JSONL, stdout.log, stderr.log, events.jsonl), so the reports are tested against the
contract, not against our own reader; job.yaml is written by the store's own writer
(yamlio.dump_yaml, what job.submit writes: JSON-formatted YAML), so what is read is what a real
store holds.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

T0 = 1_732_450_000.0  # 2024-11-24, a fixed epoch so tables are reproducible


@dataclass
class RunSpec:
    hparams: dict[str, Any] = field(default_factory=dict)
    # (step, {metric: value}) lines; None means the run logged no metrics at all
    metrics: list[tuple[int | None, dict[str, Any]]] | None = None
    status: str | None = "completed"     # last status line; None: no status line at all
    reason: str | None = None
    exit_code: int | None = None
    stderr: str = ""
    stdout: str = ""
    log: bool = True                     # False: queued, no run folder yet
    log_hparams: bool = True             # also write the hparams event into run.log
    torn: bool = False                   # append half a line, as a writer killed mid-write leaves
    nodes: int = 0                       # >0: status and metrics lines carry "node"
    duration: float = 600.0


def curve(steps: int, start: float, end: float, every: int = 1, **extra: float) -> list[tuple[int, dict]]:
    """A smooth metric curve from start to end: loss falls, acc rises (acc = 1 - loss/2)."""
    out = []
    for i in range(0, steps, every):
        frac = i / max(1, steps - 1)
        loss = start + (end - start) * (1 - math.exp(-4 * frac)) / (1 - math.exp(-4))
        out.append((i, {"loss": round(loss, 6), "acc": round(1 - loss / 2, 6), **extra}))
    return out


def write_job(home: Path, job: str, runs: list[RunSpec], target: str | dict[str, Any] = "local", service: str = "local",
              created: float = T0, service_type: str = "local", **spec: Any) -> Path:
    """jobs/<job>/job.yaml plus one folder per logged run; returns the job folder. `target` and
    `service` are records, as job.submit writes them (job.list and job.status read them); a
    `target` name stands for a minimal record of that name."""
    record = target if isinstance(target, dict) else {"name": target, "service": service, "nodes": 1}
    folder = home / "jobs" / job
    folder.mkdir(parents=True, exist_ok=True)
    data = {"job": job, "target": record, "service": {"name": service, "type": service_type},
            "command": "python train.py --epochs 3", "created": created, **spec,
            "runs": [{"run": f"{job}.{k}", "hparams": run.hparams} for k, run in enumerate(runs, start=1)]}
    write_spec(folder, data)
    for k, run in enumerate(runs, start=1):
        if run.log:
            write_run(folder / "runs" / f"{job}.{k}", run, created + 10 * k)
    return folder


def write_spec(folder: Path, data: dict[str, Any]) -> Path:
    """folder/job.yaml holding `data`, as job.submit writes it (Job.write_spec's writer)."""
    from singkit.store.yamlio import dump_yaml

    path = folder / "job.yaml"
    path.write_text(dump_yaml(data))
    return path


def write_run(folder: Path, run: RunSpec, t0: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    nodes = list(range(run.nodes)) if run.nodes else [None]
    out: list[str] = []

    def event(t: float, node: int | None, **body: Any) -> None:
        if node is not None:
            body["node"] = node
        out.append(json.dumps({"t": round(t, 3), **body}))

    for node in nodes:
        event(t0, node, event="status", status="queued")
        event(t0 + 1, node, event="status", status="running")
    if run.log_hparams and run.hparams:
        event(t0 + 2, None, event="hparams", hparams=run.hparams)
    points = run.metrics or []
    for i, (step, values) in enumerate(points):
        t = t0 + 2 + run.duration * (i + 1) / (len(points) + 1)
        for node in nodes:
            body: dict[str, Any] = {"event": "metrics", "metrics": values}
            if step is not None:
                body["step"] = step
            event(t, node, **body)
    if run.status and run.status not in ("queued", "running"):
        for node in nodes:
            extra: dict[str, Any] = {}
            if run.reason is not None:
                extra["reason"] = run.reason
            if run.exit_code is not None:
                extra["exit_code"] = run.exit_code
            event(t0 + 1 + run.duration, node, event="status", status=run.status, **extra)
    if run.nodes and run.status and run.status not in ("queued", "running"):
        event(t0 + 1 + run.duration, None, event="status", status=run.status)
    text = "\n".join(out) + "\n"
    if run.torn:
        text += '{"t": 1, "event": "metrics", "metr'
    (folder / "run.log").write_text(text)
    (folder / "stdout.log").write_text(run.stdout)
    (folder / "stderr.log").write_text(run.stderr)


def check_readable(home: Path, job: str) -> dict[str, Any]:
    """Read `job` back through the store's own readers, as job.status and job.list read it
    (job.yaml checked field by field, every run.log folded); its summary, or the store's error.
    Benchmarks call it on the stores they generate, so what they measure is what singkit reads."""
    from singkit.store.model import Store

    store = Store(home)
    try:
        summary, _runs = store.job(job).summary()
    finally:
        store.close()
    return summary


def write_events(home: Path, events: list[dict[str, Any]]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "events.jsonl", "a") as fh:
        for ev in events:
            fh.write(json.dumps(ev) + "\n")


def sweep_job(home: Path, job: str = "job1", lrs=(0.1, 0.01, 0.001), seeds=(1, 2), steps: int = 50,
              **spec: Any) -> list[RunSpec]:
    """A grid sweep: lr × seed, with a final loss that depends on lr (0.01 is best)."""
    runs = []
    for lr in lrs:
        for seed in seeds:
            final = {0.1: 0.6, 0.01: 0.2, 0.001: 0.4}.get(lr, 0.5) + 0.01 * seed
            runs.append(RunSpec(hparams={"lr": lr, "seed": seed}, metrics=curve(steps, 2.0, final)))
    write_job(home, job, runs, **spec)
    return runs


def fast_metrics_log(path: Path, steps: int, metrics: tuple[str, ...] = ("loss", "acc"),
                     t0: float = T0, seed: int = 0) -> None:
    """A big run.log written quickly (benchmarks): status lines around `steps` metric lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [f'{{"t": {t0}, "event": "status", "status": "running"}}']
    phase = seed * 0.37
    for i in range(steps):
        frac = i / steps
        vals = ", ".join(f'"{m}": {((1 - frac) * (j + 1) + 0.05 * math.sin(i / 50 + phase + j)):.6f}'
                         for j, m in enumerate(metrics))
        parts.append(f'{{"t": {t0 + i}, "event": "metrics", "step": {i}, "metrics": {{{vals}}}}}')
    parts.append(f'{{"t": {t0 + steps}, "event": "status", "status": "completed", "exit_code": 0}}')
    path.write_text("\n".join(parts) + "\n")


def store_env(root: Path, **environ: str):
    """An Environment over `root` (project root) with its store in root/.singkit, HOME root/home
    and no variable of this process's (so no user config)."""
    from jobtools import make_env

    return make_env(root, home=root / "home", inherit=False, **environ)


def singularity_sweep(home: Path, job: str, runs: int, active: int = 0, created: float = T0) -> Path:
    """A Singularity sweep as job.submit and refresh leave it: job.yaml with the target and
    workspace records and every run, and per run its run.log, logs, outputs/ and backend.json
    (the Azure ML job it was sent as). The first runs - `active` are completed and final on
    Azure ML; the last `active` are queued and not yet sent (a sweep whose submit is still under
    way: no backend.json). job.yaml is dated a minute back, as a sweep's is once its runs end."""
    folder = home / "jobs" / job
    (folder / "runs").mkdir(parents=True, exist_ok=True)
    service = {"type": "singularity", "subscription-id": "00000000-0000-4000-8000-000000005ab5",
               "resource-group": "singkit-rg", "workspace": "singkit-ws", "name": "singkit-ws"}
    target = {"service": "singkit-ws", "compute": "singkit-vc", "vm-size": "NC6_v3", "nodes": 1,
              "processes-per-node": 1, "sla": "premium", "priority": "high", "docker": "torch", "env": {}, "name": "sing"}
    lrs = [0.1, 0.03, 0.01, 0.003, 0.001]
    data: dict[str, Any] = {
        "job": job, "created": created, "experiment": "sweep", "target": target, "service": service,
        "command": "python train.py", "setup_prefix": "", "env": {}, "parallel": runs, "repeats": 1,
        "hp": {"lr": lrs, "seed": list(range(runs // len(lrs) + 1))}, "dry_run": False, "allow_unpinned": False,
        "create_registry_connection": False, "code": {"sha256": "c6" * 32, "files": 4, "bytes": 2814}, "runs": []}
    for k in range(1, runs + 1):
        hp = {"lr": lrs[k % len(lrs)], "seed": k // len(lrs)}
        data["runs"].append({"run": f"{job}.{k}", "hparams": hp, "hparams_text": {n: str(v) for n, v in hp.items()},
                             "repeat": 1, "command": f"python train.py --lr {hp['lr']} --seed {hp['seed']}"})
    for k in range(1, runs + 1):
        run = folder / "runs" / f"{job}.{k}"
        (run / "outputs").mkdir(parents=True, exist_ok=True)
        t = created + 1 + k * 0.01
        log = [{"t": round(t, 3), "event": "status", "status": "queued"}]
        if k <= runs - active:
            name = f"singkit-{job}-{k}-{k:08x}"
            log += [{"t": round(t + 30, 3), "event": "status", "status": "running"},
                    {"t": round(t + 600, 3), "event": "status", "status": "completed"}]
            (run / "backend.json").write_text(json.dumps({
                "azureml_name": name, "studio_url": f"https://ml.azure.com/runs/{name}", "workspace": "singkit-ws",
                "subscription": service["subscription-id"], "resource_group": "singkit-rg", "experiment": "sweep",
                "nodes": 1, "per_node": 1, "azure_status": "Completed", "submitted": round(t, 3), "final": True}, indent=1))
        (run / "run.log").write_text("".join(json.dumps(e) + "\n" for e in log))
        (run / "stdout.log").write_text("")
        (run / "stderr.log").write_text("")
    spec = write_spec(folder, data)
    import os
    import time

    old = time.time() - 60
    os.utime(spec, (old, old))
    return folder
