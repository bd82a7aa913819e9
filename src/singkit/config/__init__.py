"""Layered YAML config: the project's configs/singkit.yaml, then the user's, then $SINGKIT_CONFIG.

Later layers win key by key within a record; every value remembers the file and line it came
from, and a write-back goes into the file that defines the record, comments kept.
"""

from __future__ import annotations

from pathlib import Path

from singkit.config.layers import Layer, read_layer
from singkit.config.model import Config, Origin
from singkit.config.secrets import EnvRef, resolve_secret
from singkit.environment import Environment
from singkit.exceptions import ConfigError, Problem

__all__ = ["Config", "ConfigError", "EnvRef", "Origin", "config_files", "load_config", "resolve_secret"]


def config_files(env: Environment) -> list[tuple[Path, bool]]:
    """The layers that exist, in order, each with whether it is the committed project file."""
    files = [(env.project_config, True), (env.user_config, False)]
    files += [(p, False) for p in env.extra_configs]
    return [(p, committed) for p, committed in files if p.is_file() or p in env.extra_configs]


def load_config(env: Environment) -> Config:
    """Read and check every layer; raise one ConfigError that lists every problem found."""
    files = config_files(env)
    seal = _ValidatedSeal(env, files)
    layers: list[Layer] = []
    problems: list[Problem] = []
    for path, committed in files:
        try:
            layer = read_layer(path, committed)
        except ConfigError as error:
            problems.extend(error.problems)
            continue
        layer_problems = [] if seal.valid else _check(layer)
        problems.extend(layer_problems)
        if not layer_problems:
            layers.append(layer)
    if problems:
        raise ConfigError(problems)
    config = Config(layers)
    problems = config.reference_problems()
    if problems:
        raise ConfigError(problems)
    seal.record()
    return config


def _check(layer: Layer) -> list[Problem]:
    from singkit.config.validate import check_layer

    return check_layer(layer)


class _ValidatedSeal:
    """Remembers (in the user's cache folder) the exact layer contents that last passed the
    schema, so an unchanged config skips loading jsonschema — most of a command's start-up."""

    def __init__(self, env: Environment, files: list[tuple[Path, bool]]):
        import hashlib

        import json

        from singkit import __version__
        from singkit.config.schema import json_schema

        digest = hashlib.sha256(__version__.encode() + json.dumps(json_schema(), sort_keys=True).encode())
        for path, committed in files:
            digest.update(f"\0{path}\0{committed}\0".encode())
            try:
                digest.update(path.read_bytes())
            except OSError:
                digest.update(b"<unreadable>")
        cache = env.environ.get("XDG_CACHE_HOME") or str(Path(env.environ.get("HOME", "~")) / ".cache")
        self.path = Path(cache).expanduser() / "singkit" / "validated" / digest.hexdigest()
        self.valid = self.path.exists()

    def record(self) -> None:
        if not self.valid:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.path.touch()
            except OSError:
                pass  # a read-only home only costs the next start-up the full check
