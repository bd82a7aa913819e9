"""What a virtual cluster offers: the instance types it holds quota for, with quota per SLA tier.

Singularity adds instance types faster than any shipped list, so the virtual cluster decides.
singkit asks it with the two ARM reads public Singularity tooling makes (HSPK/azure_jobs,
src/azure_jobs/az_client/arm/vc.py and arm/instance_types.py, written to match
`amlt target info`; azure-ai-ml's VirtualClusterOperations.get uses the same api-version):

    GET {vc id}                                               properties.managed.{locations, quotas}
    GET /subscriptions/S/providers/Microsoft.MachineLearningServices/locations/R/instanceTypeSeries
                                                              value[]: name, instanceTypeSeriesId, numberOfGPUs

A cluster offers the instance types of the series it holds quota for (limit > 0 in some SLA
tier), in its regions. The answer is cached a day per cluster in ~/.cache/singkit/vc/.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

API_VERSION = "2021-03-01-preview"
TTL = 24 * 3600.0
RECHECK = 300.0  # a size missing from a cached list is asked again unless the list is this fresh
PROVIDER = "/providers/Microsoft.MachineLearningServices"


@dataclass
class Offer:
    name: str  # without `Singularity.`
    series: str
    gpus: int
    quota: dict[str, int] = field(default_factory=dict)  # SLA tier → limit (the series' quota)


@dataclass
class ClusterOffers:
    compute: str  # the virtual cluster's ARM id
    locations: list[str]
    offers: list[Offer]
    fetched: float
    from_cache: bool = False

    def find(self, vm_size: str) -> Offer | None:
        wanted = vm_size.strip().lower().removeprefix("singularity.")
        return next((o for o in self.offers if o.name.lower() == wanted), None)

    @property
    def names(self) -> list[str]:
        return [o.name for o in self.offers]


def parse(compute: str, cluster: Mapping[str, Any], rows: list[Mapping[str, Any]], now: float) -> ClusterOffers:
    managed = (cluster.get("properties") or {}).get("managed") or {}
    quota: dict[str, dict[str, int]] = {}
    for region in (managed.get("quotas") or {}).values():
        for item in (region or {}).get("limits") or []:
            tier = str(item.get("slaTier") or "")
            if item.get("id") and tier:
                tiers = quota.setdefault(str(item["id"]), {})
                tiers[tier] = max(tiers.get(tier, 0), int(item.get("limit") or 0))
    held = {series for series, tiers in quota.items() if any(v > 0 for v in tiers.values())}
    offers, seen = [], set()
    for row in rows:
        name = str(row.get("name") or "").removeprefix("Singularity.")
        series = str(row.get("instanceTypeSeriesId") or "")
        if name and series in held and name not in seen:
            seen.add(name)
            offers.append(Offer(name, series, int(row.get("numberOfGPUs") or 0), quota[series]))
    return ClusterOffers(compute, [str(x) for x in managed.get("locations") or []], offers, now)


def fetch(get: Callable[[str, str], Any], compute: str, now: float) -> ClusterOffers:
    """Ask the cluster (`get(path, api_version)` → JSON) for its regions, quota and instance types."""
    cluster = get(compute, API_VERSION)
    subscription = compute.split("/")[2]
    rows: list[Mapping[str, Any]] = []
    for region in ((cluster.get("properties") or {}).get("managed") or {}).get("locations") or []:
        answer = get(f"/subscriptions/{subscription}{PROVIDER}/locations/{region}/instanceTypeSeries", API_VERSION)
        rows.extend(answer.get("value") or [])
    return parse(compute, cluster, rows, now)


def cache_path(environ: Mapping[str, str], compute: str) -> Path:
    from singkit.environment import cache_dir

    key = hashlib.sha256(compute.lower().encode()).hexdigest()[:24]
    return cache_dir(environ) / "vc" / f"{key}.json"


def cached(environ: Mapping[str, str], compute: str, now: float) -> ClusterOffers | None:
    """The cluster's answer when it is less than a day old."""
    try:
        data = json.loads(cache_path(environ, compute).read_text(encoding="utf-8"))
        found = ClusterOffers(data["compute"], data["locations"], [Offer(**o) for o in data["offers"]], data["fetched"], True)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return found if 0 <= now - found.fetched < TTL and found.compute.lower() == compute.lower() else None


def save(environ: Mapping[str, str], found: ClusterOffers) -> None:
    from singkit.fsutil import atomic_write

    try:
        atomic_write(cache_path(environ, found.compute), json.dumps(asdict(found)))
    except OSError:
        pass  # a read-only home: ask again next time


def offers_for(get: Callable[[str, str], Any], environ: Mapping[str, str], compute: str, *,
               refresh: bool = False, want: str | None = None, now: float | None = None) -> ClusterOffers:
    """The cluster's offers from the cache (a day), else asked; a `want`ed size missing from a
    cached list older than RECHECK is asked again (the cluster may have gained quota)."""
    now = time.time() if now is None else now
    found = None if refresh else cached(environ, compute, now)
    if found is not None and want and found.find(want) is None and now - found.fetched >= RECHECK:
        found = None
    if found is None:
        found = fetch(get, compute, now)
        save(environ, found)
    return found
