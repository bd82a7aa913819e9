"""Azure ML compute clusters (AmlCompute): which targets submit to one, and what such a job holds.

A target on a `type: aml` workspace record may run on a compute cluster of that workspace (XT's
`aml` targets: `compute: gpu-cluster`, `vm-size: Standard_NC6s_v3`, `low-pri: false`) instead of a
Singularity virtual cluster. It goes through the same azure-ai-ml path with a smaller spec.

The rule (`is_cluster`), least surprising for configs that already use `aml` records for Singularity:
- a `type: singularity` workspace record: always Singularity;
- `compute:` that names a virtual cluster (a virtual_cluster/singularity/aml record, a
  virtualclusters ARM id, `azureml://…/virtualclusters/N`, `azureml:virtualclusters/N`): Singularity;
- `compute:` that is a compute's ARM id (`/subscriptions/S/resourceGroups/R/providers/
  Microsoft.MachineLearningServices/workspaces/W/computes/N`): compute cluster;
- otherwise (a bare name, or CLI v2's `azureml:NAME`): `vm-size` decides — an Azure VM size
  (`Standard_…`, what XT's aml targets and AmlCompute write) is a compute cluster, anything else
  (Singularity's instance types) a virtual cluster beside the workspace, as before.

Service facts, with their public sources:
- a command job's `compute` is `azureml:<compute_name>` (Microsoft Learn, "CLI (v2) command job YAML
  schema", reference-yaml-job-command.md); azure-ai-ml 1.35 sends it as the compute's ARM id in the
  workspace (operations/_job_operations.py `_resolve_compute_id` → NAMED_RESOURCE_ID_FORMAT);
- `resources.instance_count` is the node count; `resources.instance_type` applies to Kubernetes
  computes only (same page), so a cluster job sends no instance type: the cluster's `size` decides;
- low priority is the cluster's `tier` (`dedicated` | `low_priority`, REST `vmPriority` Dedicated |
  LowPriority; azure-ai-ml entities/_compute/aml_compute.py): "jobs consume low priority VMs by running
  on compute clusters created with low priority VMs … Per-job configuration isn't possible" (Microsoft
  Learn, "Use low priority VMs for batch deployments"). `queue_settings.job_tier` (Spot/Basic/Standard/
  Premium, entities/_job/queue_settings.py) is for serverless compute and Singularity, not clusters.
  So `low-pri` is checked against the cluster at submit, never sent. (XT's own aml backend,
  microsoft/ExperimentTools xtlib/backends/backend_aml.py, never reads `low-pri` either.)
- an Azure VM size is `Standard_` (or `Basic_`) + family + vCPUs [+ `-`constrained vCPUs] + features
  [+ `_`accelerator] [+ `_v`version], e.g. Standard_NC6s_v3, Standard_ND96amsr_A100_v4, Standard_E4-2s_v3
  (MicrosoftDocs/azure-compute-docs, articles/virtual-machines/sizes/overview.md, "naming conventions");
  Azure compares it without regard to case (`STANDARD_DS11_V2` in public AmlCompute scripts).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

CLUSTER = "compute_cluster"
VIRTUAL_CLUSTER = "virtual_cluster"
AZURE_VM_SIZE = re.compile(r"^(?:standard|basic)_[a-z]+\d+(?:-\d+)?[a-z]*(?:_[a-z0-9]+)?(?:_v\d+)?$", re.I)
AZURE_PREFIX = re.compile(r"^(?:standard|basic)_", re.I)
COMPUTE_ARM = re.compile(r"^(?:azureml:)?/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
                         r"Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)/computes/(?P<name>[^/]+)$", re.I)
# Compute names: 2 to 16 characters, letters, digits and `-`, starting with a letter (MicrosoftDocs
# azure-docs, machine-learning compute how-to: "Name must be between 2 to 16 characters … Valid characters
# are upper and lower case letters, digits, and the - character … Name must start with a letter").
CLUSTER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,15}$")
# Keys only Singularity reads: on a cluster job they would be dropped, so validate says so at each.
SINGULARITY_KEYS = ("sla", "priority", "group-policy", "ai-super-computer", "image-version", "scale-policy",
                    "interactive", "tensorboard-log-dir", "enable-azml-int", "location", "locations")
VC_FORM = re.compile(r"(?:^|[:/])virtualclusters/", re.I)

Note = Callable[..., None]  # target.Collector.add bound to nothing: (section, name, key, message, warning=)


def is_azure_vm_size(value: Any) -> bool:
    """`Standard_NC6s_v3` yes; `NC6_v3` (Singularity's spelling) or `Standard_NC` no."""
    return bool(AZURE_VM_SIZE.match(str(value or "").strip()))


def is_cluster(cfg: Any, target: Mapping[str, Any], service: Mapping[str, Any] | None) -> bool:
    """Does this Azure ML target run on a compute cluster (see the module docstring's rule)?"""
    if not service or service.get("type") != "aml":
        return False
    compute = str(target.get("compute") or "").strip().rstrip("/")
    if not compute or VC_FORM.search(compute):
        return False
    if COMPUTE_ARM.match(compute):
        return True
    if compute.startswith(("/", "azureml://")):
        return False
    name = compute[len("azureml:"):] if compute.startswith("azureml:") else compute
    records = getattr(cfg, "services", {}) or {}
    if any(n.lower() == name.lower() and (r or {}).get("type") in ("virtual_cluster", "singularity", "aml")
           for n, r in records.items()):
        return False  # a virtual cluster record (XT's 2022 configs name it as a `singularity` record)
    return bool(AZURE_PREFIX.match(str(target.get("vm-size") or "").strip()))


def vc_by_size(cfg: Any, target: Mapping[str, Any], service: Mapping[str, Any] | None) -> str | None:
    """The virtual cluster's name when a target on an `aml` workspace is a Singularity job only
    because its size is a Singularity instance type (a bare `compute:` name that no record
    defines, which a compute cluster could also have); None otherwise."""
    if not service or service.get("type") != "aml" or is_cluster(cfg, target, service):
        return None
    if not str(target.get("vm-size") or "").strip():
        return None  # no size yet: validate asks for one, naming both kinds
    compute = str(target.get("compute") or "").strip().rstrip("/")
    name = compute[len("azureml:"):] if compute.startswith("azureml:") else compute
    if not name or "/" in name or ":" in name:
        return None
    records = getattr(cfg, "services", {}) or {}
    return None if any(n.lower() == name.lower() for n in records) else name


def cluster_name(target: Mapping[str, Any], workspace: Any, note: Note) -> str:
    """The compute cluster's name from `compute:` (a name, `azureml:NAME`, or the compute's ARM id
    in the target's own workspace: a job runs only on its workspace's computes)."""
    name = str(target.get("name") or "?")
    compute = str(target.get("compute") or "").strip().rstrip("/")
    found = COMPUTE_ARM.match(compute)
    if found:
        theirs = (found["sub"].lower(), found["rg"].lower(), found["ws"].lower())
        ours = (workspace.subscription_id.lower(), workspace.resource_group.lower(), workspace.name.lower())
        if theirs != ours:
            note("compute-targets", name, "compute", f"compute `{compute}` belongs to workspace {found['ws']} "
                 f"({found['rg']}); a job runs on a compute of its own workspace, {workspace.name} "
                 f"({workspace.resource_group}): write `compute: {found['name']}` with a service record for that workspace")
        compute = found["name"]
    elif compute.startswith("azureml:"):
        compute = compute[len("azureml:"):]
    if not CLUSTER_NAME.match(compute):
        note("compute-targets", name, "compute", f"`{compute}` is not an Azure ML compute cluster name: 2 to 16 "
             "letters, digits or `-`, starting with a letter (e.g. `gpu-cluster`)")
    return compute


def check_vm_size(target: Mapping[str, Any], note: Note) -> str:
    """The target's Azure VM size (as written), checked against Azure's grammar; '' when unset.
    Singularity's catalog is not consulted: a cluster's sizes are Azure's, and the cluster decides."""
    name = str(target.get("name") or "?")
    size = str(target.get("vm-size") or "").strip()
    if size and not is_azure_vm_size(size):
        hint = f"; Singularity's instance types (`{size}`) are for virtual clusters" if not AZURE_PREFIX.match(size) else ""
        note("compute-targets", name, "vm-size", f"vm-size `{size}` is not an Azure VM size: Azure writes Standard_<family>"
             f"<vCPUs><features>[_<accelerator>][_v<version>], e.g. Standard_NC6s_v3 or Standard_ND96amsr_A100_v4{hint}")
    return size


def singularity_keys(target: Mapping[str, Any], note: Note) -> None:
    """Warn at each Singularity-only key of a compute-cluster target: nothing carries it to the job."""
    name = str(target.get("name") or "?")
    for key in SINGULARITY_KEYS:
        if target.get(key) is not None and not (key == "interactive" and target.get(key) is False):
            note("compute-targets", name, key, f"`{key}` is Singularity's; compute-targets.{name} runs on an Azure ML "
                 "compute cluster, whose job has no AISuperComputer block: it is not sent (the cluster decides its "
                 "VMs, region and priority)", warning=True)


def low_pri_on_singularity(target: Mapping[str, Any], note: Note) -> None:
    """`low-pri` (XT's compute-cluster key) on a Singularity target is refused: Singularity's own words
    for preemptible capacity are the SLA tier and the priority."""
    if target.get("low-pri") is None:
        return
    name = str(target.get("name") or "?")
    note("compute-targets", name, "low-pri", f"`low-pri` is for Azure ML compute clusters; compute-targets.{name} is a "
         "Singularity target: use `sla: basic` (preemptible) and `priority: low` instead")


def user_sku(cfg: Any, vm_size: str) -> dict[str, Any] | None:
    """The size's record under the user's `skus:` (its `gpus:` serve `processes-per-node: gpus`);
    singkit's shipped catalog holds Singularity's instance types only."""
    from singkit.singularity import catalog

    found = catalog.find(getattr(cfg, "skus", None) or {}, vm_size) if vm_size else None
    return found[1] if found else None


def needs_docker(target: Mapping[str, Any], note: Note) -> None:
    """A compute-cluster job runs a docker record's image: Singularity's curated image is not there."""
    if not target.get("docker"):
        name = str(target.get("name") or "?")
        note("compute-targets", name, None, f"target `{name}` runs on an Azure ML compute cluster and names no `docker:` "
             "record; set one (an image pinned by digest, or `image: azureml:NAME:VERSION`): Singularity's curated "
             "image (`image-version`) is not there")


def tier_of(low_pri: Any) -> str:
    """AmlCompute's `tier` that `low-pri` asks for."""
    return "low_priority" if low_pri else "dedicated"
