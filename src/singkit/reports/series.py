"""Per-step metric values out of run.log, fast: the input of plots and of `report.metrics`.

A 10,000-step run.log has 10,000 metric lines; a plot of 100 such runs parses a million.
A clean file is read whole by one orjson call (store.runlog.decode, the one run.log reader);
the cyclic garbage collector is paused meanwhile. Columns are read with one C-level pass per metric (operator.itemgetter) when every line
has the key.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

from singkit.gcpause import paused_gc
from singkit.store.runlog import decode
from singkit.store.safe import open_stored


def metric_events(log: Path | str, as_floats: bool = False) -> list[dict[str, Any]]:
    """The run's `metrics` events in file order, read by the store's one run.log reader
    (store.runlog.decode, its rules for torn and foreign lines); a last line without its newline
    is read too when it decodes (a finished writer that left it off). `as_floats`: the caller
    turns every value into a float (plots), which spares the reader its checks for integers
    past 64 bits and for deep lines."""
    try:
        with open_stored(log) as fh:  # a link is read as missing, never followed
            data = fh.read()
    except (FileNotFoundError, IsADirectoryError):
        return []
    end = data.rfind(b"\n") + 1
    with paused_gc():
        events = decode(data[:end], floats=as_floats)[0]
        if data[end:].strip():
            events += decode(data[end:], floats=as_floats)[0]
    return [ev for ev in events if ev.get("event") == "metrics" and isinstance(ev.get("metrics"), dict)]


def main_node(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """On multi-node runs every rank may log the same metrics: keep the lowest node's lines
    (and lines without a node), so a curve is drawn once rather than zig-zagging between ranks."""
    if not any("node" in ev for ev in events):  # one node: the usual case, decided without node_of
        return events
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


def columns(events: list[dict[str, Any]], x: str, metrics: list[str] | None = None) -> dict[str, tuple[Any, Any]]:
    """metric -> (xs, ys) float arrays in file order, metrics in the order of their first point.
    `x` is `step` (the line's step, else its index), `time` (seconds since the run's first
    metric line) or the name of a metric logged on the same lines. Values that are not numbers
    (text, bool, null, lists) and values a line does not log are dropped; NaN and inf are kept
    (callers decide).

    Batched: a list per metric, typed in one call (pandas' infer_dtype) and turned into an array in
    one more, instead of a Python step per value; only a metric with holes or non-numbers is
    looked at value by value."""
    import numpy as np

    if not events:
        return {}
    values = _every(events, "metrics") or []
    names = list(dict.fromkeys(itertools.chain.from_iterable(values)))  # first-seen order
    if x == "step":
        xs, x_ok = _numbers(_every(events, "step") or [ev.get("step", i) for i, ev in enumerate(events)])
    elif x == "time":
        xs, x_ok = _numbers(_every(events, "t") or [ev.get("t") for ev in events])
        if not x_ok.any():
            return {}
        xs = xs - xs[int(np.argmax(x_ok))]
    elif x in names:
        xs, x_ok = _numbers(_every(values, x) or [v.get(x) for v in values])
    else:
        return {}
    wanted = set(metrics) if metrics else None
    found = []
    for name in names:
        if name == x or (wanted is not None and name not in wanted):
            continue
        # a line without it: None, not a number
        ys, y_ok = _numbers(_every(values, name) or [v.get(name) for v in values])
        keep = x_ok & y_ok
        if keep.any():
            first = int(np.argmax(keep))  # ties: the order of the keys on that line
            found.append(((first, list(values[first]).index(name)), name, xs[keep], ys[keep]))
    return {name: (xa, ya) for _, name, xa, ya in sorted(found, key=lambda f: f[0])}


def _every(items: list[dict[str, Any]], key: str) -> list[Any] | None:
    """`key`'s value on every item, in one C-level pass; None when some item lacks it."""
    from operator import itemgetter

    try:
        return list(map(itemgetter(key), items))
    except KeyError:
        return None


_NUMERIC = ("integer", "floating", "mixed-integer-float")  # pandas.api.types.infer_dtype: numbers only


def _numbers(items: list[Any]) -> tuple[Any, Any]:
    """(floats, is-a-number) of `items`; a non-number (text, bool, None) reads as NaN, not a number."""
    import numpy as np
    from pandas.api.types import infer_dtype

    if infer_dtype(items, skipna=False) in _NUMERIC:  # the usual case, decided in C
        try:
            return np.asarray(items, dtype=float), np.ones(len(items), dtype=bool)
        except OverflowError:  # an integer past float's range: below, as ±inf
            pass
    ok = np.fromiter(map(_num, items), dtype=bool, count=len(items))
    return np.fromiter((_float(v) if _num(v) else np.nan for v in items), dtype=float, count=len(items)), ok


def _float(value: float) -> float:
    """The number as a float; an integer past float's range (JSON allows any digits) is ±inf, as
    the fold (store/fold.py) reads it."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


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
