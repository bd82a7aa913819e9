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
    from singkit.config.validate import check_layer

    layers: list[Layer] = []
    problems: list[Problem] = []
    for path, committed in config_files(env):
        try:
            layer = read_layer(path, committed)
        except ConfigError as error:
            problems.extend(error.problems)
            continue
        layer_problems = check_layer(layer)
        problems.extend(layer_problems)
        if not layer_problems:
            layers.append(layer)
    if problems:
        raise ConfigError(problems)
    config = Config(layers)
    problems = config.reference_problems()
    if problems:
        raise ConfigError(problems)
    return config
