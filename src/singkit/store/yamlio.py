"""Reading and writing the store's YAML files (job.yaml, the Azure ML job specs) in one place.

Reading uses libyaml's C loader when PyYAML is installed (a job with 10,000 runs parses in a
blink) and ruamel's pure safe loader otherwise; either way a file that does not parse is one
SingkitError line naming the file (and the line, when the parser knows it).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from singkit.exceptions import SingkitError

DAMAGED_HINT = "the store may be damaged: fix the file, or move its job folder aside"


def dump_yaml(data: Mapping[str, Any]) -> str:
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
    """The data in `text` (read from `path`); SingkitError naming the file if it is not YAML."""
    try:
        import yaml  # PyYAML (present through azure-ai-ml); optional
    except ImportError:
        yaml = None
    try:
        if yaml is not None:
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
