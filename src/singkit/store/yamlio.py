"""Reading and writing the store's YAML files (job.yaml, the Azure ML job specs) in one place.

job.yaml is written as JSON-formatted YAML (dump_yaml): JSON with a key per line and each run
on a line of its own, which is YAML 1.2 (a subset of it), so it is still a YAML file people
read and any YAML 1.2 reader opens, and singkit reads it back with one orjson call (a 100-run
job.yaml: 0.07 ms, against 8.5 ms with libyaml, whose constructor is Python; issue 14). Data
JSON cannot hold exactly (a non-text key, NaN or infinity, a date, an int past 64 bits, a
tuple, a text YAML 1.1 would fold) is written as block YAML 1.1, as before. Reading: see
parse_yaml (JSON first for a text that starts with `{`, then YAML 1.2; YAML 1.1 for any other
text, as always). YAML 1.1 is read with libyaml's C loader when PyYAML is installed and
ruamel's pure safe loader otherwise; either way a file that does not parse is one SingkitError
line naming the file (and the line, when the parser knows it).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from singkit.exceptions import SingkitError

DAMAGED_HINT = "the store may be damaged: fix the file, or move its job folder aside"


# Characters orjson writes as they are but a YAML reader refuses or does not give back: C1
# controls, the Unicode line and paragraph separators (folded inside a quoted scalar by 1.1
# readers), the non-characters, and lone surrogates (orjson refuses them). NEL (\x85) is left
# to JSON: YAML 1.2 reads it as written, and the block YAML writer folds it (ruamel).
_NOT_AS_JSON = re.compile("[\x7f-\x84\x86-\x9f\u2028\u2029\ufffe\uffff\ud800-\udfff]")
_KEY_MAX = 1024  # YAML caps an implicit key at 1024 characters; JSON's keys are implicit keys
_INT_MIN, _INT_END = -(2**63), 2**64  # what orjson writes and reads (signed or unsigned 64-bit)


def dump_yaml(data: Mapping[str, Any]) -> str:
    """job.yaml's text for `data`: pretty-printed JSON when JSON holds it exactly (json_exact),
    else block YAML 1.1 (dump_block_yaml). Either way parse_yaml gives back `data`."""
    if json_exact(data):
        return _json_text(data)
    return dump_block_yaml(data)


def _json_text(data: Mapping[str, Any]) -> str:
    """`data` as JSON laid out for people: a key per line, and each item of a list or mapping
    under it on a line of its own (a sweep's run is one line: `grep job3.17 job.yaml` shows all of
    it, and a 10,000-run job.yaml is half the size of one indented all the way down)."""
    import json

    def one_line(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))

    lines = []
    for key, value in data.items():
        head = f"  {one_line(key)}: "
        if type(value) is list and value:
            items = ",\n".join(f"    {one_line(item)}" for item in value)
            lines.append(f"{head}[\n{items}\n  ]")
        elif type(value) is dict and value:
            items = ",\n".join(f"    {one_line(k)}: {one_line(v)}" for k, v in value.items())
            lines.append(f"{head}{{\n{items}\n  }}")
        else:
            lines.append(head + one_line(value))
    return "{\n" + ",\n".join(lines) + "\n}\n" if lines else "{}\n"


def json_exact(value: Any) -> bool:
    """Does JSON (orjson, and any YAML 1.2 reader) give back exactly `value`, a mapping? Only plain
    dicts with text keys, lists, text, bools, None, ints within 64 bits and finite floats do:
    types are checked exactly (a tuple, a str or dict subclass, an enum would come back as another
    type), as is every text (see _NOT_AS_JSON) and key length."""
    try:
        return type(value) is dict and _exact(value)
    except RecursionError:  # nested deeper than orjson writes anyway
        return False


def _exact(value: Any) -> bool:
    kind = type(value)
    if kind is str:
        return _NOT_AS_JSON.search(value) is None
    if kind is dict:
        return all(type(key) is str and len(key) <= _KEY_MAX and _NOT_AS_JSON.search(key) is None and _exact(item)
                   for key, item in value.items())
    if kind is list:
        return all(_exact(item) for item in value)
    if kind is bool or value is None:
        return True
    if kind is int:
        return _INT_MIN <= value < _INT_END
    if kind is float:
        return math.isfinite(value)
    return False


def dump_block_yaml(data: Mapping[str, Any]) -> str:
    """`data` as block YAML 1.1 (what job.yaml always was, and still is for data JSON cannot hold)."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    # Written as YAML 1.1 (with its `%YAML 1.1` header): strings that 1.1 readers (PyYAML, and so
    # parse_yaml and azure-ai-ml) take for other types — `no`, `on`, `1:20`, `1_000` — are
    # quoted, so a value reads back as what was written whichever parser reads it.
    yaml.version = (1, 1)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # keep the order the spec was built in
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()


def read_text(path: Path) -> str | None:
    """The file's text; None when it does not exist; SingkitError when it cannot be read."""
    from singkit.store.safe import NotAFile, StoreLink, UnsafeStoreContent, open_stored

    try:
        with open_stored(path) as fh:  # a job.yaml that is a link is not followed out of the store
            return fh.read().decode("utf-8")
    except StoreLink:
        raise UnsafeStoreContent(f"{path}: a symbolic link, not a file singkit wrote; not read ({DAMAGED_HINT})") from None
    except NotAFile:
        raise UnsafeStoreContent(f"{path}: not a regular file (a folder, FIFO or device); not read ({DAMAGED_HINT})") from None
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise SingkitError(f"{path}: not UTF-8 text; {DAMAGED_HINT}") from None
    except OSError as error:
        raise SingkitError(f"cannot read {path}: {error.strerror or error}") from None


def parse_yaml(text: str, path: Path | str) -> Any:
    """The data in `text` (read from `path`); SingkitError naming the file if it is not YAML.

    A text that starts with `{` is JSON-formatted YAML (what dump_yaml writes): read by orjson,
    or json where orjson would read an int past 64 bits as a float (a digit run of 19 or more).
    One JSON refuses (a comment or a trailing comma added by hand, YAML's flow style) is read as
    YAML 1.2, which JSON is a subset of: a hand-edited `1e-3` stays the number it was (a YAML 1.1
    reader would make it text). Any other text is YAML as it always was (1.1: PyYAML's C loader
    when installed, ruamel's pure one otherwise)."""
    json_like = text[:1] == "{"
    if json_like:
        import orjson

        from singkit.store.jsonexact import DIGITS, long_integer

        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
        else:
            if not long_integer(text.encode("utf-8", "surrogatepass").translate(DIGITS)):
                return data
            import json

            return json.loads(text)
    try:
        import yaml  # PyYAML (present through azure-ai-ml); optional
    except ImportError:
        yaml = None
    try:
        if yaml is not None and not json_like:
            return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        from ruamel.yaml import YAML

        return YAML(typ="safe", pure=True).load(text)
    except Exception as error:  # noqa: BLE001 - any parser error means the same to the user
        raise SingkitError(f"{_where(path, error)}: not valid YAML ({_problem(error)}); {DAMAGED_HINT}") from None


def load_mapping(path: Path, missing: str | None = None) -> dict[str, Any] | None:
    """A YAML file holding a mapping. A missing file: None, or SingkitError(`missing`) when given.
    Anything but a mapping is a SingkitError naming the file."""
    text = read_text(path)
    if text is None:
        if missing is not None:
            raise SingkitError(missing)
        return None
    data = parse_yaml(text, path)
    if not isinstance(data, dict):
        raise SingkitError(f"{path}: expected a mapping of keys, found {type(data).__name__}; {DAMAGED_HINT}")
    return data


def _where(path: Path | str, error: Exception) -> str:
    mark = getattr(error, "problem_mark", None)
    line = getattr(mark, "line", None)
    return f"{path}:{line + 1}" if isinstance(line, int) else str(path)


def _problem(error: Exception) -> str:
    """The parser's short reason (`mapping values are not allowed here`), not its multi-line report."""
    text = getattr(error, "problem", None) or next(iter(str(error).splitlines()), "") or type(error).__name__
    return " ".join(str(text).split())[:200]
