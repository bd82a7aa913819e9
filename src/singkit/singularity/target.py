"""A Singularity target resolved from the merged config: what submit sends, and every mistake.

`resolve` is the one place that decides a target's compute id, instance type, node and
process counts, AISuperComputer block, locations, environment and identity. config.validate
and job.submit both call it, so validate reports exactly what submit would refuse. It
imports no azure module: a dry run, a validate and a submit build the same values offline.
A target on a `type: aml` workspace whose compute is an Azure ML compute cluster resolves here too,
to a smaller job (`kind` compute_cluster; the rule and its sources: singkit.singularity.amlcompute).

Service facts, with their public sources:
- compute is the virtual cluster's ARM id (`/subscriptions/S/resourceGroups/R/providers/
  Microsoft.MachineLearningServices/virtualclusters/N`); the SDK's own Singularity test uses
  `azureml://subscriptions/S/resourceGroups/R/virtualclusters/N` (Azure/azure-sdk-for-python,
  sdk/ml/azure-ai-ml/tests/test_configs/command_job/command_job_singularity_test.yml);
- `resources.locations` is a field of azure-ai-ml's JobResourceConfiguration (1.35,
  azure/ai/ml/entities/_job/job_resource_configuration.py), sent as `locations`;
- a subscription id is a GUID (Azure Resource Manager resource ids);
- an experiment name starts with a letter or digit and holds only letters, digits, `_` and
  `-` (azureml-core `Experiment` class reference, "Azure Machine Learning SDK for Python").
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from singkit.exceptions import Problem
from singkit.singularity import aisc, amlcompute, catalog

VC_PROVIDER = "Microsoft.MachineLearningServices/virtualclusters"
WORKSPACE_TYPES = ("singularity", "aml")
# keys that go into ARM ids and URLs as written (never resolved from `$env:`)
ID_KEYS = ("subscription-id", "resource-group", "workspace")
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
EXPERIMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
ARM_VC = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
                    r"Microsoft\.MachineLearningServices/virtualclusters/(?P<vc>[^/]+)$", re.I)
AZUREML_ARM_VC = re.compile(r"^azureml://subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/"
                            r"(?:providers/Microsoft\.MachineLearningServices/)?virtualclusters/(?P<vc>[^/]+)$", re.I)
CLUSTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
AZUREML_VC_NAME = re.compile(r"^azureml:(?://)?virtualclusters/(?P<vc>[^/]+)$", re.I)
UAI_ARM = re.compile(r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/"
                     r"Microsoft\.ManagedIdentity/userAssignedIdentities/(?P<name>[^/]+)$", re.I)
ENVIRONMENT = re.compile(r"^azureml:(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?::(?P<version>[^:@/]+)|@(?P<label>latest))$")
# an environment in an Azure ML registry, as public CLI v2 job files write it (e.g. the curated
# `azureml://registries/azureml/environments/sklearn-1.5/versions/34`, or `.../labels/latest`)
REGISTRY_ENVIRONMENT = re.compile(r"^azureml://registries/[A-Za-z0-9][A-Za-z0-9_-]*/environments/[A-Za-z0-9][A-Za-z0-9._-]*"
                                  r"/(?:versions/[^/]+|labels/latest)$")


@dataclass(frozen=True)
class Workspace:
    """Where a Singularity target submits: the Azure ML workspace the virtual cluster is attached to."""

    subscription_id: str
    resource_group: str
    name: str
    service: str  # the external-services record's name
    user_identity_id: str | None = None
    cloud: str | None = None
    credential: str | None = None  # general.credential: default, cli, managed-identity, ...
    credential_used: str | None = None  # how error messages name it

    @classmethod
    def of(cls, record: Mapping[str, Any], credential: str | None = None) -> "Workspace":
        return cls(subscription_id=str(record.get("subscription-id")), resource_group=str(record.get("resource-group")),
                   name=str(record.get("workspace") or record.get("name")), service=str(record.get("name")),
                   user_identity_id=record.get("user-identity-id"), cloud=record.get("cloud"), credential=credential)


@dataclass
class Resolved:
    """What a Singularity target sends (see the module docstring for each value's source)."""

    name: str
    workspace: Workspace | None = None
    compute: str = ""  # the virtual cluster's ARM id
    vm_size: str = ""  # the name after `Singularity.`: the catalog's spelling, else as written
    sku: dict[str, Any] | None = None  # catalog record; None for a size singkit does not know
    nodes: int = 1
    per_node: int = 1  # processes per node
    aisc: dict[str, Any] = field(default_factory=dict)
    locations: list[str] = field(default_factory=list)
    docker: dict[str, Any] | None = None
    environment: str | None = None  # `azureml:NAME:VERSION` of a registered environment
    identity: str | None = None  # user-assigned identity: ARM id, or a name resolved online
    kind: str = amlcompute.VIRTUAL_CLUSTER  # or amlcompute.CLUSTER: an Azure ML compute cluster job
    low_pri: bool | None = None  # compute cluster: the tier `low-pri` asks for (checked online, never sent)
    problems: list[Problem] = field(default_factory=list)

    @property
    def is_cluster(self) -> bool:
        return self.kind == amlcompute.CLUSTER

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if not p.warning]

    @property
    def instance_type(self) -> str:
        return catalog.instance_type(self.vm_size)

    @property
    def distribution(self) -> dict[str, Any] | None:
        """PyTorch distribution only when more than one process runs in all (Azure ML then
        starts `per_node` processes per node and sets RANK, WORLD_SIZE, MASTER_ADDR...)."""
        if self.nodes * self.per_node <= 1:
            return None
        return {"type": "pytorch", "process_count_per_instance": self.per_node}


class Collector:
    """Problems located at the key they are about, in the file that set it."""

    def __init__(self, cfg: Any, out: list[Problem]):
        self.cfg, self.out = cfg, out

    def add(self, section: str, name: str, key: str | None, message: str, *, warning: bool = False,
            records: tuple[tuple[str, str], ...] = (), sub: str | None = None) -> None:
        """A problem at `section.name.key` (`sub`: a key inside that key's mapping), else the
        nearest of those the config knows the line of."""
        where = getattr(self.cfg, "where", None)
        origin = None
        if where is not None:
            origin = (where(section, name, key, sub) if key and sub else None) or \
                (where(section, name, key) if key else None) or where(section, name)
        file, line, col = (origin.file, origin.line, origin.col) if origin else (f"{section}.{name}", 1, 1)
        self.out.append(Problem(file, line, col, message, records or ((section, name),), warning))


def is_singularity(cfg: Any, target: Mapping[str, Any]) -> bool:
    service = (getattr(cfg, "services", {}) or {}).get(str(target.get("service") or ""))
    return bool(service) and service.get("type") in WORKSPACE_TYPES


def resolve(cfg: Any, target: Mapping[str, Any], *, docker: Any = None, use_config_docker: bool = True) -> Resolved:
    """Resolve a Singularity target record (cfg.target(name), or the one a stored job holds).

    `docker`: the docker record to use (a stored job passes its own); by default the config's
    record the target names. Never raises for config mistakes: they are in `.problems`."""
    name = str(target.get("name") or "?")
    out = Resolved(name=name)
    note = Collector(cfg, out.problems)
    section = "compute-targets"
    service = (getattr(cfg, "services", {}) or {}).get(str(target.get("service") or ""))
    if not service or service.get("type") not in WORKSPACE_TYPES:
        note.add(section, name, "service", f"target `{name}` needs `service:` naming a singularity/aml workspace record")
        return out
    out.workspace = Workspace.of({**service, "name": target.get("service"), "workspace": service.get("workspace") or target.get("service")})
    if amlcompute.is_cluster(cfg, target, service):
        return _cluster(cfg, target, out, note, docker, use_config_docker)
    amlcompute.low_pri_on_singularity(target, note.add)
    out.compute = _compute(cfg, target, out.workspace, note)
    _instance_type(cfg, target, out, note)
    out.nodes = _whole(target.get("nodes"), 1)
    out.per_node = _processes(cfg, target, out, note)
    out.aisc = aisc.block(target, out.nodes, note)
    listed = target.get("locations")
    locations = (list(listed) if isinstance(listed, list) else []) or ([target["location"]] if target.get("location") else [])
    out.locations = [str(x) for x in locations]
    if target.get("location") and target.get("locations") and str(target["location"]) not in out.locations:
        note.add(section, name, "location", f"`location: {target['location']}` is not used beside `locations: "
                 f"[{', '.join(out.locations)}]`; add it there or drop one of the two", warning=True)
    _environment(cfg, target, out, note, docker, use_config_docker)
    out.identity = str(service["user-identity-id"]) if service.get("user-identity-id") else None
    return out


def _cluster(cfg: Any, target: Mapping[str, Any], out: Resolved, note: Collector, docker: Any,
             use_config_docker: bool) -> Resolved:
    """An Azure ML compute cluster target (singkit.singularity.amlcompute): the cluster's name,
    nodes and processes; its Azure VM size checked by grammar; no AISuperComputer block, no
    locations, no Singularity identity variable; the image from a docker record."""
    out.kind = amlcompute.CLUSTER
    out.compute = amlcompute.cluster_name(target, out.workspace, note.add)
    out.vm_size = amlcompute.check_vm_size(target, note.add)
    out.sku = amlcompute.user_sku(cfg, out.vm_size)
    out.nodes = _whole(target.get("nodes"), 1)
    out.per_node = _processes(cfg, target, out, note)
    amlcompute.singularity_keys(target, note.add)
    out.low_pri = bool(target["low-pri"]) if target.get("low-pri") is not None else None
    if docker is None and use_config_docker:
        amlcompute.needs_docker(target, note.add)
    _environment(cfg, target, out, note, docker, use_config_docker, quiet=True)
    return out


def _whole(value: Any, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError, OverflowError):  # .inf: the schema check names it
        return default


def _compute(cfg: Any, target: Mapping[str, Any], workspace: Workspace, note: Collector) -> str:
    """The virtual cluster's ARM id from the forms public job files use:
    `/subscriptions/...` (also after `azureml:`), `azureml://subscriptions/S/resourceGroups/R/
    virtualclusters/N`, `azureml://virtualclusters/N` or `azureml:virtualClusters/N` (the
    virtual_cluster record N), or a bare name (a record, else a cluster beside the workspace;
    a warning when a record has a close name). ARM matches resource names without regard to
    case, and so does this."""
    name = str(target.get("name") or "?")
    compute = str(target.get("compute") or "").strip().rstrip("/")
    if not compute:
        note.add("compute-targets", name, "compute" if target.get("compute") is not None else None,
                 f"target `{name}` has no `compute`; set the virtual cluster's name (a virtual_cluster record) or its ARM id")
        return ""
    if compute.lower().startswith("azureml:/subscriptions/"):
        compute = compute[len("azureml:"):]
    found = ARM_VC.match(compute) or AZUREML_ARM_VC.match(compute)
    if compute.startswith("/subscriptions/") or found:
        if not found:
            note.add("compute-targets", name, "compute", f"compute `{compute}` is not a virtual cluster's ARM id; write "
                     f"/subscriptions/S/resourceGroups/R/providers/{VC_PROVIDER}/NAME")
            return ""
        return _arm_id(found["sub"], found["rg"], found["vc"], name, note)
    records = getattr(cfg, "services", {}) or {}
    clusters = [n for n, r in records.items() if r.get("type") == "virtual_cluster"]
    found = AZUREML_VC_NAME.match(compute)
    if compute.startswith("azureml:") and CLUSTER_NAME.match(compute[len("azureml:"):]):
        compute = compute[len("azureml:"):]  # CLI v2's `azureml:NAME`: the name, as a bare one
    elif found:
        record_name = _record_named(clusters, found["vc"])
        if record_name is None:
            more = f" (virtual_cluster records: {', '.join(clusters)})" if clusters else ""
            note.add("compute-targets", name, "compute", f"compute `{compute}` names no virtual_cluster record; define "
                     f"`external-services.{found['vc']}` (type: virtual_cluster, subscription-id, resource-group){more}")
            return ""
        compute = record_name
    elif compute.startswith("azureml:"):
        note.add("compute-targets", name, "compute", f"compute `{compute}` is not a virtual cluster form singkit reads; write "
                 "`azureml://virtualclusters/NAME` (NAME a virtual_cluster record), `azureml:NAME` or the cluster's ARM id")
        return ""
    if not CLUSTER_NAME.match(compute):
        note.add("compute-targets", name, "compute", f"compute `{compute}` is neither a virtual cluster's name (letters, digits, "
                 "`-`, `_`, `.`) nor its ARM id (/subscriptions/…) nor azureml://virtualclusters/NAME")
        return ""
    record_name = _record_named(list(records), compute)
    record = records.get(record_name) if record_name else None
    if record and record.get("type") in ("virtual_cluster", *WORKSPACE_TYPES):
        sub, rg = record.get("subscription-id"), record.get("resource-group")
    elif record:
        note.add("compute-targets", name, "compute", f"compute `{compute}` names a {record.get('type')} record; name a "
                 f"virtual_cluster record{' (' + ', '.join(clusters) + ')' if clusters else ''} or the cluster's ARM id")
        return ""
    else:
        # A cluster beside the workspace, as other public submitters assume too (a VC's own
        # subscription and group default to the workspace's); the online check finds it or not.
        close = difflib.get_close_matches(compute, clusters, n=1, cutoff=0.6)
        if close:
            note.add("compute-targets", name, "compute",
                     f"compute `{compute}` names no virtual_cluster record; did you mean `{close[0]}`? (taken as a virtual "
                     f"cluster `{compute}` in the workspace's resource group, {workspace.resource_group})", warning=True)
        sub, rg = workspace.subscription_id, workspace.resource_group
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{VC_PROVIDER}/{compute}"


def _arm_id(sub: str, rg: str, cluster: str, name: str, note: Collector) -> str:
    if not GUID.match(sub):
        note.add("compute-targets", name, "compute", f"the subscription in compute must be a GUID such as "
                 f"00000000-0000-0000-0000-000000000000, not `{sub}`")
    if not CLUSTER_NAME.match(cluster):
        note.add("compute-targets", name, "compute", f"`{cluster}` is not a virtual cluster name (letters, digits, `-`, `_`, `.`)")
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{VC_PROVIDER}/{cluster}"


def _record_named(names: list[str], wanted: str) -> str | None:
    """The record called `wanted`, matched as ARM matches names (case-insensitively)."""
    if wanted in names:
        return wanted
    return next((n for n in names if n.lower() == wanted.lower()), None)


def _instance_type(cfg: Any, target: Mapping[str, Any], out: Resolved, note: Collector) -> None:
    name = out.name
    size = target.get("vm-size")
    if not size or not str(size).strip():
        service = (getattr(cfg, "services", {}) or {}).get(str(target.get("service") or "")) or {}
        cluster = " (on an Azure ML compute cluster: its Azure VM size, e.g. `Standard_NC6s_v3`)" if service.get("type") == "aml" else ""
        note.add("compute-targets", name, "vm-size" if size is not None else None,
                 f"target `{name}` has no `vm-size`; set a Singularity instance type, e.g. `vm-size: ND12_H100_v5`{cluster}")
        return
    skus = getattr(cfg, "skus", None) or catalog.shipped()
    found = catalog.find(skus, str(size))
    if found:
        out.vm_size, out.sku = found[0], found[1]
        out.vm_size = catalog.bare(out.vm_size)
        return
    out.vm_size = catalog.bare(str(size))
    amulet = catalog.amulet_hint(skus, str(size))  # never an instance type: the service would refuse it
    note.add("compute-targets", name, "vm-size", catalog.unknown_message(skus, str(size)), warning=amulet is None)


def _processes(cfg: Any, target: Mapping[str, Any], out: Resolved, note: Collector) -> int:
    """`processes-per-node`: a whole number ≥ 1, or `gpus` (one per GPU of the size). Default 1:
    XT, Amulet (`process_count_per_node`) and the SDK's Singularity test start one per node.
    The GPU count is the size's record (the catalog, or `skus:`), else, for an Azure VM size name
    (`Standard_NC24ads_A100_v4`), the record of the Singularity size it is (catalog.azure_equivalent)."""
    value = target.get("processes-per-node")
    if value is None:
        return 1
    sku = out.sku
    if sku is None and out.vm_size:
        found = (catalog.azure_equivalent(getattr(cfg, "skus", None) or {}, out.vm_size)
                 or catalog.azure_equivalent(catalog.shipped(), out.vm_size))
        sku = found[1] if found else None
    if isinstance(value, str) and value.strip().lower() == "gpus":
        if sku is None:
            if out.vm_size:
                note.add("compute-targets", out.name, "processes-per-node",
                         f"`processes-per-node: gpus` needs to know how many GPUs `{out.vm_size}` has; "
                         "write the number, or add the size under `skus:` with `gpus:`")
            return 1
        if catalog.gpus(sku) == 0:
            if "gpus" not in sku:
                note.add("compute-targets", out.name, "processes-per-node",
                         f"`processes-per-node: gpus` but `{out.vm_size}` under `skus:` has no `gpus:`; add it, or write the number")
            else:
                note.add("compute-targets", out.name, "processes-per-node",
                         f"`processes-per-node: gpus` on `{out.vm_size}`, which has no GPU: one process per node", warning=True)
            return 1
        return catalog.gpus(sku)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return 1  # reported for every target, Singularity or not: config.references.per_node_problem
    gpus = catalog.gpus(sku) if sku is not None else 0
    if gpus and value > gpus:
        note.add("compute-targets", out.name, "processes-per-node",
                 f"`processes-per-node: {value}` starts more processes than `{out.vm_size}` has GPUs ({gpus}); "
                 "several would share a GPU", warning=True)
    return value


def _environment(cfg: Any, target: Mapping[str, Any], out: Resolved, note: Collector, docker: Any,
                 use_config_docker: bool, quiet: bool = False) -> None:
    """A docker record (an image pinned by digest, or a registered `azureml:` environment), or
    none with `image-version` (Singularity's curated image: "If your XT target does not specify
    a named docker record, your job will run in the default Singularity container", XT guide)."""
    name = out.name
    if docker is None and use_config_docker and target.get("docker"):
        dockers = getattr(cfg, "dockers", {}) or {}
        if target["docker"] not in dockers:
            return  # an unknown reference: reported by the config's reference check
        docker = cfg.docker(str(target["docker"]))
    out.docker = dict(docker) if docker else None
    if out.docker:
        image = str(out.docker.get("image") or "")
        if image.startswith("azureml:"):
            if not ENVIRONMENT.match(image) and not REGISTRY_ENVIRONMENT.match(image):
                note.add("dockers", str(out.docker.get("name")), "image",
                         f"`{image}` is not a registered Azure ML environment reference; write `azureml:NAME:VERSION`, "
                         "`azureml:NAME@latest` or `azureml://registries/REGISTRY/environments/NAME/versions/VERSION`",
                         records=(("dockers", str(out.docker.get("name"))), ("compute-targets", name)))
            out.environment = image
        return
    if not quiet and not str(target.get("image-version") or "").strip():
        note.add("compute-targets", name, None,
                 f"target `{name}` has no `docker:` record and no `image-version:`; Singularity jobs run in an image "
                 "pinned by digest (set `docker:`), a registered environment (a docker record with `image: azureml:NAME:VERSION`), "
                 "or Singularity's curated image (set `image-version:`)")


def service_problems(cfg: Any) -> list[Problem]:
    """Workspace and virtual-cluster records whose ids Azure would refuse (e.g. XT's `notused`)."""
    out: list[Problem] = []
    note = Collector(cfg, out)
    for name, record in (getattr(cfg, "services", {}) or {}).items():
        if record.get("type") not in (*WORKSPACE_TYPES, "virtual_cluster"):
            continue
        for key in ID_KEYS:
            if str(record.get(key) or "").startswith("$env:"):
                note.add("external-services", name, key,
                         f"`{key}` is read as written, not from the environment: `$env:` is for secrets (password, "
                         "connection-string, ...); write the value here, or in ~/.config/singkit/config.yaml to keep it "
                         "out of the committed file")
        value = record.get("subscription-id")
        # an importer's FILL-IN- placeholder is named once, by configcheck.placeholder_problems
        if value is not None and not str(value).startswith(("$env:", "FILL-IN")) and not GUID.match(str(value)):
            note.add("external-services", name, "subscription-id",
                     f"subscription-id must be a GUID such as 00000000-0000-0000-0000-000000000000, not `{value}` "
                     "(`az account show --query id` prints yours)")
        identity = record.get("user-identity-id")
        if identity and str(identity).startswith("/") and not UAI_ARM.match(str(identity)):
            note.add("external-services", name, "user-identity-id",
                     "user-identity-id must be a user-assigned identity's ARM id (/subscriptions/S/resourceGroups/R/providers/"
                     "Microsoft.ManagedIdentity/userAssignedIdentities/NAME) or its name")
    return out


def experiment_problem(cfg: Any, experiment: Any, environ: Mapping[str, str] | None = None) -> Problem | None:
    """The experiment name as submit sends it (XT's `$username`, `$current_conda_env` expanded
    from `environ`, default os.environ: singkit.macros; `$job_id` stands for a job id)
    checked against Azure ML's rule (EXPERIMENT), at the line of `general.experiment`."""
    import os

    from singkit import macros

    text = str(experiment)
    expanded = str(macros.expand(text, os.environ if environ is None else environ, job_id="job1"))
    if EXPERIMENT.match(expanded):
        return None
    where = cfg.where("general", "experiment") if hasattr(cfg, "where") else None
    file, line, col = (where.file, where.line, where.col) if where else ("general.experiment", 1, 1)
    shown = f"`{text}`" + (f" (`{expanded}` once XT's macros are expanded at submit)" if expanded != text else "")
    left = macros.unexpanded(expanded)
    hint = f"; singkit cannot fill {', '.join(left)} at submit" if left else ""
    if "$username" in text and not macros.username(os.environ if environ is None else environ):
        hint += "; `$username` is $USER (else $USERNAME, $XT_USERNAME), and none is set here"
    return Problem(file, line, col, f"experiment {shown} is a name Azure ML refuses: start with a letter or digit and use "
                   f"only letters, digits, `_` and `-` (at most 255){hint}")


def located(cfg: Any, section: str, name: str, key: str | None, message: str) -> Exception:
    """A ConfigError at `section.name.key` in the file that set it; a UsageError when the
    config no longer has that record (a stored job's target)."""
    from singkit.exceptions import ConfigError, UsageError

    out: list[Problem] = []
    where = getattr(cfg, "where", None)
    if where is None or (where(section, name, key) if key else None) is None and where(section, name) is None:
        return UsageError(message)
    Collector(cfg, out).add(section, name, key, message)
    return ConfigError(out)
