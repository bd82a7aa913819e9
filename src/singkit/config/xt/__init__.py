"""Turning XT configs (2022 or 2024 spellings; XT's factory config and yours) into one singkit config.

`import_xt([factory.yaml, mine.yaml])` merges the files as XT merges its factory config with the
user's (xtlib 0.0.342 helpers/xt_config.py `_merge_configs`): section by section, a later file's
record replaces the earlier file's record of the same name WHOLE ("entries in a dict like
compute-targets should be overwritten in whole (not prop by prop)"), and a later `general:` key
replaces the earlier one. Then every record is converted (singkit.config.xt.records); every XT
key that is not carried over is listed with the reason, in the notes and at the top of the file.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from singkit.config.layers import plain, read_layer
from singkit.config.xt.records import NODES_MODES, Converter, env_name

__all__ = ["NODES_MODES", "XtImport", "env_name", "import_xt", "merge"]


@dataclass
class XtImport:
    """What an import produced: the config text and what the user must know about it."""

    text: str                                              # the singkit config, YAML with a header
    variables: list[str] = field(default_factory=list)     # env vars the user must export
    skipped: list[str] = field(default_factory=list)       # "xt.path: why" for every key not carried
    notes: list[str] = field(default_factory=list)         # what was carried with a changed spelling or meaning
    commands: list[str] = field(default_factory=list)      # submit commands that run as XT did (--xt-nodes=runs)
    config: dict[str, Any] = field(default_factory=dict)   # the singkit sections `text` holds, as plain data


def merge(docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """XT's merge of config files, first to last (see the module docstring); inputs are not changed."""
    merged: dict[str, Any] = {}
    for doc in docs:
        for section, body in (doc or {}).items():
            if isinstance(body, dict) and isinstance(merged.get(section), dict):
                merged[section].update(copy.deepcopy(body))  # record by record, each replaced whole
            else:
                merged[section] = copy.deepcopy(body)
    return merged


def import_xt(paths: Path | Sequence[Path], nodes: str = "job") -> XtImport:
    """Convert XT config files (merged in order) into a singkit config.

    `nodes`: "job" keeps `nodes: N` (one N-node job, with a note), "runs" writes nodes: 1 and the
    `job.submit --runs=N` command that runs N independent runs, as XT did. Raises ConfigError
    (file:line:col) for a file that is not YAML, UsageError for an unknown `nodes` mode."""
    from singkit.exceptions import UsageError

    if nodes not in NODES_MODES:
        raise UsageError(f"--xt-nodes={nodes}: give one of {', '.join(NODES_MODES)}")
    files = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not files:
        raise UsageError("name at least one XT config file (e.g. xt_config.yaml)")
    docs = [load(path) for path in files]
    converter = Converter(merge(docs), nodes)
    converter.run()
    text = render(converter, files)
    return XtImport(text, converter.variables, converter.skipped, converter.notes, converter.commands, converter.out)


def load(path: Path) -> dict[str, Any]:
    """An XT config file as plain data, read as XT reads it: PyYAML's safe loader (xtlib
    helpers/xt_config.py `read_config`: yaml.safe_load, YAML 1.1), libyaml's C version when
    present (PyYAML comes with azure-ai-ml; a 300-target file then loads in a few milliseconds),
    else ruamel's safe loader. UsageError for a missing file, ConfigError (file:line:col) for
    text that is not YAML or not a mapping."""
    from singkit.exceptions import ConfigError, Problem, UsageError

    if path.exists() and not path.is_file():  # a folder, a fifo nobody writes (reading it would hang), a device
        raise UsageError(f"{path} is not a regular file; give the XT config file (a YAML file)")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except UnicodeDecodeError as error:  # a binary file, or another encoding: say where, as for YAML
        head = error.object[:error.start]
        line, col = head.count(b"\n") + 1, error.start - (head.rfind(b"\n") + 1) + 1
        raise ConfigError(Problem(path, line, col, f"not UTF-8 text (byte 0x{error.object[error.start]:02x}); "
                                  "an XT config is a YAML text file")) from None
    except OSError as error:
        raise UsageError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None
    try:
        import yaml
    except ImportError:  # PyYAML is azure-ai-ml's dependency, not singkit's own
        yaml = None
    try:
        if yaml is not None:
            doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        else:
            doc = plain(read_layer(path).doc)
    except ConfigError:
        raise
    except Exception as error:  # noqa: BLE001 - PyYAML's and ruamel's parse errors alike
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        what = " ".join(str(getattr(error, "problem", None) or error).split())
        raise ConfigError(Problem(path, line, col, f"not valid YAML: {what}; an XT config is a YAML mapping of sections")) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(Problem(path, 1, 1, "an XT config is a mapping of sections (external-services, compute-targets, ...)"))
    return doc


def render(converter: Converter, sources: Sequence[Path]) -> str:
    """The singkit config as YAML: a header (sources, variables, every key not carried and why),
    then the sections, with end-of-line comments where a value changed meaning."""
    from singkit.config.xt.emit import emit

    header = ["# yaml-language-server: $schema=singkit.schema.json",
              f"# Converted from the XT config{'s' if len(sources) > 1 else ''} {', '.join(p.name for p in sources)} "
              "by `invoke config.import-xt` (later files win, record by record, as in XT)."]
    if converter.variables:
        header.append("# Secrets are read from the environment; export: " + ", ".join(converter.variables))
    if converter.commands:
        header.append("# Submit as XT did: " + "; ".join(converter.commands))
    if converter.skipped:
        header.append("# Not carried over from XT (and why):")
        header += [f"#   {line}" for line in converter.skipped]
    return "\n".join(header) + "\n\n" + emit(converter.out, converter.comments)
