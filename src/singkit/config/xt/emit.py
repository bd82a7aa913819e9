"""The imported config as YAML text, with end-of-line comments, fast.

A config converted from XT holds only mappings, lists and scalars (str, int, float, bool), so it
is written here directly, block style with 2-space indents (as configs/singkit.yaml is): a
300-target import then costs milliseconds, where ruamel's round-trip dumper took most of a second.
A string is written plain only when YAML 1.1 and 1.2 readers (PyYAML, ruamel) both read it back as
that very string; else as a JSON string, which is a valid YAML double-quoted scalar.
tests/test_config_import_xt.py reads every written file back and compares it with the data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

# letters, digits and a few punctuation marks, not starting with an indicator character
_PLAIN = re.compile(r"^[A-Za-z0-9_./$][A-Za-z0-9_./$@*=+,:()\- ]*$")
# words and numbers YAML 1.1 (PyYAML) or 1.2 (ruamel) reads as something other than a string
_SPECIAL = re.compile(r"^(?:y|n|yes|no|true|false|on|off|null|~|[-+]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
                      r"|[-+]?\.(?:inf|nan)|0[xob][0-9a-fA-F_]+|[-+]?\d+(?::[0-5]?\d)+(?:\.\d*)?|\d{4}-\d\d?-\d\d?.*)$", re.I)


def scalar(value: Any) -> str:
    """One scalar as YAML text that reads back as `value`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    text = str(value)
    plain = (_PLAIN.match(text) and not _SPECIAL.match(text) and not text.endswith((" ", ":"))
             and ": " not in text and " #" not in text and "  " not in text)
    return text if plain else json.dumps(text, ensure_ascii=False)


def emit(data: Mapping[str, Any], comments: Mapping[tuple[str, ...], str] | None = None) -> str:
    """`data` as block YAML; `comments[(section, record, key)]` goes at the end of that key's line."""
    lines: list[str] = []
    _mapping(data, 0, (), comments or {}, lines)
    return "\n".join(lines) + "\n"


def _mapping(data: Mapping[str, Any], indent: int, path: tuple[str, ...], comments: Mapping[tuple[str, ...], str],
             lines: list[str]) -> None:
    pad = " " * indent
    for key, value in data.items():
        here = (*path, str(key))
        note = f"  # {comments[here]}" if here in comments else ""
        if isinstance(value, Mapping) and value:
            lines.append(f"{pad}{scalar(str(key))}:{note}")
            _mapping(value, indent + 2, here, comments, lines)
        elif isinstance(value, (list, tuple)) and value:
            lines.append(f"{pad}{scalar(str(key))}:{note}")
            for item in value:
                lines.append(f"{pad}  - {scalar(item)}")
        else:
            empty = "{}" if isinstance(value, Mapping) else "[]" if isinstance(value, (list, tuple)) else scalar(value)
            lines.append(f"{pad}{scalar(str(key))}: {empty}{note}")
