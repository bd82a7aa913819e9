"""A sweep's summary: hparam sets ranked by the primary metric (mean ± std over repeats, best
run), and a plot of the metric against each swept hparam.

Each run is scored by its best value of the metric (or its last, with use="last"); runs that
never logged a finite value are counted but not scored. Repeats are runs whose hparams differ
only in repeat keys such as `seed`.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from singkit import fmt
from singkit.environment import Environment
from singkit.exceptions import UsageError
from singkit.reports import plotdata, rowsets
from singkit.store.fold import LAST, MAX, MIN
from singkit.reports.model import Run, StoreReader
from singkit.reports.plots import FORMATS, new_figure, report_dir, save_figure
from singkit.reports.prefs import MetricPrefs, metric_prefs
from singkit.reports.render import format_cell
from singkit.reports.tables import Table
from singkit.suggest import hint


@dataclass
class Summary:
    job: str
    metric: str
    maximize: bool
    use: str
    keys: list[str]
    groups: list[dict[str, Any]] = field(default_factory=list)
    scores: list[tuple[Run, float | None]] = field(default_factory=list)
    number_format: str = ""  # fmt.column_format of the metric's run values (see metric_format)


def score(run: Run, metric: str, maximize: bool, use: str) -> float | None:
    stats = run.metrics.get(metric)
    if not stats:
        return None
    value = stats[LAST] if use == "last" else stats[MAX if maximize else MIN]
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def check_metric(runs: list[Run], name: str, prefs: MetricPrefs, job: str) -> None:
    """A metric the user typed (--metric) must be one some run of `job` logged; else UsageError
    (exit 2) naming the closest logged ones (singkit.suggest), before anything is written."""
    known = rowsets.metric_names(runs, prefs)
    if name in known:
        return
    said = hint(name, known)
    raise UsageError(f"--metric {name}: no run of {job} logged `{name}`; "
                     + (f"{said} (logged: {', '.join(known)})" if said
                        else f"its runs logged {', '.join(known)}" if known else "its runs logged no metrics yet"))


def pick_metric(runs: list[Run], prefs: MetricPrefs, job: str, typed: str | None = None) -> str:
    """The metric that ranks `job`: the one typed (checked), else general.primary-metric, else
    the only one logged; UsageError saying which of these is missing and what would do."""
    known = rowsets.metric_names(runs, prefs)
    if typed:
        check_metric(runs, typed, prefs, job)
        return typed
    if prefs.primary:
        if prefs.primary not in known:
            said = hint(prefs.primary, known)
            raise UsageError(f"no run of {job} logged `{prefs.primary}`, general.primary-metric in the config; "
                             + (f"{said} " if said else "")
                             + f"pass --metric, one of: {', '.join(known) or '(no metrics yet)'}")
        return prefs.primary
    if len(known) == 1:
        return known[0]
    raise UsageError(f"which metric ranks {job}? pass --metric (one of: {', '.join(known) or 'none logged yet'}) "
                     "or set general.primary-metric in configs/singkit.yaml")


def summarize(env: Environment, job: str, metric: str | None = None, maximize: bool | None = None,
              use: str = "best", prefs: MetricPrefs | None = None) -> Summary:
    if use not in ("best", "last"):
        raise UsageError(f"--use `{use}`: choose best or last")
    prefs = prefs or metric_prefs(env, primary=metric, maximize=maximize)
    with StoreReader(env) as reader:
        job = reader.layout.check_job(job)
        runs = reader.runs(job)
    if not runs:
        raise UsageError(f"{job} has no runs to summarize")
    metric = pick_metric(runs, prefs, job, typed=metric)
    higher = prefs.higher_is_better(metric)
    keys = plotdata.varying(runs, skip_repeats=True)
    summary = Summary(job, metric, higher, use, keys)
    summary.scores = [(r, score(r, metric, higher, use)) for r in runs]
    summary.number_format = metric_format(runs, metric, higher)
    buckets: dict[tuple, list[tuple[Run, float | None]]] = {}
    for run, value in summary.scores:
        buckets.setdefault(tuple(format_cell(run.hparams.get(k)) for k in keys), []).append((run, value))
    for members in buckets.values():
        values = [v for _, v in members if v is not None]
        best = (max if higher else min)(members, key=lambda m: m[1] if m[1] is not None else (-math.inf if higher else math.inf))
        summary.groups.append({
            **{f"hparams.{k}": members[0][0].hparams.get(k) for k in keys},
            "runs": len(members), "scored": len(values),
            "mean": statistics.fmean(values) if values else None,
            "std": statistics.stdev(values) if len(values) > 1 else None,
            "best": best[1], "best_run": best[0].run if best[1] is not None else None,
            "values": values,
        })
    sign = -1 if higher else 1
    summary.groups.sort(key=lambda g: (g["mean"] is None, sign * g["mean"] if g["mean"] is not None else 0))
    for rank, group in enumerate(summary.groups, start=1):
        group["rank"] = rank if group["mean"] is not None else None
    return summary


def metric_format(runs: list[Run], metric: str, higher: bool) -> str:
    """The number format of `metric` in this job: fmt.column_format of every run's last and
    best value — the values of the runs table's metric columns — so that the summary's mean,
    ± std and best read with the decimals the runs table uses (`0.9750` in both)."""
    values = []
    for run in runs:
        stats = run.metrics.get(metric)
        if stats:
            values += [stats[LAST], stats[MAX if higher else MIN]]
    return fmt.column_format(values)


def summary_table(summary: Summary) -> Table:
    columns = ["rank", *(f"hparams.{k}" for k in summary.keys), "runs", "mean", "std", "best", "best_run"]
    what = f"{summary.use} {summary.metric}"
    labels = {f"hparams.{k}": k for k in summary.keys}
    labels.update({"mean": f"mean {what}", "std": "± std", "best": f"best {summary.metric}", "best_run": "best run"})
    # the mean, its ± std and the best value are read side by side: one format for the three
    return Table(columns, summary.groups, labels=labels, formats=dict.fromkeys(("mean", "std", "best"), summary.number_format))


def headline(summary: Summary) -> str:
    direction = "higher" if summary.maximize else "lower"
    scored = sum(1 for _, v in summary.scores if v is not None)
    return (f"{summary.job}: {len(summary.groups)} hparam set(s), {len(summary.scores)} run(s) "
            f"({scored} with {summary.metric}); ranked by the {summary.use} {summary.metric}, {direction} is better")


def log_spaced(values: list[Any]) -> bool:
    """Whether an hparam's values were chosen on a log scale, so that a log axis spaces them
    evenly. The rule: every value a positive number, the largest at least 10 times the
    smallest (a sweep within one decade reads as well on a linear axis), and the ratios between
    sorted distinct neighbours about the same (each log step within 35% of their mean), as
    in 0.1, 0.01 (one ratio: constant by definition), 1e-4, 1e-3, 1e-2 or 1e-4, 3e-4, 1e-3,
    3e-3 — but not 1, 2, 3, ..., 200, a linear grid however wide, nor 0.001, 0.002, 0.004."""
    nums = sorted({float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)})
    if len(nums) < 2 or nums[0] <= 0 or not all(math.isfinite(v) for v in nums) or nums[-1] / nums[0] < 10:
        return False
    steps = [math.log10(b / a) for a, b in zip(nums, nums[1:])]
    mean = sum(steps) / len(steps)
    return all(abs(step - mean) <= 0.35 * mean for step in steps)


def spread_note(summary: Summary) -> str:
    """What the plot's points and bars are: `mean ± std over 2 runs` (or `over 1-3 runs`) when
    some point stands for more than one scored run; "" when each stands for one (no std).
    A point of an hparam's panel is every run with that value: with one swept hparam, its
    set's repeats; with several, also the runs that differ in the others."""
    counts: list[int] = []
    for key in summary.keys:
        per_value: dict[str, int] = {}
        for run, value in summary.scores:
            if value is not None:
                label = format_cell(run.hparams.get(key))
                per_value[label] = per_value.get(label, 0) + 1
        counts += per_value.values()
    if not counts or max(counts) < 2:
        return ""
    low, high = min(counts), max(counts)
    return f"mean ± std over {low} runs" if low == high else f"mean ± std over {low}-{high} runs"


def summary_plot(env: Environment, summary: Summary, fmt: str = "png", dpi: int = 100,
                 name: str = "summary") -> Path | None:
    """The metric against each swept hparam (one panel each); None when nothing was swept."""
    if fmt not in FORMATS:
        raise UsageError(f"--format `{fmt}`: choose png or svg")
    if not summary.keys:
        return None
    import numpy as np
    import pandas as pd
    import seaborn as sns

    scored = [(r, v) for r, v in summary.scores if v is not None]
    if not scored:
        return None
    rows, cols = (1, len(summary.keys)) if len(summary.keys) <= 3 else (math.ceil(len(summary.keys) / 3), 3)
    fig, axes = new_figure(rows, cols, 0)
    for ax, key in zip(axes, summary.keys):
        values = [r.hparams.get(key) for r, _ in scored]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        frame = pd.DataFrame({"x": values if numeric else [format_cell(v) for v in values],
                              "y": [v for _, v in scored]})
        if numeric:
            sns.scatterplot(data=frame, x="x", y="y", ax=ax, color="0.55", s=18, legend=False)
            sns.lineplot(data=frame, x="x", y="y", ax=ax, estimator="mean", errorbar="sd", marker="o")
            if log_spaced(values):
                ax.set_xscale("log")  # lr-style sweeps: evenly spaced on a log axis, squashed on a linear one
        else:
            order = sorted(set(frame["x"]))
            sns.stripplot(data=frame, x="x", y="y", ax=ax, color="0.55", size=4, order=order)
            sns.pointplot(data=frame, x="x", y="y", ax=ax, estimator=np.mean, errorbar="sd", order=order)
        ax.set_xlabel(key)
        ax.set_ylabel(f"{summary.use} {summary.metric}")
    for ax in axes[len(summary.keys):]:
        ax.remove()
    note = spread_note(summary)
    fig.suptitle(f"{summary.job}: {summary.use} {summary.metric} by hparam" + (f" ({note})" if note else ""),
                 fontsize="medium")
    return save_figure(fig, report_dir(env, summary.job) / f"{summary.job}-{name}.{fmt}", fmt, dpi)
