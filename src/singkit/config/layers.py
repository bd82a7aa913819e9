"""Reading one config file (a layer) with ruamel's round-trip loader, keeping every position."""

from __future__ import annotations

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

    from singkit.config.yamlsafe import MAX_DEPTH, BoundedComposer

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
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    from singkit.config.yamlsafe import decode, read_bytes

    if raw is None:
        raw = read_bytes(path)
    cached = _parsed(cache, raw)
    if cached is not None:
        return Layer(path, cached, committed)
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
    _keep_parsed(cache, raw, doc)
    return Layer(path, doc, committed)


def _parsed_path(cache: Path, raw: bytes) -> Path:
    import hashlib

    import ruamel.yaml

    from singkit.config.yamlsafe import RULES

    # the rules are in the key: a parse cached before a bound existed must not skip that bound
    key = hashlib.sha256(f"{ruamel.yaml.__version__}\0{RULES}\0".encode() + raw).hexdigest()
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
