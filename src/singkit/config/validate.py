"""Checking one layer against the schema, and the merged config's cross-references.

jsonschema finds the mistakes; this module turns each into one line that says where it is,
what is wrong and what would be right.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from typing import Any

from singkit.config import schema
from singkit.config.layers import Layer, locate
from singkit.config.secrets import bad_env_name, is_env_ref
from singkit.exceptions import Problem
from singkit.suggest import did_you_mean as suggest

_TYPE_NAMES = {
    "string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
    "array": "a list", "object": "a mapping", "null": "empty",
}


@functools.lru_cache(maxsize=1)
def _validator():
    from jsonschema import Draft202012Validator, validators

    # JSON Schema counts 2.0 (and YAML's 1e9, a float) as an integer; a node count written as a
    # float is a slip, and int(1e300) is no count. A number must be finite: `.nan` passes every
    # `minimum` and `maximum` (comparisons with NaN are false), `.inf` no job can use.
    checker = Draft202012Validator.TYPE_CHECKER.redefine_many({"integer": _integer, "number": _finite})
    return validators.extend(Draft202012Validator, type_checker=checker)(schema.json_schema())


def _integer(_checker: Any, value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(_checker: Any, value: Any) -> bool:
    import math

    return _integer(_checker, value) or isinstance(value, float) and math.isfinite(value)


# enums whose readers compare without regard to case (singkit.singularity.aisc lower-cases them)
CASE_FREE = frozenset({"sla", "priority"})


def _where(path: list[Any]) -> str:
    return ".".join(str(p) for p in path) or "the top level"


def check_layer(layer: Layer) -> list[Problem]:
    if layer.doc is None:
        return []
    problems: list[Problem] = []
    for error in _validator().iter_errors(_as_json(layer.doc)):
        scope = record_of(list(error.absolute_path))
        problems.extend(dataclasses.replace(p, records=scope) for p in _explain(layer, error))
    problems.extend(_check_secrets(layer))
    problems.extend(_check_spellings(layer))
    # one line per value: `nodes: 1e9` is not an integer AND above the cap; the first said is enough
    first: dict[tuple[int, int], Problem] = {}
    for problem in problems:
        first.setdefault((problem.line, problem.col), problem)
    return sorted(first.values(), key=lambda p: (p.line, p.col, p.message))


def _check_spellings(layer: Layer) -> list[Problem]:
    """One key written in both spellings (`vm-size` and XT's `vm_size`) in one mapping: the
    later would silently win, so neither does."""
    out: list[Problem] = []

    def check(node: Any, path: list[Any]) -> None:
        seen: dict[str, Any] = {}
        for key in node:
            canonical = schema.canonical_key(str(key))
            if canonical in seen:
                line, col = locate(layer.doc, [*path, key])
                out.append(Problem(layer.path, line, col, f"`{key}` and `{seen[canonical]}` are one key (XT's spelling and "
                                   f"singkit's) in {_where(path)}; keep one", record_of([*path, key])))
            else:
                seen[canonical] = key

    doc = layer.doc
    if not isinstance(doc, dict):
        return out
    check(doc, [])
    for section, body in doc.items():
        if not isinstance(body, dict):
            continue
        if schema.canonical_key(str(section)) == "general":
            check(body, [section])
            continue
        for name, record in body.items():
            if isinstance(record, dict):
                check(record, [section, name])
    return out


def record_of(path: list[Any]) -> tuple[tuple[str, str], ...]:
    """The record a problem at `path` is in (none for a whole section or the top level). A key
    of `general` is a record of its own, (`general`, key), so a bad `credential:` blocks only
    the commands that use it; `general` as a whole (an unknown key in it) blocks nothing."""
    section = schema.canonical_key(str(path[0])) if path else ""
    if section == "general":
        return (("general", schema.canonical_key(str(path[1])) if len(path) > 1 else ""),)
    if len(path) < 2:
        return ()
    return ((section, str(path[1])),) if section in schema.SECTIONS else ()


def _as_json(node: Any) -> Any:
    # jsonschema wants plain types; ruamel's scalars subclass them, which it already accepts,
    # but its timestamp and ordered types do not, so convert.
    from singkit.config.layers import plain

    return plain(node)


def _explain(layer: Layer, error: Any) -> list[Problem]:
    path = list(error.absolute_path)
    kind = error.validator
    if kind == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        extras = [k for k in error.instance if k not in allowed]
        out = []
        for key in extras:
            line, col = locate(layer.doc, [*path, key])
            what = f"unknown section `{key}`" if not path else f"unknown key `{key}` in {_where(path)}"
            out.append(Problem(layer.path, line, col, f"{what}{suggest(key, _visible(allowed))}"))
        return out
    line, col = locate(layer.doc, path, of_value=True)
    key = str(path[-1]) if path else "config"
    if kind == "enum":
        if key in CASE_FREE and str(error.instance).lower() in {str(v).lower() for v in error.validator_value}:
            return []  # `sla: Premium` is Azure's own spelling (slaTier), and XT's
        values = [str(v) for v in error.validator_value]
        close = difflib.get_close_matches(str(error.instance).lower(), values, n=1, cutoff=0.7)
        hint = f"did you mean `{close[0]}`?" if close else "expected one of: " + ", ".join(f"`{v}`" for v in values)
        return [Problem(layer.path, line, col, f"`{error.instance}` is not a valid {key}; {hint}")]
    if kind == "const":
        return []  # only the `if` of a service-type branch; the enum reports the real mistake
    if kind == "type":
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        want = " or ".join(_TYPE_NAMES.get(t, t) for t in expected if t != "null") or "empty"
        got = _describe(error.instance)
        return [Problem(layer.path, line, col, f"`{_where(path)}` must be {want}, not {got}")]
    if kind == "required":
        return []  # a later layer may add the key: required keys are checked on the merged config
    if kind == "pattern" and key in ("sha256", "base-sha256"):
        return [Problem(layer.path, line, col, f"`{key}` must be `sha256:` followed by 64 hex digits, not `{error.instance}`")]
    if kind == "minimum":
        return [Problem(layer.path, line, col, f"`{key}` must be at least {error.validator_value}, not {error.instance}")]
    if kind == "maximum":
        return [Problem(layer.path, line, col, f"`{key}` must be at most {error.validator_value:,}, not {error.instance:,}"
                        " (singkit's cap: no Singularity or Azure ML job comes near it)")]
    return [Problem(layer.path, line, col, f"`{_where(path)}`: {error.message}")]


def _visible(keys: list[str]) -> list[str]:
    # suggest the canonical spelling, not XT's aliases
    return [k for k in keys if k not in schema.ALIASES and k not in schema.SECTION_ALIASES] or keys


def _describe(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no") or _numeric(value):
        return f'the quoted text `"{value}"` (drop the quotes)'
    return f"`{value}`"


def _numeric(value: Any) -> bool:
    try:
        return isinstance(value, str) and (float(value) or True)
    except ValueError:
        return False


def _check_secrets(layer: Layer) -> list[Problem]:
    out: list[Problem] = []
    for path, key, value in _walk(layer.doc, []):
        canonical = schema.canonical_key(str(key))
        if not isinstance(value, str):
            continue
        line, col = locate(layer.doc, [*path, key], of_value=True)
        if ENV_MARK in value and canonical in IMAGE_KEYS:
            out.append(Problem(layer.path, line, col, f"`{key}: {value}`: an image reference cannot come from `$env:` "
                               "(it is written into Dockerfiles, job specs and the pinned config as is); write the "
                               "image itself", record_of([*path, key])))
        elif bad_env_name(value):
            out.append(Problem(layer.path, line, col, f"`{value}` is not a valid reference; write `$env:NAME` with NAME made of letters, digits and _", record_of([*path, key])))
        elif ENV_MARK in value and not is_env_ref(value) and canonical not in FREE_TEXT_KEYS:
            out.append(Problem(layer.path, line, col, f"`{key}: {value}`: a `$env:NAME` reference must be the whole value "
                               "(nothing is substituted inside text); write `$env:NAME` alone and put the whole value "
                               "in NAME", record_of([*path, key])))
        elif value.strip() == "$vault":
            out.append(Problem(layer.path, line, col, "`$vault` is XT's key vault, which singkit does not read; write `$env:NAME` (config.import-xt converts these)", record_of([*path, key])))
        elif layer.committed and not is_env_ref(value) and _holds_secret(path, key, canonical):
            out.append(Problem(layer.path, line, col,
                               f"`{key}` holds a literal secret in a committed file; write `$env:NAME` and export NAME, or move it to ~/.config/singkit/config.yaml",
                               record_of([*path, key])))
    return out


ENV_MARK = "$env:"
# keys whose value names an image: never from the environment (the name is not secret, and a
# wrap pins its digest back into the config file)
IMAGE_KEYS = frozenset({"image", "installer-image", "validator-image", "wrapped-image", "sha256", "base-sha256"})
# keys whose value is text for people or a shell, where `$env:` may be just characters
FREE_TEXT_KEYS = frozenset({"description", "activate", "default-command"})


def _holds_secret(path: list[Any], key: Any, canonical: str) -> bool:
    in_env_map = bool(path) and schema.canonical_key(str(path[-1])) == "env"
    return schema.is_secret_env(str(key)) if in_env_map else canonical in schema.SECRET_KEYS


def _walk(node: Any, path: list[Any]):
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            yield from _walk(value, [*path, key])
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, [*path, index])
