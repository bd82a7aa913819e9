"""The rows of the jobs, runs and nodes tables, built from loaded jobs.

Run rows carry every hparam (`hparams.*`), the last and best value of every metric
(`metrics.<m>`, `metrics.<m>.best`), status, duration, target, and cost where the job has a
price. Columns that most people do not need every day stay available but hidden (`extra`).
"""

from __future__ import annotations

import math
from typing import Any

from singkit.reports.model import Job, Run, cost_of, price_and_nodes, service_name, sku, target_name
from singkit.reports.prefs import MetricPrefs
from singkit.reports.tables import Table
from singkit.store.fold import LAST, MAX, MIN
from singkit.store.status import DRY_RUN, LOG_MISSING, STATUSES, STOPPED

RUN_EXTRA = ["job", "sku", "started", "ended", "steps", "nodes", "reason", "exit_code"]
JOB_EXTRA = ["service", "sku", "completed", "failed", "running", "queued", "cancelled", "preempted"]
NODE_COLUMNS = ["job", "run", "node", "status", "started", "duration", "steps", "last"]


def metric_names(runs: list[Run], prefs: MetricPrefs) -> list[str]:
    """Every metric any run logged, in first-seen order, the primary metric first."""
    names: dict[str, None] = {}
    for run in runs:
        for name in run.metrics:
            names.setdefault(name, None)
    ordered = list(names)
    if prefs.primary in names:
        ordered.remove(prefs.primary)
        ordered.insert(0, prefs.primary)
    return ordered


def hparam_names(runs: list[Run]) -> list[str]:
    names: dict[str, None] = {}
    for run in runs:
        for name in run.hparams:
            names.setdefault(name, None)
    return list(names)


def best_value(stats: list | None, higher: bool) -> float | None:
    if not stats:
        return None
    return stats[MAX] if higher else stats[MIN]


def run_row(run: Run, metrics: list[tuple[str, str, str, int]], target: str | None, vm: str | None,
            price: tuple[float, int] | None) -> dict[str, Any]:
    """`metrics`: (name, column, best column, MAX or MIN index) for each metric; `price`: the
    job's price_and_nodes."""
    listed = run.listed
    row: dict[str, Any] = {
        "job": run.job, "run": run.run, "status": run.status, "target": target,
        "sku": vm, "started": run.started, "ended": run.ended, "duration": run.duration,
        "cost": cost_of(price, run.duration), "steps": listed.metric_lines if listed else None, "nodes": (listed.nodes or None) if listed else None,
        "reason": listed.reason if listed else None, "exit_code": listed.exit_code if listed else None,
    }
    for name, value in run.hparams.items():
        row["hparams." + name] = value
    mine = run.metrics
    for name, column, best, index in metrics:
        stats = mine.get(name)
        if stats:
            row[column] = stats[LAST]
            row[best] = stats[index]
    return row


def run_table(jobs: list[Job], prefs: MetricPrefs) -> Table:
    runs = [r for j in jobs for r in j.runs]
    metrics = metric_names(runs, prefs)
    plan = [(m, f"metrics.{m}", f"metrics.{m}.best", MAX if prefs.higher_is_better(m) else MIN)
            for m in metrics]
    rows = []
    for job in jobs:
        target, vm, price = target_name(job.spec), sku(job.spec), price_and_nodes(job.spec)
        rows += [run_row(r, plan, target, vm, price) for r in job.runs]
    columns = ["run", "status", "target", "duration"]
    if any(r["cost"] is not None for r in rows):
        columns.append("cost")
    columns += [f"hparams.{h}" for h in hparam_names(runs)]
    for m in metrics:
        columns += [f"metrics.{m}", f"metrics.{m}.best"]
    labels = {f"metrics.{m}.best": f"{m} best" for m in metrics}
    labels.update({f"metrics.{m}": m for m in metrics})
    labels.update({c: c[8:] for c in columns if c.startswith("hparams.")})
    return Table(columns, rows, labels=labels, extra=RUN_EXTRA)


def overall_status(spec: dict[str, Any], statuses: list[str]) -> str:
    """The job's status from its record and its runs', exactly as `job.list` and `job.status`
    say it: the store's one rule (a dry run is `dry-run`, never `completed`)."""
    from singkit.store.model import overall_status as store_status

    return store_status(spec, statuses)


def job_table(jobs: list[Job], prefs: MetricPrefs, now: float) -> Table:
    rows = []
    for job in jobs:
        statuses = [r.status for r in job.runs]
        starts = [r.started for r in job.runs if r.started is not None]
        ends = [r.ended if r.ended is not None else now for r in job.runs if r.started is not None]
        costs = [r.cost for r in job.runs if r.cost is not None]
        counts = {str(s): statuses.count(s) for s in (*STATUSES, DRY_RUN, LOG_MISSING)}
        row: dict[str, Any] = {
            "job": job.job, "created": _created(job.spec), "target": job.target,
            "service": service_name(job.spec), "sku": sku(job.spec), "runs": len(job.runs),
            "status": overall_status(job.spec, statuses),
            "statuses": ", ".join(f"{n} {s}" for s, n in counts.items() if n),
            "duration": (max(ends) - min(starts)) if starts else None,
            "cost": sum(costs) if costs else None, "command": _command(job.spec), **counts,
        }
        if prefs.primary:
            higher = prefs.higher_is_better(prefs.primary)
            values = [best_value(r.metrics.get(prefs.primary), higher) for r in job.runs]
            values = [v for v in values if v is not None and math.isfinite(v)]
            row[f"best.{prefs.primary}"] = (max(values) if higher else min(values)) if values else None
        rows.append(row)
    columns = ["job", "created", "target", "runs", "status", "statuses", "duration"]
    if any(r["cost"] is not None for r in rows):
        columns.append("cost")
    if prefs.primary:
        columns.append(f"best.{prefs.primary}")
    columns.append("command")
    return Table(columns, rows, extra=JOB_EXTRA)


def node_table(jobs: list[Job], now: float) -> Table:
    rows = []
    for run in (r for j in jobs for r in j.runs):
        nodes = run.state.nodes if run.state else {}
        if not nodes:  # a single-node run: its own status is node 0's
            rows.append({"job": run.job, "run": run.run, "node": 0, "status": run.status,
                         "started": run.started, "duration": run.duration,
                         "steps": run.state.metric_lines if run.state else None,
                         "last": run.state.last_t if run.state else None})
            continue
        for node in sorted(nodes, key=lambda n: int(n) if n.lstrip("-").isdigit() else 0):
            rec = nodes[node]
            started = rec["started"]
            stop = rec["ended"] if rec["ended"] is not None else (rec["last_t"] if rec["status"] in STOPPED else now)
            rows.append({"job": run.job, "run": run.run, "node": int(node) if node.lstrip("-").isdigit() else node,
                         "status": rec["status"] or run.status, "started": started,
                         "duration": max(0.0, stop - started) if started is not None and stop is not None else None,
                         "steps": rec["metric_lines"], "last": rec["last_t"]})
    return Table(list(NODE_COLUMNS), rows)


def _created(spec: dict[str, Any]) -> float | None:
    from singkit.reports.source import to_epoch

    return to_epoch(spec.get("created"))


def _command(spec: dict[str, Any]) -> str | None:
    command = spec.get("command")
    if isinstance(command, list):
        command = " ".join(str(c) for c in command)
    if command is None:
        return None
    command = " ".join(str(command).split())
    return command if len(command) <= 60 else command[:57] + "..."
