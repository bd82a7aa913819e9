"""Which GPU vendor a wrapped image is for: `SINGULARITY_IMAGE_ACCELERATOR` in the wrap.

A docker record serves the Singularity targets that name it; their instance types' vendor
(singkit.singularity.catalog) decides, unless the record sets `accelerator:`.
"""

from __future__ import annotations

from typing import Any

from singkit.exceptions import Problem
from singkit.singularity import catalog
from singkit.singularity.target import Collector, is_singularity


def users_of(cfg: Any, docker_name: str) -> list[str]:
    """The Singularity targets that run in a docker record."""
    return [n for n, t in (getattr(cfg, "targets", {}) or {}).items()
            if t.get("docker") == docker_name and is_singularity(cfg, t)]


def accelerator(cfg: Any, docker_name: str) -> str:
    """`SINGULARITY_IMAGE_ACCELERATOR` for a wrap: the record's `accelerator:` when set, else
    the GPU vendor of the Singularity targets that use it (AMD for MI200/MI300X sizes), else
    NVIDIA (the value in Singularity's published wrap recipe, as the XT guide quotes it)."""
    record = (getattr(cfg, "dockers", {}) or {}).get(docker_name) or {}
    if record.get("accelerator"):
        return str(record["accelerator"])
    skus = getattr(cfg, "skus", None) or catalog.shipped()
    sizes = [str(cfg.targets[n].get("vm-size") or "") for n in users_of(cfg, docker_name)]
    vendors = catalog.vendors_of(skus, sizes)
    return "AMD" if vendors == {"AMD"} else "NVIDIA"


def accelerator_problems(cfg: Any) -> list[Problem]:
    """A docker record without `accelerator:` that targets of both GPU vendors use: one wrap
    cannot be validated for both (warning)."""
    out: list[Problem] = []
    note = Collector(cfg, out)
    skus = None
    for name, record in (getattr(cfg, "dockers", {}) or {}).items():
        if record.get("accelerator") or not record.get("sing-wrap"):
            continue
        users = users_of(cfg, name)
        if len(users) < 2:  # one target is one vendor: a config without two never reads the catalog
            continue
        if skus is None:
            skus = getattr(cfg, "skus", None) or catalog.shipped()
        by_vendor: dict[str, list[str]] = {}
        for user in users:
            for kind in catalog.vendors_of(skus, [str(cfg.targets[user].get("vm-size") or "")]):
                by_vendor.setdefault(kind, []).append(user)
        if len(by_vendor) > 1:
            said = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(by_vendor.items()))
            note.add("dockers", name, None, f"docker record `{name}` is wrapped for one accelerator but used by targets of "
                     f"both GPU vendors ({said}); it is wrapped for NVIDIA — set `accelerator:` or use one record per vendor",
                     warning=True)
    return out
