"""Every problem of a merged config, and which of them block a command.

`all_problems` is what `config.validate` reports: the layers' schema problems, broken
references, service records, and every Singularity target resolved exactly as submit
resolves it (singkit.singularity.target). `require` is what a command that uses one target
or docker record calls: errors in that record and the records it references block it;
problems known elsewhere are handed to `warn`, never raised. Broken YAML (a problem with no
record) blocks everything and is raised by load_config itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from singkit.config import schema
from singkit.exceptions import ConfigError, Problem, Record, shown_path
from singkit.singularity import accelerator as accelerators
from singkit.singularity import target as sing

# `general` keys only some commands read; every other `general` key is read by every command
GENERAL_FOR = {"credential": "singularity", "installer-image": "dockers", "validator-image": "dockers"}
SHOWN_ELSEWHERE = 5  # problems in unrelated records listed one by one; beyond, a count


def all_problems(cfg: Any) -> list[Problem]:
    """Every problem, errors and warnings, in file order."""
    found = [*cfg.layer_problems, *cfg.reference_problems(), *sing.service_problems(cfg),
             *accelerators.accelerator_problems(cfg), *image_problems(cfg), *placeholder_problems(cfg)]
    singular = [n for n, t in cfg.targets.items() if sing.is_singularity(cfg, t)]
    for name in singular:
        found += sing.resolve(cfg, cfg.target(name)).problems
    found += _experiment(cfg, singular)
    found += _unpinned(cfg, singular)
    return _unique(found)


def target_kinds(cfg: Any) -> dict[str, str]:
    """Each Azure ML target's kind of job, by the one rule submit uses (singkit.singularity.amlcompute):
    "compute-cluster" (an Azure ML compute cluster) or "singularity" (a virtual cluster)."""
    from singkit.singularity import amlcompute

    out: dict[str, str] = {}
    for name, record in cfg.targets.items():
        if sing.is_singularity(cfg, record):
            service = cfg.services.get(str(record.get("service") or ""))
            out[name] = "compute-cluster" if amlcompute.is_cluster(cfg, record, service) else "singularity"
    return out


def kind_notes(cfg: Any, kinds: dict[str, str]) -> list[str]:
    """One line per target on an `aml` workspace whose kind only its compute and vm-size tell, at
    its record: each compute-cluster target, and each Singularity target whose bare `compute:`
    name could be a compute cluster's (its Singularity size made it a virtual cluster)."""
    from singkit.singularity import amlcompute, catalog

    out = []
    for name, kind in kinds.items():
        record = cfg.targets[name]
        where = cfg.where("compute-targets", name)
        at = f"{shown_path(where.file)}:{where.line}:{where.col}: " if where is not None else ""
        if kind == "compute-cluster":
            out.append(f"note: {at}compute-targets.{name} is an Azure ML compute cluster job on `{record.get('compute')}` "
                       f"(vm-size {record.get('vm-size') or '-'}): no Singularity block; the cluster's size and tier decide "
                       "its VMs (a virtual cluster or a Singularity size makes a Singularity job)")
            continue
        vc = amlcompute.vc_by_size(cfg, record, cfg.services.get(str(record.get("service") or "")))
        if vc is None:
            continue
        size = str(record.get("vm-size") or "")
        found = catalog.find(getattr(cfg, "skus", None) or catalog.shipped(), size)
        if not found:
            continue  # a size singkit does not know: its own warning says so, at its line
        azure = catalog.azure_name(found[0])
        example = f"`vm-size: {azure}`" if azure else "its Azure VM size, e.g. `vm-size: Standard_NC6s_v3`"
        group = (cfg.services.get(str(record.get("service"))) or {}).get("resource-group") or "?"
        out.append(f"note: {at}compute-targets.{name} is a Singularity job on virtual cluster `{vc}` (vm-size {size or '-'} "
                   f"is a Singularity instance type; the virtual cluster is taken in resource group {group}); "
                   f"to run on an Azure ML compute cluster named `{vc}` instead, write {example}")
    return out


def _unpinned(cfg: Any, singular: list[str]) -> list[Problem]:
    """Docker records Azure ML targets run but nobody pinned yet: submit refuses them (without
    --allow-unpinned), so validate says so first, as a warning (image.wrap pins). A compute-cluster
    target runs the record's base image (spec.image_reference), so its pin is the base's digest."""
    from singkit import imageref
    from singkit.singularity import amlcompute

    uses: dict[tuple[str, bool], None] = {}
    for name in singular:
        target = cfg.targets[name]
        if target.get("docker"):
            service = cfg.services.get(str(target.get("service") or ""))
            uses[(str(target["docker"]), not amlcompute.is_cluster(cfg, target, service))] = None
    out = []
    for name, wrapped in sorted(uses):
        record = cfg.dockers.get(name)
        if not record or str(record.get("image") or "").startswith("azureml:"):
            continue
        try:  # the same rule submit applies (backends.singularity.spec.image_reference)
            if imageref.run_digest(record, None, wrapped=wrapped)[1]:
                continue
        except ValueError:
            continue  # an unreadable record: image_problems says so
        where = cfg.where("dockers", name, "image") or cfg.where("dockers", name)
        if where is None:
            continue
        if wrapped:
            message = (f"docker record `{name}` is not pinned by digest yet: a Singularity submit refuses it until "
                       f"`invoke image.wrap --docker={name}` pins it (or with --allow-unpinned)")
        else:
            message = (f"docker record `{name}` is not pinned by digest yet for compute-cluster targets, which run its "
                       "base image (`image:`, not the wrapped one): a submit refuses it until `image:` carries "
                       "`@sha256:<digest>` (or with --allow-unpinned)")
        out.append(Problem(where.file, where.line, where.col, message, (("dockers", name),), warning=True))
    return out


def _experiment(cfg: Any, singular: list[str]) -> list[Problem]:
    if not singular:
        return []
    problem = sing.experiment_problem(cfg, cfg.general.get("experiment"))
    if problem is None:
        return []
    scope = tuple(("compute-targets", n) for n in singular)
    return [Problem(problem.file, problem.line, problem.col, problem.message, scope)]


# what an importer writes where it could not know the value (config.import-amlt: a workspace
# Amulet looked up from the virtual cluster); a submit with it would reach Azure and fail there
PLACEHOLDER = "FILL-IN"


def placeholder_problems(cfg: Any) -> list[Problem]:
    """A record value an importer left to fill in (`FILL-IN-…`), at its key."""
    out = []
    for section, records in (("external-services", cfg.services), ("dockers", cfg.dockers),
                             ("compute-targets", cfg.targets), ("setups", cfg.setups)):
        for name, record in records.items():
            for key, value in (record or {}).items():
                if isinstance(value, str) and value.startswith(PLACEHOLDER):
                    where = cfg.where(section, name, key) or cfg.where(section, name)
                    if where is not None:
                        out.append(Problem(where.file, where.line, where.col,
                                           f"{section}.{name}.{key} is still `{value}`: write the real value "
                                           "(the importer could not know it)", ((section, name),)))
    return out


def image_problems(cfg: Any, names: Iterable[str] | None = None) -> list[Problem]:
    """A docker record whose `image:` or `sha256:` cannot be read, at that key (submit and
    image.wrap would refuse it; validate says so first)."""
    from singkit import imageref as refs

    out = []
    said = {r for p in cfg.layer_problems for r in p.records}  # the schema's line says it already
    for name in cfg.dockers if names is None else names:
        if ("dockers", name) in said:
            continue
        record = cfg.dockers.get(name) or {}
        registry = cfg.services.get(str(record.get("registry") or ""))
        error = refs.check_record(record, registry if (registry or {}).get("type") == "registry" else None)
        if error is None:
            continue
        where = cfg.where("dockers", name, refs.record_problem_key(error)) or cfg.where("dockers", name)
        if where is not None:
            out.append(Problem(where.file, where.line, where.col, refs.record_problem_text(name, error), (("dockers", name),)))
    return out


def closure(cfg: Any, section: str, name: str) -> set[Record]:
    """The records a command using `section.name` reads: a target's service, virtual cluster,
    docker record and its registry, setup, its size's `skus:` record and the Blob store."""
    out: set[Record] = {(section, name)} | {("general", k) for k in schema.GENERAL_FIELDS if k not in GENERAL_FOR}
    if section == "dockers":
        registry = (cfg.dockers.get(name) or {}).get("registry")
        if registry:
            out.add(("external-services", str(registry)))
        return out | {("general", k) for k, used_by in GENERAL_FOR.items() if used_by == "dockers"}
    if section != "compute-targets":
        return out
    target = cfg.targets.get(name) or {}
    for key, kind in (("service", "external-services"), ("setup", "setups")):
        if target.get(key):
            out.add((kind, str(target[key])))
    if target.get("docker"):
        out |= closure(cfg, "dockers", str(target["docker"]))
    cluster = str(target.get("compute") or "").rstrip("/").rsplit("/", 1)[-1].lower()
    out |= {("external-services", n) for n in cfg.services if n.lower() == cluster}
    size = str(target.get("vm-size") or "").lower().removeprefix("singularity.")
    out |= {("skus", n) for n in cfg._records["skus"] if n.lower().removeprefix("singularity.") == size}
    if sing.is_singularity(cfg, target):
        out |= {("general", k) for k, used_by in GENERAL_FOR.items() if used_by == "singularity"}
        if cfg.general.get("store"):
            out.add(("external-services", str(cfg.general["store"])))
    return out


def require(cfg: Any, warn: Callable[[str], None], section: str, name: str) -> list[Problem]:
    """Raise ConfigError with the errors in `section.name`'s closure; pass its warnings, and a
    word on problems elsewhere, to `warn`. Returns the warnings. Costs what the one record
    costs to resolve, not the size of the config (other targets are not resolved)."""
    scope = closure(cfg, section, name)
    known = [*cfg.layer_problems, *cfg.reference_problems(), *sing.service_problems(cfg), *placeholder_problems(cfg)]
    own: list[Problem] = [p for p in known if _touches(p, scope)]
    if section == "compute-targets" and sing.is_singularity(cfg, cfg.targets.get(name) or {}):
        own += sing.resolve(cfg, cfg.target(name)).problems
        own += [p for p in _experiment(cfg, [name])]
    elif section == "dockers":
        own += [p for p in accelerators.accelerator_problems(cfg) if _touches(p, scope)]
    own += [p for p in image_problems(cfg, [r[1] for r in scope if r[0] == "dockers"])]
    own = _unique(own)
    errors = [p for p in own if not p.warning]
    if errors:
        raise ConfigError(errors)
    elsewhere = [p for p in _unique(known) if not _touches(p, scope)]
    warnings = [p for p in own if p.warning]
    for problem in warnings:
        warn(f"warning: {problem}")
    for problem in elsewhere[:SHOWN_ELSEWHERE]:
        warn(f"warning: {problem} (does not affect this command)")
    if len(elsewhere) > SHOWN_ELSEWHERE:
        warn(f"warning: {len(elsewhere) - SHOWN_ELSEWHERE} more problem(s) in records this command does not use; "
             "see `invoke config.validate`")
    return warnings


def _touches(problem: Problem, scope: set[Record]) -> bool:
    return not problem.records or any(r in scope for r in problem.records)


def _unique(problems: Iterable[Problem]) -> list[Problem]:
    seen: dict[tuple[Any, ...], Problem] = {}
    for p in problems:
        seen.setdefault((str(p.file), p.line, p.col, p.message), p)
    return sorted(seen.values(), key=lambda p: (str(p.file), p.line, p.col, p.message))
