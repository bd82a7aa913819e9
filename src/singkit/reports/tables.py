"""Table operations shared by every report: column names, filters, sort, group, mean, last N.

A table is a list of row dicts plus the column order. Column names are full
(`hparams.lr`, `metrics.acc`, `metrics.acc.best`) but may be given short (`lr`, `acc`)
when that is unambiguous. Filters are parsed, never evaluated: `COLUMN OP VALUE` with OP one
of = == != > >= < <= ~ (regex search) !~, e.g. "metrics.acc>0.8", "status!=failed",
"hparams.opt~^adam", "metrics.loss=nan", "metrics.acc=none" (runs that logged no acc).
"""

from __future__ import annotations

import fnmatch
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from singkit.exceptions import UsageError
from singkit.suggest import closest, one_slip
from singkit.reports.prefs import REPEAT_KEYS
from singkit.reports.render import format_cell


@dataclass
class Table:
    columns: list[str]                 # shown, in order
    rows: list[dict[str, Any]]
    footer: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)  # not shown unless asked for; still filterable
    formats: dict[str, str] = field(default_factory=dict)  # column -> fmt.column_format spec, when fixed

    @property
    def names(self) -> list[str]:
        """Every column a flag may name: the shown ones, then the extra ones."""
        return self.columns + [c for c in self.extra if c not in self.columns]


# -- column names --------------------------------------------------------------------------------
def resolve(name: str, columns: list[str], suggest: list[str] | None = None, what: str = "column") -> str:
    """The full column `name` stands for; UsageError with the closest names if none or several.
    `suggest`: the only columns to name in the hint (e.g. the metric columns, for --mean)."""
    name = name.strip()
    if name in columns:
        return name
    tries = [f"hparams.{name}", f"metrics.{name}", f"mean({name})"]
    tries += [f"mean(metrics.{name})", f"mean(hparams.{name})"]
    hits = [c for c in tries if c in columns]
    if not hits:
        lowered = {c.lower(): c for c in columns}
        hits = [lowered[t.lower()] for t in [name, *tries] if t.lower() in lowered]
    hits = list(dict.fromkeys(hits))
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise UsageError(f"column `{name}` is ambiguous: say {' or '.join(hits)}")
    pool = columns if suggest is None else suggest
    close = closest_columns(name, pool)
    hint = f"did you mean {', '.join(close)}?" if close else f"{what}s are: {', '.join(pool[:30]) or '(none)'}"
    raise UsageError(f"no {what} `{name}`; {hint}")


def closest_columns(name: str, columns: list[str]) -> list[str]:
    """The columns nearest to `name` (singkit.suggest, as every "did you mean"), compared by full
    name and by the name after its `metrics.`/`hparams.` prefix (`los` → metrics.loss), where a
    prefix counts as close (`accuracy` → metrics.acc). Failing those, a column whose short name
    the word starts with after one slip (`acuracy`, a slip of `accuracy`, → metrics.acc): people
    type a metric's long name, and mistype it."""
    close = closest(name, columns, short=True)
    if close or len(name) < 4:
        return close
    word = name.lower()
    slipped = []
    for column in columns:
        short = column.split(".", 1)[-1].lower() if column.startswith(("metrics.", "hparams.")) else column.lower()
        if len(short) >= 3 and len(word) > len(short) and any(
                one_slip(word[:k], short) for k in (len(short) - 1, len(short), len(short) + 1)):
            slipped.append(column)
    return slipped[:3]


def metric_columns(columns: list[str]) -> list[str]:
    return [c for c in columns if c.startswith("metrics.")]


def resolve_mean(name: str, columns: list[str]) -> str:
    """A --mean column: any column may be named, but only metric columns are suggested."""
    return resolve(name, columns, suggest=metric_columns(columns), what="metric column")


def select(table: Table, spec: str | None) -> Table:
    """Keep the columns named in a comma list (globs allowed: `hparams.*`), in that order."""
    if not spec:
        return table
    chosen: list[str] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if any(ch in item for ch in "*?["):
            matched = [c for c in table.names if fnmatch.fnmatchcase(c, item)]
            if not matched:
                raise UsageError(f"`{item}` matches no column; columns are: {', '.join(table.names[:30])}")
            chosen += matched
        else:
            chosen.append(resolve(item, table.names))
    return replace(table, columns=list(dict.fromkeys(chosen)))


# -- filters -------------------------------------------------------------------------------------
_FILTER = re.compile(r"^\s*(?P<col>[^<>=!~\s][^<>=!~]*?)\s*(?P<op>==|!=|>=|<=|!~|=~|=|>|<|~)\s*(?P<val>.*?)\s*$")
_MISSING = frozenset({"none", "null", ""})
_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}


def split_filters(exprs: list[str] | str | None) -> list[str]:
    """Filters from repeated --filter flags, each possibly a comma list ("a>1,b=x")."""
    if not exprs:
        return []
    if isinstance(exprs, str):
        exprs = [exprs]
    out: list[str] = []
    for expr in exprs:
        for piece in expr.split(","):
            if out and not _FILTER.match(piece):
                out[-1] += "," + piece  # a comma inside a value, e.g. a regex {2,3}
            elif piece.strip():
                out.append(piece)
    return out


def parse_filter(expr: str, columns: list[str]) -> Callable[[dict[str, Any]], bool]:
    match = _FILTER.match(expr)
    if not match:
        raise UsageError(f"cannot read filter `{expr}`: write COLUMN OP VALUE, e.g. \"metrics.acc>0.8\" "
                         "(OP: = != > >= < <= ~ !~)")
    column = resolve(match["col"], columns)
    op, raw = match["op"], match["val"]
    if raw[:1] in ("<", ">", "=", "!", "~"):
        raise UsageError(f"cannot read filter `{expr}`: the value `{raw}` starts with an operator; "
                         "write one of = != > >= < <= ~ !~ between column and value (quote text values)")
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        raw = raw[1:-1]
    if raw.lower() in _MISSING and op in ("=", "==", "!="):
        want_missing = op != "!="
        return lambda row: (row.get(column) is None) == want_missing
    if op in ("~", "=~", "!~"):
        try:
            pattern = re.compile(raw)
        except re.error as error:
            raise UsageError(f"filter `{expr}`: bad regular expression ({error})") from None
        negate = op == "!~"
        # a missing value matches no pattern: `!~` keeps its row, as `!=` does
        return lambda row: negate if row.get(column) is None else bool(pattern.search(_text(row.get(column)))) != negate
    number = _number(raw)
    if op in _ORDER:
        compare = _ORDER[op]
        if number is None:
            return lambda row: isinstance(row.get(column), str) and compare(row[column], raw)
        return lambda row: _is_num(row.get(column)) and compare(row[column], number)
    equal = op in ("=", "==")

    def matches(row: dict[str, Any]) -> bool:
        value = row.get(column)
        if value is None:
            return not equal
        if number is not None and _is_num(value):
            same = (math.isnan(number) and math.isnan(value)) or value == number
        else:
            text = _text(value)
            same = text == raw or (isinstance(value, bool) and text == raw.lower())
        return same == equal

    return matches


def _number(raw: str) -> float | None:
    try:
        return float(raw)
    except ValueError:
        return None


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return format_cell(value)


def filter_rows(table: Table, exprs: list[str] | str | None) -> Table:
    tests = [parse_filter(e, table.names) for e in split_filters(exprs)]
    if not tests:
        return table
    return replace(table, rows=[row for row in table.rows if all(t(row) for t in tests)])


# -- order ---------------------------------------------------------------------------------------
def sort_key(value: Any) -> tuple:
    """Numbers (numerically) before text; missing and NaN last whichever way we sort."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (1, 0, 0)
    if _is_num(value) or isinstance(value, bool):
        return (0, 0, value)
    return (0, 1, _text(value))


def sort_rows(table: Table, column: str | None, reverse: bool = False) -> Table:
    if not column:
        return table
    column = resolve(column, table.names)
    present = [r for r in table.rows if sort_key(r.get(column))[0] == 0]
    missing = [r for r in table.rows if sort_key(r.get(column))[0] == 1]
    present.sort(key=lambda r: sort_key(r.get(column)), reverse=reverse)
    return replace(table, rows=present + missing)


def last(table: Table, n: int | None) -> Table:
    if n is None:
        return table
    if n < 0:
        raise UsageError(f"--last must be 0 or more, not {n}")
    return replace(table, rows=table.rows[len(table.rows) - n:] if n else [])


def drop_empty(table: Table) -> Table:
    """The table with its hparams.* and metrics.* columns (their .best too) that no row shown has a
    value in moved to `extra`: after a filter or --last they are columns of runs not shown. They
    stay nameable (--columns, --sort, --mean). A table with no rows is kept as it is."""
    if not table.rows:
        return table
    empty = [c for c in table.columns if c.startswith(("hparams.", "metrics."))
             and all(row.get(c) is None for row in table.rows)]
    if not empty:
        return table
    return replace(table, columns=[c for c in table.columns if c not in empty],
                   extra=[*table.extra, *(c for c in empty if c not in table.extra)])


# -- group and mean ------------------------------------------------------------------------------
def sweep_keys(columns: list[str], rows: list[dict[str, Any]]) -> list[str]:
    """hparams columns whose value differs between rows, except repeat keys such as `seed`."""
    keys = []
    for c in columns:
        if not c.startswith("hparams.") or c[8:].lower() in REPEAT_KEYS:
            continue
        values = {_text(r.get(c)) if r.get(c) is not None else None for r in rows}
        if len(values) > 1:
            keys.append(c)
    return keys


def mean_of(values: list[Any]) -> float | None:
    """The mean of the finite numbers in `values` (NaN, inf and non-numbers left out), None if none.
    Finite inputs give a finite mean: when the plain sum overflows (two 1e308s), each value is
    divided by the count before summing, which cannot exceed the largest input."""
    nums = [v for v in values if _is_num(v) and math.isfinite(v)]
    if not nums:
        return None
    try:
        mean = sum(nums) / len(nums)
    except OverflowError:  # ints too large for a float
        mean = math.inf
    if math.isfinite(mean):
        return mean
    return math.fsum(v / len(nums) for v in nums)


def default_means(columns: list[str]) -> list[str]:
    return [c for c in columns if c.startswith("metrics.") and not c.endswith(".best")]


def group(table: Table, by: str, means: list[str] | None) -> Table:
    """One row per group: the key columns, `runs` (how many), mean(col) for each mean column.
    `by` is `hparams` (the sweep's varying hparams) or a comma list of columns."""
    if by.strip() == "hparams":
        keys = sweep_keys(table.names, table.rows)
    else:
        keys = [resolve(c, table.names) for c in by.split(",") if c.strip()]
    cols = [resolve_mean(m, table.names) for m in means] if means else default_means(table.columns)
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in table.rows:
        groups.setdefault(tuple(_text(row.get(k)) if row.get(k) is not None else None for k in keys), []).append(row)
    out = []
    for members in groups.values():
        item = {k: members[0].get(k) for k in keys}
        item["runs"] = len(members)
        for c in cols:
            item[f"mean({c})"] = mean_of([m.get(c) for m in members])
        out.append(item)
    columns = [*keys, "runs", *(f"mean({c})" for c in cols)]
    labels = {k: table.labels.get(k, k) for k in keys}
    labels.update({f"mean({c})": f"mean {table.labels.get(c, c)}" for c in cols})
    return Table(columns, out, [], labels)


def mean_footer(table: Table, means: list[str]) -> Table:
    """The table with a last row holding the mean of each named column over the rows shown."""
    cols = [resolve_mean(m, table.names) for m in means]
    first = table.columns[0] if table.columns else "run"
    row: dict[str, Any] = {first: "mean"}
    for c in cols:
        row[c] = mean_of([r.get(c) for r in table.rows])
    shown = table.columns + [c for c in cols if c not in table.columns]
    return replace(table, columns=shown, footer=[row])
