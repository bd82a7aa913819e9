"""The text renderer at 50,000 rows (issue 15): column-wise, each distinct value formatted
once, rows padded and joined through map. It must draw the very bytes the per-cell renderer it
replaced drew: that renderer is kept here, word for word, as the reference."""

from __future__ import annotations

import random
from typing import Any

import pytest

import storegen
from storegen import RunSpec, curve
from singkit import fmt
from singkit.reports import render, views
from singkit.reports.render import format_cell, kind_of, measured

_OLD_INF = float("inf")
_OLD_PLAIN_NUMBERS = {float, int, type(None)}


# -- the renderer before issue 15, as it was (render.py at ef8a0c9) ------------------------------
def _old_fast_simple(headers: list[str], columns: list[list[str]], right: list[bool]) -> str:
    # Same layout as tabulate's "simple": width = max(cell, header + 2), two-space gaps, dashes
    # under headers, trailing blanks stripped. One str.format per row: C-speed padding.
    widths = [max(len(h) + 2, max(map(len, col), default=0)) for h, col in zip(headers, columns)]
    if not any(columns):
        right = [False] * len(headers)  # tabulate aligns the headers of an empty table left
    template = "  ".join(f"{{:{'>' if r else '<'}{w}}}" for w, r in zip(widths, right))
    out = [template.format(*headers).rstrip(), "  ".join("-" * w for w in widths)]
    out.extend(template.format(*row).rstrip() for row in zip(*columns))
    return "\n".join(out)


def _old_format_column(values: list[Any], kind: str, spec: str | None = None) -> tuple[list[str], bool]:
    """Formatted cells of one column, and whether it is numeric (numbers are right-aligned).
    `spec`: the column's fmt.column_format, shared by all its numbers (None: each number on its
    own, `fmt.number`). Column-wise with a memo for repeated values: a 10,000-run table has
    150,000 cells."""
    if spec and kind == "plain" and set(map(type, values)) <= _OLD_PLAIN_NUMBERS:
        # the common case, at C speed: format() writes nan, inf and -inf as fmt.number does
        cells = ["" if v is None else format(v, spec) for v in values]
        cells = [c[1:] if c[:1] == "-" and c != "-inf" and float(c) == 0 else c for c in cells]  # no -0.0000
        return cells, any(v is not None for v in values)
    cells = []
    seen = other = False
    memo: dict[Any, str] = {}
    for value in values:
        if value is None:
            cells.append("")
            continue
        kind_of_value = type(value)
        if spec and kind == "plain" and (kind_of_value is float or kind_of_value is int):
            seen = True
            cells.append(fmt.with_format(value, spec))
            continue
        if kind_of_value is float and kind == "plain":
            seen = True
            text = f"{value:.4g}"  # also right for nan, inf and -inf
            if "e" in text and value == value and value not in (_OLD_INF, -_OLD_INF) and value == int(value) and abs(value) < 1e15:
                text = str(int(value))  # 12345.0 reads as 12345, not 1.234e+04
            cells.append(text)
            continue
        if kind_of_value is str:
            other = True
            cells.append(value.strip())  # tabulate strips cells too
            continue
        if kind_of_value is float or kind_of_value is int:
            seen = True
        else:
            other = True
        key = (kind_of_value, value)  # the type too: True == 1 == 1.0 as dict keys
        try:
            text = memo.get(key)
        except TypeError:  # lists and dicts (unhashable hparams)
            cells.append(format_cell(value, kind))
            continue
        if text is None:
            text = memo[key] = format_cell(value, kind).strip()  # tabulate strips cells too
        cells.append(text)
    return cells, seen and not other


def _old_column_texts(columns: list[str], rows: list[dict[str, Any]], aligned: list[list[str]] | None = None,
                      formats: dict[str, str] | None = None) -> list[tuple[list[str], bool]]:
    """(cells, numeric) for each column: the numbers of a measured column share one
    fmt.column_format, a metric and its `.best` column share one (they are read together), as
    does each group in `aligned`; `formats` fixes a column's spec outright (the sweep summary
    takes the one of the metric's run values, so that it agrees with the runs table)."""
    groups = [[c, f"{c}.best"] for c in columns if f"{c}.best" in columns] + [list(g) for g in aligned or []]
    grouped = {c for g in groups for c in g}
    specs: dict[str, str] = {}
    for c in columns:
        if c not in grouped and measured(c):
            specs[c] = fmt.column_format(row.get(c) for row in rows)
    for group in groups:
        present = [c for c in group if c in columns and measured(c)]
        spec = fmt.column_format(row.get(c) for c in present for row in rows)
        specs.update(dict.fromkeys(present, spec))
    specs.update({c: f for c, f in (formats or {}).items() if c in columns})
    return [_old_format_column([row.get(c) for row in rows], kind_of(c), specs.get(c)) for c in columns]


@pytest.fixture
def old_renderer(monkeypatch):
    """render_fitted drawing through the renderer it had before."""
    def use_old():
        monkeypatch.setattr(render, "_fast_simple", _old_fast_simple)
        monkeypatch.setattr(render, "column_texts", _old_column_texts)
    return use_old


def _drawn(table, width):
    shown = render.render_fitted(table.columns, table.rows, table.footer, table.labels, width=width,
                                 wide=width is None, formats=table.formats)
    return shown.text, shown.constant, shown.hidden


def _odd_store(tmp_path):
    nan, inf = float("nan"), float("inf")
    long = "a-very-long-experiment-name-" * 4
    runs = [
        RunSpec({"lr": 0.1, "name": long, "opt": "adam "}, [(0, {"loss": 1.0, "acc": nan}), (1, {"loss": inf})]),
        RunSpec({"lr": 0.2, "name": "short", "opt": "sgd"}, [(0, {"loss": -inf, "other": 3, "tiny": 1e-9})], status="running"),
        RunSpec({"lr": 0.3, "flag": True, "layers": [1, 2]}, None, status="failed", exit_code=2, reason="boom  "),
        RunSpec({"lr": 1e-5, "flag": False, "cfg": {"a": 1}}, curve(4, 2.0, 1.0, big=12345678.0), nodes=2, status="preempted"),
        RunSpec({"lr": 0.5, "neg": -0.0}, [(0, {"loss": -0.00001, "acc": 0.9688}), (1, {"loss": 1, "acc": 1})]),
        RunSpec({"lr": 0.6, "neg": 0.0}, log=False),
    ]
    storegen.write_job(tmp_path / ".singkit", "job1", runs, **{"price-per-hour": 3.06})
    storegen.write_job(tmp_path / ".singkit", "job2", [RunSpec({"lr": 0.1}, curve(3, 2.0, 1.0)), RunSpec({"lr": 2})])
    return storegen.store_env(tmp_path)


@pytest.mark.parametrize("kind", ["runs", "jobs", "nodes"])
@pytest.mark.parametrize("width", [None, 100, 40])
def test_the_fast_renderer_draws_what_the_old_one_drew_of_a_store(tmp_path, old_renderer, kind, width):
    env = _odd_store(tmp_path)
    tables = [views.list_table(env, kind, now=storegen.T0 + 99_999),
              views.list_table(env, kind, now=storegen.T0 + 99_999, group="hparams" if kind == "runs" else None,
                               mean="loss" if kind == "runs" else None)]
    new = [_drawn(t, width) for t in tables]
    old_renderer()
    assert [_drawn(t, width) for t in tables] == new


def _odd_value(rng):
    pick = rng.randrange(15)
    return [None, float("nan"), float("inf"), -float("inf"), -0.0, 0.0, 0, rng.randrange(-10**6, 10**6),
            rng.uniform(-1, 1), rng.uniform(-1e7, 1e7) * 10 ** rng.randrange(-12, 3), True,
            rng.choice([" pad ", "text", "ünï", "x" * 70]), [1, "a b"], {"k": None}, 12345.0][pick]


@pytest.mark.parametrize("seed", range(60))
def test_the_fast_renderer_draws_what_the_old_one_drew_of_odd_columns(old_renderer, seed):
    rng = random.Random(seed)
    columns = ["run", "status", "target", "duration", "cost", "started", "hparams.lr", "metrics.loss", "metrics.loss.best",
               "metrics.acc", "mean(metrics.acc)", "steps"]
    rows = []
    for i in range(rng.randrange(0, 60)):
        row = {"run": f"job1.{i}", "status": rng.choice(["completed", "failed", None]),
               "target": rng.choice([" pad ", "eus ", None, "y" * 70, "x"])}  # a column of text only
        for c in columns[3:]:
            mode = rng.randrange(4)  # a column of one kind of value, or of any
            row[c] = (_odd_value(rng) if mode == 0 else rng.choice([None, rng.uniform(0, 1e4)]) if mode == 1
                      else rng.choice([None, rng.randrange(100)]) if mode == 2 else rng.uniform(-2, 2))
        rows.append(row)
    footer = [{"run": "mean", "metrics.acc": rng.uniform(0, 1)}] if rng.random() < 0.5 else []
    formats = {"metrics.acc": fmt.column_format([r.get("metrics.acc") for r in rows])} if rng.random() < 0.3 else None
    width = rng.choice([None, 80, 200])
    new = render.render_fitted(columns, rows, footer, {"metrics.loss": "loss"}, width=width, wide=width is None,
                               formats=formats)
    old_renderer()
    old = render.render_fitted(columns, rows, footer, {"metrics.loss": "loss"}, width=width, wide=width is None,
                               formats=formats)
    assert (new.text, new.constant, new.hidden) == (old.text, old.constant, old.hidden)
