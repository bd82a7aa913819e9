"""Reading one config file (a layer) with ruamel's round-trip loader, keeping every position.

A load through the parse cache (load_config's) gives the document as Map/Seq: plain dicts and
lists that keep ruamel's positions (`.lc`), with plain scalars. Those pickle without ruamel, so
a cached config is read without importing it (~20 % of `config.validate`, issue 14)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from singkit.exceptions import ConfigError, Problem


@dataclass
class Layer:
    path: Path
    doc: Any  # ruamel CommentedMap (or None for an empty file)
    committed: bool  # the project's own file: secrets there must be `$env:` references


def yaml_rt():
    """A round-trip YAML instance that keeps comments, key order and quoting."""
    from ruamel.yaml import YAML

    from singkit.config.composer import BoundedComposer
    from singkit.config.yamlsafe import MAX_DEPTH

    yaml = YAML(typ="rt")
    yaml.Composer = BoundedComposer  # bounded nesting and alias expansion (hostile configs)
    yaml.max_depth = MAX_DEPTH
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a user's long lines on write-back
    return yaml


def read_layer(path: Path, committed: bool = False, cache: Path | None = None, raw: bytes | None = None) -> Layer:
    """One config file, parsed with ruamel's round-trip loader (positions kept for messages).

    `raw`: the file's bytes when the caller has read them already (singkit.config.yamlsafe.read_bytes).
    `cache`: a folder for parsed documents keyed by the file's content hash. Pure-Python
    ruamel parses ~4,000 lines a second; a cached parse loads in milliseconds.
    Raises ConfigError, one located line, for whatever the file holds or is (yamlsafe)."""
    from singkit.config.yamlsafe import decode, read_bytes

    if raw is None:
        raw = read_bytes(path)
    cached = _parsed(cache, raw)
    if cached is not None:
        return Layer(path, cached, committed)
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    text = decode(path, raw)
    try:
        doc = yaml_rt().load(text)
    except MarkedYAMLError as error:
        raise ConfigError(_yaml_problem(path, error, text)) from None
    except (YAMLError, RecursionError, ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
        # what ruamel raises without a mark for input it cannot represent: still the file's fault
        what = " ".join(str(error).split())[:200] or type(error).__name__
        raise ConfigError(Problem(path, 1, 1, f"invalid YAML: {what}")) from None
    if doc is not None and not hasattr(doc, "lc"):
        raise ConfigError(Problem(path, 1, 1, "a config file must be a mapping of sections (external-services, dockers, compute-targets, setups, general)"))
    if cache is not None and doc is not None:
        light = lightened(doc)
        if light is not None:  # else a value Map/Seq do not hold (a date, a tag): parsed each time
            _keep_parsed(cache, raw, light)
            doc = light
    return Layer(path, doc, committed)


class Positions:
    """ruamel's LineCol, kept: 0-based line and col of the node, and `data` key → [line, col,
    value line, value col] (a mapping) or index → [line, col] (a sequence)."""

    __slots__ = ("line", "col", "data")

    def __init__(self, line: int, col: int, data: dict[Any, list[int]]) -> None:
        self.line, self.col, self.data = line, col, data

    def __getstate__(self) -> tuple[int, int, dict[Any, list[int]]]:
        return self.line, self.col, self.data

    def __setstate__(self, state: tuple[int, int, dict[Any, list[int]]]) -> None:
        self.line, self.col, self.data = state


class Map(dict):
    """A mapping of a cached config document: a dict with its positions (`lc`)."""

    lc: Positions


class Seq(list):
    """A sequence of a cached config document: a list with its positions (`lc`)."""

    lc: Positions


def lightened(node: Any) -> Any:
    """`node` (a ruamel round-trip document) as Map/Seq/plain scalars — what every reader of a
    config document sees of it: items (merged `<<` keys included), values, positions; None if
    it holds a value of another kind (a timestamp, a tagged scalar), which stays ruamel's."""
    try:
        return _light(node)
    except _Heavy:
        return None


def _light(node: Any) -> Any:
    if isinstance(node, dict):
        out: Any = Map((_light(k), _light(v)) for k, v in node.items())
    elif isinstance(node, list):
        out = Seq(_light(v) for v in node)
    elif type(node).__name__ == "ScalarBoolean":  # an anchored boolean: ruamel's is an int, keep it so
        raise _Heavy
    elif node is None or isinstance(node, bool):
        return node
    elif isinstance(node, str):
        return str(node)
    elif isinstance(node, int):
        return int(node)
    elif isinstance(node, float):
        return float(node)
    else:
        raise _Heavy
    lc = getattr(node, "lc", None)
    out.lc = Positions(getattr(lc, "line", 0) or 0, getattr(lc, "col", 0) or 0,
                       {k: list(v) for k, v in (getattr(lc, "data", None) or {}).items()})
    return out


class _Heavy(Exception):
    """A value lightened() does not convert."""


def _parsed_path(cache: Path, raw: bytes) -> Path:
    import hashlib
    import importlib.util

    from singkit.config.yamlsafe import RULES

    # the rules are in the key: a parse cached before a bound existed must not skip that bound;
    # so is the installed ruamel (its file, found without importing it), which made the parse
    spec = importlib.util.find_spec("ruamel.yaml")
    try:
        made_by = os.stat(spec.origin) if spec and spec.origin else None
    except OSError:
        made_by = None
    version = f"{made_by.st_size}:{made_by.st_mtime_ns}" if made_by else "?"
    key = hashlib.sha256(f"map-seq-1\0{version}\0{RULES}\0".encode() + raw).hexdigest()
    return cache / f"{key[:32]}.pickle"


def _parsed(cache: Path | None, raw: bytes) -> Any:
    """A parse of exactly these bytes kept earlier in the user's own cache folder, or None."""
    if cache is None:
        return None
    import pickle

    try:
        return pickle.loads(_parsed_path(cache, raw).read_bytes())
    except Exception:  # noqa: BLE001 - missing, truncated or from another ruamel: parse again
        return None


def _keep_parsed(cache: Path | None, raw: bytes, doc: Any) -> None:
    if cache is None or doc is None:
        return
    import pickle

    from singkit.fsutil import atomic_write

    try:
        atomic_write(_parsed_path(cache, raw), pickle.dumps(doc, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:  # noqa: BLE001 - a cache: a read-only home only costs the next parse
        pass


def _yaml_problem(path: Path, error: Any, text: str) -> Problem:
    from ruamel.yaml.constructor import DuplicateKeyError

    mark = error.problem_mark or error.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    if isinstance(error, DuplicateKeyError):
        key = str(error.problem).split('"')[1] if '"' in str(error.problem) else "key"
        first = _first_occurrence(text, key, error.context_mark, mark)
        where = f" (first defined on line {first})" if first else ""
        return Problem(path, line, col, f"duplicate key `{key}`{where}; keep one of them")
    what = " ".join(str(error.problem or error.context or "invalid YAML").split())
    for jargon, plain_words in _PLAIN_YAML_ERRORS.items():
        if jargon in what:
            what = plain_words
            break
    return Problem(path, line, col, f"invalid YAML: {what}")


_PLAIN_YAML_ERRORS = {
    "expected <block end>": "this line's indentation does not line up with the keys above it",
    "mapping values are not allowed here": "unexpected `:` (quote a value that contains `: `)",
    "found character '\\t'": "a tab; indent with spaces",
    "expected ',' or ']'": "a `[` list that is never closed with `]`",
    "expected ',' or '}'": "a `{` mapping that is never closed with `}`",
    "found unexpected end of stream": "a quoted string that is never closed",
}


def _first_occurrence(text: str, key: str, start: Any, duplicate: Any) -> int | None:
    """Line of the earlier `key:` at the duplicate's own indentation, between the mapping's start and it."""
    if start is None or duplicate is None:
        return None
    lines = text.splitlines()
    for number in range(start.line, duplicate.line):
        text = lines[number]
        if text[duplicate.column:].startswith((f"{key}:", f'"{key}":', f"'{key}':")) and not text[:duplicate.column].strip():
            return number + 1
    return None


def position(node: Any, key: Any, *, of_value: bool = False) -> tuple[int, int]:
    """1-based (line, col) of `key` in a ruamel mapping, or of item `key` in a sequence."""
    lc = getattr(node, "lc", None)
    if lc is None or key not in (lc.data or {}):
        line, col = (getattr(lc, "line", 0), getattr(lc, "col", 0)) if lc is not None else (0, 0)
        return line + 1, col + 1
    data = lc.data[key]
    if len(data) >= 4 and of_value:
        return data[2] + 1, data[3] + 1
    return data[0] + 1, data[1] + 1


def locate(doc: Any, path: list[Any], *, of_value: bool = False) -> tuple[int, int]:
    """Position of the node at `path` in `doc`; falls back to its nearest ancestor."""
    node, where = doc, (1, 1)
    for part in path:
        try:
            child = node[part]
        except (KeyError, IndexError, TypeError):
            return where
        where = position(node, part, of_value=of_value)
        node = child
    return where


def plain(value: Any) -> Any:
    """Deep copy of a ruamel node as plain dicts, lists and scalars."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value
