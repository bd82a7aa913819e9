"""`resources.properties.AISuperComputer`: the Singularity knobs azure-ai-ml passes through unchecked.

`load_job(...)._validate()` accepts any mapping under `resources.properties`, and the service
only complains after the job is queued, so singkit checks the values of the keys it knows.
The known key set is the one azure-ai-ml's own internal AISuperComputerConfiguration has
(1.35, azure/ai/ml/_restclient/.../models: AISuperComputerConfiguration); keys are written in
the camelCase the Singularity docs use, accepted in any case, with hyphens or underscores.
Singularity knows more keys than the SDK (e.g. `groupPolicyName`, used in public job files),
so an unknown key passes through to the service with a warning.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Protocol

AISC = "AISuperComputer"

KEYS = (
    "instanceType", "instanceTypes", "imageVersion", "location", "locations",
    "aiSuperComputerStorageData", "interactive", "scalePolicy", "virtualClusterArmId",
    "tensorboardLogDirectory", "sshPublicKey", "sshPublicKeys", "enableAzmlInt", "priority",
    "slaTier", "suspendOnIdleTimeHours", "userAlias", "groupPolicyName",
)
# target key → AISuperComputer key it sets (the SDK's names above; groupPolicyName: see GROUP_POLICY)
TARGET_KNOBS = {
    "group-policy": "groupPolicyName",
    "tensorboard-log-dir": "tensorboardLogDirectory",
    "enable-azml-int": "enableAzmlInt",
}
SCALE_POLICY_KEYS = (
    "autoScaleInstanceTypeCountSet", "autoScaleIntervalInSec", "maxInstanceTypeCount", "minInstanceTypeCount",
)
STORAGE_REFERENCE_KEYS = ("containerName", "relativePath")

# singkit's lower-case config values → the service's spelling
SLA_TIERS = {"premium": "Premium", "standard": "Standard", "basic": "Basic"}
PRIORITIES = {"low": "Low", "medium": "Medium", "high": "High"}

_TYPES: dict[str, type | tuple[type, ...]] = {
    "interactive": bool, "enableAzmlInt": bool, "imageVersion": str, "location": str, "userAlias": str,
    "tensorboardLogDirectory": str, "sshPublicKey": str, "instanceType": str, "virtualClusterArmId": str,
    "groupPolicyName": str,
    "locations": list, "instanceTypes": list, "sshPublicKeys": list, "suspendOnIdleTimeHours": (int, float),
    "scalePolicy": dict, "aiSuperComputerStorageData": dict,
}


def _squash(key: str) -> str:
    return str(key).replace("-", "").replace("_", "").lower()


def canonical(key: str, known: tuple[str, ...] = KEYS) -> str | None:
    """`image-version`, `image_version`, `ImageVersion` → `imageVersion`; None if unknown."""
    by_squash = {_squash(k): k for k in known}
    return by_squash.get(_squash(key))


Keyed = tuple[str, str]  # (a key as written, a message about it)


def _unknown(key: str, known: tuple[str, ...], where: str) -> str:
    close = difflib.get_close_matches(_squash(key), [_squash(k) for k in known], n=1, cutoff=0.6)
    hint = f"did you mean `{canonical(close[0], known)}`?" if close else "known keys: " + ", ".join(known)
    return f"unknown key `{key}` in {where}; {hint}"


def normalize(properties: Mapping[str, Any], where: str = AISC) -> tuple[dict[str, Any], list[Keyed], list[Keyed]]:
    """(canonical-keyed copy of an AISuperComputer mapping, errors, warnings), each problem as
    (the key as written, message): a bad value of a known key is an error; an unknown key is
    kept as written, with a warning."""
    out: dict[str, Any] = {}
    problems: list[Keyed] = []
    warnings: list[Keyed] = []
    for key, value in properties.items():
        name = canonical(key)
        if name is None:
            close = difflib.get_close_matches(_squash(key), [_squash(k) for k in KEYS], n=1, cutoff=0.75)
            hint = f" (did you mean `{canonical(close[0])}`?)" if close else ""
            warnings.append((str(key), f"`{key}` in {where} is not an AISuperComputer key azure-ai-ml knows{hint}; "
                             "it is sent to Singularity as written"))
            out[str(key)] = value
            continue
        expected = _TYPES.get(name)
        if expected and value is not None and not isinstance(value, expected):
            shown = f'the quoted text `"{value}"`' if isinstance(value, str) else f"`{value}`"
            problems.append((str(key), f"`{key}` in {where} must be {_type_name(expected)}, not {shown}"))
            continue
        if name == "scalePolicy" and value:
            value, more = _normalize_scale_policy(value, f"{where}.scalePolicy")
            problems.extend((str(key), m) for m in more)
        elif name == "slaTier" and value is not None:
            value, more = _enum(value, SLA_TIERS, f"{where}.slaTier")
            problems.extend((str(key), m) for m in more)
        elif name == "priority" and value is not None:
            value, more = _enum(value, PRIORITIES, f"{where}.priority")
            problems.extend((str(key), m) for m in more)
        elif name == "aiSuperComputerStorageData" and value:
            value, more = _normalize_storage(value, f"{where}.aiSuperComputerStorageData")
            problems.extend((str(key), m) for m in more)
        out[name] = value
    return out, problems, warnings


def _normalize_scale_policy(policy: Mapping[str, Any], where: str) -> tuple[dict[str, Any], list[str]]:
    out, problems = {}, []
    for key, value in policy.items():
        name = canonical(key, SCALE_POLICY_KEYS)
        if name is None:
            problems.append(_unknown(key, SCALE_POLICY_KEYS, where))
            continue
        if name == "autoScaleInstanceTypeCountSet":
            if not (isinstance(value, list) and all(isinstance(v, int) and v > 0 for v in value) and value == sorted(value)):
                problems.append(f"`{key}` in {where} must be an ascending list of positive integers, e.g. [2, 4, 8]")
                continue
        elif not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            problems.append(f"`{key}` in {where} must be a whole number, not `{value}`")
            continue
        out[name] = value
    return out, problems  # min above max is judged on the whole block (singkit.singularity.target)


def _normalize_storage(data: Mapping[str, Any], where: str) -> tuple[dict[str, Any], list[str]]:
    out, problems = {}, []
    for mount, ref in data.items():
        if not isinstance(ref, Mapping):
            problems.append(f"`{mount}` in {where} must be a mapping with containerName and relativePath")
            continue
        fixed = {}
        for key, value in ref.items():
            name = canonical(key, STORAGE_REFERENCE_KEYS)
            if name is None:
                problems.append(_unknown(key, STORAGE_REFERENCE_KEYS, f"{where}.{mount}"))
            else:
                fixed[name] = value
        out[mount] = fixed
    return out, problems


def _enum(value: Any, choices: dict[str, str], where: str) -> tuple[Any, list[str]]:
    spelled = choices.get(str(value).lower())
    if spelled:
        return spelled, []
    return value, [f"`{value}` is not a valid {where}; expected one of: " + ", ".join(choices)]


def _type_name(expected: type | tuple[type, ...]) -> str:
    names = {bool: "true or false", str: "a string", list: "a list", dict: "a mapping", int: "a number", float: "a number"}
    kinds = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(dict.fromkeys(names[k] for k in kinds))


# What a target that says nothing sends: Standard SLA, Medium priority, a fixed size. (XT 0.0.342
# has no default SLA: its backend_singularity.py reads compute_def["sla"]; config.import-xt says so.)
DEFAULT_SLA = "standard"
DEFAULT_PRIORITY = "medium"
DEFAULT_SCALE_INTERVAL = 120


class Notes(Protocol):
    """Where a problem found while composing the block goes (target.Collector)."""

    def add(self, section: str, name: str, key: str | None, message: str, *, warning: bool = False,
            records: tuple[tuple[str, str], ...] = (), sub: str | None = None) -> None: ...


def block(target: Mapping[str, Any], nodes: int, note: Notes) -> dict[str, Any]:
    """The AISuperComputer block: defaults, then the target's knobs, then its raw overrides
    (unknown raw keys pass through with a warning: the service knows more keys than the SDK)."""
    name = str(target.get("name") or "?")
    # `sla` and `priority` values are the schema's to judge (any case, as here)
    block: dict[str, Any] = {
        "interactive": bool(target.get("interactive", False)),
        "imageVersion": str(target.get("image-version") or ""),
        "slaTier": SLA_TIERS.get(str(target.get("sla") or DEFAULT_SLA).lower(), "Standard"),
        "priority": PRIORITIES.get(str(target.get("priority") or DEFAULT_PRIORITY).lower(), "Medium"),
        # fixed size unless the target asks for elasticity
        "scalePolicy": {"autoScaleIntervalInSec": DEFAULT_SCALE_INTERVAL, "maxInstanceTypeCount": nodes,
                        "minInstanceTypeCount": nodes},
    }
    for key, wire in TARGET_KNOBS.items():
        if target.get(key) is not None:
            block[wire] = target[key]
    if target.get("scale-policy"):
        policy, errors, _ = normalize({"scalePolicy": target["scale-policy"]}, "scale-policy")
        for _key, message in errors:
            note.add("compute-targets", name, "scale-policy", message.replace("scale-policy.scalePolicy", "scale-policy"))
        block["scalePolicy"].update(policy.get("scalePolicy") or {})
    raw = target.get("ai-super-computer") or {}
    if not isinstance(raw, Mapping):
        note.add("compute-targets", name, "ai-super-computer", "ai-super-computer must be a mapping of AISuperComputer properties")
    elif raw:
        extra, errors, warnings = normalize(raw, "ai-super-computer")
        for key, message in errors:
            note.add("compute-targets", name, "ai-super-computer", message, sub=key)
        for key, message in warnings:
            note.add("compute-targets", name, "ai-super-computer", message, warning=True, sub=key)
        policy = extra.pop("scalePolicy", None)
        _overridden(target, block, extra, note)
        block.update(extra)
        if policy:
            block["scalePolicy"].update(policy)
    low, high = block["scalePolicy"].get("minInstanceTypeCount"), block["scalePolicy"].get("maxInstanceTypeCount")
    if isinstance(low, int) and isinstance(high, int) and high < low:
        note.add("compute-targets", name, "scale-policy" if target.get("scale-policy") else "ai-super-computer",
                 f"scalePolicy maxInstanceTypeCount ({high}) is below minInstanceTypeCount ({low}); "
                 "the most nodes cannot be fewer than the least")
    return block


# the target's own keys that ai-super-computer's raw keys of the same meaning override
KNOB_OF_WIRE = {"slaTier": "sla", "priority": "priority", "imageVersion": "image-version", "interactive": "interactive",
                **{wire: knob for knob, wire in TARGET_KNOBS.items()}}


def _overridden(target: Mapping[str, Any], block: Mapping[str, Any], raw: Mapping[str, Any], note: Notes) -> None:
    """A raw AISuperComputer key that overrides a different value of the target's own key (warning)."""
    name = str(target.get("name") or "?")
    for wire, value in raw.items():
        knob = KNOB_OF_WIRE.get(wire)
        if knob and target.get(knob) is not None and block.get(wire) != value:
            note.add("compute-targets", name, "ai-super-computer",
                     f"ai-super-computer.{wire}: {value} overrides `{knob}: {target[knob]}` (sent: {wire} {value}); "
                     "keep one of them", warning=True)
