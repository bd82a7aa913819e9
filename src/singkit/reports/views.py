"""What each text report shows: list (jobs, runs, nodes), metrics per step, run.log, audit events."""

from __future__ import annotations

import time
from typing import Any

from singkit import fmt
from singkit.environment import Environment
from singkit.exceptions import UsageError
from singkit.reports import rowsets, series, tables
from singkit.reports.model import Run, StoreReader
from singkit.reports.prefs import MetricPrefs, metric_prefs
from singkit.reports.render import format_cell
from singkit.gcpause import paused_gc
from singkit.reports.source import StoreLayout, read_jsonl
from singkit.reports.tables import Table
from singkit.suggest import hint

KINDS = ("jobs", "runs", "nodes")


def split_names(value: str | list[str] | None) -> list[str]:
    """`a,b` or repeated flags -> ['a', 'b']."""
    if not value:
        return []
    items = value if isinstance(value, list) else [value]
    return [p.strip() for item in items for p in str(item).split(",") if p.strip()]


def list_table(env: Environment, kind: str = "runs", job: str | None = None, *, columns: str | None = None,
               filters: list[str] | str | None = None, sort: str | None = None, reverse: bool = False,
               last: int | None = None, group: str | None = None, mean: str | list[str] | None = None,
               prefs: MetricPrefs | None = None, now: float | None = None, cli: bool = False) -> Table:
    """The jobs, runs or nodes table after filter → group/mean → sort → last N → columns.
    hparam and metric columns empty in every row left are not shown unless named (--columns).
    `cli`: the caller is a one-shot command (see paused_gc's freeze).

    The last N runs in store order (`--runs --last N` with no filter, sort or group) are read
    alone, newest job first (issue 14): that table's hparam and metric columns are those of
    the runs it shows, and its cost follows N, not the store's history."""
    if kind not in KINDS:
        raise UsageError(f"cannot list `{kind}`: choose one of {', '.join(KINDS)}")
    now = time.time() if now is None else now
    prefs = prefs or metric_prefs(env)
    newest = kind == "runs" and last is not None and last > 0 and not (filters or sort or group or mean)
    with StoreReader(env) as reader, paused_gc(freeze=cli):  # tens of thousands of fresh dicts, no cycles
        full = kind == "nodes"  # the runs and jobs tables read each run's listing columns, not its whole fold
        jobs = reader.load_newest(last, job, now, full) if newest else reader.load(job, now, full)
        if kind == "jobs":
            table = rowsets.job_table(jobs, prefs, now)
        elif kind == "nodes":
            table = rowsets.node_table(jobs, now)
        else:
            table = rowsets.run_table(jobs, prefs)
    table = tables.filter_rows(table, filters)
    means = split_names(mean)
    if group:
        table = tables.group(table, group, means or None)
    table = tables.sort_rows(table, sort, reverse)
    table = tables.last(table, last)
    if not group:  # a grouped table's columns are the keys and means asked for
        table = tables.drop_empty(table)
    table = tables.select(table, columns)
    if means and not group:
        table = tables.mean_footer(table, means)
    return table


def _runs_of(reader: StoreReader, job: str, run: str | None) -> list[Run]:
    runs = reader.runs(job)
    if run is None:
        return runs
    wanted = reader.layout.check_run(runs[0].job if runs else job, run, [r.run for r in runs])
    return [r for r in runs if r.run == wanted]


def metrics_table(env: Environment, job: str, run: str | None = None, *, metrics: str | None = None,
                  filters: list[str] | str | None = None, sort: str | None = None, reverse: bool = False,
                  last: int | None = None, columns: str | None = None) -> Table:
    """One row per logged step (and node), a column per metric."""
    names = split_names(metrics) or None
    with StoreReader(env) as reader:
        runs = _runs_of(reader, job, run)
    rows: list[dict[str, Any]] = []
    for r in runs:
        rows += series.step_rows(series.metric_events(r.ref.log), r.run, names)
    found: dict[str, None] = {}
    for row in rows:
        for key in row:
            if key.startswith("metrics."):
                found.setdefault(key, None)
    metric_cols = [f"metrics.{n}" for n in names if f"metrics.{n}" in found] if names else list(found)
    if names and not metric_cols:
        logged = list(dict.fromkeys(m for r in runs for m in r.metrics))
        said = next((hint(n, logged) for n in names if hint(n, logged)), "")
        raise UsageError(f"no run of {job} logged {', '.join(names)}; "
                         + (said or (f"its runs logged {', '.join(logged)}" if logged else "its runs logged no metrics yet")))
    shown = ["run"] + (["node"] if any(row.get("node") is not None for row in rows) else []) + ["step"]
    for row in rows:
        row["time"] = row.pop("t", None)
    table = Table(shown + metric_cols, rows, labels={c: c[8:] for c in metric_cols}, extra=["time", "node"])
    table = tables.filter_rows(table, filters)
    table = tables.sort_rows(table, sort, reverse)
    table = tables.last(table, last)
    return tables.select(table, columns)


def clock(t: Any) -> str:
    return fmt.when(t, seconds=True) if isinstance(t, (int, float)) else ""


def describe(ev: dict[str, Any]) -> str:
    """One readable line for a run.log event."""
    kind = ev.get("event")
    if kind == "status":
        text = str(ev.get("status"))
        extra = [f"exit {ev['exit_code']}"] if ev.get("exit_code") is not None else []
        if ev.get("reason") and str(ev["reason"]) != f"exit code {ev.get('exit_code')}":  # said once
            extra.append(str(ev["reason"]))
        return text + (f" ({'; '.join(extra)})" if extra else "")
    if kind == "hparams" and isinstance(ev.get("hparams"), dict):
        return " ".join(f"{k}={_short(v)}" for k, v in ev["hparams"].items())
    if kind == "metrics" and isinstance(ev.get("metrics"), dict):
        head = f"step {ev['step']}: " if "step" in ev else ""
        return head + " ".join(f"{k}={_short(v)}" for k, v in ev["metrics"].items())
    rest = {k: v for k, v in ev.items() if k not in ("t", "event", "node", "run", "job")}
    return " ".join(f"{k}={_short(v)}" for k, v in rest.items())


def _short(value: Any) -> str:
    text = format_cell(value)
    return text if len(text) <= 60 else text[:57] + "..."


def log_events(env: Environment, job: str, run: str | None = None, events: str | None = None,
               last: int | None = None) -> list[dict[str, Any]]:
    """run.log events of a job's runs (or one run), in time order, each with its `run`."""
    kinds = set(split_names(events))
    with StoreReader(env) as reader:
        runs = _runs_of(reader, job, run)
    out: list[dict[str, Any]] = []
    for r in runs:
        evs, _, _ = read_jsonl(r.ref.log)
        out += [{"run": r.run, **ev} for ev in evs if not kinds or ev.get("event") in kinds]
    out.sort(key=lambda ev: ev.get("t") if series.finite(ev.get("t")) else 0)
    return out[-last:] if last else out


# Every kind singkit writes into events.jsonl (singkit.store.events.record and images.audit
# callers; tests/test_reports_first_hour.py checks this list against the source).
AUDIT_EVENTS = ("build", "build-failed", "push", "pin", "submit", "submit-refused", "submit-abandoned", "cancel",
                "reconcile", "azureml-submit", "azureml-adopt")


def audit_events(env: Environment, job: str | None = None, events: str | None = None,
                 last: int | None = None) -> list[dict[str, Any]]:
    """singkit's audit log (events.jsonl): builds, pushes, pins, submits, cancels, ...
    A kind in `events` that singkit never writes and the log does not hold is a UsageError
    naming the closest kinds (`buidl` → build); a known kind with no events yet is just none."""
    kinds = set(split_names(events))
    evs, _, _ = read_jsonl(StoreLayout(env.home).events_log)
    recorded = [str(ev.get("event")) for ev in evs if ev.get("event")]
    known = list(dict.fromkeys([*AUDIT_EVENTS, *recorded]))
    for kind in sorted(kinds):
        if kind not in known:
            said = hint(kind, known)
            raise UsageError(f"--event={kind} is no kind of event singkit records; "
                             + (said or f"the kinds are: {', '.join(known)}"))
    if job:
        job = f"job{job}" if job.isdigit() else job
        evs = [ev for ev in evs if ev.get("job") == job or str(ev.get("run", "")).startswith(job + ".")]
    if kinds:
        evs = [ev for ev in evs if ev.get("event") in kinds]
    return evs[-last:] if last else evs


def event_table(evs: list[dict[str, Any]], with_run: bool) -> Table:
    rows = [{"time": clock(ev.get("t")), "run": ev.get("run"), "node": ev.get("node"),
             "job": ev.get("job"), "event": ev.get("event"), "detail": describe(ev)} for ev in evs]
    columns = ["time"] + (["run"] if with_run else ["job"])
    if any(r["node"] is not None for r in rows):
        columns.append("node")
    return Table(columns + ["event", "detail"], rows)
