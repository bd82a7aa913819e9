"""The data behind a metrics plot: series per run, EMA smoothing, grouping, aggregation, labels.

numpy and pandas are imported inside the functions (reports must not pay for them when
they only print a table).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from singkit.exceptions import UsageError
from singkit.reports import series
from singkit.reports.model import Run
from singkit.reports.prefs import REPEAT_KEYS
from singkit.reports.render import format_cell

BANDS = ("std", "sem", "minmax")
AGGREGATES = ("mean", "median")


@dataclass
class Line:
    """One curve per metric: a run's own values, or a group's mean/median with an optional band."""
    label: str
    runs: list[Run]
    xy: dict[str, tuple[Any, Any]] = field(default_factory=dict)        # metric -> (x, y) arrays
    band: dict[str, tuple[Any, Any, Any]] = field(default_factory=dict)  # metric -> (x, lo, hi)
    sort_value: Any = None
    group: str | None = None   # lines sharing a group share a color and one legend entry

    @property
    def key(self) -> str:
        return self.group or self.label


MAX_LEGEND = 20


def color_by_sweep(lines: list[Line], runs: list[Run], skip: str | None) -> None:
    """Too many runs for a readable legend: color them by the swept hparams (seed aside), so
    the legend says lr=0.1 (33 runs) rather than listing 100 runs."""
    if len(lines) <= MAX_LEGEND:
        return
    keys = [k for k in varying(runs, skip_repeats=True) if k != skip]
    groups = {hparam_label(line.runs[0].hparams, keys) for line in lines}
    if not keys or len(groups) > MAX_LEGEND:
        return
    for line in lines:
        line.group = hparam_label(line.runs[0].hparams, keys)
        line.sort_value = _sort_value(line.runs[0].hparams, keys)


def has_points(line: Line) -> bool:
    """Whether the line would show anything: some finite value in some metric."""
    import numpy as np

    return any(y.size and np.isfinite(y).any() for _, y in line.xy.values())


def load_series(runs: list[Run], x: str, metrics: list[str] | None) -> dict[str, dict[str, tuple[Any, Any]]]:
    """run id -> metric -> (x, y) float arrays sorted by x; inf becomes NaN, a point the drawn line
    leaves out (as sns.lineplot did: the line joins its neighbours) and aggregates skip."""
    import numpy as np

    out: dict[str, dict[str, tuple[Any, Any]]] = {}
    for run in runs:
        cols = series.columns(series.main_node(series.metric_events(run.ref.log, as_floats=True)), x, metrics)
        arrays = {}
        for name, (xa, ya) in cols.items():
            ya[np.isinf(ya)] = np.nan
            if xa.size > 1 and np.any(np.diff(xa) < 0):
                order = np.argsort(xa, kind="stable")
                xa, ya = xa[order], ya[order]
            arrays[name] = (xa, ya)
        out[run.run] = arrays
    return out


def ema(y: Any, weight: float) -> Any:
    """TensorBoard's debiased exponential moving average; NaN points stay NaN."""
    import numpy as np
    import pandas as pd

    if weight <= 0 or y.size == 0:
        return y
    smooth = pd.Series(y).ewm(alpha=1.0 - weight, adjust=True, ignore_na=True).mean().to_numpy(copy=True)
    smooth[np.isnan(y)] = np.nan
    return smooth


def aggregate(parts: list[tuple[Any, Any]], how: str, band: str | None) -> tuple[tuple[Any, Any], tuple[Any, Any, Any] | None]:
    """Center line (mean or median over runs at each x) and the band around it."""
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({"x": np.concatenate([p[0] for p in parts]), "y": np.concatenate([p[1] for p in parts])})
    stats = frame.groupby("x", sort=True)["y"].agg(["mean", "median", "std", "count", "min", "max"])
    xs = stats.index.to_numpy(dtype=float)
    center = stats[how].to_numpy(dtype=float)
    if band is None or len(parts) < 2:
        return (xs, center), None
    if band == "minmax":
        lo, hi = stats["min"].to_numpy(dtype=float), stats["max"].to_numpy(dtype=float)
    else:
        spread = stats["std"].fillna(0).to_numpy(dtype=float)
        if band == "sem":
            spread = spread / np.sqrt(np.maximum(stats["count"].to_numpy(dtype=float), 1))
        lo, hi = center - spread, center + spread
    return (xs, center), (xs, lo, hi)


def varying(runs: list[Run], keys: list[str] | None = None, skip_repeats: bool = False) -> list[str]:
    """hparam names whose value differs between `runs` (in first-seen order)."""
    names: dict[str, None] = {}
    for run in runs:
        for name in run.hparams:
            names.setdefault(name, None)
    found = []
    for name in keys or list(names):
        if skip_repeats and name.lower() in REPEAT_KEYS:
            continue
        values = {format_cell(r.hparams.get(name)) for r in runs}
        if len(values) > 1:
            found.append(name)
    return found


def hparam_label(hparams: dict[str, Any], keys: list[str]) -> str:
    return ", ".join(f"{k}={format_cell(hparams.get(k))}" for k in keys)


def run_lines(runs: list[Run], data: dict[str, dict[str, tuple]], smooth: float) -> list[Line]:
    """A line per run, named by the hparams that differ between the runs (run id if none do)."""
    keys = varying(runs)
    labels = [hparam_label(r.hparams, keys) if keys else r.run for r in runs]
    lines = []
    for run, label in zip(runs, labels):
        if keys and labels.count(label) > 1:
            label = f"{label} ({run.run})"
        xy = {m: (xa, ema(ya, smooth)) for m, (xa, ya) in data[run.run].items()}
        lines.append(Line(label, [run], xy, sort_value=_sort_value(run.hparams, keys)))
    return lines


def group_lines(runs: list[Run], data: dict[str, dict[str, tuple]], keys: list[str], how: str,
                band: str | None, smooth: float) -> list[Line]:
    """A line per group of runs sharing `keys` hparams: the mean/median over the group's runs."""
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault(tuple(format_cell(run.hparams.get(k)) for k in keys), []).append(run)
    lines = []
    for members in groups.values():
        label = hparam_label(members[0].hparams, keys) if keys else "all runs"
        line = Line(f"{label} (n={len(members)})", members, sort_value=_sort_value(members[0].hparams, keys))
        metrics = {m for r in members for m in data[r.run]}
        for metric in metrics:
            parts = [(data[r.run][metric][0], ema(data[r.run][metric][1], smooth))
                     for r in members if metric in data[r.run]]
            line.xy[metric], spread = aggregate(parts, how, band)
            if spread is not None:
                line.band[metric] = spread
        lines.append(line)
    return lines


def _sort_value(hparams: dict[str, Any], keys: list[str]) -> tuple:
    out = []
    for k in keys:
        v = hparams.get(k)
        out.append((0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0, format_cell(v)))
    return tuple(out)


def breaks(runs: list[Run], break_on: str | None) -> list[tuple[str, list[Run]]]:
    """(name, runs) per figure: one figure, one per run, or one per value of an hparam."""
    if not break_on:
        return [("", runs)]
    if break_on == "run":
        return [(r.run, [r]) for r in runs]
    name = break_on[8:] if break_on.startswith("hparams.") else break_on
    if not any(name in r.hparams for r in runs):
        from singkit.suggest import closest

        known = sorted({k for r in runs for k in r.hparams})
        close = closest(name, ["run", *known])
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise UsageError(f"--break-on `{break_on}`: no run has that hparam{hint}; use run or one of: {', '.join(known) or '(none)'}")
    groups: dict[str, list[Run]] = {}
    for run in sorted(runs, key=lambda r: _sort_value(r.hparams, [name])):
        groups.setdefault(f"{name}={format_cell(run.hparams.get(name))}", []).append(run)
    return list(groups.items())


def check_options(aggregate_how: str | None, band: str | None, smooth: float) -> None:
    if aggregate_how is not None and aggregate_how not in AGGREGATES:
        raise UsageError(f"--aggregate `{aggregate_how}`: choose mean, median or none (a line per run)")
    if band is not None and band not in BANDS:
        raise UsageError(f"--band `{band}`: choose std, sem or minmax")
    if not (0 <= smooth < 1) or math.isnan(smooth):
        raise UsageError(f"--smooth {smooth}: give a weight from 0 (none) up to, not including, 1 (e.g. 0.6)")
