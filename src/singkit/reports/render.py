"""Cells and tables for people (text, HTML) and for scripts (JSON, CSV/TSV).

Values stay raw in rows (numbers, epoch seconds, None); formatting happens only here. Text
tables use tabulate's "simple" format, drawn by an equivalent renderer of our own for ASCII
text: the same bytes several times faster, and without tabulate's import on every listing
(tabulate is pure Python; a 10,000-run table would take most of report.list's time budget).
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

from singkit import fmt
from singkit.exceptions import UsageError
from singkit.fsutil import atomic_write

TIME_COLUMNS = frozenset({"created", "started", "ended", "time", "last"})


def kind_of(column: str) -> str:
    """How a column is formatted: dur (seconds), cost (currency), time (epoch), or plain."""
    base = column[5:-1] if column.startswith("mean(") and column.endswith(")") else column
    if base == "duration":
        return "dur"
    if base == "cost":
        return "cost"
    if base in TIME_COLUMNS:
        return "time"
    return "plain"


def format_number(value: float | int) -> str:
    """A number cell (see singkit.fmt.number)."""
    return fmt.number(value)


def format_duration(seconds: float) -> str:
    """A duration cell (see singkit.fmt.duration)."""
    return fmt.duration(seconds)


def format_time(epoch: float) -> str:
    return fmt.when(epoch)


def format_cell(value: Any, kind: str = "plain") -> str:
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if kind == "dur" and math.isfinite(value):
            return format_duration(value)
        if kind == "cost" and math.isfinite(value):
            return f"${value:,.2f}"
        if kind == "time" and math.isfinite(value):
            return format_time(value)
        return format_number(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def is_numeric_column(rows: list[dict[str, Any]], column: str) -> bool:
    seen = False
    for row in rows:
        value = row.get(column)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        seen = True
    return seen


def text_table(headers: list[str], cells: list[list[str]], right: list[bool]) -> str:
    """tabulate(..., tablefmt="simple", disable_numparse=True) with the given alignment."""
    cells = [[c.strip() for c in row] for row in cells]
    columns = [list(col) for col in zip(*cells)] if cells else [[] for _ in headers]
    return _table(headers, columns, right)


def _table(headers: list[str], columns: list[list[str]], right: list[bool]) -> str:
    """The text table from column-wise, already stripped cells."""
    # Our renderer draws tabulate's bytes for ASCII text at any size (tests/test_reports_tables.py
    # checks it) and spares job.status/job.list tabulate's import (~70 ms, issue 14); tabulate stays
    # for other text, whose display widths (East Asian, combining marks) it knows.
    if not all("".join(col).isascii() for col in [headers, *columns]):
        from tabulate import tabulate

        return tabulate([list(r) for r in zip(*columns)], headers, tablefmt="simple", disable_numparse=True,
                        colalign=["right" if r else "left" for r in right] or None)
    return _fast_simple(headers, columns, right)


def _fast_simple(headers: list[str], columns: list[list[str]], right: list[bool]) -> str:
    # Same layout as tabulate's "simple": width = max(cell, header + 2), two-space gaps, dashes
    # under headers, trailing blanks stripped. Column-wise padding and row joins through map:
    # C speed over the 700,000 cells of a 50,000-run table.
    widths = [max(len(h) + 2, max(map(len, col), default=0)) for h, col in zip(headers, columns)]
    if not any(columns):
        right = [False] * len(headers)  # tabulate aligns the headers of an empty table left
    pads = [str.rjust if r else str.ljust for r in right]
    out = ["  ".join(map(_pad, pads, headers, widths)).rstrip(), "  ".join("-" * w for w in widths)]
    padded = [list(map(pad, col, repeat(w))) for pad, col, w in zip(pads, columns, widths)]
    out.extend(map(str.rstrip, map("  ".join, zip(*padded))))
    return "\n".join(out)


def _pad(pad: Any, text: str, width: int) -> str:
    return pad(text, width)


def format_column(values: list[Any], kind: str, spec: str | None = None) -> tuple[list[str], bool]:
    """Formatted cells of one column, and whether it is numeric (numbers are right-aligned).
    `spec`: the column's fmt.column_format, shared by all its numbers (None: each number on its
    own, `fmt.number`). Column-wise, each distinct value formatted once: a 50,000-run table has
    700,000 cells, and most columns repeat their values (status, target, hparams)."""
    types = set(map(type, values))
    if spec and kind == "plain" and types <= _PLAIN_NUMBERS:
        # the common case, at C speed: format() writes nan, inf and -inf as fmt.number does
        return _spec_cells(values, spec, _NONE in types), types != {_NONE} and bool(values)
    types.discard(_NONE)
    numeric = bool(types & _NUMBER_TYPES) and not types - _NUMBER_TYPES  # (exact types: bool is no number here)
    if types == _STR:
        return ["" if v is None else v.strip() for v in values], False  # tabulate strips cells too
    if len(types) == 1:  # one type (and None): the values themselves are the memo's keys
        try:
            memo: dict[Any, Any] = dict.fromkeys(values)
        except TypeError:
            pass
        else:
            if kind == "plain" and _FLOAT in types and 0.0 in memo:  # -0.0 == 0.0 as keys, as below
                return _one_by_one(list(zip(map(type, values), values)), kind, spec), numeric
            for value in memo:
                memo[value] = _cell(value, kind, spec)
            return list(map(memo.__getitem__, values)), numeric
    keys = list(zip(map(type, values), values))  # the type too: True == 1 == 1.0 as dict keys
    try:
        memo = dict.fromkeys(keys)
    except TypeError:  # lists and dicts (unhashable hparams)
        return _one_by_one(keys, kind, spec), numeric
    if kind == "plain" and (float, 0.0) in memo:  # -0.0 == 0.0 as keys, but a plain float is written
        return _one_by_one(keys, kind, spec), numeric  # as it is: `-0` beside `0`
    for key in memo:
        memo[key] = _cell(key[1], kind, spec)
    return list(map(memo.__getitem__, keys)), numeric


def _spec_cells(values: list[float | int | None], spec: str, nones: bool) -> list[str]:
    """format_column's cells of a plain number column under `spec` (`nones`: it holds None).
    A column that repeats its values (the best of a metric, a sweep's settings) formats each
    distinct value once; equal keys are safe here: under a spec 1 and 1.0 read alike, and -0.0
    is written as 0.0 is (below)."""
    memo: dict[Any, str] = dict.fromkeys(values)
    if 2 * len(memo) <= len(values):
        for value in memo:
            memo[value] = "" if value is None else format(value, spec)
        cells = list(map(memo.__getitem__, values))
    elif nones:
        cells = ["" if v is None else format(v, spec) for v in values]
    else:
        cells = list(map(format, values, repeat(spec)))
    if any(map(str.startswith, cells, repeat("-"))):
        cells = [c[1:] if c[:1] == "-" and c != "-inf" and float(c) == 0 else c for c in cells]  # no -0.0000
    return cells


def _one_by_one(keys: list[tuple[type, Any]], kind: str, spec: str | None) -> list[str]:
    """format_column's cells, a value at a time: plain floats each on its own, unhashable values
    each on its own, any other value once (the first of equal keys: `$0.00` for 0.0 then -0.0)."""
    memo: dict[tuple[type, Any], str] = {}
    cells = []
    for key in keys:
        if kind == "plain" and key[0] is float:
            cells.append(_cell(key[1], kind, spec))
            continue
        try:
            text = memo.get(key)
        except TypeError:
            cells.append(_cell(key[1], kind, spec))
            continue
        if text is None:
            text = memo[key] = _cell(key[1], kind, spec)
        cells.append(text)
    return cells


def _cell(value: Any, kind: str, spec: str | None) -> str:
    """One cell of format_column (stripped, as tabulate strips cells)."""
    if value is None:
        return ""
    kind_of_value = type(value)
    if spec and kind == "plain" and (kind_of_value is float or kind_of_value is int):
        return fmt.with_format(value, spec)
    if kind_of_value is float and kind == "plain":
        text = f"{value:.4g}"  # also right for nan, inf and -inf
        if "e" in text and value == value and value not in (_INF, -_INF) and value == int(value) and abs(value) < 1e15:
            text = str(int(value))  # 12345.0 reads as 12345, not 1.234e+04
        return text
    if kind_of_value is str:
        return value.strip()
    return format_cell(value, kind).strip()


def measured(column: str) -> bool:
    """Columns whose numbers share one count of decimals: measurements (metrics, their means
    and bests). Hparams are settings, shown as typed (lr 0.001 beside 0.1 stays 0.001);
    durations, costs and times have formats of their own."""
    return kind_of(column) == "plain" and not column.startswith(("hparams.", "mean(hparams."))


def column_texts(columns: list[str], rows: list[dict[str, Any]], aligned: list[list[str]] | None = None,
                 formats: dict[str, str] | None = None) -> list[tuple[list[str], bool]]:
    """(cells, numeric) for each column: the numbers of a measured column share one
    fmt.column_format, a metric and its `.best` column share one (they are read together), as
    does each group in `aligned`; `formats` fixes a column's spec outright (the sweep summary
    takes the one of the metric's run values, so that it agrees with the runs table)."""
    groups = [[c, f"{c}.best"] for c in columns if f"{c}.best" in columns] + [list(g) for g in aligned or []]
    grouped = {c for g in groups for c in g}
    specs: dict[str, str] = {}
    values = {c: list(map(dict.get, rows, repeat(c))) for c in columns}  # each column's values, once
    # a column of text alone has no number to format (column_format would say ""): not scanned
    texts = {c for c in columns if set(map(type, values[c])) <= _TEXT}
    for c in columns:
        if c not in grouped and c not in texts and measured(c):
            specs[c] = fmt.column_format(values[c])
    for group in groups:
        present = [c for c in group if c in columns and measured(c)]
        if not set(present) - texts:
            specs.update(dict.fromkeys(present, ""))
            continue
        spec = fmt.column_format([v for c in present for v in values[c]])
        specs.update(dict.fromkeys(present, spec))
    specs.update({c: f for c, f in (formats or {}).items() if c in columns})
    return [format_column(values[c], kind_of(c), specs.get(c)) for c in columns]


_INF = float("inf")
_NONE = type(None)
_PLAIN_NUMBERS = {float, int, _NONE}
_NUMBER_TYPES, _STR, _FLOAT = {float, int}, {str}, float
_TEXT = {str, _NONE}


@dataclass
class Rendered:
    """A text table for people, and what was taken out of it to fit: `constant` (label, value)
    pairs shared by every row, said once above the table; `hidden`, the headers left out."""
    text: str
    constant: list[tuple[str, str]] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)


def movable(column: str) -> bool:
    """Columns said once above the table when every row has the same value: the settings of a
    sweep (hparams) and where it ran. Statuses and metrics always stay: they are the news."""
    return column.startswith("hparams.") or column in ("target", "sku")


KEEP = frozenset({"run", "job", "status"})


def render_text(columns: list[str], rows: list[dict[str, Any]], footer: list[dict[str, Any]] = (),
                labels: dict[str, str] | None = None, aligned: list[list[str]] | None = None,
                formats: dict[str, str] | None = None) -> str:
    """The text table of `rows` (then `footer` rows under a rule), numbers right-aligned, every
    column shown whatever its width. `aligned`, `formats`: see column_texts."""
    return render_fitted(columns, rows, footer, labels, wide=True, aligned=aligned, formats=formats).text


def render_fitted(columns: list[str], rows: list[dict[str, Any]], footer: list[dict[str, Any]] = (),
                  labels: dict[str, str] | None = None, width: int | None = None, wide: bool = False,
                  aligned: list[list[str]] | None = None, formats: dict[str, str] | None = None) -> Rendered:
    """The text table fitted to `width` characters (None: no limit) unless `wide`: columns
    that hold one value in every row (hparams, target) move above the table, long text cells
    are cut, then `.best` columns and then others are left out from the right (see layout.fit);
    run, job and status always stay."""
    from singkit.reports import layout

    labels = labels or {}
    every = [*rows, *footer]
    formatted = column_texts(columns, every, aligned, formats)
    cells = [col for col, _ in formatted]
    right = [numeric for _, numeric in formatted]
    headers = [labels.get(c, c) for c in columns]
    if len(set(headers)) < len(headers):  # short labels collide (hparam and metric both `lr`)
        headers = [h if headers.count(h) == 1 else c for h, c in zip(headers, columns)]
    constant: list[tuple[str, str]] = []
    if not wide:
        same = set(layout.constant_columns(columns, cells, len(rows), movable))
        constant = [(headers[i], cells[i][0]) for i in sorted(same) if cells[i][0] != ""]
        keep_idx = [i for i in range(len(columns)) if i not in same]
        columns = [columns[i] for i in keep_idx]
        headers, cells, right = [headers[i] for i in keep_idx], [cells[i] for i in keep_idx], [right[i] for i in keep_idx]
    fitted = layout.fit(headers, cells, right, None if wide else width,
                        keep=lambda i: columns[i] in KEEP or i == 0, drop_first=lambda i: columns[i].endswith(".best"))
    headers, cells, right = layout.apply(fitted, headers, cells, right)
    text = _table(headers, cells, right)
    if footer:  # footer rows share the columns' widths; a rule like the header's sets them apart
        lines = text.split("\n")
        text = "\n".join(lines[: 2 + len(rows)] + [lines[1]] + lines[2 + len(rows):])
    return Rendered(text, constant, fitted.hidden)


# -- for scripts ---------------------------------------------------------------------------------
def plain_value(value: Any, kind: str = "plain") -> Any:
    """A JSON-safe value: NaN and inf become null (strict JSON has no such numbers), times ISO 8601."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if kind == "time" and isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return _dt.datetime.fromtimestamp(value, _dt.timezone.utc).isoformat().replace("+00:00", "Z")
        except (OverflowError, OSError, ValueError):  # out of datetime's range: the number as written
            return value
    return value


def json_rows(columns: list[str], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kinds = {c: kind_of(c) for c in columns}
    return [{c: plain_value(row.get(c), kinds[c]) for c in columns} for row in rows]


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, allow_nan=False, default=str)


def export(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> Path:
    """Write rows as .csv, .tsv or .json (by suffix), atomically; return the path."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        data = to_json(json_rows(columns, rows)) + "\n"
    elif suffix in (".csv", ".tsv"):
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter="\t" if suffix == ".tsv" else ",", lineterminator="\n")
        writer.writerow(columns)
        kinds = [kind_of(c) for c in columns]
        for row in rows:
            writer.writerow([_csv_value(row.get(c), k) for c, k in zip(columns, kinds)])
        data = buf.getvalue()
    else:
        raise UsageError(f"cannot export to `{path.name}`: use a name ending in .csv, .tsv or .json")
    atomic_write(path, data)
    return path


def _csv_value(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return format_number(value)  # nan / inf / -inf: what pandas and spreadsheets read back
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), default=str)
    value = plain_value(value, kind)
    return "true" if value is True else "false" if value is False else str(value)
