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
