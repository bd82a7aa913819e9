"""A run's summary, folded from its run.log events: hparams, status, times, last/min/max per metric.

The state is plain JSON-able data and folding is incremental (fold(fold(s, a), b) ==
fold(s, a + b)), so the cache can resume a growing log from the byte offset it reached.
Per-metric stats are a list, [last, last_step, min, max, count, nonfinite], to keep the
cached JSON small; min/max ignore NaN and inf (they count in `nonfinite`), `last` keeps them.
"""

from __future__ import annotations

import math
from typing import Any

from singkit.store.status import STATUSES, STOPPED, TERMINAL
# As in the store (singkit.store.runlog.RunState.apply), so report.list and job.status agree:
# a run's status is its status lines in file order, whatever "node" they carry; the first
# completed/failed/cancelled line is final and later status lines are ignored. A preempted
# run stops but may be requeued and run again. Per-node records are kept for the nodes table.

# indexes into a metric's stats list
LAST, LAST_STEP, MIN, MAX, COUNT, NONFINITE = range(6)


def new_state() -> dict[str, Any]:
    return {
        "hparams": {}, "status": None, "reason": None, "exit_code": None,
        "started": None, "ended": None, "first_t": None, "last_t": None,
        "metrics": {}, "metric_lines": 0, "nodes": {},
    }


def fold(state: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    """Fold run.log events, in file order, into `state` (changed in place and returned)."""
    metrics = state["metrics"]
    nodes = state["nodes"]
    for ev in events:
        t = ev.get("t")
        if not isinstance(t, (int, float)) or isinstance(t, bool):
            t = None
        kind = ev.get("event")
        node = ev.get("node")
        if t is not None:
            if state["first_t"] is None:
                state["first_t"] = t
            if state["last_t"] is None or t > state["last_t"]:
                state["last_t"] = t
        nrec = None
        if node is not None:
            nrec = nodes.setdefault(str(node), {"status": None, "started": None, "ended": None,
                                                "last_t": None, "metric_lines": 0})
            if t is not None:
                nrec["last_t"] = t
        if kind == "metrics":
            values = ev.get("metrics")
            if not isinstance(values, dict):
                continue
            state["metric_lines"] += 1
            if nrec is not None:
                nrec["metric_lines"] += 1
            step = ev.get("step")
            for name, value in values.items():
                _fold_metric(metrics, name, value, step)
            if state["started"] is None and t is not None:  # logging metrics means it ran
                state["started"] = t
        elif kind == "status":
            status = ev.get("status")
            if status not in STATUSES:
                continue
            applies = state["status"] not in TERMINAL
            if applies and status in ("queued", "running") and state["status"] == "preempted":
                state["reason"] = None  # as store.runlog: running again after a preemption
            for target in (nrec, state):
                if target is None or target["status"] in TERMINAL:
                    continue  # the first final status wins
                target["status"] = status
                if status == "running" and target["started"] is None:
                    target["started"] = t
                target["ended"] = t if status in STOPPED else None  # requeued after preemption: going again
            if applies and (status in STOPPED or "reason" in ev or "exit_code" in ev):
                state["reason"] = ev.get("reason")
                state["exit_code"] = ev.get("exit_code")
            elif not applies and status in TERMINAL and state["exit_code"] is None and isinstance(ev.get("exit_code"), int):
                state["exit_code"] = ev["exit_code"]  # as store.runlog: the process's code completes a cancel
        elif kind == "exit" and nrec is not None and nrec["status"] not in TERMINAL:
            # a remote rank's process ended (scripts/singkit_entry.py --exit-event): the node
            # stops there, and shows the run's outcome, which only the backend records
            nrec["status"], nrec["ended"] = None, t
        elif kind == "hparams":
            values = ev.get("hparams")
            if isinstance(values, dict):
                state["hparams"].update(values)
    return state


def _fold_metric(metrics: dict[str, list], name: str, value: Any, step: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return  # strings and nested values are not plottable metrics
    stats = metrics.get(name)
    if stats is None:
        stats = metrics[name] = [None, None, None, None, 0, 0]
    stats[COUNT] += 1
    stats[LAST] = value
    stats[LAST_STEP] = step if isinstance(step, (int, float)) and not isinstance(step, bool) else stats[COUNT] - 1
    if not math.isfinite(value):
        stats[NONFINITE] += 1
        return
    if stats[MIN] is None or value < stats[MIN]:
        stats[MIN] = value
    if stats[MAX] is None or value > stats[MAX]:
        stats[MAX] = value


def run_status(state: dict[str, Any] | None) -> str:
    """The run's status as the store folds it: its status lines (see fold), else queued."""
    if not state:
        return "queued"
    return state["status"] or "queued"


def run_times(state: dict[str, Any] | None, now: float) -> tuple[float | None, float | None, float | None]:
    """(started, ended, duration seconds). A run still going is measured up to `now`."""
    if not state or state["started"] is None:
        return None, None, None
    started = state["started"]
    status = run_status(state)
    ended = state["ended"]
    if ended is None and status in STOPPED:
        ended = state["last_t"]
    stop = ended if ended is not None else now
    return started, ended, max(0.0, stop - started)
