"""Per-step metric values out of run.log, fast: the input of plots and of `report.metrics`.

A 10,000-step run.log has 10,000 metric lines; a plot of 100 such runs parses a million.
Only lines mentioning "metrics" are parsed, all of a file's lines in one json.loads call,
with the cyclic garbage collector paused.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from singkit.reports.source import loads_or_none, paused_gc
from singkit.store.runlog import UNDECODABLE
from singkit.store.safe import open_stored


def metric_events(log: Path | str) -> list[dict[str, Any]]:
    """The run's `metrics` events in file order; a torn or foreign line is skipped."""
    try:
        with open_stored(log) as fh:  # a link is read as missing, never followed
            data = fh.read()
    except (FileNotFoundError, IsADirectoryError):
        return []
    lines = [ln for ln in data.split(b"\n") if b'"metrics"' in ln]
    with paused_gc():
        try:
            events = json.loads(b"[" + b",".join(lines) + b"]") if lines else []
        except UNDECODABLE:
            events = [ev for ev in map(loads_or_none, lines) if ev is not None]
    return [ev for ev in events
            if isinstance(ev, dict) and ev.get("event") == "metrics" and isinstance(ev.get("metrics"), dict)]


def main_node(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """On multi-node runs every rank may log the same metrics: keep the lowest node's lines
    (and lines without a node), so a curve is drawn once rather than zig-zagging between ranks."""
    nodes = {node_of(ev) for ev in events}
    nodes.discard(None)
    if not nodes:
        return events
    first = min(nodes, key=lambda n: (not isinstance(n, int), n if isinstance(n, int) else str(n)))
    return [ev for ev in events if node_of(ev) in (None, first)]


def node_of(event: dict[str, Any]) -> int | str | None:
    """The line's `node` (an int by the protocol; a name is kept), None for anything else: a list
    or a mapping there (a foreign line) names no node, and would not even hash."""
    node = event.get("node")
    return node if isinstance(node, (int, str)) and not isinstance(node, bool) else None


def columns(events: list[dict[str, Any]], x: str, metrics: list[str] | None = None) -> dict[str, tuple[list, list]]:
    """metric -> (xs, ys). `x` is `step` (the line's step, else its index), `time` (seconds
    since the run's first metric line) or the name of a metric logged on the same lines.
    Values that are not numbers are dropped; NaN and inf are kept (callers decide)."""
    out: dict[str, tuple[list, list]] = {}
    wanted = set(metrics) if metrics else None
    t0 = next((ev["t"] for ev in events if _num(ev.get("t"))), None)
    for i, ev in enumerate(events):
        values = ev["metrics"]
        if x == "step":
            xv = ev.get("step", i)
        elif x == "time":
            xv = ev.get("t") - t0 if t0 is not None and _num(ev.get("t")) else None
        else:
            xv = values.get(x)
        if not _num(xv):
            continue
        for name, value in values.items():
            if name == x or (wanted is not None and name not in wanted) or not _num(value):
                continue
            pair = out.get(name)
            if pair is None:
                pair = out[name] = ([], [])
            pair[0].append(xv)
            pair[1].append(value)
    return out


def step_rows(events: list[dict[str, Any]], run: str, metrics: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per (node, step): lines logged at the same step (train and eval metrics written
    separately, say) are merged into one row; `t` is the time of the row's last line."""
    rows: dict[tuple, dict[str, Any]] = {}
    wanted = set(metrics) if metrics else None
    for i, ev in enumerate(events):
        node = node_of(ev)
        step = ev.get("step", i)
        key = (node, step if _num(step) or isinstance(step, str) else i)
        row = rows.get(key)
        if row is None:
            row = rows[key] = {"run": run, "node": node, "step": key[1]}
        if _num(ev.get("t")):
            row["t"] = ev["t"]
        for name, value in ev["metrics"].items():
            if wanted is None or name in wanted:
                row[f"metrics.{name}"] = value if _num(value) or isinstance(value, str) else json.dumps(value)
    return list(rows.values())


def _num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def finite(value: Any) -> bool:
    return _num(value) and math.isfinite(value)
