"""`$env:NAME` references: resolved only at the moment a secret is used, never shown."""

from __future__ import annotations

import re
from collections.abc import Mapping

from singkit.exceptions import ConfigError, Problem

ENV_PREFIX = "$env:"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MASK = "******"


class EnvRef(str):
    """A config string of the form `$env:NAME` that remembers where it was written."""

    file: str = "<config>"
    line: int = 0
    col: int = 0

    @classmethod
    def at(cls, text: str, file: str, line: int, col: int) -> "EnvRef":
        ref = cls(text)
        ref.file, ref.line, ref.col = file, line, col
        return ref

    @property
    def variable(self) -> str:
        return self[len(ENV_PREFIX):]


def is_env_ref(value: object) -> bool:
    return isinstance(value, str) and value.startswith(ENV_PREFIX)


def bad_env_name(value: str) -> bool:
    return is_env_ref(value) and not _NAME.match(value[len(ENV_PREFIX):])


def resolve_secret(value: object, env_or_environ: object) -> str | None:
    """The secret a config value stands for: `$env:NAME` is looked up now; a literal is itself.

    A missing variable is a ConfigError pointing at the line that names it.
    """
    if value is None:
        return None
    environ: Mapping[str, str] = getattr(env_or_environ, "environ", env_or_environ)  # type: ignore[assignment]
    text = str(value)
    if not is_env_ref(text):
        return text
    name = text[len(ENV_PREFIX):]
    if name in environ and environ[name] != "":
        return environ[name]
    message = f"environment variable {name} is not set; export {name}=… (the value is never printed)"
    if not isinstance(value, EnvRef) or not value.line:  # kept in a job's spec, not read from a config file
        from singkit.exceptions import UsageError

        raise UsageError(message)
    raise ConfigError(Problem(value.file, value.line, value.col, message))


def masked(key: str, value: object, secret_keys: frozenset[str]) -> object:
    """How a value may be shown: references as written, literal secrets as ******.

    In an `env:` map, variables whose names say they are secrets are masked too."""
    from singkit.config.schema import is_secret_env

    if key == "env" and isinstance(value, dict):
        return {k: MASK if is_secret_env(k) and v is not None and not is_env_ref(v) else v for k, v in value.items()}
    if key in secret_keys and value is not None and not is_env_ref(value):
        return MASK
    return value
