"""Setting one key of one record in a config file's text, every other byte kept.

A round-trip dump (ruamel) re-emits the whole document: CRLF becomes LF, a UTF-8 BOM is dropped,
a comment after an anchor moves to a line of its own. Instead the key's value is located in the
composed node tree (each node knows its start and end offsets in the text) and the new scalar is
spliced into the original text; a key not there yet is inserted after the record's last line
with the record's own indentation and the file's newline (or appended inside a flow mapping).
Each candidate text is parsed again and is taken only when its data equals the old data with
that one key set, so a splice can never change another value.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

from singkit.config.layers import plain, yaml_rt
from singkit.exceptions import ConfigError, Problem

_ALIAS = re.compile(r"\*[^\s,\[\]{}]+")
_PROPERTIES = re.compile(r"(?:[&!][^\s,\[\]{}]*\s+)*")  # an anchor and/or tag before the scalar itself


def set_key(text: str, file: Path, path: list[str], key: str, value: Any,
            same: Callable[[str, str], bool]) -> str:
    """`text` with `key` of the mapping at `path` (e.g. ["dockers", "py"]) set to the scalar `value`.

    `same(written, wanted)` says whether a key in the file names `wanted` (spellings such as
    `sing_wrap` for `sing-wrap`). Raises ConfigError (file:line) when the record is gone or the
    key cannot be set without touching anything else."""
    yaml = yaml_rt()
    root = yaml.compose(text)
    node, holder = root, None
    for part in path:
        pair = _pair(node, part, same)
        if pair is None:
            raise ConfigError(Problem(file, 1, 1, f"{'.'.join(path)} is no longer in this file; run the command again"))
        holder, node = pair
    expected = _expected(yaml, text, path, key, value, same)
    for elsewhere in _aliased(text, root, node, key, same):  # `*x` of a value set in place reads the new value
        _set(expected, elsewhere, value)
    for candidate in _candidates(text, file, holder, node, key, value, same):
        if _data(yaml, candidate) == expected:
            return candidate
    line = (holder.start_mark.line + 1) if holder is not None else 1
    raise ConfigError(Problem(file, line, 1, f"cannot set `{key}` of {'.'.join(path)} without changing other lines; "
                                             f"write `{key}: {_render(value, None)}` there by hand"))


def _pair(node: Any, name: str, same: Callable[[str, str], bool]) -> tuple[Any, Any] | None:
    """(key node, value node) of the entry `name` of a mapping node (merge keys `<<` are not entries)."""
    from ruamel.yaml.nodes import MappingNode

    if not isinstance(node, MappingNode):
        return None
    for key_node, value_node in node.value:
        written = str(key_node.value)
        if written != "<<" and (written == name or same(written, name)):
            return key_node, value_node
    return None


def _candidates(text: str, file: Path, holder: Any, record: Any, key: str, value: Any,
                same: Callable[[str, str], bool]) -> list[str]:
    """Texts that may be `text` with the key set, most faithful first (each is verified)."""
    from ruamel.yaml.nodes import MappingNode, ScalarNode

    if isinstance(record, ScalarNode) and record.value in ("", "~", "null", "Null", "NULL"):  # `name:` with nothing yet
        start, end = _value_span(text, holder, record)
        return [_splice(text, start, end, (" " if start == end else "") + "{" + f"{key}: {r}" + "}")
                for r in _renderings(value, None)]
    if not isinstance(record, MappingNode):
        raise ConfigError(Problem(file, record.start_mark.line + 1, record.start_mark.column + 1,
                                  f"expected a mapping of keys here, found {type(record).__name__.replace('Node', '').lower()}"))
    pair = _pair(record, key, same)
    if pair is not None:
        key_node, value_node = pair
        start, end = _value_span(text, key_node, value_node)
        own = (start, end) == (value_node.start_mark.index, value_node.end_mark.index)  # not an alias
        if own and not isinstance(value_node, ScalarNode) and not value_node.flow_style:
            line = key_node.start_mark.line + 1
            raise ConfigError(Problem(file, line, key_node.start_mark.column + 1,
                                      f"`{key_node.value}` holds a block of lines here; a single value was expected"))
        if start == end:  # `key:` with no value: after the colon
            return [_splice(text, start, end, " " + r) for r in _renderings(value, None)]
        prefix = _PROPERTIES.match(text, start).end() if text[start] in "&!" else start
        return [_splice(text, prefix, end, r) for r in _renderings(value, getattr(value_node, "style", None))]
    written = key
    if record.flow_style:
        if record.value:
            last_key, last_value = record.value[-1]
            at = _value_span(text, last_key, last_value)[1]
            return [_splice(text, at, at, f", {written}: {r}") for r in _renderings(value, None)]
        brace = text.index("{", record.start_mark.index)
        return [_splice(text, brace + 1, brace + 1, f"{written}: {r}") for r in _renderings(value, None)]
    first_key = record.value[0][0]
    indent = " " * first_key.start_mark.column
    end = _deep_end(text, record)
    content_end = end
    while content_end > 0 and text[content_end - 1] in " \t\r\n":
        content_end -= 1
    line_end = text.find("\n", content_end)
    line_end = len(text) if line_end < 0 else line_end
    newline = "\r\n" if (text[line_end - 1:line_end + 1] == "\r\n" or (line_end == len(text) and "\r\n" in text)) else "\n"
    if line_end > 0 and text[line_end - 1] == "\r" and line_end < len(text):
        line_end -= 1
    out = []
    for r in _renderings(value, None):
        entry = f"{indent}{written}: {r}"
        out.append(_splice(text, line_end, line_end, newline + entry))  # right after the record's last line
        if end != content_end and text[end - 1:end] == "\n":  # after a block scalar's kept blank lines
            out.append(_splice(text, end, end, entry + newline))
    return out


def _aliased(text: str, root: Any, record: Any, key: str, same: Callable[[str, str], bool]) -> list[list[Any]]:
    """Data paths of the aliases of the value that is set in place (none when the key's own value
    is an alias, which is replaced where it stands)."""
    pair = _pair(record, key, same)
    if pair is None or not getattr(pair[1], "anchor", None):
        return []
    key_node, target = pair
    if _value_span(text, key_node, target) != (target.start_mark.index, target.end_mark.index):
        return []
    found: list[list[Any]] = []

    def walk(node: Any, at: list[Any], seen: tuple[int, ...]) -> None:
        if node is target and at:
            found.append(at)
            return
        if id(node) in seen or not isinstance(node.value, list):
            return
        for index, item in enumerate(node.value):
            if isinstance(item, tuple):
                if str(item[0].value) != "<<":
                    walk(item[1], [*at, str(item[0].value)], (*seen, id(node)))
            else:
                walk(item, [*at, index], (*seen, id(node)))

    walk(root, [], ())
    return found


def _set(data: Any, at: list[Any], value: Any) -> None:
    for part in at[:-1]:
        data = data[part]
    data[at[-1]] = value


def _value_span(text: str, key_node: Any, value_node: Any) -> tuple[int, int]:
    """Offsets of the value as written after `key_node`: an alias `*x` where the composer gives the
    anchored node (which lies elsewhere), the point after the colon for an empty value."""
    after = key_node.end_mark.index
    if value_node.start_mark.index >= after and value_node.end_mark.index > value_node.start_mark.index:
        return value_node.start_mark.index, value_node.end_mark.index
    colon = text.find(":", after)
    colon = after if colon < 0 else colon + 1
    at = colon
    while at < len(text) and text[at] in " \t":
        at += 1
    alias = _ALIAS.match(text, at)
    if alias:
        return alias.start(), alias.end()
    return colon, colon


def _deep_end(text: str, node: Any) -> int:
    """Offset just after the last thing written in `node` (a block collection's own end mark lies
    past the comments and blank lines that follow it)."""
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    if isinstance(node, MappingNode) and not node.flow_style and node.value:
        last_key, last_value = node.value[-1]
        start, end = _value_span(text, last_key, last_value)
        if (start, end) == (last_value.start_mark.index, last_value.end_mark.index):
            return _deep_end(text, last_value)
        return end
    if isinstance(node, SequenceNode) and not node.flow_style and node.value:
        return _deep_end(text, node.value[-1])
    return node.end_mark.index


def _renderings(value: Any, style: str | None) -> list[str]:
    """The scalar as YAML, in the old value's quoting first, then plain, then double-quoted."""
    first = _render(value, style)
    return list(dict.fromkeys([first, _render(value, None), _render(value, '"')]))


def _render(value: Any, style: str | None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    if not isinstance(value, str):
        raise TypeError(f"only a scalar can be written back, not {type(value).__name__}")
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"':
        return json.dumps(value)  # a JSON string is a YAML double-quoted scalar
    return value


def _splice(text: str, start: int, end: int, new: str) -> str:
    return text[:start] + new + text[end:]


def _data(yaml: Any, text: str) -> Any:
    try:
        return plain(yaml.load(text))
    except Exception:  # noqa: BLE001 - a candidate that does not parse is simply not taken
        return _UNPARSED


_UNPARSED = object()


def _expected(yaml: Any, text: str, path: list[str], key: str, value: Any, same: Callable[[str, str], bool]) -> Any:
    """The file's data with the key set (under the spelling the file already uses)."""
    data = _data(yaml, text)
    node = data
    for part in path:
        name = next((k for k in node if k != "<<" and (k == part or same(k, part))), part)
        if node.get(name) is None:
            node[name] = {}
        node = node[name]
    written = next((k for k in node if k == key or same(k, key)), key)
    node[written] = value
    return data
