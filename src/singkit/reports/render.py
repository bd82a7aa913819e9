"""Cells and tables for people (text, HTML) and for scripts (JSON, CSV/TSV).

Values stay raw in rows (numbers, epoch seconds, None); formatting happens only here. Text
tables use tabulate's "simple" format; above a few thousand rows an equivalent renderer of
our own draws the same bytes several times faster (tabulate is pure Python and a 10,000-run
table would take most of report.list's time budget).
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
from pathlib import Path
from typing import Any

from singkit.exceptions import UsageError
from singkit.fsutil import atomic_write

FAST_RENDER_ROWS = 2000
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
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def format_duration(seconds: float) -> str:
    if seconds < 9.95:
        return f"{seconds:.1f}s"  # quick local runs: 0.4s says more than 0s
    seconds = int(round(seconds))
    d, rem = divmod(seconds, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    if d:
        return f"{d}d{h:02d}h"
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"


def format_time(epoch: float) -> str:
    return _dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M")


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
    rows = len(columns[0]) if columns else 0
    if rows <= FAST_RENDER_ROWS or not all("".join(col).isascii() for col in [headers, *columns]):
        from tabulate import tabulate

        return tabulate([list(r) for r in zip(*columns)], headers, tablefmt="simple", disable_numparse=True,
                        colalign=["right" if r else "left" for r in right] or None)
    return _fast_simple(headers, columns, right)


def _fast_simple(headers: list[str], columns: list[list[str]], right: list[bool]) -> str:
    # Same layout as tabulate's "simple": width = max(cell, header + 2), two-space gaps, dashes
    # under headers, trailing blanks stripped. One str.format per row: C-speed padding.
    widths = [max(len(h) + 2, max(map(len, col), default=0)) for h, col in zip(headers, columns)]
    template = "  ".join(f"{{:{'>' if r else '<'}{w}}}" for w, r in zip(widths, right))
    out = [template.format(*headers).rstrip(), "  ".join("-" * w for w in widths)]
    out.extend(template.format(*row).rstrip() for row in zip(*columns))
    return "\n".join(out)


def format_column(values: list[Any], kind: str) -> tuple[list[str], bool]:
    """Formatted cells of one column, and whether it is numeric (numbers are right-aligned).
    Column-wise with a memo for repeated values: a 10,000-run table has 150,000 cells."""
    cells: list[str] = []
    seen = other = False
    memo: dict[Any, str] = {}
    for value in values:
        if value is None:
            cells.append("")
            continue
        kind_of_value = type(value)
        if kind_of_value is float and kind == "plain":
            seen = True
            text = f"{value:.4g}"  # also right for nan, inf and -inf
            if "e" in text and value == value and value not in (_INF, -_INF) and value == int(value) and abs(value) < 1e15:
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


_INF = float("inf")


def render_text(columns: list[str], rows: list[dict[str, Any]], footer: list[dict[str, Any]] = (),
                labels: dict[str, str] | None = None) -> str:
    """The text table of `rows` (then `footer` rows under a rule), numbers right-aligned."""
    labels = labels or {}
    every = [*rows, *footer]
    formatted = [format_column([row.get(c) for row in every], kind_of(c)) for c in columns]
    right = [numeric for _, numeric in formatted]
    headers = [labels.get(c, c) for c in columns]
    if len(set(headers)) < len(headers):  # short labels collide (hparam and metric both `lr`)
        headers = [h if headers.count(h) == 1 else c for h, c in zip(headers, columns)]
    text = _table(headers, [col for col, _ in formatted], right)
    if footer:  # footer rows share the columns' widths; a rule like the header's sets them apart
        lines = text.split("\n")
        text = "\n".join(lines[: 2 + len(rows)] + [lines[1]] + lines[2 + len(rows):])
    return text


# -- for scripts ---------------------------------------------------------------------------------
def plain_value(value: Any, kind: str = "plain") -> Any:
    """A JSON-safe value: NaN and inf become null (strict JSON has no such numbers), times ISO 8601."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if kind == "time" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return _dt.datetime.fromtimestamp(value, _dt.timezone.utc).isoformat().replace("+00:00", "Z")
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
