"""A Singularity target + a run → an Azure ML CLI v2 command-job YAML (and its azure-ai-ml entity).

The spec is built as a plain mapping (no azure import), written as the YAML that
`az ml job create -f` would take, and turned into the SDK's job entity with
`azure.ai.ml.load_job` — so a dry run and a submission go through the very same file.
Secrets never enter it: the Blob SAS a job uses is added to the entity at submit time only.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from singkit.backends.singularity import aisc, skus
from singkit.exceptions import ConfigError, Problem, UsageError
from singkit.fsutil import atomic_write

SCHEMA = "https://azuremlschemas.azureedge.net/latest/commandJob.schema.json"
VC_PROVIDER = "Microsoft.MachineLearningServices/virtualclusters"
DEFAULT_SLA = "standard"  # the service's own default tier
DEFAULT_PRIORITY = "medium"
DEFAULT_SCALE_INTERVAL = 120


@dataclass(frozen=True)
class Workspace:
    """Where a Singularity target submits: the Azure ML workspace the virtual cluster is attached to."""

    subscription_id: str
    resource_group: str
    name: str
    service: str  # the external-services record's name
    user_identity_id: str | None = None
    cloud: str | None = None


class _Problems:
    """Collects config mistakes, each located at the key it is about when the config knows it."""

    def __init__(self, cfg: Any):
        self.cfg, self.items = cfg, []

    def add(self, section: str, name: str, key: str | None, message: str) -> None:
        where = getattr(self.cfg, "where", None)
        origin = where(section, name, key) if where and key else None
        if origin is None and where:
            origin = where(section, name)
        file, line, col = (origin.file, origin.line, origin.col) if origin else ("<config>", 0, 0)
        self.items.append(Problem(file, line, col, message))

    def raise_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)


def workspace_for(cfg: Any, target: Mapping[str, Any]) -> Workspace:
    """The singularity/aml service record a target names, as a Workspace."""
    service = cfg.service(target["service"])
    if service.get("type") not in ("singularity", "aml"):
        raise UsageError(f"target `{target.get('name')}` uses service `{target['service']}`, a {service.get('type')} record; a Singularity target needs a singularity/aml record")
    return Workspace(
        subscription_id=str(service["subscription-id"]), resource_group=str(service["resource-group"]),
        name=str(service.get("workspace") or service["name"]), service=service["name"],
        user_identity_id=service.get("user-identity-id"), cloud=service.get("cloud"),
    )


def compute_id(cfg: Any, target: Mapping[str, Any], workspace: Workspace) -> str:
    """The virtual cluster's full ARM id.

    `compute` may be a full id, the name of a `virtual_cluster` record (its subscription and
    resource group are used), or a bare cluster name living beside the workspace.
    """
    compute = str(target.get("compute") or "").strip()
    if compute.startswith("/subscriptions/"):
        return compute
    if compute.startswith("azureml:"):
        # the azureml://virtualclusters/... forms resolve through hosts no cloud override reaches
        raise UsageError(f"compute `{compute}`: write the virtual cluster's name or its full ARM id (/subscriptions/.../virtualclusters/NAME)")
    records = getattr(cfg, "services", {}) or {}
    record = records.get(compute)
    if record and record.get("type") in ("virtual_cluster", "singularity", "aml"):
        sub, rg = record["subscription-id"], record["resource-group"]
    else:
        sub, rg = workspace.subscription_id, workspace.resource_group
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{VC_PROVIDER}/{compute}"


def image_reference(cfg: Any, docker: Mapping[str, Any], allow_unpinned: bool = False) -> str:
    """`<login-server>/<repo>@sha256:<digest>` for a docker record (the wrapped image when
    `sing-wrap: true`, named as image.wrap names it); refuses an unpinned one."""
    from singkit.images.refs import normalize_digest, target_reference

    registry = cfg.service(docker["registry"]) if docker.get("registry") else None
    name = docker.get("name", "?")
    try:
        ref = target_reference(dict(docker), registry)
        digest = normalize_digest(docker.get("sha256")) or ref.digest
    except ValueError as error:
        raise UsageError(f"docker record `{name}`: {error}") from None
    if digest:
        return ref.pinned(digest)
    if allow_unpinned:
        return ref.tagged
    raise UsageError(f"docker record `{name}` is not pinned by digest (no sha256); run `invoke image.wrap --docker={name}` to build, push and pin it, or pass --allow-unpinned")


def resolve_sku(cfg: Any, target: Mapping[str, Any], problems: _Problems) -> tuple[str, dict[str, Any]]:
    name = target.get("name", "?")
    vm_size = target.get("vm-size")
    catalog = getattr(cfg, "skus", {}) or {}
    if not vm_size:
        problems.add("compute-targets", name, "vm-size", f"target `{name}` has no vm-size; set one, e.g. `vm-size: ND40rs_v2`")
        return "", {}
    found = skus.find_sku(catalog, vm_size)
    if not found:
        problems.add("compute-targets", name, "vm-size", skus.unknown_size_message(catalog, vm_size))
        return "", {}
    return found


def ai_super_computer(target: Mapping[str, Any], nodes: int, problems: _Problems) -> dict[str, Any]:
    """The AISuperComputer block: defaults, then the target's knobs, then its raw overrides."""
    name = target.get("name", "?")
    for key in aisc.CHOICES:
        message = aisc.check_choice(key, target.get(key))
        if message:
            problems.add("compute-targets", name, key, message)
    block: dict[str, Any] = {
        "interactive": bool(target.get("interactive", False)),
        "imageVersion": str(target.get("image-version") or ""),
        "slaTier": aisc.SLA_TIERS.get(str(target.get("sla") or DEFAULT_SLA).lower(), "Standard"),
        "priority": aisc.PRIORITIES.get(str(target.get("priority") or DEFAULT_PRIORITY).lower(), "Medium"),
        # fixed size unless the target asks for elasticity
        "scalePolicy": {"autoScaleIntervalInSec": DEFAULT_SCALE_INTERVAL, "maxInstanceTypeCount": nodes, "minInstanceTypeCount": nodes},
    }
    locations = list(target.get("locations") or []) or ([target["location"]] if target.get("location") else [])
    if locations:
        block["locations"] = locations
    if target.get("scale-policy"):
        policy, more = aisc.normalize({"scalePolicy": target["scale-policy"]}, "scale-policy")
        for message in more:
            problems.add("compute-targets", name, "scale-policy", message.replace("scale-policy.scalePolicy", "scale-policy"))
        block["scalePolicy"].update(policy.get("scalePolicy") or {})
    raw = target.get("ai-super-computer") or {}
    if not isinstance(raw, Mapping):
        problems.add("compute-targets", name, "ai-super-computer", "ai-super-computer must be a mapping of AISuperComputer properties")
    elif raw:
        extra, more = aisc.normalize(raw, "ai-super-computer")
        for message in more:
            problems.add("compute-targets", name, "ai-super-computer", message)
        policy = extra.pop("scalePolicy", None)
        block.update(extra)
        if policy:
            block["scalePolicy"].update(policy)
    return block


_FROM_CONFIG: Any = object()  # "look the record up in the config by the target's name for it"


def _record(cfg: Any, target: Mapping[str, Any], kind: str, given: Any) -> dict[str, Any] | None:
    if given is not _FROM_CONFIG:
        return dict(given) if given else None
    name = target.get(kind)
    return (cfg.setup(name) if kind == "setup" else cfg.docker(name)) if name else None


def environment_variables(setup: Mapping[str, Any] | None, target: Mapping[str, Any],
                          extra: Mapping[str, Any] | None) -> dict[str, str]:
    """Setup env, then target env, then the caller's — all as strings, as Azure ML wants."""
    merged: dict[str, Any] = {}
    merged.update((setup or {}).get("env") or {})
    merged.update(target.get("env") or {})
    merged.update(extra or {})
    return {str(k): _env_text(v) for k, v in merged.items() if v is not None}


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def setup_command(setup: Mapping[str, Any] | None, command: str) -> str:
    """The setup's pre-commands and pip installs, then the command, joined with &&."""
    if not setup:
        return command
    steps = [str(c) for c in setup.get("pre-cmds") or []]
    if setup.get("pip"):
        steps.append("python -m pip install --no-input -q " + " ".join(shlex.quote(str(p)) for p in setup["pip"]))
    return " && ".join([*steps, command])


def build_spec(cfg: Any, target: Mapping[str, Any], *, job_id: str, run_id: str, command: str,
               name: str, code: str = "code", extra_env: Mapping[str, Any] | None = None,
               allow_unpinned: bool = False, docker: Any = _FROM_CONFIG, setup: Any = _FROM_CONFIG,
               experiment: str | None = None) -> dict[str, Any]:
    """The CLI v2 command-job mapping for one run of a job on a Singularity target.

    `command` is what runs on each process (the in-job wrapper around the user's command);
    `name` is the Azure ML job name, chosen by the caller so a retried PUT stays idempotent;
    `code` is the folder to upload, relative to where the YAML will be written;
    `docker` and `setup` records default to the config's for the target's names (a stored job
    passes its own); a setup's pre-commands and pip installs are prefixed to `command`.
    """
    problems = _Problems(cfg)
    tname = target.get("name", "?")
    workspace = workspace_for(cfg, target)
    nodes = int(target.get("nodes") or 1)
    sku_name, sku = resolve_sku(cfg, target, problems)
    block = ai_super_computer(target, nodes, problems)
    if not target.get("compute"):
        problems.add("compute-targets", tname, "compute", f"target `{tname}` has no compute; set the virtual cluster's name")
    docker = _record(cfg, target, "docker", docker)
    setup = _record(cfg, target, "setup", setup)
    if not docker:
        problems.add("compute-targets", tname, "docker", f"target `{tname}` has no docker record; Singularity jobs run in an image pinned by digest — set `docker:`")
    problems.raise_any()
    image = image_reference(cfg, docker, allow_unpinned)

    spec: dict[str, Any] = {
        "$schema": SCHEMA,
        "type": "command",
        "name": name,
        "display_name": run_id,
        "experiment_name": str(experiment or cfg.general.get("experiment") or "singkit"),
        "description": f"singkit {run_id} on {tname}",
        "tags": {"singkit.job": job_id, "singkit.run": run_id, "singkit.target": str(tname)},
        "code": code,
        "command": setup_command(setup, command),
        "environment": {"image": image},
        "environment_variables": environment_variables(setup, target, extra_env) or None,
        "compute": compute_id(cfg, target, workspace),
        "resources": {
            "instance_count": nodes,
            "instance_type": skus.instance_type(sku_name),
            "properties": {aisc.AISC: block},
        },
        "queue_settings": {"job_tier": block["slaTier"].lower(), "priority": block["priority"].lower()},
    }
    spec = {k: v for k, v in spec.items() if v is not None}
    gpus = skus.gpu_count(sku)
    if gpus > 1 or nodes > 1:
        spec["distribution"] = {"type": "pytorch", "process_count_per_instance": max(gpus, 1)}
    spec.update(identity_settings(workspace.user_identity_id, spec.setdefault("environment_variables", {})))
    if not spec["environment_variables"]:
        del spec["environment_variables"]
    return spec


def identity_settings(identity: str | None, env: dict[str, str]) -> dict[str, Any]:
    """The job's managed identity from the service record's `user-identity-id`.

    A full ARM id of a user-assigned identity goes where Singularity looks for it
    (`_AZUREML_SINGULARITY_JOB_UAI`); a client id becomes the job's `identity:`. Either way
    the in-job blob mirror can use it when no SAS is given.
    """
    if not identity:
        return {}
    identity = str(identity)
    if identity.lower().startswith("/subscriptions/"):
        env["_AZUREML_SINGULARITY_JOB_UAI"] = identity
        return {}
    env["SINGKIT_BLOB_CLIENT_ID"] = identity
    return {"identity": {"type": "managed", "client_id": identity}}


def write_spec(path: Path, spec: Mapping[str, Any]) -> Path:
    """Write the spec as YAML (atomically); the header says what it is and how to use it."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096  # long image references and commands stay on one line
    yaml.sort_base_mapping_type_on_output = False  # keep our key order
    buffer = io.StringIO()
    buffer.write("# Azure ML CLI v2 command job written by singkit; `az ml job create -f <this file>` takes it too.\n")
    yaml.dump(dict(spec), buffer)
    atomic_write(path, buffer.getvalue())
    return path


def load_spec(path: Path) -> Any:
    """The azure-ai-ml job entity for a written spec, validated offline; UsageError if it is not valid."""
    from singkit.backends.singularity.client import import_sdk

    load_job = import_sdk().load_job
    from marshmallow.exceptions import ValidationError

    try:
        job = load_job(source=str(path))
    except (ValidationError, Exception) as error:  # the SDK raises several types here
        raise UsageError(f"{path}: Azure ML refuses this job spec: {_first_line(error)}") from error
    result = job._validate()
    if not result.passed:
        raise UsageError(f"{path}: Azure ML refuses this job spec: {_first_line(result)}")
    return job


def _first_line(error: Any) -> str:
    text = " ".join(str(error).split())
    return text[:300] + ("…" if len(text) > 300 else "")
