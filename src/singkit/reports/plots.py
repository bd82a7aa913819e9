"""Seaborn line plots of a job's metrics: a panel per metric, runs named by their hparams.

Figures are drawn on matplotlib's Agg canvas through the object API (no pyplot state, no GUI
backend, nothing left open) and written atomically under reports/<job>/. Lines are drawn with
`errorbar=None` and `estimator=None`: seaborn's bootstrapped confidence interval over a
million points takes minutes, and aggregated curves and bands are computed here instead.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from singkit.environment import Environment
from singkit.exceptions import UsageError
from singkit.fsutil import atomic_write
from singkit.refs import shown
from singkit.reports import plotdata, rowsets, tables
from singkit.reports.model import Run, StoreReader, target_name
from singkit.reports.prefs import MetricPrefs, metric_prefs

FORMATS = ("png", "svg")
PANEL_SIZE = (5.0, 3.6)  # inches per metric panel


@dataclass
class PlotOptions:
    metrics: list[str] | None = None
    x: str | None = None                  # step (default: general.step-name), time, or a metric
    break_on: str | None = None           # None, "run", or an hparam: a figure per value
    aggregate: str | None = None          # mean | median over runs sharing the group hparams
    group_by: list[str] | None = None     # hparams that define a group (default: the sweep's)
    band: str | None = None               # std | sem | minmax around the aggregate
    smooth: float = 0.0                   # EMA weight, 0 = raw
    layout: str | None = None             # "RxC" panels
    fmt: str = "png"
    filters: list[str] | None = None      # run-table filters: plot only the matching runs
    dpi: int = 100


@dataclass
class PlotFile:
    path: Path
    metrics: list[str]
    lines: list[str] = field(default_factory=list)


def report_dir(env: Environment, job: str) -> Path:
    return env.project_root / "reports" / job


def safe_name(text: str) -> str:
    return re.sub(r"[^\w.=+-]+", "_", text).strip("_") or "_"


# A figure's size grows with its panels (PANEL_SIZE each): past this many a typo such as
# `--layout 100000x100000` would ask matplotlib for a canvas no machine has.
MAX_PANELS = 100
MAX_DPI = 1200


def check_layout(layout: str | None) -> tuple[int, int] | None:
    """(rows, cols) of a `--layout RxC`, None when not given; UsageError for another shape or
    more than MAX_PANELS panels. Checked before any job is read."""
    if not layout:
        return None
    match = re.fullmatch(r"\s*(\d{1,9})\s*[xX×]\s*(\d{1,9})\s*", layout)
    if not match or int(match[1]) < 1 or int(match[2]) < 1:
        raise UsageError(f"--layout {shown(layout)}: write ROWSxCOLS, e.g. 2x2")
    rows, cols = int(match[1]), int(match[2])
    if rows * cols > MAX_PANELS:
        raise UsageError(f"--layout {layout} is {rows * cols} panels; a figure takes at most {MAX_PANELS} "
                         "(one per metric: pick metrics with --metrics, e.g. 2x3)")
    return rows, cols


def check_dpi(dpi: int) -> int:
    """A png resolution in 1..MAX_DPI; UsageError otherwise (a huge one is a canvas no machine has)."""
    if not 1 <= dpi <= MAX_DPI:
        raise UsageError(f"--dpi={dpi}: give 1 to {MAX_DPI} (default 100)")
    return dpi


def parse_layout(layout: str | None, panels: int) -> tuple[int, int]:
    if not layout:
        if panels <= 3:
            return 1, max(panels, 1)
        cols = math.ceil(math.sqrt(panels))
        return math.ceil(panels / cols), cols
    rows, cols = check_layout(layout)  # type: ignore[misc]
    if rows * cols < panels:
        raise UsageError(f"--layout {layout} has {rows * cols} panel(s) for {panels} metric(s); "
                         f"use at least {math.ceil(panels / cols)}x{cols}, or pick metrics with --metrics")
    return rows, cols


def palette(lines: list[plotdata.Line]) -> dict[str, Any]:
    """A color per legend entry (line.key), in the lines' order."""
    import seaborn as sns

    firsts = list({line.key: line for line in lines}.values())
    n = len(firsts)
    numeric = all(len(line.sort_value or ()) == 1 and line.sort_value[0][0] == 0 for line in firsts)
    return dict(zip((line.key for line in firsts), _colors(sns, n, numeric)))


def _colors(sns: Any, n: int, numeric: bool) -> list[Any]:
    if numeric and n > 2:  # one numeric hparam (a sweep over lr, say): a sequential palette reads as order
        return sns.color_palette("viridis", n)
    if n <= 10:
        return sns.color_palette("deep", max(n, 1))
    return sns.color_palette("tab20" if n <= 20 else "husl", n)


LEGEND_ROW = 0.2  # inches per legend entry


def legend_columns(entries: int, height: float) -> int:
    return max(1, math.ceil(entries / max(8, int((height - 0.6) / LEGEND_ROW))))


def new_figure(rows: int, cols: int, legend_entries: int) -> tuple[Any, list[Any]]:
    """An Agg figure with a grid of axes in seaborn's whitegrid style, wide enough for the
    legend beside it and tall enough for at most 4 legend columns."""
    import seaborn as sns
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    height = PANEL_SIZE[1] * rows + 0.5
    if legend_columns(legend_entries, height) > 4:
        height = math.ceil(legend_entries / 4) * LEGEND_ROW + 0.6
    extra = 0.0 if legend_entries <= 1 else 2.2 * legend_columns(legend_entries, height)
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.85):
        fig = Figure(figsize=(PANEL_SIZE[0] * cols + extra, height), layout="constrained")
        FigureCanvasAgg(fig)
        grid = fig.subplots(rows, cols, squeeze=False)
    return fig, [ax for row in grid for ax in row]


def save_figure(fig: Any, path: Path, fmt: str, dpi: int) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, metadata={"Software": "singkit"} if fmt == "png" else None)
    atomic_write(path, buf.getvalue())
    return path


def draw_lines(fig: Any, axes: list[Any], metrics: list[str], lines: list[plotdata.Line], x_label: str,
               time_scale: float) -> None:
    """A panel per metric: each line drawn with matplotlib in its seaborn palette color, as
    `sns.lineplot(estimator=None, units=..., sort=False)` drew it (same z-order: legend entries in
    order, a key's lines by label; NaN points dropped), without building and grouping a million-row
    frame first (that was most of the drawing time at 100 runs × 10k steps)."""
    import numpy as np
    from matplotlib.lines import Line2D

    colors = palette(lines)
    for ax, metric in zip(axes, metrics):
        parts = [line for line in lines if metric in line.xy and line.xy[metric][0].size]
        if parts:
            keys = list(dict.fromkeys(line.key for line in parts))
            for key in keys:
                for line in sorted((p for p in parts if p.key == key), key=lambda p: p.label):
                    xa, ya = line.xy[metric]
                    shown_ = ~(np.isnan(xa) | np.isnan(ya))  # seaborn's dropna: a NaN point is left out
                    # one point makes no line: a marker, so a run of one step still shows
                    ax.plot(xa[shown_] / time_scale, ya[shown_], color=colors[key], linewidth=1.2,
                            marker="o" if np.count_nonzero(shown_) == 1 else None, markersize=4)
            for line in parts:
                if metric in line.band:
                    bx, lo, hi = line.band[metric]
                    ax.fill_between(bx / time_scale, lo, hi, color=colors[line.key], alpha=0.2, linewidth=0)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="gray")
        ax.set_title(metric)
        ax.set_xlabel(x_label)
        ax.set_ylabel("")
    for ax in axes[len(metrics):]:
        ax.remove()  # unused grid cells: one axis per metric, no empty frames
    counts: dict[str, int] = {}
    for line in lines:
        counts[line.key] = counts.get(line.key, 0) + 1
    if len(lines) > 1:
        handles = [Line2D([], [], color=colors[key], label=f"{key} ({n} runs)" if n > 1 else key)
                   for key, n in counts.items()]
        fig.legend(handles=handles, loc="outside right upper", fontsize="small", frameon=False,
                   ncols=legend_columns(len(handles), fig.get_figheight()))


def _time_axis(x: str, data: dict[str, dict[str, tuple]]) -> tuple[str, float]:
    if x != "time":
        return x, 1.0
    span = max((float(xa[-1]) for d in data.values() for xa, _ in d.values() if xa.size), default=0.0)
    if span > 3 * 3600:
        return "time (h)", 3600.0
    if span > 180:
        return "time (min)", 60.0
    return "time (s)", 1.0


def choose_metrics(runs: list[Run], wanted: list[str] | None, x: str, prefs: MetricPrefs, job: str) -> list[str]:
    known = [m for m in rowsets.metric_names(runs, prefs) if m != x]
    if not known:
        statuses = ", ".join(sorted({r.status for r in runs})) or "no runs"
        raise UsageError(f"{job} has no metrics to plot yet ({len(runs)} run(s): {statuses})")
    if not wanted:
        return known
    missing = [m for m in wanted if m not in known]
    if missing:
        raise UsageError(f"no run of {job} logged {', '.join(missing)}{did_you_mean(missing, known)}; "
                         f"its metrics are: {', '.join(known)}")
    return wanted


def did_you_mean(names: list[str], choices: list[str]) -> str:
    """` (did you mean epoch?)` for the first of `names` that is close to one of `choices`
    (singkit.suggest, as every "did you mean"), else ""."""
    from singkit.suggest import closest

    for name in names:
        close = closest(name, choices)
        if close:
            return f" (did you mean {' or '.join(close)}?)"
    return ""


def check_x(x: str, runs: list[Run], prefs: MetricPrefs, job: str) -> None:
    """An x axis asked for by name must exist: step, time, or a metric some run logged
    (a typo would draw empty panels over a good plot)."""
    if x in ("step", "time"):
        return
    logged = rowsets.metric_names(runs, prefs)
    if x not in logged:
        choices = ["step", "time", *logged]
        raise UsageError(f"-x `{x}`: no run of {job} logged it{did_you_mean([x], choices)}; "
                         f"the x axis is one of: {', '.join(choices)}")


def select_runs(runs: list[Run], filters: list[str] | None, prefs: MetricPrefs) -> list[Run]:
    if not filters:
        return runs
    from singkit.reports.model import Job

    table = rowsets.run_table([Job(runs[0].job, runs[0].spec, runs)] if runs else [], prefs)
    keep = {row["run"] for row in tables.filter_rows(table, filters).rows}
    return [r for r in runs if r.run in keep]


def plot_job(env: Environment, job: str, opts: PlotOptions, prefs: MetricPrefs | None = None,
             name: str = "metrics") -> list[PlotFile]:
    """_plot_job with the two warnings a plot of valid data raises silenced (issue 14): numpy's
    overflow in the pandas mean over values near 1e308, and matplotlib's glyph missing from the
    font (an emoji in a name; the box drawn instead is the answer). Every other warning passes."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"overflow encountered in reduceat", category=RuntimeWarning)
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from (current )?font", category=UserWarning)
        return _plot_job(env, job, opts, prefs, name)


def _plot_job(env: Environment, job: str, opts: PlotOptions, prefs: MetricPrefs | None = None,
              name: str = "metrics") -> list[PlotFile]:
    """Draw the job's metrics; return the files written (one per --break-on value), named
    `<job>-<name><tags>.<fmt>` (see plot_tags). Every name the options give (x, metrics,
    hparams) is checked before anything is drawn: a typo raises UsageError and writes nothing.
    Runs that repeat an hparam set (seeds) are drawn as mean ± std per set unless
    `aggregate` is `none` (a line per run) or another aggregate is asked for."""
    if opts.fmt not in FORMATS:
        raise UsageError(f"--format `{opts.fmt}`: choose png or svg")
    band = opts.band
    every_run = opts.aggregate == "none"
    if every_run and band:
        raise UsageError(f"--band {band} is drawn around an aggregate: drop --aggregate none, or the band")
    how = None if every_run else opts.aggregate or ("mean" if band else None)  # a band needs an aggregate
    if how and band is None:
        band = "std"
    plotdata.check_options(how, band, opts.smooth)
    prefs = prefs or metric_prefs(env)
    with StoreReader(env) as reader:
        job = reader.layout.check_job(job)
        runs = reader.runs(job)
    runs = select_runs(runs, opts.filters, prefs)
    if not runs:
        raise UsageError(f"no runs of {job} to plot" + (" match the filter" if opts.filters else ""))
    known = sorted({k for r in runs for k in r.hparams})
    group_by = [k[8:] if k.startswith("hparams.") else k for k in opts.group_by or []]
    unknown = [k for k in group_by if k not in known]
    if unknown:
        raise UsageError(f"--group-by {', '.join(unknown)}: no run has that hparam{did_you_mean(unknown, known)}; "
                         f"hparams are: {', '.join(known) or '(none)'}")
    if opts.x:
        check_x(opts.x, runs, prefs, job)
    x = opts.x or prefs.step_name
    metrics = choose_metrics(runs, opts.metrics, x, prefs, job)
    if how is None and band is None and opts.aggregate is None and opts.break_on != "run" and has_repeats(runs):
        how, band = "mean", "std"  # repeats: mean ± std per hparam set reads better than a line per seed
    steps = sum(r.state.metric_lines for r in runs if r.state)
    if steps > 100_000:  # a few seconds of work: say what is going on
        env.err(f"{job}: plotting {steps:,} metric lines of {len(runs)} runs ...")
    data = plotdata.load_series(runs, x, metrics)
    if opts.x is None and x != "step" and not any(data[r.run] for r in runs):
        x = "step"  # the configured step-name was not logged: fall back to the line's step
        data = plotdata.load_series(runs, x, metrics)
    x_label, scale = _time_axis(x, data)
    rows, cols = parse_layout(opts.layout, len(metrics))
    outputs = []
    break_key = opts.break_on[8:] if opts.break_on and opts.break_on.startswith("hparams.") else opts.break_on
    for title, members in plotdata.breaks(runs, opts.break_on):
        if how:
            keys = group_by or [k for k in plotdata.varying(runs, skip_repeats=True) if k != break_key]
            lines = plotdata.group_lines(members, data, keys, how, band, opts.smooth)
        else:
            lines = plotdata.run_lines(members, data, opts.smooth)
        lines = [line for line in lines if plotdata.has_points(line)]  # queued, or only NaN so far
        plotdata.color_by_sweep(lines, members, break_key)
        lines.sort(key=lambda line: line.sort_value or ())
        fig, axes = new_figure(rows, cols, len({line.key for line in lines}))
        draw_lines(fig, axes, metrics, lines, x_label, scale)
        fig.suptitle(_title(job, members, title, how, opts.smooth, break_key, opts.filters, band), fontsize="medium")
        stem = f"{job}-{name}" + plot_tags(opts, how, band) + (f"-{safe_name(title)}" if title else "")
        path = save_figure(fig, report_dir(env, job) / f"{stem}.{opts.fmt}", opts.fmt, opts.dpi)
        outputs.append(PlotFile(path, list(metrics), list(dict.fromkeys(line.key for line in lines))))
    return outputs


def has_repeats(runs: list[Run]) -> bool:
    """Whether some hparam set was run more than once (runs differing only in seed-like keys)."""
    keys = plotdata.varying(runs, skip_repeats=True)
    seen: set[tuple] = set()
    for run in runs:
        key = tuple(plotdata.format_cell(run.hparams.get(k)) for k in keys)
        if key in seen:
            return True
        seen.add(key)
    return False


def plot_tags(opts: PlotOptions, how: str | None, band: str | None) -> str:
    """The part of a plot's file name that says which options drew it, so plots made with
    different options never overwrite each other and the same options always give the same
    name: `-loss+acc` (metrics), `-x-time`, `-mean-std` / `-median-minmax` / `-runs`
    (aggregate none), `-by-lr+opt` (group-by), `-ema0.6`, `-2x2` (layout), `-filter-<hash>`.
    The default plot has none. The resolution (dpi) and format (the suffix) are not tags."""
    import hashlib

    tags = []
    if opts.metrics:
        joined = "+".join(safe_name(m) for m in opts.metrics)
        tags.append(joined if len(joined) <= 40 else "m" + hashlib.sha256(joined.encode()).hexdigest()[:8])
    if opts.x:
        tags.append(f"x-{safe_name(opts.x)}")
    if opts.aggregate == "none":
        tags.append("runs")
    elif opts.aggregate or opts.band:  # the aggregate asked for, with its band (std when implied)
        tags.append(f"{how}-{band}")
    if opts.group_by:
        tags.append("by-" + "+".join(safe_name(k[8:] if k.startswith("hparams.") else k) for k in opts.group_by))
    if opts.smooth:
        tags.append(f"ema{opts.smooth:g}")
    if opts.layout:
        tags.append(safe_name(opts.layout.strip().lower().replace("×", "x")))
    return "".join(f"-{t}" for t in tags) + filter_tag(opts.filters)


def filter_tag(filters: list[str] | None) -> str:
    """`-filter-<8 hex>` for a plot of filtered runs, so it never overwrites the unfiltered one
    (or another filter's); the same filters always give the same name."""
    if not filters:
        return ""
    import hashlib

    return "-filter-" + hashlib.sha256("\n".join(filters).encode()).hexdigest()[:8]


def _title(job: str, runs: list[Run], name: str, how: str | None, smooth: float, break_key: str | None = None,
           filters: list[str] | None = None, band: str | None = None) -> str:
    target = target_name(runs[0].spec) if runs else None
    fixed = {k: v for k, v in runs[0].hparams.items()
             if k != break_key and all(r.hparams.get(k) == v for r in runs)} if runs else {}  # break value: in `name`
    parts = [job + (f" on {target}" if target else ""), name]
    if filters:
        parts.append("where " + " and ".join(filters))  # the file name only has their hash
    if fixed:  # what the runs share; for a single run, every hparam it ran with
        parts.append(plotdata.hparam_label(fixed, list(fixed)))
    if how:
        parts.append(f"{how} ± {band} over runs" if band in ("std", "sem") else
                     f"{how} over runs, {band} band" if band else f"{how} over runs")
    if smooth:
        parts.append(f"EMA {smooth:g}")
    return " · ".join(p for p in parts if p)
