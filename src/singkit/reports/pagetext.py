"""The words of the HTML report, written for its reader — a colleague who never ran singkit.

The page says what ran, where and how, in sentences rather than the job record's fields;
it names no path of the sender's machine (they mean nothing elsewhere and tell a stranger
the sender's user name) and gives no command-line advice (the reader has no command line
for this job).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from singkit import fmt
from singkit.reports.model import Run

# job.yaml fields that are singkit's own bookkeeping, not facts about the experiment
_INTERNAL = frozenset({"project_root", "setup_prefix", "env", "runs", "allow_unpinned", "create_registry_connection",
                       "hp", "repeats", "data", "job", "rerun_of", "resume", "withheld_env"})


def target_text(target: Any) -> str:
    """`eus-v100: Singularity ND40rs_v2, 2 nodes, premium SLA, high priority, eastus` or, for a
    built-in target, `local: processes on this machine`."""
    if not isinstance(target, dict):
        return "" if target is None else str(target)
    name = target.get("name") or target.get("compute") or "target"
    if target.get("description"):
        return f"{name}: {target['description']}"
    service = str(target.get("service") or "")
    parts = []
    size = target.get("vm-size") or target.get("sku")
    if size:
        parts.append(f"{'Singularity ' if service and service not in ('local', 'docker') else ''}{size}".strip())
    nodes = target.get("nodes")
    if isinstance(nodes, int) and nodes > 1:
        parts.append(f"{nodes} nodes")
    if target.get("sla"):
        parts.append(f"{target['sla']} SLA")
    if target.get("priority"):
        parts.append(f"{target['priority']} priority")
    if target.get("location"):
        parts.append(str(target["location"]))
    return f"{name}: {', '.join(parts)}" if parts else str(name)


def service_text(service: Any) -> str:
    """`local`, or `eus-ws (Azure ML workspace)`: the service's name and kind, no ids."""
    if not isinstance(service, dict):
        return "" if service is None else str(service)
    name, kind = service.get("name"), service.get("type")
    kinds = {"singularity": "Singularity", "aml": "Azure ML workspace", "local": "this machine", "docker": "Docker"}
    if name and kind and name != kind:
        return f"{name} ({kinds.get(str(kind), kind)})"
    return str(name or kind or "")


def job_facts(spec: dict[str, Any], runs: list[Run]) -> list[tuple[str, str]]:
    """(label, text) pairs for the page's Job section, from job.yaml: readable, no internals."""
    facts: list[tuple[str, str]] = []
    created = spec.get("created")
    if isinstance(created, (int, float)) and not isinstance(created, bool):
        facts.append(("created", fmt.when(created)))
    if spec.get("experiment"):
        facts.append(("experiment", str(spec["experiment"])))
    facts.append(("target", target_text(spec.get("target"))))
    service = service_text(spec.get("service"))
    target_name = spec["target"].get("name") if isinstance(spec.get("target"), dict) else spec.get("target")
    if service and service != target_name:
        facts.append(("service", service))
    docker = spec.get("docker")
    if isinstance(docker, dict) and docker.get("image"):
        digest = str(docker.get("sha256") or "")
        facts.append(("image", str(docker["image"]) + (f" @ {digest[:19]}…" if digest else "")))
    if spec.get("command"):
        facts.append(("command", str(spec["command"])))
    hp = spec.get("hp") or {}
    if hp:
        facts.append(("sweep", "; ".join(f"{k} = {', '.join(fmt.cell(v) for v in vals)}" for k, vals in hp.items())))
    repeats = spec.get("repeats")
    count = f"{len(runs)}" + (f" ({repeats} of each hparam set)" if isinstance(repeats, int) and repeats > 1 else "")
    facts.append(("runs", count + (f", {spec['parallel']} at a time" if spec.get("parallel") else "")))
    code = spec.get("code")
    if isinstance(code, dict) and code.get("sha256"):
        facts.append(("code", f"{code.get('files', '?')} files, {fmt.nbytes(code.get('bytes'))}, "
                              f"sha256 {str(code['sha256'])[:12]}"))
    if spec.get("dry_run"):
        facts.append(("dry run", "yes: nothing was started"))
    return [(k, v) for k, v in facts if v]


def redactor(project: Path | str | None, store: Path | str | None, home: str | None) -> Callable[[str], str]:
    """A function that rewrites the sender's paths in a text: files of the project become
    relative (`examples/train.py`), the store `.singkit`, the home folder `~`."""
    pairs: list[tuple[str, str]] = []
    for root, short in ((store, ".singkit"), (project, ".")):
        if root:
            text = str(root).rstrip(os.sep)
            pairs += [(text + os.sep, "" if short == "." else short + os.sep), (text, short)]
    if home and home.rstrip(os.sep):
        pairs.append((home.rstrip(os.sep), "~"))
    pairs.sort(key=lambda p: -len(p[0]))  # the longest (innermost) path first

    def redact(text: str) -> str:
        for old, new in pairs:
            text = text.replace(old, new)
        return text

    return redact


def unranked_note(metrics: list[str], primary: str | None) -> str:
    """Why the page has no sweep ranking, said to the reader (no flags, no config advice)."""
    if primary and primary not in metrics:
        return f"the runs did not log the primary metric {primary}" + (f" (they logged {', '.join(metrics)})" if metrics else "")
    if not metrics:
        return "the runs logged no metrics yet"
    return f"no primary metric was chosen for this job (metrics logged: {', '.join(metrics)})"
