"""What only the merged config shows: references between records and complete service records.

Each Problem names the record it is in (`Problem.records`), so a command blocks only on the
records it uses (see singkit.configcheck).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from singkit.config import schema
from singkit.config.layers import locate
from singkit.config.validate import suggest
from singkit.exceptions import Problem

if TYPE_CHECKING:
    from singkit.config.model import Config


def reference_problems(cfg: "Config") -> list[Problem]:
    problems: list[Problem] = []

    def at(section: str, name: str, key: str | None, message: str) -> None:
        origin = cfg.where(section, name, key) if key else None
        origin = origin or cfg.where(section, name)
        record = ((section, name),) if section != "general" else ()
        if origin is None:  # a built-in record: no file to point at
            return
        problems.append(Problem(origin.file, origin.line, origin.col, message, record))

    def check(section: str, name: str, key: str, value: Any, choices: Any, what: str, extra: tuple = ()) -> None:
        if value is None or value in choices or value in extra:
            return
        at(section, name, key, f"`{key}: {value}` in {section}.{name} names no {what}{suggest(str(value), [*choices, *extra])}")

    for name, target in cfg.targets.items():
        check("compute-targets", name, "service", target.get("service"), cfg.services, "external service", schema.BUILTIN_SERVICES)
        check("compute-targets", name, "docker", target.get("docker"), cfg.dockers, "docker record")
        check("compute-targets", name, "setup", target.get("setup"), cfg.setups, "setup")
        service = cfg.services.get(target.get("service") or "")
        if service and service.get("type") not in ("singularity", "aml"):
            at("compute-targets", name, "service", f"`service: {target['service']}` in compute-targets.{name} is a "
               f"{service.get('type')} record; a target's service must be local, docker, or a singularity/aml record")
    problems += _service_problems(cfg)
    registries = {n: r for n, r in cfg.services.items() if r.get("type") == "registry"}
    for name, docker in cfg.dockers.items():
        if str(docker.get("image") or "").startswith("azureml:"):
            continue  # a registered Azure ML environment: no registry is involved
        check("dockers", name, "registry", docker.get("registry") or None, registries, "registry record (type: registry)")
    store = cfg.general.get("store")
    if store:
        storages = {n: r for n, r in cfg.services.items() if r.get("type") == "storage"}
        if store not in storages:
            at("general", "store", None, f"`store: {store}` in general names no storage record{suggest(str(store), storages)}")
    return problems


def _service_problems(cfg: "Config") -> list[Problem]:
    """A missing `type` or required key, or a key that belongs to another type."""
    problems = []
    for name, record in cfg.services.items():
        layers = cfg._defined_in[("external-services", name)]
        first = layers[0]
        line, col = locate(first.doc, [_find_key(first.doc, "external-services"), name])
        scope = (("external-services", name),)
        kind = record.get("type")
        if kind not in schema.SERVICE_FIELDS:
            if kind is None:
                problems.append(Problem(first.path, line, col, f"`external-services.{name}` needs `type` (one of: "
                                        f"{', '.join(schema.SERVICE_TYPES)})", scope))
            continue
        for key in schema.SERVICE_REQUIRED[kind]:
            if key not in record:
                problems.append(Problem(first.path, line, col, f"`external-services.{name}` (type {kind}) needs `{key}`", scope))
        allowed = schema.SERVICE_FIELDS[kind]
        for key in record:
            if key != "type" and key not in allowed:
                origin = cfg.where("external-services", name, key)
                problems.append(Problem(origin.file, origin.line, origin.key_col,
                                        f"unknown key `{key}` for a {kind} record{suggest(key, allowed)}", scope))
    return problems


def _find_key(node: Any, name: str) -> Any:
    return next((k for k in node if schema.canonical_key(str(k)) == name), name)
