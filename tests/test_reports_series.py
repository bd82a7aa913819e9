"""The plot loader, batched with pandas (issue 14 item 3): the same series as the per-point loop it
replaced, on a generated store with non-finite values, missing steps, text, bools, nulls, metrics
logged on some lines only, several nodes, and each kind of x axis."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest

import storegen
from storegen import RunSpec
from singkit.reports import plotdata, series
from singkit.reports.model import StoreReader


def _num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def reference_columns(events: list[dict[str, Any]], x: str, metrics: list[str] | None) -> dict[str, tuple[list, list]]:
    """The per-point loop series.columns was before it was batched (kept here as the oracle)."""
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


def reference_series(runs: list[Any], x: str, metrics: list[str] | None) -> dict[str, dict[str, tuple[Any, Any]]]:
    out = {}
    for run in runs:
        cols = reference_columns(series.main_node(series.metric_events(run.ref.log)), x, metrics)
        arrays = {}
        for name, (xs, ys) in cols.items():
            xa, ya = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
            ya[np.isinf(ya)] = np.nan
            if xa.size > 1 and np.any(np.diff(xa) < 0):
                order = np.argsort(xa, kind="stable")
                xa, ya = xa[order], ya[order]
            arrays[name] = (xa, ya)
        out[run.run] = arrays
    return out


def _awkward_points(rng: random.Random, steps: int, finite: bool = False) -> list[tuple[int | None, dict]]:
    """`finite`: no NaN or inf anywhere, so the file is strict JSON and orjson reads it whole."""
    specials = [math.nan, math.inf, -math.inf, "n/a", True, None, [1, 2], {"a": 1}, 10 ** 30]
    if finite:
        specials = [v for v in specials if not isinstance(v, float)]
    points: list[tuple[int | None, dict]] = []
    for i in range(steps):
        values: dict[str, Any] = {"loss": 1.0 / (i + 1), "acc": i / steps}
        if rng.random() < 0.15:
            values[rng.choice(["loss", "acc"])] = rng.choice(specials)
        if i % 7 == 0:
            values["eval"] = rng.choice([0.5, 1, "skip"] + ([] if finite else [math.nan]))  # only on some lines
        if i % 11 == 0:
            values["lr"] = rng.choice([0.1, 0.01, False] + ([] if finite else [math.inf]))
        step: int | None = i
        if rng.random() < 0.1:
            step = None  # no step: the line's index stands in
        elif rng.random() < 0.05:
            step = steps - i  # out of order: sorted by x
        points.append((step, values))
    return points


@pytest.fixture
def store(tmp_path):
    rng = random.Random(7)
    home = tmp_path / ".singkit"
    storegen.write_job(home, "job1", [
        RunSpec({"lr": 0.1}, _awkward_points(rng, 300)),
        RunSpec({"lr": 0.2}, _awkward_points(rng, 200), nodes=3),
        RunSpec({"lr": 0.3}, [(k, {"only_text": "x"}) for k in range(5)]),
        RunSpec({"lr": 0.4}, []),
        RunSpec({"lr": 0.5}, [(k, {"loss": math.nan}) for k in range(5)] + [(None, {"step_as_metric": 3.0})]),
        RunSpec({"lr": 0.6}, storegen.curve(50, 2.0, 1.0)),
        # strict JSON (read whole by orjson): missing steps and metrics, text, bools, nulls, lists
        RunSpec({"lr": 0.7}, _awkward_points(rng, 300, finite=True)),
        RunSpec({"lr": 0.8}, _awkward_points(rng, 100, finite=True), nodes=2),
        RunSpec({"lr": 0.9}, storegen.curve(50, 2.0, 1.0)),  # then a blank line and a torn one
        RunSpec({"lr": 1.0}, storegen.curve(50, 2.0, 1.0)),  # then a foreign line
    ])
    logs = home / "jobs" / "job1" / "runs"
    with (logs / "job1.9" / "run.log").open("ab") as fh:
        fh.write(b'\n{"t": 1.0, "event": "metrics", "step": 99, "metrics": {"loss": 0.5}}\n{"t": 2.0, "event": "metr')
    with (logs / "job1.10" / "run.log").open("ab") as fh:
        fh.write(b'[1, 2]\n"metrics"\n{"event": "metrics", "metrics": [1]}\n{"event": "metrics", "step": 7, "metrics": {"loss": 3}}\n')
    env = storegen.store_env(tmp_path)
    with StoreReader(env) as reader:
        return reader.runs("job1")


@pytest.mark.parametrize("x, metrics", [("step", None), ("time", None), ("acc", None), ("step", ["loss", "eval"]),
                                        ("eval", ["loss"]), ("nothing", None)])
def test_batched_loader_gives_the_series_of_the_per_point_loop(store, x, metrics) -> None:
    got, want = plotdata.load_series(store, x, metrics), reference_series(store, x, metrics)
    assert list(got) == list(want)
    checked = 0
    for run in want:
        assert list(got[run]) == list(want[run]), run  # the same metrics in the same order
        for name, (xa, ya) in want[run].items():
            gx, gy = got[run][name]
            assert gx.dtype == ya.dtype == gy.dtype == float
            np.testing.assert_array_equal(gx, xa, err_msg=f"{run} {name} x")
            np.testing.assert_array_equal(gy, ya, err_msg=f"{run} {name} y")  # NaN where NaN
            checked += xa.size
    if x != "nothing":
        assert checked > 30


@pytest.mark.parametrize("as_floats", [False, True])
@pytest.mark.parametrize("shape", ["clean", "strict", "messy"])
def test_the_plot_reads_a_run_log_by_the_stores_rules(tmp_path, as_floats: bool, shape: str) -> None:
    """One run.log reader (issue 15): the plots and report.metrics keep exactly the metric lines
    job.status folds, whatever the file holds, and a last line without its newline besides."""
    from singkit.store import runlog

    lines = [b'{"t": 1, "event": "metrics", "step": 0, "metrics": {"loss": 1.5}}',
             b'{"t": 2, "event": "metrics", "step": 1, "metrics": {"loss": 1.25}}',
             b'{"t": 3, "event": "status", "status": "running"}']
    strict = [b'{"t": 4, "event": "metrics", "step": 2, "metrics": {"loss": 1}}, {"event": "metrics", "metrics": {"x": 2}}',
              b'[{"event": "metrics", "metrics": {"loss": 0}}]']  # JSON, but no object on its own line
    if shape == "strict":
        lines += strict
    if shape == "messy":
        lines += [*strict, b'{"t": 4, "event": "metrics", "step": 2, "metrics": {"loss": NaN}}',
                  b'{"t": 5, "event": "metrics", "step": 3, "metrics": {"loss": 1}}, {"event": "metrics", "metrics": {"x": 2}}',
                  b'{"t": 6, "event": "metrics", "step": 4, "metrics": {"loss": 123456789012345678901}}',
                  b'[{"event": "metrics", "metrics": {"loss": 0}}]', b'{"t": 7, "event": "metrics", "st', b"",
                  b'{"t": 8, "event": "metrics", "step": 5, "metrics": {"loss": 0.5}}']
    log = tmp_path / ".singkit/jobs/job1/runs/job1.1/run.log"
    log.parent.mkdir(parents=True)
    log.write_bytes(b"\n".join(lines) + b"\n")
    folded = [ev for ev in runlog.read(log)[0] if ev.get("event") == "metrics"]
    events = series.metric_events(log, as_floats=as_floats)
    assert repr(events) == repr(folded) and len(events) == {"clean": 2, "strict": 2, "messy": 5}[shape]
    if shape == "messy" and not as_floats:  # json's very values: the 21-digit integer stays an int
        assert type(events[-2]["metrics"]["loss"]) is int
    with open(log, "ab") as fh:  # a finished writer that left the newline off its last line
        fh.write(b'{"t": 9, "event": "metrics", "step": 6, "metrics": {"loss": 0.25}}')
    assert series.metric_events(log, as_floats=as_floats)[-1]["step"] == 6
