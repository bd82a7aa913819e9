"""Singularity instance types: the names a target's `vm-size` uses, and what each one is.

The name after `Singularity.` in `resources.instance_type` is Singularity's own instance-type
name (`ND12_H100_v5`, `ND96amrs_A100_v4`, `NC6_v3`, `ND40s_v2g1`), not an Azure VM size.
The shipped catalog (src/singkit/data/instance_types.yaml, each family citing its public
source) is merged with the config's `skus:` section by `Config.skus`. Singularity adds sizes
faster than any shipped list, so an unknown name is a warning offline; only the virtual
cluster's own list (online, see singkit.singularity.offers) can refuse one.

A catalog record: {gpus: int, gpu-type: str, vendor: NVIDIA|AMD|none, gpu-memory-gb,
family, source, ...}; names are matched with or without the prefix, in any case.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

PREFIX = "Singularity."
DATA = Path(__file__).resolve().parent.parent / "data" / "instance_types.yaml"
VENDORS = ("NVIDIA", "AMD", "none")

# GPU model tokens in instance-type names → vendor (amlt/XT names: ..._A100_v4, ..._MI300X_v5).
_TOKEN = re.compile(r"_(A100|A10|H100|H200|GB200|B200|T4|V100|K80|P40|P100|MI\d+X?)(?:_|$)", re.I)
_NUMBER = re.compile(r"^[A-Za-z]+?(\d+)")


@functools.lru_cache(maxsize=1)
def shipped() -> dict[str, dict[str, Any]]:
    """The shipped catalog: name → record (plain dicts; read once per process).

    Parsing the YAML with pure-Python ruamel costs ~70 ms, so the parsed catalog is kept as
    JSON in the user's cache folder, keyed by the file's content hash."""
    raw = DATA.read_bytes()
    cache = _cache_dir() / f"instance_types-{hashlib.sha256(raw).hexdigest()[:16]}.json"
    try:
        return json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    found = parse(raw.decode("utf-8"))
    try:
        from singkit.fsutil import atomic_write

        atomic_write(cache, json.dumps(found))
    except OSError:
        pass  # a read-only home: parse again next time
    return found


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "singkit"


def parse(text: str) -> dict[str, dict[str, Any]]:
    """The catalog file's families flattened: name → {family fields, size fields, family}."""
    from ruamel.yaml import YAML

    doc = YAML(typ="safe", pure=True).load(text) or {}
    out: dict[str, dict[str, Any]] = {}
    for family, body in (doc.get("families") or {}).items():
        shared = {k: v for k, v in body.items() if k != "sizes"}
        for name, fields in (body.get("sizes") or {}).items():
            out[str(name)] = {**shared, **(fields or {}), "family": str(family)}
    return out


def bare(vm_size: str) -> str:
    """`Singularity.ND40rs_v2` and `ND40rs_v2` both → `ND40rs_v2` (prefix in any case)."""
    text = str(vm_size).strip()
    while text.lower().startswith(PREFIX.lower()):  # `Singularity.Singularity.X` too: one prefix is written
        text = text[len(PREFIX):]
    return text


def instance_type(name: str) -> str:
    """The `resources.instance_type` value: `Singularity.` + the size as named."""
    return PREFIX + bare(name)


def find(catalog: Mapping[str, Mapping[str, Any]], vm_size: str) -> tuple[str, dict[str, Any]] | None:
    """(catalog spelling, record) for a size written with or without the prefix, in any case."""
    wanted = bare(vm_size)
    if wanted in catalog:
        return wanted, dict(catalog[wanted])
    name = next((n for n in catalog if bare(n).lower() == wanted.lower()), None)
    return (name, dict(catalog[name])) if name else None


def gpus(record: Mapping[str, Any]) -> int:
    """The record's GPU count; 0 when it has none, or a value that is no count (the schema
    reports that one at its line)."""
    value = record.get("gpus")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def vendor(record: Mapping[str, Any] | None, name: str = "") -> str | None:
    """NVIDIA, AMD or none (no GPU) for a record; for an unknown name, what its spelling says
    (`MI…` → AMD, another GPU token → NVIDIA), else None."""
    if record:
        given = record.get("vendor")
        if given:
            return str(given)
        return "none" if not gpus(record) else "NVIDIA"
    token = gpu_token(name)
    if token:
        return "AMD" if token.upper().startswith("MI") else "NVIDIA"
    return None


def gpu_token(name: str) -> str | None:
    found = _TOKEN.search(bare(name))
    return found.group(1).upper() if found else None


def _number(name: str) -> str | None:
    found = _NUMBER.match(bare(name))
    return found.group(1) if found else None


def nearest(catalog: Mapping[str, Mapping[str, Any]], vm_size: str, n: int = 3) -> list[str]:
    """Catalog names close to an unknown size, never of another GPU model, GPU count or vendor
    than the typed one unless nothing of the same kind is close.

    What the typed name says: its GPU token (`_H100_`, `_MI300X_`) and its leading number
    (vCPUs, which within a family scale with the GPU count: ND12 = 1 H100, ND96 = 8)."""
    wanted = bare(vm_size)
    low = wanted.lower().removeprefix("standard_")
    names = list(catalog)
    token, number = gpu_token(wanted), _number(low)
    kind = vendor(None, wanted)

    def same_model(name: str) -> bool:
        return token is None or gpu_token(name) == token

    def same_vendor(name: str) -> bool:
        return kind is None or vendor(catalog[name], name) == kind

    tiers = [
        [m for m in names if same_model(m) and _number(m) == number and _series(m) == _series(low)],
        [m for m in names if same_model(m) and _number(m) == number],
        [m for m in names if same_model(m) and same_vendor(m)],
        [m for m in names if same_vendor(m)],
        names,
    ]
    import difflib

    for pool in tiers:
        by_lower = {bare(m).lower(): m for m in pool}
        hits = difflib.get_close_matches(low, list(by_lower), n=n, cutoff=0.6)
        if hits:
            return [by_lower[h] for h in hits]
    return []


def _series(name: str) -> tuple[str, str]:
    """(letters before the number, version suffix): `NC24rs_v3` → ("nc", "_v3")."""
    low = bare(name).lower()
    letters = re.match(r"^[a-z]+", low)
    version = re.search(r"_v\d+$", low)
    return (letters.group(0) if letters else "", version.group(0) if version else "")


# Amulet's sku shorthand, `[NODESx][MEMORY](G|C)[COUNT][-MODEL][-NvLink][-IB]` (`G8`,
# `1x80G8-A100-NvLink`, `1xC1`), as parsed by HSPK/azure_jobs src/azure_jobs/core/sku.py.
_AMULET = re.compile(r"^(?:(?P<nodes>\d+)\s*x)?\s*(?P<memory>\d+)?(?P<kind>[CG])(?P<count>\d+)?(?:-(?P<rest>.+))?$", re.I)


def parse_amulet(sku: str) -> dict[str, Any] | None:
    """Amulet's sku shorthand as its parts, or None when `sku` is not one.

    `2x40G4-A100` → {"nodes": 2, "memory": 40, "cpu": False, "count": 4, "models": ["A100"]};
    `G8` → {"nodes": None, "memory": None, "cpu": False, "count": 8, "models": []}; `C1` → cpu.
    memory is GB per GPU (`80G8-A100` = 8 x A100 80GB); `-NvLink`/`-IB` flags are dropped, as
    HSPK/azure_jobs src/azure_jobs/core/sku.py SkuSpec.parse drops them for matching."""
    found = _AMULET.match(bare(sku).strip())
    if not found:
        return None
    return {"nodes": int(found["nodes"]) if found["nodes"] else None,
            "memory": int(found["memory"]) if found["memory"] else None,
            "cpu": found["kind"].upper() == "C",
            "count": int(found["count"] or 1),
            "models": [p.upper() for p in (found["rest"] or "").split("-") if p and p.upper() not in ("NVLINK", "IB")]}


def amulet_sizes(catalog: Mapping[str, Mapping[str, Any]], parsed: Mapping[str, Any]) -> list[str]:
    """Catalog sizes (in catalog order) that have what a parse_amulet() result asks for per node:
    no GPU for `C…`; else that GPU count, of that model and GPU memory when the sku names them."""
    if parsed["cpu"]:
        return [n for n, r in catalog.items() if not gpus(r)]
    models, memory = parsed["models"], parsed["memory"]
    return [n for n, r in catalog.items() if gpus(r) == parsed["count"]
            and (not models or str(r.get("gpu-type", "")).upper() in models)
            and (memory is None or float(r.get("gpu-memory-gb") or 0) == memory)]


def amulet_hint(catalog: Mapping[str, Mapping[str, Any]], vm_size: str) -> str | None:
    """For an Amulet sku (`G8`, `80G8-A100`): what it asks for and the catalog sizes that
    have it; None when the name is not one."""
    found = parse_amulet(vm_size)
    if not found:
        return None
    if found["cpu"]:
        what = "CPU only"
    else:
        what = f"{found['count']} x {' '.join(found['models']) or 'GPU'}" + (f" {found['memory']}GB" if found["memory"] else "")
    sizes = amulet_sizes(catalog, found)
    nodes = f"; its `{found['nodes']}x` is `nodes: {found['nodes']}`" if found["nodes"] else ""
    offer = ("sizes with that: " + ", ".join(f"`{n}`" for n in sizes[:4])) if sizes else "no size in singkit's catalog has that"
    return f"`{vm_size}` is Amulet's sku shorthand ({what} per node); Singularity names an instance type — {offer}{nodes}"


# Azure VM size names people write for Singularity, and Singularity's name of the same kind of
# machine (same GPU model, count and memory): Azure's names from Microsoft Learn "Sizes for virtual
# machines in Azure" (ND H100 v5, NDm A100 v4, ND A100 v4, NCv3, NC A100 v4 series); Singularity's
# from HSPK/azure_jobs src/azure_jobs/core/sku.py _FAMILY_MAP (NDH100v5 8 → ND96r_H100_v5, NDAMv4 8 →
# ND96amrs_A100_v4) and this catalog's families (NDv4, NCv3, NC_A100_v4).
AZURE_SPELLINGS = {
    "ND96isr_H100_v5": "ND96r_H100_v5",
    "ND96amsr_A100_v4": "ND96amrs_A100_v4",
    "ND96asr_v4": "ND96rs_v4",
    "NC6s_v3": "NC6_v3",
    "NC12s_v3": "NC12_v3",
    "NC24s_v3": "NC24_v3",
    "NC24rs_v3": "NC24r_v3",
    "NC24ads_A100_v4": "NC24ad_A100_v4",
}


def azure_spelling(vm_size: str) -> str | None:
    """Singularity's name for an Azure VM size name in AZURE_SPELLINGS (with or without `Standard_`)."""
    plain = _unstandard(bare(vm_size))
    return next((v for k, v in AZURE_SPELLINGS.items() if k.lower() == plain.lower()), None)


def azure_name(name: str) -> str | None:
    """The Azure VM size (`Standard_…`) for a Singularity instance-type name: azure_spelling's
    inverse over AZURE_SPELLINGS (`NC6_v3` → `Standard_NC6s_v3`); None for a name not mapped."""
    plain = bare(name).lower()
    return next((f"Standard_{k}" for k, v in AZURE_SPELLINGS.items() if v.lower() == plain), None)


def azure_equivalent(catalog: Mapping[str, Mapping[str, Any]], vm_size: str) -> tuple[str, dict[str, Any]] | None:
    """(Singularity's name, its catalog record) for an Azure VM size name in AZURE_SPELLINGS, e.g.
    `Standard_NC24ads_A100_v4` → (`NC24ad_A100_v4`, 1 x A100): the same machine (same GPU model,
    count and memory, per the sources above AZURE_SPELLINGS), so its GPU count serves
    `processes-per-node: gpus` on either spelling. None for a size not mapped or not in `catalog`."""
    match = azure_spelling(vm_size) if vm_size else None
    return (match, dict(catalog[match])) if match and match in catalog else None


def _unstandard(name: str) -> str:
    return name[len("Standard_"):] if name.lower().startswith("standard_") else name


def unknown_message(catalog: Mapping[str, Mapping[str, Any]], vm_size: str) -> str:
    amulet = amulet_hint(catalog, vm_size)
    if amulet:
        return amulet + " (`invoke config.skus` lists them)"
    tail = " (the virtual cluster decides: `invoke config.skus --target=…` asks it)"
    match = azure_spelling(vm_size)
    if match and match in catalog:
        return (f"`{vm_size}` is an Azure VM size name; Singularity's instance type for that machine is `{match}` "
                f"({describe(match, catalog[match]).split(': ', 1)[1]}){tail}")
    plain = _unstandard(bare(vm_size))
    said = (f"`{vm_size}` is an Azure VM size name; Singularity's instance types have no `Standard_` prefix"
            if plain != bare(vm_size) else f"vm-size `{vm_size}` is not in singkit's instance-type catalog")
    token = gpu_token(plain)
    if token and not any(gpu_token(n) == token for n in catalog) and \
            not any(str(r.get("gpu-type", "")).upper() == token for r in catalog.values()):
        hint = f"no size in singkit's catalog has {token} GPUs; add it under `skus:` (gpus, gpu-type, vendor) if the cluster offers it"
    else:
        close = nearest(catalog, plain)
        hint = ("nearest known: " + ", ".join(f"`{c}`" for c in close)) if close else \
            "add it under `skus:` (gpus, gpu-type, vendor) if it is a new size"
    return f"{said}; {hint}{tail}"


def describe(name: str, record: Mapping[str, Any]) -> str:
    """One line for people: `ND40rs_v2: 8 x V100 32GB (NVIDIA)`."""
    count = gpus(record)
    if not count:
        what = "no GPU"
    else:
        memory = f" {float(record['gpu-memory-gb']):g}GB" if record.get("gpu-memory-gb") else ""
        what = f"{count} x {record.get('gpu-type', 'GPU')}{memory} ({vendor(record)})"
    parts = [what]
    if record.get("cpus"):
        parts.append(f"{record['cpus']} CPUs")
    if record.get("memory-gb"):
        parts.append(f"{float(record['memory-gb']):g} GB")
    return f"{name}: " + ", ".join(parts)


def families(catalog: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """family → names, in catalog order (sizes from `skus:` without a family under `config`)."""
    out: dict[str, list[str]] = {}
    for name, record in catalog.items():
        out.setdefault(str(record.get("family") or "config"), []).append(name)
    return out


def vendors_of(catalog: Mapping[str, Mapping[str, Any]], sizes: Iterable[str]) -> set[str]:
    """The GPU vendors of the given sizes that say one (unknown and CPU sizes left out)."""
    found = set()
    for size in sizes:
        hit = find(catalog, size)
        kind = vendor(hit[1] if hit else None, size)
        if kind in ("NVIDIA", "AMD"):
            found.add(kind)
    return found
