"""Virtual clusters and Singularity's instance-type catalog, as the service answers them.

Shapes follow what public Singularity tooling reads (HSPK/azure_jobs,
src/azure_jobs/az_client/arm/vc.py and arm/instance_types.py, written to match
`amlt target info`; azure-ai-ml's own VirtualClusterOperations.get uses the same
api-version 2021-03-01-preview):

  GET {RG}/virtualclusters/{vc}
      properties.managed.locations: [region, ...]
      properties.managed.quotas.{region}.limits[]: {id: <series>, slaTier, limit, used, name}
      properties.managed.defaultGroupPolicyOverallQuotas.limits[]: per-user caps (no slaTier)
  GET /subscriptions/{s}/providers/Microsoft.MachineLearningServices/locations/{region}/instanceTypeSeries
      value[]: {name: "Singularity.<size>", instanceTypeSeriesId: <series>, numberOfGPUs,
                numberOfCores, memoryGiB, description}

A VC offers the instance types of the series it holds quota for, in its regions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .routing import RG, Reply, Req, not_found, route

if TYPE_CHECKING:
    import re

    from .server import StandIn

# (name, series, GPUs, cores, memory GiB, accelerator text): the stand-in's regional catalog.
INSTANCE_TYPES = [
    ("NC6_v3", "NCv3", 1, 6, 112, "NVIDIA V100 16GB GPU x 1"),
    ("NC24_v3", "NCv3", 4, 24, 448, "NVIDIA V100 16GB GPU x 4"),
    ("ND40rs_v2", "NDv2", 8, 40, 672, "NVIDIA V100 32GB GPU x 8, NVLink, IB"),
    ("ND12am_A100_v4", "NDAMv4", 1, 12, 238, "NVIDIA A100 80GB GPU x 1"),
    ("ND96amrs_A100_v4", "NDAMv4", 8, 96, 1900, "NVIDIA A100 80GB GPU x 8, NVLink, IB"),
    ("ND12_H100_v5", "NDH100v5", 1, 12, 237, "NVIDIA H100 80GB GPU x 1"),
    ("ND96r_H100_v5", "NDH100v5", 8, 96, 1900, "NVIDIA H100 80GB GPU x 8, NVLink, IB"),
    ("ND96isr_MI300X_v5", "NDMI300Xv5", 8, 96, 1850, "AMD MI300X 192GB GPU x 8, IB"),
    ("D4_v3", "Dv3", 0, 4, 16, "vCPU: 4, Memory GiB: 16"),
]


@dataclass
class VirtualCluster:
    name: str
    locations: list[str]
    quota: dict[str, dict[str, int]]  # series -> {slaTier: limit}
    subscription_id: str = ""
    resource_group: str = ""
    user_cap: dict[str, int] = field(default_factory=dict)  # series -> per-user limit

    def offers(self) -> list[str]:
        """`Singularity.<size>` names this VC can run (series with quota > 0)."""
        held = {s for s, tiers in self.quota.items() if any(v > 0 for v in tiers.values())}
        return [f"Singularity.{n}" for n, series, *_ in INSTANCE_TYPES if series in held]


def vc_resource(si: "StandIn", vc: VirtualCluster) -> dict:
    limits = [{"id": series, "slaTier": tier, "limit": limit, "used": 0,
               "name": f"Singularity {series} Family GPUs"} for series, tiers in vc.quota.items() for tier, limit in tiers.items()]
    return {
        "id": si.virtual_cluster_id(vc.name, vc.subscription_id, vc.resource_group), "name": vc.name,
        "type": "Microsoft.MachineLearningServices/virtualclusters", "location": vc.locations[0],
        "properties": {"managed": {
            "enabled": True, "locations": list(vc.locations),
            "quotas": {region: {"limits": limits} for region in vc.locations},
            "defaultGroupPolicyOverallQuotas": {"limits": [{"id": s, "limit": n, "used": 0} for s, n in vc.user_cap.items()]},
        }},
    }


@route("GET", RG + r"/virtualclusters/(?P<vc>[^/]+)")
def virtual_cluster(si: "StandIn", req: Req, m: "re.Match[str]") -> Reply:
    vc = si.find_virtual_cluster(m["sub"], m["rg"], m["vc"])
    if vc is None:
        return not_found(f"Virtual cluster {m['vc']}")
    si.state.vc_reads += 1
    return Reply(200, vc_resource(si, vc))


@route("GET", r"/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.MachineLearningServices/locations/(?P<region>[^/]+)/instanceTypeSeries")
def instance_type_series(si: "StandIn", req: Req, m: "re.Match[str]") -> Reply:
    rows = [{"name": f"Singularity.{n}", "instanceTypeSeriesId": series, "numberOfGPUs": gpus, "numberOfCores": cores,
             "memoryGiB": memory, "description": f"Accelerator: {text}, vCPU: {cores}, Memory GiB: {memory}"}
            for n, series, gpus, cores, memory, text in INSTANCE_TYPES]
    return Reply(200, {"value": rows})
