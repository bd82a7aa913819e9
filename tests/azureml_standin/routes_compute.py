"""Azure ML compute clusters (AmlCompute) of the workspace, and how a job on one is judged.

  GET {WS}/computes/{name}   (ml_client.compute.get) -> ComputeResource: properties.computeType
      "AmlCompute", properties.properties.{vmSize, vmPriority Dedicated|LowPriority,
      scaleSettings.{minNodeCount, maxNodeCount, nodeIdleTimeBeforeScaleDown}}; the shape
      azure-ai-ml 1.35 reads in entities/_compute/aml_compute.py (AmlCompute._load_from_rest).

A job whose computeId is `{WS}/computes/{name}` (what the SDK sends for `compute: azureml:NAME`):
- on a compute the workspace lacks, fails with UserError "AzureMLCompute cluster NAME does not
  exist" (the service's answer quoted in Azure/MachineLearningNotebooks#906, where the job was
  accepted and then failed);
- asking more nodes than the cluster's maximum fails with "Requested N nodes but AzureMLCompute
  cluster only has M maximum nodes." (the service's message as public Azure ML troubleshooting
  notes quote it; whether the service says it at the PUT or when the job starts is not public, so
  the stand-in accepts the PUT and fails the job, as for the compute above);
- an AISuperComputer block (or an instance type) on it is accepted and ignored: no public source
  shows the service refusing one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .routing import WS, Reply, Req, not_found, route

if TYPE_CHECKING:
    from .server import StandIn

TIERS = {"dedicated": "Dedicated", "low_priority": "LowPriority"}  # AmlCompute tier -> REST vmPriority


@dataclass
class ComputeCluster:
    name: str
    vm_size: str = "Standard_NC6s_v3"
    max_nodes: int = 4
    min_nodes: int = 0
    tier: str = "dedicated"  # dedicated | low_priority


def compute_resource(si: "StandIn", c: ComputeCluster) -> dict:
    return {
        "id": f"{si.workspace_id}/computes/{c.name}", "name": c.name, "location": si.location,
        "type": "Microsoft.MachineLearningServices/workspaces/computes", "tags": {},
        "properties": {
            "computeType": "AmlCompute", "computeLocation": si.location, "provisioningState": "Succeeded",
            "description": "", "isAttachedCompute": False, "disableLocalAuth": True,
            "properties": {
                "vmSize": c.vm_size, "vmPriority": TIERS[c.tier], "osType": "Linux",
                "scaleSettings": {"maxNodeCount": c.max_nodes, "minNodeCount": c.min_nodes,
                                  "nodeIdleTimeBeforeScaleDown": "PT120S"},
                "remoteLoginPortPublicAccess": "Disabled", "enableNodePublicIp": True,
                "currentNodeCount": 0, "targetNodeCount": 0, "allocationState": "Steady",
            },
        },
    }


@route("GET", WS + r"/computes/(?P<name>[^/]+)")
def compute_get(si: "StandIn", req: Req, m: "re.Match[str]") -> Reply:
    found = si.find_compute(m["name"])
    return Reply(200, compute_resource(si, found)) if found else not_found(f"Compute {m['name']}")


COMPUTE_ID = re.compile(r"/workspaces/[^/]+/computes/(?P<name>[^/]+)$", re.I)


def cluster_failure(si: "StandIn", props: dict) -> str | None:
    """Why a job on a compute cluster fails at once (None: it may run, or it is not a cluster job)."""
    found = COMPUTE_ID.search(str(props.get("computeId") or ""))
    if found is None:
        return None
    cluster = si.find_compute(found["name"])
    if cluster is None:
        return f"AzureMLCompute cluster {found['name']} does not exist"
    nodes = int((props.get("resources") or {}).get("instanceCount") or 1)
    if nodes > cluster.max_nodes:
        return f"Requested {nodes} nodes but AzureMLCompute cluster only has {cluster.max_nodes} maximum nodes."
    return None
