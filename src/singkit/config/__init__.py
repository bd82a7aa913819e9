"""Layered YAML config: the project's configs/singkit.yaml, then the user's, then $SINGKIT_CONFIG.

Later layers win key by key within a record; every value remembers the file and line it came
from, and a write-back goes into the file that defines the record, comments kept.
"""

from __future__ import annotations

import os
from pathlib import Path

from singkit.config.layers import Layer, read_layer
from singkit.config.model import Config, Origin
from singkit.config.secrets import EnvRef, resolve_secret
from singkit.environment import Environment
from singkit.exceptions import ConfigError, Problem
from singkit.fsutil import sweep_temps

__all__ = ["Config", "ConfigError", "EnvRef", "Origin", "config_files", "load_config", "resolve_secret"]


def config_files(env: Environment) -> list[tuple[Path, bool]]:
    """The layers that exist, in order, each with whether it is the committed project file.

    A project or user config that exists as something other than a file (a folder, a FIFO, a
    dangling symlink, a symlink loop) is listed too: reading it says what it is, rather than
    a config silently going unread."""
    files = [(env.project_config, True), (env.user_config, False)]
    files += [(p, False) for p in env.extra_configs]
    return [(p, committed) for p, committed in files if os.path.lexists(p) or p in env.extra_configs]


def load_config(env: Environment) -> Config:
    """Read and check every layer against the schema.

    Raises one ConfigError listing every problem that concerns no single record (broken YAML,
    an unreadable file, an unknown section). Problems inside a record are kept in
    `Config.layer_problems`: singkit.configcheck decides which commands they block."""
    from singkit.config.yamlsafe import read_bytes

    files = config_files(env)
    raws: dict[Path, bytes | ConfigError] = {}
    for path, _committed in files:
        try:  # once, before anything else touches the file: it may be a FIFO or /dev/zero
            raws[path] = read_bytes(path)
        except ConfigError as error:
            raws[path] = error
    seal = _ValidatedSeal(env, files, raws)
    layers: list[Layer] = []
    problems: list[Problem] = []
    for path, committed in files:
        sweep_temps(path)  # what a write-back killed by kill -9 left beside the file (issue 16)
        raw = raws[path]
        if isinstance(raw, ConfigError):
            problems.extend(raw.problems)
            continue
        try:
            layer = read_layer(path, committed, cache=env.cache_dir / "parsed", raw=raw)
        except ConfigError as error:
            problems.extend(error.problems)
            continue
        if seal.problems is None:
            problems.extend(_check(layer))
        layers.append(layer)
    if seal.problems is not None:
        problems = seal.problems
    blocking = [p for p in problems if not p.records and not p.warning]
    if blocking:
        raise ConfigError(blocking)
    config = Config(layers)
    config.layer_problems = problems
    config.project_root = env.project_root
    seal.record(problems)
    return config


def _check(layer: Layer) -> list[Problem]:
    from singkit.config.validate import check_layer

    return check_layer(layer)


# the modules whose rules decide a layer's problems
CHECKERS = tuple(Path(__file__).with_name(n) for n in ("validate.py", "secrets.py", "schema.py", "layers.py"))


class _ValidatedSeal:
    """Remembers (in the user's cache folder) the schema problems of the exact layer contents
    last checked, so an unchanged config skips loading jsonschema — most of a command's start-up."""

    def __init__(self, env: Environment, files: list[tuple[Path, bool]], raws: dict[Path, bytes | ConfigError]):
        import hashlib

        import json

        from singkit import __version__
        from singkit.config.schema import json_schema

        digest = hashlib.sha256(__version__.encode() + json.dumps(json_schema(), sort_keys=True).encode())
        for checker in CHECKERS:  # a changed rule (an editable install between versions) is a new seal
            digest.update(checker.read_bytes())
        for path, committed in files:
            digest.update(f"\0{path}\0{committed}\0".encode())
            raw = raws.get(path)
            digest.update(raw if isinstance(raw, bytes) else b"<unreadable>")
        self.path = env.cache_dir / "validated" / digest.hexdigest()
        self.problems: list[Problem] | None = self._read()

    def _read(self) -> list[Problem] | None:
        import json

        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError:
            return None
        try:  # an empty seal (singkit 0.1) means: no problems
            return [Problem(d["file"], d["line"], d["col"], d["message"], tuple(tuple(r) for r in d["records"]),
                            d["warning"]) for d in (json.loads(text) if text.strip() else [])]
        except (ValueError, KeyError, TypeError):
            return None

    def record(self, problems: list[Problem]) -> None:
        if self.problems is not None:
            return
        import json

        from singkit.fsutil import atomic_write

        payload = [{"file": str(p.file), "line": p.line, "col": p.col, "message": p.message,
                    "records": [list(r) for r in p.records], "warning": p.warning} for p in problems]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, json.dumps(payload))
        except OSError:
            pass  # a read-only home only costs the next start-up the full check
