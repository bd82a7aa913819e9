"""How singkit writes values for people: durations, numbers, booleans, sizes, times, config scalars.

One module so that every table and message says the same thing the same way: job tables,
report tables, `config.show`, the sweep summary and `report.errors` all format through here.
Scripts get raw values (`--json`); nothing here is used for machine-readable output.

Conventions (and why):
- durations: `8.3s` under ten seconds (a quick local run: 0.4s says more than 0s), then
  `42s`, `1m05s`, `2h03m`, `3d04h` — two units at most, like `docker ps`' "Up 2 hours";
- numbers: at most `DIGITS` significant digits (`0.1235`, `1.235e+05`), whole floats without
  a fraction (`12345`, not `1.234e+04`), `nan`, `inf`, `-inf` as Python and pandas read them;
- booleans: `true` / `false`, as YAML writes them (the config is YAML), `null` for None in
  config values;
- sizes: SI units (`1.5 MB`), as the Docker CLI prints image and layer sizes.
Only the standard library: the CLI's start must stay light.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Iterable
from typing import Any

_PLAIN = {float, int, type(None)}
DIGITS = 4  # significant digits of a float in tables: enough to rank runs, short enough to scan


def duration(seconds: float | int | None) -> str:
    """`seconds` as `0.004s`, `0.04s`, `8.3s`, `42s`, `1m05s`, `2h03m`, `3d04h` (`<0.001s` below a
    millisecond, `0s` only for zero); "" for None or NaN, `inf` for an endless one. A negative span (clock skew between machines) keeps its sign: `-4.0s`."""
    if seconds is None or isinstance(seconds, bool):
        return ""
    seconds = float(seconds)
    if math.isnan(seconds):
        return ""
    if math.isinf(seconds):
        return "inf" if seconds > 0 else "-inf"
    if seconds < 0:
        return "-" + duration(-seconds)
    if seconds == 0:
        return "0s"
    if seconds < 0.001:
        return "<0.001s"  # said as less than, never as a zero that did not happen
    if seconds < 0.0095:
        return f"{seconds:.3f}s"  # 0.004s, not 0.00s: a span that happened never reads as none
    if seconds < 0.95:
        return f"{seconds:.2f}s"  # 0.04s, not 0.0s
    if seconds < 9.95:
        return f"{seconds:.1f}s"
    whole = int(round(seconds))
    d, rem = divmod(whole, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    if d:
        return f"{d}d{h:02d}h"
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"


def number(value: float | int | bool | None, digits: int = DIGITS) -> str:
    """A number for a table cell: ints whole, floats to `digits` significant digits (whole
    floats below 1e15 without a fraction), `nan`/`inf`/`-inf`, "" for None, true/false for bools."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return boolean(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))  # also turns -0.0 into 0
    return f"{value:.{digits}g}"


def column_format(values: Iterable[Any], digits: int = DIGITS) -> str:
    """The one format for the numbers of a table column (or of columns read side by side), as
    a format spec: "" when every finite number is whole (each written by `number`: `3`, `12345`),
    `.Nf` for N shared decimals, `.{digits-1}e` when fixed decimals would not do.

    N is what `digits` significant digits of the column's largest magnitude need, plus what a
    smaller value needs, up to one more decimal: `1` beside `0.9688` is `1.0000` (four digits of
    0.9688, a decade below), `0.08704` beside `0.1148` keeps its four digits (`0.11480`),
    while values further down keep fewer. E-notation for the whole column when its largest
    magnitude is ≥ 1e6 or < 1e-4, or when a non-zero value would read as zero at N decimals.
    Non-numbers, booleans, NaN and inf are ignored."""
    # list comprehensions, not a loop: this runs over every column of a 10,000-run table
    values = values if isinstance(values, list) else list(values)
    if set(map(type, values)) <= _PLAIN:  # the common case: no bool (an int subclass) to skip
        sizes = [abs(v) for v in values if v is not None and v - v == 0]
    else:
        sizes = [abs(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and v - v == 0]
    top = max(sizes, default=0.0)  # (v - v == 0 is False for NaN and ±inf only)
    if top == 0 or not any(v % 1 for v in sizes):  # every number whole: `3`, `12345`
        return ""
    low = min([v for v in sizes if v])
    if top >= 1e6 or top < 1e-4:
        return f".{digits - 1}e"
    base = max(0, digits - 1 - math.floor(math.log10(top)))
    need = max(0, digits - 1 - math.floor(math.log10(low)))
    decimals = min(max(base, need), base + 1)
    if low < 0.5 * 10 ** -decimals:  # it would read as 0: say the column in e-notation instead
        return f".{digits - 1}e"
    return f".{decimals}f"


def with_format(value: Any, spec: str) -> str:
    """A number written with a `column_format` spec ("" → `number`); "" for None, `nan`/`inf`
    as `number` writes them, never `-0.0000`."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return cell(value)
    if not spec or not math.isfinite(value):
        return number(value)
    text = format(value, spec)
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def aligned(values: list[float | int | None], digits: int = DIGITS) -> list[str]:
    """Numbers that are read side by side (a column; a mean, its ± std and the best value)
    written with one `column_format`: `0.215, 0.007071, 0.21` read `0.21500, 0.00707, 0.21000`."""
    spec = column_format(values, digits)
    return [with_format(v, spec) for v in values]


def boolean(value: bool) -> str:
    """`true` / `false`, as YAML (and JSON) write them, never Python's `True`."""
    return "true" if value else "false"


def nbytes(n: float | int | None) -> str:
    """A size in SI units as the Docker CLI prints it: `512 B`, `1.5 kB`, `3.2 MB`, `1.1 TB`."""
    if n is None or isinstance(n, bool):
        return ""
    n = float(n)
    if not math.isfinite(n):
        return number(n)
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 999.95 or unit == "TB":
            return f"{sign}{n:.0f} {unit}" if unit == "B" else f"{sign}{n:.1f} {unit}"
        n /= 1000
    return f"{sign}{n:.1f} TB"  # pragma: no cover (the loop returns at TB)


def when(epoch: float | int | None, seconds: bool = False) -> str:
    """Local time of an epoch-seconds value: `2024-11-24 13:06` (with `:SS` if asked); "" for None."""
    if epoch is None or isinstance(epoch, bool) or not math.isfinite(epoch):
        return ""
    try:
        return _dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    except (OverflowError, OSError, ValueError):  # a time a job wrote, past year 9999 or before 1: as written
        return scalar(epoch)


def scalar(value: Any) -> str:
    """A config value as YAML would show it: true/false, null, numbers as written, lists and
    maps in flow style (`[a, b]`, `{k: v}` as JSON, which YAML reads), text as is — never cut."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return boolean(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else (".nan" if math.isnan(value) else ".inf" if value > 0 else "-.inf")
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def cell(value: Any) -> str:
    """Any table value: numbers via `number`, booleans true/false, lists/maps as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, (bool, int, float)):
        return number(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def strict_json(data: Any) -> str:
    """`--json` output: strict JSON (RFC 8259), indented. NaN and ±inf, legal in run.log but in no
    JSON parser's grammar (JavaScript's JSON.parse refuses them), become null; anything JSON has no
    type for is written as its str()."""
    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(data), indent=2, allow_nan=False, default=str)
