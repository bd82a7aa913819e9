"""Text tables that fit the reader's terminal: constant columns said once, long cells cut, the
least useful columns left out — and what was left out named, so nothing is hidden silently.

The width is the user's `COLUMNS` when set (an explicit choice, honoured even when piped,
as `ls -C` does), else the terminal's width when stdout is a terminal, else no limit:
output piped into a file or `grep` is never cut, as git and ls do not cut piped output.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

GAP = 2          # spaces between columns in tabulate's "simple" format
HEADER_PAD = 2   # tabulate makes a column at least its header + 2 wide (MIN_PADDING)
MIN_TEXT = 12    # a text column is never cut below this many characters (or its header)
ELLIPSIS = "…"


def terminal_width(stream: TextIO | None, environ: dict[str, str] | None = None) -> int | None:
    """Characters per line for a table on `stream`; None means no limit (see the module doc).
    A COLUMNS that is not a positive whole number is ignored, as shells set it loosely."""
    environ = os.environ if environ is None else environ
    value = (environ.get("COLUMNS") or "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    try:
        if stream is not None and stream.isatty():
            return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):  # a test's StringIO, a closed or odd stream
        pass
    return None


@dataclass
class Fitted:
    """A table's columns after fitting: indexes kept (in order), cell caps (characters) for
    the cut text columns, and the headers of the columns left out."""
    kept: list[int]
    caps: dict[int, int] = field(default_factory=dict)
    hidden: list[str] = field(default_factory=list)


def width_of(widths: list[int]) -> int:
    return sum(widths) + GAP * max(0, len(widths) - 1)


def fit(headers: list[str], columns: list[list[str]], right: list[bool], width: int | None,
        keep: Callable[[int], bool], drop_first: Callable[[int], bool] = lambda i: False) -> Fitted:
    """Which columns to show within `width` characters. First the widest text column that is
    not kept is cut (down to MIN_TEXT), then whole columns are left out, from the right, those
    for which `drop_first` holds before the others; `keep` columns always stay."""
    n = len(headers)
    fitted = Fitted(list(range(n)))
    if width is None:  # no limit: not even the widths are needed
        return fitted
    widths = [max(len(h) + HEADER_PAD, max(map(len, col), default=0)) for h, col in zip(headers, columns)]
    if width_of(widths) <= width:
        return fitted
    shown = list(range(n))

    def total() -> int:
        return width_of([min(widths[i], fitted.caps.get(i, widths[i])) for i in shown])

    cuttable = [i for i in shown if not right[i] and not keep(i)]
    while total() > width:
        wide = [i for i in cuttable if i in shown and min(widths[i], fitted.caps.get(i, widths[i])) > max(MIN_TEXT, len(headers[i]) + HEADER_PAD)]
        if wide:
            i = max(wide, key=lambda k: min(widths[k], fitted.caps.get(k, widths[k])))
            now = min(widths[i], fitted.caps.get(i, widths[i]))
            fitted.caps[i] = max(MIN_TEXT, len(headers[i]) + HEADER_PAD, now - (total() - width))
            continue
        candidates = [i for i in shown if not keep(i)]
        if not candidates:
            break  # only kept columns left: wider than the terminal, but whole
        first = [i for i in candidates if drop_first(i)]
        gone = (first or candidates)[-1]
        shown.remove(gone)
        fitted.hidden.insert(0, headers[gone])
    fitted.kept = shown
    fitted.caps = {i: c for i, c in fitted.caps.items() if i in shown and c < widths[i]}
    return fitted


def cut(cells: list[str], cap: int) -> list[str]:
    """Cells longer than `cap` end in an ellipsis at `cap` characters."""
    return [c if len(c) <= cap else c[: cap - 1] + ELLIPSIS for c in cells]


def apply(fitted: Fitted, headers: list[str], columns: list[list[str]], right: list[bool]) -> tuple[list[str], list[list[str]], list[bool]]:
    """The headers, cell columns and alignments `fitted` keeps, long cells cut."""
    return ([headers[i] for i in fitted.kept],
            [cut(columns[i], fitted.caps[i]) if i in fitted.caps else columns[i] for i in fitted.kept],
            [right[i] for i in fitted.kept])


def constant_columns(columns: list[str], cells: list[list[str]], rows: int, movable: Callable[[str], bool]) -> list[int]:
    """Indexes of `movable` columns with one value in every one of `rows` (> 1) rows: said once
    above the table instead of in every row. A column empty in every row is included (it
    says nothing; the caller leaves it out)."""
    if rows < 2:
        return []
    out = []
    for i, (name, col) in enumerate(zip(columns, cells)):
        if movable(name) and len(col) >= rows and len(set(col[:rows])) == 1:
            out.append(i)
    return out


def left_out(hidden: list[str], width: int | None, remedy: str) -> str:
    """The line saying which columns were left out, itself within `width` characters: names
    are dropped from the end (`+3 more`) until it fits, and at a width too small even for
    that, the whole line wraps at `width`. `remedy`: how to see them (`--wide shows them`)."""
    def line(shown: list[str]) -> str:
        more = len(hidden) - len(shown)
        names = ", ".join(shown) + (f"{', ' if shown else ''}+{more} more" if more else "")
        return f"(left out to fit {width} characters: {names}; {remedy})"

    for count in range(len(hidden), -1, -1):
        text = line(hidden[:count])
        if width is None or len(text) <= width:
            return text
    import textwrap

    return textwrap.fill(line(hidden), width=max(width, 20), break_on_hyphens=False)


def describe_constant(pairs: list[tuple[str, str]], head: str = "", width: int | None = None) -> str:
    """`lr=0.1  bs=32  target=local` (two spaces between pairs: values may hold one) after
    `head`, wrapped at `width` between pairs (continued lines indented two spaces)."""
    lines = [head.rstrip()]
    for n, (k, v) in enumerate(pairs):
        item = f"{k}={v}"
        gap = (" " if head else "") if n == 0 else "  "
        if width is None or len(lines[-1]) + len(gap) + len(item) <= width or lines[-1].strip() == "":
            lines[-1] += gap + item
        else:
            lines.append("  " + item)
    return "\n".join(lines)
