"""Turning an XT config (2022 or 2024 spellings) into a singkit config file.

What carries over: external-services (singularity, aml, registry, storage), dockers,
compute-targets and setups. `$vault` secrets become `$env:` references, and the caller is
told which variables to export. XT records singkit has no use for (philly, batch, mongo, …)
are left out and listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from singkit.config import schema
from singkit.config.layers import plain, read_layer

# XT service type → singkit's; any other XT type is left out.
_SERVICE_TYPES = {t: t for t in schema.SERVICE_TYPES} | {"vc": "virtual_cluster", "virtual-cluster": "virtual_cluster"}


# XT `general` keys that mean the same in singkit.
_GENERAL_CARRIED = {"experiment", "primary-metric", "maximize", "step-name"}


@dataclass
class XtImport:
    text: str  # the singkit config, as YAML with a header
    variables: list[str] = field(default_factory=list)  # env vars the user must export
    skipped: list[str] = field(default_factory=list)  # what did not carry over, and why


def env_name(record: str, key: str) -> str:
    return "SINGKIT_" + re.sub(r"[^A-Za-z0-9]+", "_", f"{record}_{key}").upper().strip("_")


def import_xt(path: Path) -> XtImport:
    doc = plain(read_layer(path).doc or {})
    out: dict[str, Any] = {}
    variables: list[str] = []
    skipped: list[str] = []

    def secret(record: str, key: str, value: Any) -> Any:
        if isinstance(value, str) and value.strip().startswith("$vault"):
            name = env_name(record, key)
            variables.append(name)
            return f"$env:{name}"
        if key in schema.SECRET_KEYS and isinstance(value, str) and not value.startswith("$env:"):
            name = env_name(record, key)
            variables.append(name)
            skipped.append(f"external-services.{record}.{key}: a literal secret was replaced by $env:{name}")
            return f"$env:{name}"
        return value

    services: dict[str, Any] = {}
    for name, record in (doc.get("external-services") or {}).items():
        kind = str((record or {}).get("type", "")).lower()
        if kind not in _SERVICE_TYPES:
            skipped.append(f"external-services.{name}: type `{kind}` has no singkit counterpart")
            continue
        kind = _SERVICE_TYPES[kind]
        allowed = schema.SERVICE_FIELDS[kind]
        converted: dict[str, Any] = {"type": kind}
        for key, value in record.items():
            canonical = schema.canonical_key(key)
            if canonical == "type":
                continue
            if canonical == "provider" and kind == "storage":
                continue
            if kind == "storage" and canonical in ("key", "storage-key"):
                canonical = "connection-string"
            if canonical not in allowed:
                skipped.append(f"external-services.{name}.{key}: not used by singkit")
                continue
            converted[canonical] = _typed(allowed[canonical], secret(name, canonical, value))
        if kind == "storage":
            converted.setdefault("container", "singkit")
        services[name] = converted
    if services:
        out["external-services"] = services

    out.update(_section(doc, "dockers", schema.DOCKER_FIELDS, skipped, _docker_fix))
    targets = _section(doc, "compute-targets", schema.TARGET_FIELDS, skipped, _target_fix).get("compute-targets", {})
    runnable = {n for n, r in services.items() if r["type"] in ("singularity", "aml")} | set(schema.BUILTIN_SERVICES)
    for name in [n for n, t in targets.items() if t.get("service") not in runnable]:
        skipped.append(f"compute-targets.{name}: its service `{targets.pop(name).get('service')}` is not a Singularity/AML workspace")
    if targets:
        out["compute-targets"] = targets
    out.update(_section(doc, "setups", schema.SETUP_FIELDS, skipped, _setup_fix))
    general = {k: v for k, v in (doc.get("general") or {}).items() if schema.canonical_key(k) in _GENERAL_CARRIED}
    for key in (doc.get("general") or {}):
        if key not in general:
            skipped.append(f"general.{key}: not used by singkit")
    if general:
        out["general"] = {schema.canonical_key(k): v for k, v in general.items()}
    return XtImport(_render(out, path, variables), sorted(set(variables)), skipped)


def _section(doc: dict, section: str, fields: dict, skipped: list[str], fix) -> dict[str, Any]:
    raw = doc.get(section) or doc.get(section.replace("-", "_")) or {}
    records: dict[str, Any] = {}
    for name, record in raw.items():
        converted: dict[str, Any] = {}
        for key, value in (record or {}).items():
            canonical = schema.canonical_key(key)
            fixed = fix(canonical, value)
            if fixed is None:
                if canonical in fields:
                    continue  # an empty XT value: leave it out
                skipped.append(f"{section}.{name}.{key}: not used by singkit")
                continue
            canonical, value = fixed
            if canonical not in fields:
                skipped.append(f"{section}.{name}.{key}: not used by singkit")
                continue
            converted[canonical] = _typed(fields[canonical], value)
        records[name] = converted
    return {section: records} if records else {}


def _typed(field: dict[str, Any], value: Any) -> Any:
    """XT often quotes booleans and numbers ("true", "1"); give them the type the schema wants."""
    if field.get("type") == "boolean" and isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    if field.get("type") == "integer" and isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


def _docker_fix(key: str, value: Any) -> tuple[str, Any] | None:
    if value in ("", None):
        return None
    if key == "sha256" and isinstance(value, str) and not value.startswith("sha256:"):
        return key, f"sha256:{value}"
    if key == "sing-wrap":
        return key, str(value).lower() in ("true", "1", "yes")
    return key, value


def _target_fix(key: str, value: Any) -> tuple[str, Any] | None:
    if value in ("", None):
        return None
    if key == "locations":  # XT 2024: a list of locations; singkit takes the first as `location`
        values = value if isinstance(value, list) else [value]
        return ("location", values[0]) if len(values) == 1 else ("locations", values)
    if key == "sla" or key == "priority":
        return key, str(value).lower()
    if key == "nodes":
        return key, int(value)
    return key, value


def _setup_fix(key: str, value: Any) -> tuple[str, Any] | None:
    if value in ("", None, []):
        return None
    if key in ("pip", "conda"):
        items = value if isinstance(value, list) else str(value).split()
        return key, [str(v) for v in items]
    return key, value


def _render(out: dict[str, Any], source: Path, variables: list[str]) -> str:
    from io import StringIO

    from singkit.config.layers import yaml_rt

    header = [
        "# yaml-language-server: $schema=singkit.schema.json",
        f"# Converted from the XT config {source.name} by `invoke config.import-xt`.",
    ]
    if variables:
        header.append("# Secrets are read from the environment; export: " + ", ".join(sorted(set(variables))))
    yaml = yaml_rt()
    yaml.indent(mapping=2, sequence=4, offset=2)
    buffer = StringIO()
    yaml.dump(out, buffer)
    return "\n".join(header) + "\n\n" + buffer.getvalue()
