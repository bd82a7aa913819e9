"""report.plot never misleads: a mistyped name is exit 2 with "did you mean" and writes nothing;
each set of options has its own file; repeats are drawn as mean ± std per hparam set; a
log-spaced sweep gets a log axis; a single run's title names its hparams. The figures are
read back from the SVG files (texts, element ids, stroke colours), not from pixels."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import storegen
from clirunner import cli
from storegen import RunSpec, curve
from singkit.reports import summary as sweep
from singkit.reports.html import write_html
from singkit.reports.plots import PlotOptions, plot_job

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(tmp_path):
    home = tmp_path / ".singkit"
    runs = [RunSpec({"lr": lr, "seed": s}, [(i, {**m, "epoch": i // 5}) for i, m in curve(20, 2.0, 0.3 + lr)])
            for lr in (0.1, 0.01, 0.001) for s in (1, 2)]
    storegen.write_job(home, "job1", runs)
    storegen.write_job(home, "job2", [RunSpec({"lr": lr}, curve(10, 2.0, 0.5)) for lr in (0.1, 0.2, 0.3)])
    return tmp_path


def _plot(root, *args):
    return cli(["report.plot", *args], cwd=root, env={"SINGKIT_HOME": str(root / ".singkit")})


def svg_texts(path) -> list[str]:
    return re.findall(r"<!-- (.*?) -->", path.read_text())


def line_colours(path) -> set[str]:
    """Stroke colours of the drawn metric lines (width 1.2), grid grey aside."""
    return set(re.findall(r"stroke: (#[0-9a-f]{6}); stroke-width: 1\.2\b", path.read_text())) - {"#cccccc"}


# -- 3: a typo is an error, and nothing is overwritten -------------------------------------------------
@pytest.mark.parametrize("args, hint", [
    (["-x", "epochs"], "did you mean epoch?"),
    (["--metrics", "los"], "did you mean loss?"),
    (["--break-on", "lrr"], "did you mean lr?"),
    (["--aggregate", "mean", "--group-by", "sed"], "did you mean seed?"),
])
def test_unknown_names_exit_2_with_did_you_mean_and_write_nothing(store, args, hint):
    good = _plot(store, "job1")
    assert good.returncode == 0, good.stderr
    path = Path(good.stdout.strip())
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    files = sorted(path.parent.iterdir())
    bad = _plot(store, "job1", *args)
    assert bad.returncode == 2 and bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1 and hint in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before and sorted(path.parent.iterdir()) == files


def test_x_may_be_step_time_or_a_logged_metric(store):
    [by_epoch] = plot_job(storegen.store_env(store), "job1", PlotOptions(x="epoch", fmt="svg"))
    assert "epoch" not in by_epoch.metrics and "epoch" in svg_texts(by_epoch.path)   # the axis label


# -- 3: file names from the options that change the picture ---------------------------------------------
def test_different_options_give_different_stable_names(store):
    env = storegen.store_env(store)
    variants = [PlotOptions(), PlotOptions(aggregate="mean", band="std"), PlotOptions(aggregate="median"),
                PlotOptions(aggregate="none"), PlotOptions(smooth=0.6), PlotOptions(metrics=["loss"]),
                PlotOptions(x="time"), PlotOptions(layout="3x1"), PlotOptions(aggregate="mean", group_by=["seed"]),
                PlotOptions(filters=["lr<0.05"])]
    names = [plot_job(env, "job1", opts)[0].path.name for opts in variants]
    assert len(set(names)) == len(names), names
    assert names[:7] == ["job1-metrics.png", "job1-metrics-mean-std.png", "job1-metrics-median-std.png",
                         "job1-metrics-runs.png", "job1-metrics-ema0.6.png", "job1-metrics-loss.png",
                         "job1-metrics-x-time.png"]
    assert names[7] == "job1-metrics-3x1.png" and names[8] == "job1-metrics-mean-std-by-seed.png"
    assert plot_job(env, "job1", PlotOptions(band="std"))[0].path.name == names[1]   # the band implies the mean
    assert [plot_job(env, "job1", o)[0].path.name for o in variants] == names          # stable


def test_report_html_writes_its_own_images(store):
    env = storegen.store_env(store)
    [plot] = plot_job(env, "job1", PlotOptions())
    summary = sweep.summary_plot(env, sweep.summarize(env, "job1", metric="loss"))
    before = (plot.path.read_bytes(), summary.read_bytes())
    _page, images = write_html(env, "job1", PlotOptions(aggregate="mean", band="sem"), metric="loss")
    assert {p.name for p in images} == {"job1-html-metrics-mean-sem.png", "job1-html-summary.png"}
    assert (plot.path.read_bytes(), summary.read_bytes()) == before


# -- 12: what the plots show ------------------------------------------------------------------------------
def test_repeats_are_drawn_as_mean_and_band_per_hparam_set(store):
    env = storegen.store_env(store)
    [default] = plot_job(env, "job1", PlotOptions(fmt="svg"))
    texts = svg_texts(default.path)
    assert default.lines == ["lr=0.001 (n=2)", "lr=0.01 (n=2)", "lr=0.1 (n=2)"]
    assert {"lr=0.001 (n=2)", "lr=0.01 (n=2)", "lr=0.1 (n=2)"} <= set(texts)       # the legend says n=
    assert re.search(r'id="\w*PolyCollection_\d+"', default.path.read_text())        # the ± std band
    assert len(line_colours(default.path)) == 3                                       # a colour per set
    [every] = plot_job(env, "job1", PlotOptions(fmt="svg", aggregate="none"))
    assert len(line_colours(every.path)) == 6 and not re.search(r"PolyCollection", every.path.read_text())
    [single] = plot_job(env, "job2", PlotOptions(fmt="svg"))                           # no repeats: a line per run
    assert single.lines == ["lr=0.1", "lr=0.2", "lr=0.3"] and not re.search(r"PolyCollection", single.path.read_text())
    typed = _plot(store, "job1", "--aggregate", "none", "--format", "svg")  # the option as typed reaches the plot
    assert typed.returncode == 0, typed.stderr
    assert len(line_colours(Path(typed.stdout.strip()))) == 6


def test_single_run_titles_name_their_hparams(store):
    env = storegen.store_env(store)
    per_run = plot_job(env, "job1", PlotOptions(break_on="run", fmt="svg"))
    assert "job1 on local · job1.3 · lr=0.01, seed=1" in svg_texts(per_run[2].path)


def test_log_spaced_sweeps_get_a_log_axis_in_the_summary_plot(store):
    env = storegen.store_env(store)
    logged = sweep.summary_plot(env, sweep.summarize(env, "job1", metric="loss"), fmt="svg")
    assert any("10^{-2}" in t for t in svg_texts(logged))            # decade ticks: a log axis
    linear = sweep.summary_plot(env, sweep.summarize(env, "job2", metric="loss"), fmt="svg")
    assert not any("10^{" in t for t in svg_texts(linear)) and "0.200" in svg_texts(linear)
    assert sweep.log_spaced([1e-4, 3e-4, 1e-3, 3e-3, 1e-2]) and sweep.log_spaced([1e-4, 1e-2])
    assert not sweep.log_spaced(list(range(1, 201))) and not sweep.log_spaced([0, 1, 100])
    assert not sweep.log_spaced([0.001, 0.002, 0.004])                # constant ratio, under 2 decades


def test_the_example_logs_no_epoch_metric(tmp_path):
    log = tmp_path / "run.log"
    env = {**os.environ, "SINGKIT_RUN_LOG": str(log), "SINGKIT_OUTPUTS": str(tmp_path / "out")}
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "train.py"), "--epochs", "2", "--step-time", "0",
                           "--samples", "200"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    names = {k for line in log.read_text().splitlines() if '"metrics"' in line
             for k in json.loads(line).get("metrics", {})}
    assert names == {"loss", "acc", "val_loss", "val_acc"}


def test_a_two_value_sweep_a_decade_apart_gets_a_log_axis_and_an_honest_title(tmp_path):
    # the README's own sweep: --hp lr=0.1,0.01, one run each
    storegen.write_job(tmp_path / ".singkit", "job3", [RunSpec({"lr": lr}, curve(10, 2.0, 0.3 + lr)) for lr in (0.1, 0.01)])
    env = storegen.store_env(tmp_path)
    drawn = sweep.summary_plot(env, sweep.summarize(env, "job3", metric="loss"), fmt="svg")
    texts = svg_texts(drawn)
    assert any("10^{-1}" in t for t in texts) or any("10^{-2}" in t for t in texts), texts   # was a linear axis
    assert "job3: best loss by hparam" in texts and not any("±" in t for t in texts)        # one run per set
    assert sweep.log_spaced([0.1, 0.01]) and sweep.log_spaced([2, 20, 200])
    assert not sweep.log_spaced([1, 5]) and not sweep.log_spaced([1, 5, 10]) and not sweep.log_spaced(range(1, 11))


def test_the_summary_title_says_how_many_runs_each_point_averages(store):
    env = storegen.store_env(store)
    texts = svg_texts(sweep.summary_plot(env, sweep.summarize(env, "job1", metric="loss"), fmt="svg"))
    assert "job1: best loss by hparam (mean ± std over 2 runs)" in texts, [t for t in texts if "job1" in t]
