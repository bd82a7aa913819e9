"""What only the merged config shows: references between records and complete service records.

Each Problem names the record it is in (`Problem.records`), so a command blocks only on the
records it uses (see singkit.configcheck).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from singkit.backendkinds import BUILTIN_SERVICES, REMOTE_SERVICES
from singkit.config import schema
from singkit.config.layers import locate
from singkit.config.model import BUILTIN
from singkit.exceptions import Problem
from singkit.suggest import did_you_mean as suggest

if TYPE_CHECKING:
    from singkit.config.model import Config


def reference_problems(cfg: "Config") -> list[Problem]:
    problems: list[Problem] = []

    def at(section: str, name: str, key: str | None, message: str, warning: bool = False) -> None:
        origin = cfg.where(section, name, key) if key else None
        if origin is None or origin.file == BUILTIN:
            origin = cfg.where(section, name)
        record = ((section, name),) if section != "general" else ()
        if origin is None or origin.file == BUILTIN:  # a built-in record as shipped: no file to point at
            return
        problems.append(Problem(origin.file, origin.line, origin.col, message, record, warning=warning))

    def check(section: str, name: str, key: str, value: Any, choices: Any, what: str, extra: tuple = ()) -> None:
        if value is None or not isinstance(value, str) or value in choices or value in extra:
            return  # a value of the wrong type is the schema check's problem, reported once there
        at(section, name, key, f"`{key}: {value}` in {section}.{name} names no {what}{suggest(str(value), [*choices, *extra])}")

    for name, target in cfg.targets.items():
        service_name = target.get("service")
        if isinstance(service_name, str) and service_name not in cfg.services and service_name not in BUILTIN_SERVICES:
            usable = [*BUILTIN_SERVICES, *(n for n, r in cfg.services.items() if r.get("type") in REMOTE_SERVICES)]
            at("compute-targets", name, "service", f"`service: {service_name}` in compute-targets.{name} names no external "
               f"service{suggest(str(service_name), usable)}")
        check("compute-targets", name, "docker", target.get("docker"), cfg.dockers, "docker record")
        check("compute-targets", name, "setup", target.get("setup"), cfg.setups, "setup")
        service = cfg.services.get(service_name) if isinstance(service_name, str) and service_name else None
        if service and service.get("type") not in REMOTE_SERVICES:
            at("compute-targets", name, "service", f"`service: {service_name}` in compute-targets.{name} is a "
               f"{service.get('type')} record; a target's service must be local, docker, or a singularity/aml record")
    _target_problems(cfg, at)
    _code_dir_problems(cfg, at)
    problems += _service_problems(cfg)
    from singkit.mounts import problems as data_problems  # inputs/outputs and datastores

    problems += data_problems(cfg)
    from singkit.config.pipcheck import pip_problems  # setup pip entries pip would refuse

    problems += pip_problems(cfg)
    registries = {n: r for n, r in cfg.services.items() if r.get("type") == "registry"}
    for name, docker in cfg.dockers.items():
        if str(docker.get("image") or "").startswith("azureml:"):
            continue  # a registered Azure ML environment: no registry is involved
        check("dockers", name, "registry", docker.get("registry") or None, registries, "registry record (type: registry)")
    for name, docker in cfg.dockers.items():
        if not str(docker.get("image") or "").strip():
            at("dockers", name, "image", f"`dockers.{name}` needs `image:`: the image to run, as `name:tag` "
               "(e.g. `pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime`) or a registered Azure ML "
               "environment (`azureml:NAME:VERSION`)")
    store = cfg.general.get("store")
    if isinstance(store, str) and store:
        storages = {n: r for n, r in cfg.services.items() if r.get("type") == "storage"}
        if store not in storages:
            at("general", "store", None, f"`store: {store}` in general names no storage record{suggest(str(store), storages)}")
    return problems


# Keys that only mean something to a cloud target: without `service:` the target runs here.
CLOUD_KEYS = ("compute", "vm-size", "sla", "location", "locations", "ai-super-computer", "low-pri")


def per_node_problem(value: Any) -> str | None:
    """What is wrong with a `processes-per-node` value (None when it is fine): a whole number
    of at least 1, or `gpus`. The same rule on every target, so a config that runs here
    also submits to Singularity."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "gpus"):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= schema.MAX_PROCESSES_PER_NODE:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > schema.MAX_PROCESSES_PER_NODE:
        return (f"`processes-per-node` must be at most {schema.MAX_PROCESSES_PER_NODE:,}, not {value:,} (singkit's cap: "
                "no VM runs more processes usefully)")
    if isinstance(value, str) and value.strip().isdigit():
        return f"`processes-per-node: \"{value}\"` is quoted text; write the number without quotes"
    shown = str(value).lower() if isinstance(value, bool) or value is None else value
    return f"`processes-per-node` must be a whole number of at least 1 or `gpus`, not `{shown}`"


def _target_problems(cfg: "Config", at: Any) -> None:
    for name, target in cfg.targets.items():
        message = per_node_problem(target.get("processes-per-node"))
        if message:
            at("compute-targets", name, "processes-per-node", f"{message} (compute-targets.{name})")
        if target.get("service") == "docker":
            record = cfg.dockers.get(str(target.get("docker") or "")) or {}
            if not target.get("docker"):
                at("compute-targets", name, "service", f"compute-targets.{name} runs on docker but names no image; "
                   "add `docker: <a record in dockers>`")
            elif str(record.get("image") or "").startswith("azureml:"):
                at("compute-targets", name, "docker", f"`docker: {target['docker']}` is a registered Azure ML environment, "
                   "which only a Singularity target runs; give this docker target a record with an image (name:tag)")
        # (cloud keys on a local/docker target are fine: a Singularity target switched to `local`
        # to try it here first keeps them)
        cloud = [k for k in CLOUD_KEYS if target.get(k) is not None] if target.get("service") is None else []
        if cloud:
            at("compute-targets", name, cloud[0], f"compute-targets.{name} has `{cloud[0]}:` but no `service:`; "
               "add `service: <your singularity record>` (without it the target runs on this machine)", warning=True)


def outside_project(entry: str, root: Path | None) -> str | None:
    """Where a `code-dirs` entry leads when that is outside the project (None when inside): an
    absolute path, `..` past the root, or (with the project's `root`) a symlink out of it."""
    import os
    from pathlib import PurePosixPath

    if PurePosixPath(entry).is_absolute() or Path(entry).is_absolute():
        return entry
    if os.path.normpath(entry).replace("\\", "/").split("/")[0] == "..":
        return entry
    if root is not None:
        try:
            resolved, inside = (root / entry).resolve(), root.resolve()
        except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL: the snapshot could not read it either
            return entry
        if not resolved.is_relative_to(inside):
            return f"{entry} -> {resolved}"
    return None


def _code_dir_problems(cfg: "Config", at: Any) -> None:
    """A code-dirs entry outside the project: the snapshot would ship a system folder to the cloud."""
    root = getattr(cfg, "project_root", None)
    owners = [("general", None, cfg.general.get("code-dirs"))]
    owners += [("compute-targets", name, t.get("code-dirs")) for name, t in cfg.targets.items()]
    for section, name, entries in owners:
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, str) or str(entry).startswith("$env:"):
                continue
            leads = outside_project(str(entry), root)
            if leads is None:
                continue
            owner = "general.code-dirs" if name is None else f"compute-targets.{name}.code-dirs"
            message = (f"{owner} entry `{entry}` is outside the project ({leads}): the code snapshot would ship it; "
                       "list folders inside the project, relative to its root")
            if name is None:  # `general` as a whole: every command's snapshot reads it
                at("general", "code-dirs", None, message)
            else:
                at(section, name, "code-dirs", message)


def _service_problems(cfg: "Config") -> list[Problem]:
    """A missing `type` or required key, or a key that belongs to another type."""
    problems = []
    for name, record in cfg.services.items():
        layers = cfg._defined_in[("external-services", name)]
        first = layers[0]
        line, col = locate(first.doc, [_find_key(first.doc, "external-services"), name])
        scope = (("external-services", name),)
        kind = record.get("type")
        if not isinstance(kind, str) or kind not in schema.SERVICE_FIELDS:
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
