"""Singularity vm-sizes: normalizing what a target writes and finding it in the catalog.

The catalog itself is data (src/singkit/data/skus.yaml, merged with the config's `skus:`
section by `Config.skus`). The SDK accepts any `instance_type` string and the service only
rejects a bad one after queueing, so singkit checks it before anything leaves the machine.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

PREFIX = "Singularity."


def bare_size(vm_size: str) -> str:
    """`Singularity.ND40rs_v2` and `ND40rs_v2` both → `ND40rs_v2` (prefix matched in any case)."""
    text = str(vm_size).strip()
    if text.lower().startswith(PREFIX.lower()):
        text = text[len(PREFIX):]
    return text


def instance_type(name: str) -> str:
    """The `resources.instance_type` value for a catalog name."""
    return PREFIX + bare_size(name)


def find_sku(catalog: Mapping[str, Mapping[str, Any]], vm_size: str) -> tuple[str, dict[str, Any]] | None:
    """(catalog name, record) for a vm-size written with or without the prefix, in any case."""
    wanted = bare_size(vm_size)
    if wanted in catalog:
        return wanted, dict(catalog[wanted])
    by_lower = {bare_size(name).lower(): name for name in catalog}
    name = by_lower.get(wanted.lower())
    return (name, dict(catalog[name])) if name else None


def closest_sizes(catalog: Mapping[str, Any], vm_size: str, n: int = 3) -> list[str]:
    """Catalog names nearest to a mistyped size; case-insensitive, `Standard_` slips forgiven."""
    wanted = bare_size(vm_size).lower()
    if wanted.startswith("standard_"):
        wanted = wanted[len("standard_"):]
    lowered = {name.lower(): name for name in catalog}
    hits = difflib.get_close_matches(wanted, list(lowered), n=n, cutoff=0.5)
    return [lowered[h] for h in hits]


def unknown_size_message(catalog: Mapping[str, Any], vm_size: str) -> str:
    close = closest_sizes(catalog, vm_size)
    hint = ("did you mean " + " or ".join(f"`{c}`" for c in close) + "?") if close else \
        "add it under `skus:` in your config (gpus, gpu-type, memory-gb, price-per-hour)"
    return f"vm-size `{vm_size}` is not in the SKU catalog; {hint}"


def gpu_count(sku: Mapping[str, Any]) -> int:
    return int(sku.get("gpus") or 0)


def describe(name: str, sku: Mapping[str, Any]) -> str:
    """One line for people: `ND40rs_v2: 8 x V100 32GB, 40 CPUs, 672 GB, ~$22.03/h`."""
    parts = []
    gpus = gpu_count(sku)
    if gpus:
        memory = f" {sku['gpu-memory-gb']:g}GB" if sku.get("gpu-memory-gb") else ""
        parts.append(f"{gpus} x {sku.get('gpu-type', 'GPU')}{memory}")
    else:
        parts.append("no GPU")
    if sku.get("cpus"):
        parts.append(f"{sku['cpus']} CPUs")
    if sku.get("memory-gb"):
        parts.append(f"{sku['memory-gb']:g} GB")
    if sku.get("price-per-hour") is not None:
        parts.append(f"~${float(sku['price-per-hour']):.2f}/h")
    return f"{name}: " + ", ".join(parts)
