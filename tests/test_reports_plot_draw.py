"""report.plot draws its lines with matplotlib, not sns.lineplot (issue 14 item 3: seaborn's frame
building and grouping was most of the drawing time on a million points). The picture must stay the
one seaborn drew: same pixels for lines with NaN points, several lines per colour, unsorted labels."""

from __future__ import annotations

import numpy as np
import pytest

from singkit.reports import plotdata, plots


def _lines() -> list[plotdata.Line]:
    rng = np.random.default_rng(3)
    out = []
    for k, label in enumerate(["lr=0.1, seed=2", "lr=0.01, seed=1", "lr=0.1, seed=1", "lr=0.01, seed=2"]):
        x = np.arange(300, dtype=float)
        y = np.cumsum(rng.normal(size=300)) + k
        y[[40, 41, 150]] = np.nan  # dropped, as seaborn's dropna drops them: no gap, no break
        line = plotdata.Line(label, [], {"loss": (x, y), "acc": (x[::3], -y[::3])})
        line.group = label.split(",")[0]  # two runs per colour, overlapping: the z-order shows
        out.append(line)
    return out


def _seaborn_lines(fig, axes, metrics, lines) -> None:
    """What draw_lines did before (kept as the oracle): one sns.lineplot per panel."""
    import pandas as pd
    import seaborn as sns

    colors = plots.palette(lines)
    for ax, metric in zip(axes, metrics):
        parts = [line for line in lines if metric in line.xy]
        sizes = [line.xy[metric][0].size for line in parts]
        frame = pd.DataFrame({
            "x": np.concatenate([line.xy[metric][0] for line in parts]),
            "y": np.concatenate([line.xy[metric][1] for line in parts]),
            "line": np.repeat([line.label for line in parts], sizes),
            "color": np.repeat([line.key for line in parts], sizes),
        })
        keys = list(dict.fromkeys(line.key for line in parts))
        sns.lineplot(data=frame, x="x", y="y", hue="color", hue_order=keys, units="line",
                     palette={k: colors[k] for k in keys}, estimator=None, errorbar=None,
                     sort=False, legend=False, linewidth=1.2, ax=ax)
        ax.set_title(metric)
        ax.set_xlabel("step")
        ax.set_ylabel("")


def _pixels(fig) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy()


@pytest.mark.parametrize("metrics", [["loss", "acc"], ["acc"]])
def test_matplotlib_lines_draw_the_pixels_seaborn_drew(metrics):
    lines = _lines()
    ours, theirs = plots.new_figure(1, len(metrics), 2), plots.new_figure(1, len(metrics), 2)
    plots.draw_lines(*ours, metrics, lines, "step", 1.0)
    ours[0].legends.clear()  # the legend is draw_lines' own, not seaborn's: compare the panels
    _seaborn_lines(*theirs, metrics, lines)
    got, want = _pixels(ours[0]), _pixels(theirs[0])
    assert got.shape == want.shape
    assert np.array_equal(got, want), f"{int((got != want).any(axis=2).sum())} pixels differ"


def test_a_run_of_one_step_is_drawn_as_a_marker():
    # a line through one point draws no pixel: a one-step run (or one finite value) showed nothing
    one = plotdata.Line("lr=1", [], {"loss": (np.array([0.0, 1.0]), np.array([2.0, np.nan]))})
    many = plotdata.Line("lr=2", [], {"loss": (np.arange(3.0), np.arange(3.0))})
    fig, axes = plots.new_figure(1, 1, 1)
    plots.draw_lines(fig, axes, ["loss"], [one, many], "step", 1.0)
    drawn = {tuple(line.get_xdata()): line.get_marker() for line in axes[0].lines}
    assert drawn[(0.0,)] == "o" and drawn[(0.0, 1.0, 2.0)] in (None, "None", "")
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3].reshape(-1, 3)
    color = np.array([round(c * 255) for c in plots.palette([one, many])["lr=1"][:3]])
    assert (np.abs(pixels.astype(int) - color).sum(axis=1) < 30).any()
