"""`report` tasks: tables, metric views, logs, errors, audit events, plots, sweep summary, HTML.

Everything reads only the job store (works offline, for local and Singularity jobs alike).
Tables go to stdout, --json prints JSON alone on stdout, written files are printed as paths.
"""

from __future__ import annotations

from pathlib import Path

from singkit.environment import Environment
from singkit.exceptions import UsageError, shown_path
from singkit.fmt import strict_json
from singkit.tasks._edge import int_arg as _int
from singkit.tasks._edge import job_arg, task
from singkit.tasks._surface import Choices

FILTER_HELP = 'keep rows where COLUMN OP VALUE holds, e.g. "metrics.acc>0.8" (OP: = != > >= < <= ~ !~); repeatable'
RUN_EVENTS = ("status", "hparams", "metrics", "exit")  # the run.log protocol (singkit.store.runlog)
COMMON_HELP = {
    "job": "the job (JOB=jobN or --job=jobN)",
    "columns": "comma list of columns to show; globs allowed (hparams.*)",
    "filter": FILTER_HELP,
    "sort": "sort by this column: a header of the table (e.g. metrics.acc, duration); missing values last",
    "reverse": "sort descending",
    "last": "show only the last N rows",
    "export": "write the table to FILE.csv, .tsv or .json instead of printing it; a relative FILE goes under reports/",
    "json": "print JSON alone on stdout",
    "wide": "every column, each in every row (default: fit the terminal, values shared by all rows said once above)",
}


def _float(value: str | float | None, flag: str, default: float) -> float:
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise UsageError(f"--{flag} takes a number, not `{value}`") from None


def _emit_table(env: Environment, table, export: str | None, as_json: bool, wide: bool = True,
                what: str = "rows") -> None:
    """Export, JSON, or the text table fitted to the terminal (wide: every column, as stored)."""
    from singkit.outpaths import output_file
    from singkit.reports import render

    if export:
        # Relative names go under reports/ (gitignored), never into the project root, where the
        # file would enter the next job's code snapshot.
        path = Path(export).expanduser()
        path = path if path.is_absolute() else env.project_root / "reports" / path
        created = output_file(path, "--export")
        written = render.export(path, table.columns, [*table.rows, *table.footer])
        if created is not None and created != env.project_root / "reports":  # reports/ is singkit's own folder
            env.err(f"--export {export}: the folder {shown_path(created)} did not exist; created it")
        env.err(f"wrote {len(table.rows)} row(s) to {shown_path(written)}")
        env.out(str(written))
    elif as_json:
        env.out(render.to_json(render.json_rows(table.columns, [*table.rows, *table.footer])))
    else:
        _print_table(env, table, wide, what)


def _print_table(env: Environment, table, wide: bool = False, what: str = "rows", remedy: str = "--wide shows them") -> None:
    """A text table fitted to the terminal (singkit.reports.layout): values every row shares
    said once above it, and the columns left out named on stderr in a line that fits too."""
    from singkit.reports import layout, render

    width = layout.terminal_width(env.stdout, env.environ)
    shown = render.render_fitted(table.columns, table.rows, table.footer, table.labels, width=width, wide=wide,
                                 formats=table.formats)
    if shown.constant:
        env.out(layout.describe_constant(shown.constant, f"all {len(table.rows)} {what}:", width))
    env.out(shown.text)
    if shown.hidden:
        env.err(layout.left_out(shown.hidden, width, remedy))


@task(name="list", iterable=["filter"], help={**COMMON_HELP, "jobs": "one row per job", "runs": "one row per run (default)",
                                 "nodes": "one row per node of each run",
                                 "job": "only this job's runs: --job=jobN (optional, so not a positional JOB=)",
                                 "group": "one row per group: `hparams` (the sweep's hparam sets) or comma list of columns",
                                 "mean": "comma list of columns to average (over each group, or as a last row)"})
def list_(c, env, job=None, jobs=False, runs=False, nodes=False, columns=None, filter=None, sort=None,
         reverse=False, last: int | None = None, group=None, mean=None, export=None, json=False, wide=False):
    """Table of jobs, runs (hparams, last/best metrics, status, duration, cost) or nodes."""
    from singkit.reports import views

    if jobs + runs + nodes > 1:
        raise UsageError("choose one of --jobs, --runs, --nodes")
    kind = "jobs" if jobs else "nodes" if nodes else "runs"
    table = views.list_table(env, kind, job_arg(job, required=False), columns=columns, filters=filter,
                             sort=sort, reverse=reverse, last=_int(last, "last"), group=group, mean=mean,
                             cli=True)
    if not table.rows and not job and not env.home.joinpath("jobs").is_dir() and not (json or export):
        env.err(f"no jobs yet in {env.home}; submit one with `invoke job.submit`")
        return
    _emit_table(env, table, export, json, wide, "groups" if group else kind)


@task(positional=["job"], iterable=["filter"], help={**COMMON_HELP, "run": "only this run (jobN.K or K)",
                                                     "metrics": "comma list of metrics to show"})
def metrics(c, env, job, run=None, metrics=None, columns=None, filter=None, sort=None, reverse=False,
            last: int | None = None, export=None, json=False, wide=False):
    """Per-step table of a job's logged metrics (a row per run and step)."""
    from singkit.reports import views

    table = views.metrics_table(env, job_arg(job), run, metrics=metrics, filters=filter, sort=sort,
                                reverse=reverse, last=_int(last, "last"), columns=columns)
    _emit_table(env, table, export, json, wide)


@task(positional=["job"], help={"job": COMMON_HELP["job"], "run": "only this run (jobN.K or K)",
                                "event": "comma list of event kinds",
                                "last": COMMON_HELP["last"], "json": COMMON_HELP["json"]},
      choices={"event": Choices(RUN_EVENTS, comma=True)})
def log(c, env, job, run=None, event=None, last: int | None = None, json=False):
    """The run.log events of a job's runs, in time order."""
    from singkit.reports import views

    evs = views.log_events(env, job_arg(job), run, event, _int(last, "last"))
    if json:
        env.out(strict_json(evs))
        return
    _print_table(env, views.event_table(evs, with_run=True), remedy="--json shows them")


@task(help={"job": "only this job (default: every job)", "tail": "lines of stderr to show per error (default 10)",
            "all": "also group cancelled and preempted runs", "json": COMMON_HELP["json"]})
def errors(c, env, job=None, tail: int | None = None, all=False, json=False):
    """Failed runs grouped by error signature, with the tail of stderr."""
    from singkit.reports import errors as errs

    job = job_arg(job, required=False)
    statuses = ("failed", "cancelled", "preempted") if all else ("failed",)
    groups = errs.error_groups(env, job, statuses, _int(tail, "tail") if tail is not None else 10)
    if json:
        env.out(strict_json(groups))
    else:
        env.out(errs.render_groups(groups, job or "the store"))


@task(help={"job": "only events about this job",
            "event": "comma list of kinds: build, build-failed, push, pin (images); submit, submit-refused, "
                     "submit-abandoned, cancel, reconcile (jobs); azureml-submit, azureml-adopt (Singularity runs)",
            "last": COMMON_HELP["last"], "json": COMMON_HELP["json"]})
def events(c, env, job=None, event=None, last: int | None = None, json=False):
    """singkit's audit log: what it built, pushed, pinned, submitted, cancelled."""
    from singkit.reports import views

    evs = views.audit_events(env, job_arg(job, required=False), event, _int(last, "last"))
    if json:
        env.out(strict_json(evs))
        return
    if not evs:
        env.err(f"no events recorded in {env.home / 'events.jsonl'}" + (" for that selection" if job or event else ""))
        return
    _print_table(env, views.event_table(evs, with_run=False), remedy="--json shows them")


PLOT_HELP = {
    "job": COMMON_HELP["job"],
    "metrics": "comma list of metrics, one panel each (default: all)",
    "x": "x axis: step (default: general.step-name), time, or a metric logged with the others",
    "break_on": "a figure per `run`, or per value of an hparam (e.g. lr)",
    "aggregate": "over runs with the same hparams (ignoring seed); `none`: a line per run (default with repeats: mean)",
    "group_by": "comma list of hparams that define an aggregate group (default: those swept)",
    "band": "band around the aggregate (implies --aggregate=mean)",
    "smooth": "EMA weight in [0, 1), e.g. 0.6",
    "layout": "panel grid ROWSxCOLS, e.g. 2x2",
    "format": "file format (default png)",
    "filter": "plot only runs whose run-table row matches, e.g. \"hparams.lr<0.1\"; repeatable",
    "dpi": "resolution of png files (default 100)",
}
PLOT_CHOICES = {"aggregate": ("mean", "median", "none"), "band": ("std", "sem", "minmax"), "format": ("png", "svg")}


def _plot_options(metrics=None, x=None, break_on=None, aggregate=None, group_by=None, band=None, smooth=None,
                  layout=None, format="png", filter=None, dpi=None):
    from singkit.reports.plots import PlotOptions, check_dpi, check_layout
    from singkit.reports.views import split_names

    check_layout(layout or None)  # a bad shape is said before any job is read
    return PlotOptions(metrics=split_names(metrics) or None, x=x or None, break_on=break_on or None,
                       aggregate=aggregate or None, group_by=split_names(group_by) or None, band=band or None,
                       smooth=_float(smooth, "smooth", 0.0), layout=layout or None, fmt=(format or "png").lower(),
                       filters=filter or None, dpi=check_dpi(100 if (given := _int(dpi, "dpi")) is None else given))


@task(positional=["job"], iterable=["filter"], help=PLOT_HELP, choices=PLOT_CHOICES)
def plot(c, env, job, metrics=None, x=None, break_on=None, aggregate=None, group_by=None, band=None, smooth=None,
         layout=None, format="png", filter=None, dpi: int | None = None):
    """Seaborn line plots of a job's metrics under reports/<job>/ (paths printed)."""
    from singkit.reports.plots import plot_job

    opts = _plot_options(metrics, x, break_on, aggregate, group_by, band, smooth, layout, format, filter, dpi)
    for item in plot_job(env, job_arg(job), opts):
        env.out(str(item.path))


@task(positional=["job"], help={"job": COMMON_HELP["job"], "metric": "rank by this metric (default: general.primary-metric)",
                                "maximize": "higher is better", "minimize": "lower is better",
                                "use": "score each run by its best (default) or last value",
                                "format": "file format (default png)", "no_plot": "skip the plot", "json": COMMON_HELP["json"]},
      choices={"use": ("best", "last"), "format": PLOT_CHOICES["format"]})
def summary(c, env, job, metric=None, maximize=False, minimize=False, use="best", format="png", no_plot=False,
            json=False):
    """A sweep's hparam sets ranked by the primary metric (mean ± std, best run) and its plot."""
    from singkit.reports import render, summary as sweep

    if maximize and minimize:
        raise UsageError("choose one of --maximize and --minimize")
    result = sweep.summarize(env, job_arg(job), metric, True if maximize else False if minimize else None, use)
    table = sweep.summary_table(result)
    if json:
        env.out(strict_json({"job": result.job, "metric": result.metric, "maximize": result.maximize,
                                  "use": result.use, "hparams": result.keys,
                                  "groups": render.json_rows([*table.columns, "scored", "values"], table.rows)}))
        return
    env.err(sweep.headline(result))
    _print_table(env, table, what="hparam sets")
    if not no_plot:
        path = sweep.summary_plot(env, result, (format or "png").lower())
        if path is None:
            env.err("no hparam varies between the runs (or none has a value): no summary plot")
        else:
            env.out(str(path))


@task(positional=["job"], help={"job": COMMON_HELP["job"], "metric": "rank the sweep by this metric",
                                "smooth": PLOT_HELP["smooth"], "aggregate": PLOT_HELP["aggregate"],
                                "band": PLOT_HELP["band"]},
      choices={"aggregate": PLOT_CHOICES["aggregate"], "band": PLOT_CHOICES["band"]})
def html(c, env, job, metric=None, smooth=None, aggregate=None, band=None):
    """One self-contained HTML page under reports/<job>/: job info, runs, plots, summary, errors."""
    from singkit.reports.html import write_html

    opts = _plot_options(smooth=smooth, aggregate=aggregate, band=band)
    path, _images = write_html(env, job_arg(job), opts, metric=metric)
    env.out(str(path))
