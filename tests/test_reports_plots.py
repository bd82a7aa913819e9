"""report.plot and report.summary over generated stores: valid images, one axis per metric."""

from __future__ import annotations

import re

import pytest
from PIL import Image

import storegen
from storegen import RunSpec, curve
from singkit.exceptions import UsageError
from singkit.reports import summary as sweep
from singkit.reports.plots import PlotOptions, plot_job


@pytest.fixture
def store(tmp_path):
    home = tmp_path / ".singkit"
    storegen.sweep_job(home, "job1", steps=40)
    storegen.write_job(home, "job2", [RunSpec({"lr": 0.1}, None, status="failed"), RunSpec({"lr": 0.2}, log=False)])
    storegen.write_job(home, "job3", [
        RunSpec({"lr": 0.1}, curve(30, 2.0, 0.5, val_loss=0.7)),
        RunSpec({"lr": 0.2}, [(0, {"loss": 2.0, "acc": 0.0}), (1, {"loss": float("nan"), "acc": float("inf")}),
                             (2, {"loss": 1.0, "acc": 0.5})], status="running"),
        RunSpec({"lr": 0.3}, [(0, {"loss": float("nan")})]),
        RunSpec({"lr": 0.4}, None, status="queued"),
    ])
    storegen.write_job(home, "job4", [RunSpec({"lr": 0.1}, curve(10, 2.0, 1.0), nodes=3)])
    return storegen.store_env(tmp_path)


def axes_in_svg(path) -> int:
    return len(re.findall(r'<g id="axes_\d+"', path.read_text()))


def valid_png(path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def test_png_per_job_with_a_panel_per_metric_and_runs_named_by_hparams(store, tmp_path):
    [item] = plot_job(store, "job1", PlotOptions())
    assert item.path == tmp_path / "reports" / "job1" / "job1-metrics.png"
    width, height = valid_png(item.path)
    assert width > 500 and height > 200
    assert item.metrics == ["loss", "acc"]
    assert item.lines == ["lr=0.001 (n=2)", "lr=0.01 (n=2)", "lr=0.1 (n=2)"]   # seeds repeat a set: mean ± std
    [every] = plot_job(store, "job1", PlotOptions(aggregate="none"))
    assert every.lines == [f"lr={lr}, seed={s}" for lr in (0.001, 0.01, 0.1) for s in (1, 2)]


def test_svg_has_exactly_one_axis_per_metric(store):
    [item] = plot_job(store, "job3", PlotOptions(fmt="svg"))
    assert item.metrics == ["loss", "acc", "val_loss"]
    assert axes_in_svg(item.path) == 3
    [two] = plot_job(store, "job3", PlotOptions(fmt="svg", metrics=["acc", "loss"], layout="2x2"))
    assert axes_in_svg(two.path) == 2                     # unused cells of the grid are removed


def test_nan_inf_in_progress_and_empty_runs(store):
    [item] = plot_job(store, "job3", PlotOptions())
    valid_png(item.path)
    assert item.lines == ["lr=0.1", "lr=0.2"]             # all-NaN and queued runs draw nothing
    with pytest.raises(UsageError, match="no metrics to plot yet"):
        plot_job(store, "job2", PlotOptions())


def test_break_on_run_and_on_hparam(store, tmp_path):
    per_run = plot_job(store, "job1", PlotOptions(break_on="run"))
    assert [p.path.name for p in per_run] == [f"job1-metrics-job1.{k}.png" for k in range(1, 7)]
    per_lr = plot_job(store, "job1", PlotOptions(break_on="lr", fmt="svg"))
    assert [p.path.name for p in per_lr] == ["job1-metrics-lr=0.001.svg", "job1-metrics-lr=0.01.svg", "job1-metrics-lr=0.1.svg"]
    assert all(p.lines == ["all runs (n=2)"] and axes_in_svg(p.path) == 2 for p in per_lr)
    per_lr_runs = plot_job(store, "job1", PlotOptions(break_on="lr", aggregate="none"))
    assert all(p.lines == ["seed=1", "seed=2"] for p in per_lr_runs)
    with pytest.raises(UsageError, match="no run has that hparam"):
        plot_job(store, "job1", PlotOptions(break_on="momentum"))


def test_aggregate_band_and_smoothing(store):
    [item] = plot_job(store, "job1", PlotOptions(aggregate="median", band="minmax", smooth=0.6))
    assert item.lines == ["lr=0.001 (n=2)", "lr=0.01 (n=2)", "lr=0.1 (n=2)"]   # seed is a repeat key
    valid_png(item.path)
    [banded] = plot_job(store, "job1", PlotOptions(band="sem", group_by=["seed"]))   # a band implies the mean
    assert banded.lines == ["seed=1 (n=3)", "seed=2 (n=3)"]


def test_filter_x_axis_and_multi_node(store):
    [item] = plot_job(store, "job1", PlotOptions(filters=["hparams.lr=0.1"]))
    assert item.lines == ["all runs (n=2)"]                 # two seeds of one hparam set
    [by_time] = plot_job(store, "job3", PlotOptions(x="time", metrics=["loss"]))
    valid_png(by_time.path)
    [by_metric] = plot_job(store, "job3", PlotOptions(x="val_loss", fmt="svg"))
    assert "val_loss" not in by_metric.metrics
    [nodes] = plot_job(store, "job4", PlotOptions())
    valid_png(nodes.path)


@pytest.mark.parametrize("opts, message", [
    (PlotOptions(smooth=1.0), "--smooth"),
    (PlotOptions(aggregate="max"), "mean, median or none"),
    (PlotOptions(aggregate="none", band="std"), "drop --aggregate none"),
    (PlotOptions(band="iqr"), "std, sem or minmax"),
    (PlotOptions(layout="1x1"), "at least 2x1|at least 1x1|1 panel"),
    (PlotOptions(layout="two"), "ROWSxCOLS"),
    (PlotOptions(fmt="jpg"), "png or svg"),
    (PlotOptions(metrics=["f1"]), "logged f1"),
    (PlotOptions(filters=["lr>5"]), "match the filter"),
    (PlotOptions(aggregate="mean", group_by=["momentum"]), "no run has that hparam"),
])
def test_bad_plot_options(store, opts, message):
    with pytest.raises(UsageError, match=message):
        plot_job(store, "job1", opts)


def test_sweep_summary_ranks_hparam_sets_by_mean_over_repeats(store):
    result = sweep.summarize(store, "job1", metric="loss")
    assert result.keys == ["lr"] and not result.maximize
    assert [(g["hparams.lr"], g["runs"]) for g in result.groups] == [(0.01, 2), (0.001, 2), (0.1, 2)]
    best = result.groups[0]
    assert best["rank"] == 1 and best["mean"] == pytest.approx(0.215)
    assert best["std"] == pytest.approx(0.00707107, rel=1e-4)
    assert (best["best_run"], best["best"]) == ("job1.3", pytest.approx(0.21))
    by_acc = sweep.summarize(store, "job1", metric="acc", use="last")
    assert by_acc.maximize and by_acc.groups[0]["hparams.lr"] == 0.01
    flipped = sweep.summarize(store, "job1", metric="loss", maximize=True)
    assert flipped.groups[0]["hparams.lr"] == 0.1


def test_a_diverged_last_value_scores_nothing_in_the_summary(tmp_path):
    home = tmp_path / ".singkit"
    storegen.write_job(home, "job1", [RunSpec({"lr": 0.1, "seed": 1}, [(0, {"loss": 1.0}), (1, {"loss": float("nan")})]),
                                      RunSpec({"lr": 0.1, "seed": 2}, [(0, {"loss": 0.5})]),
                                      RunSpec({"lr": 1.0, "seed": 1}, [(0, {"loss": 0.9}), (1, {"loss": float("-inf")})])])
    result = sweep.summarize(storegen.store_env(tmp_path), "job1", metric="loss", use="last")
    groups = {g["hparams.lr"]: g for g in result.groups}
    assert (groups[0.1]["scored"], groups[0.1]["mean"], groups[0.1]["best"]) == (1, 0.5, 0.5)
    assert groups[1.0]["scored"] == 0 and groups[1.0]["mean"] is None and groups[1.0]["best"] is None
    assert result.groups[0]["hparams.lr"] == 0.1  # -inf ranks nowhere, not first


def test_summary_plot_has_a_panel_per_swept_hparam(store, tmp_path):
    path = sweep.summary_plot(store, sweep.summarize(store, "job1", metric="loss"), fmt="svg")
    assert path == tmp_path / "reports" / "job1" / "job1-summary.svg" and axes_in_svg(path) == 1
    png = sweep.summary_plot(store, sweep.summarize(store, "job1", metric="loss"))
    valid_png(png)
    single = sweep.summarize(store, "job4", metric="loss")
    assert single.keys == [] and sweep.summary_plot(store, single) is None


def test_summary_needs_a_metric_unless_configured(store, tmp_path):
    with pytest.raises(UsageError, match="pass --metric"):
        sweep.summarize(store, "job1")
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "singkit.yaml").write_text("general:\n  primary-metric: acc\n  maximize: true\n")
    configured = sweep.summarize(store, "job1")
    assert configured.metric == "acc" and configured.maximize
    failed = sweep.summarize(store, "job3")
    assert [g["hparams.lr"] for g in failed.groups][-1] in (0.3, 0.4) and failed.groups[-1]["rank"] is None


def svg_texts(path) -> list[str]:
    """The texts matplotlib drew (it writes each as a comment before its glyphs)."""
    return re.findall(r"<!-- (.*?) -->", path.read_text())


def test_break_on_value_is_not_repeated_in_the_title(store):
    per_lr = plot_job(store, "job1", PlotOptions(break_on="lr", fmt="svg"))
    title = next(t for t in svg_texts(per_lr[0].path) if t.startswith("job1"))
    assert title == "job1 on local · lr=0.001 · mean ± std over runs"


def test_a_filtered_plot_does_not_overwrite_the_unfiltered_one(store, tmp_path):
    [whole] = plot_job(store, "job1", PlotOptions())
    [some] = plot_job(store, "job1", PlotOptions(filters=["hparams.lr=0.1"]))
    [other] = plot_job(store, "job1", PlotOptions(filters=["hparams.lr<0.1"]))
    assert whole.path.name == "job1-metrics.png"
    assert len({whole.path, some.path, other.path}) == 3
    assert re.fullmatch(r"job1-metrics-filter-[0-9a-f]{8}\.png", some.path.name), some.path.name
    assert plot_job(store, "job1", PlotOptions(filters=["hparams.lr=0.1"]))[0].path == some.path  # stable name
    assert whole.lines != some.lines and whole.path.exists() and some.path.exists()
    [drawn] = plot_job(store, "job1", PlotOptions(filters=["hparams.lr=0.1"], fmt="svg"))
    assert "job1 on local · where hparams.lr=0.1 · lr=0.1 · mean ± std over runs" in svg_texts(drawn.path)  # the title says which runs


def test_plot_of_huge_values_and_emoji_names_prints_no_python_warnings(tmp_path):
    """issue 14: a fresh user saw numpy's "overflow encountered in reduceat" (a mean over 1e308s)
    and matplotlib's "Glyph NNN missing from font" (an emoji in an hparam and a metric name) on
    stderr. Those two are silenced around the drawing; other warnings are not."""
    import warnings

    storegen.write_job(tmp_path / ".singkit", "job1", [
        RunSpec({"opt": "adam\N{ROCKET}", "seed": s}, [(0, {"f\N{FIRE}": 1e308, "loss": 1.0}), (1, {"loss": 0.5})])
        for s in (1, 2)])   # one f point per run: pandas' sorted groupby path, numpy's reduceat
    env = storegen.store_env(tmp_path)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        files = plot_job(env, "job1", PlotOptions(aggregate="mean", band="std"))
        warnings.warn("a warning of someone else's", UserWarning, stacklevel=1)   # the filters end with the plot
    assert files and valid_png(files[0].path)
    assert [str(w.message) for w in seen] == ["a warning of someone else's"], [str(w.message) for w in seen]
