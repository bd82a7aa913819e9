"""From a target and the command line to the resolved job spec (job.yaml) and its runs."""

from __future__ import annotations

import itertools
import json
import re
import shlex
import time
from dataclasses import dataclass, field
from typing import Any

from singkit.exceptions import UsageError

DEFAULT_COMMAND = "python examples/train.py"
_HP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


@dataclass
class SubmitRequest:
    """What the user asked for on the command line."""

    target: str = "local"
    command: str | None = None
    runs: int = 1                       # repeats of each hparam set
    hp: list[str] = field(default_factory=list)  # ["lr=0.1,0.01", "bs=32,64"]
    parallel: int | None = None         # None: the backend's default
    dry_run: bool = False
    allow_unpinned: bool = False        # Singularity: run an image not pinned by digest


def parse_value(text: str) -> Any:
    """`0.1` → 0.1, `32` → 32, `true` → True, anything else stays text."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text.strip()


def parse_hp(specs: list[str]) -> dict[str, list[Any]]:
    """`--hp lr=0.1,0.01 --hp bs=32` → {"lr": [0.1, 0.01], "bs": [32]} (order kept)."""
    grid: dict[str, list[Any]] = {}
    for spec in specs or []:
        for item in spec.split():  # `HP="lr=0.1 bs=32"` arrives as one word from some shells
            name, sep, values = item.partition("=")
            name = name.strip().lstrip("-")
            if not sep or not name or not values:
                raise UsageError(f"--hp {item!r} is not NAME=V1,V2,...; e.g. --hp lr=0.1,0.01")
            if not _HP_NAME.match(name):
                raise UsageError(f"--hp name {name!r} must be letters, digits, _ . - (e.g. lr, batch_size)")
            if name in grid:
                raise UsageError(f"--hp {name} is given twice; list its values once: {name}=a,b,c")
            grid[name] = [parse_value(v) for v in values.split(",") if v.strip() != ""]
            if not grid[name]:
                raise UsageError(f"--hp {name}= has no values; e.g. --hp {name}=0.1,0.01")
    return grid


def expand(grid: dict[str, list[Any]], repeats: int) -> list[tuple[dict[str, Any], int]]:
    """Every combination of the grid, each `repeats` times: [(hparams, repeat)]."""
    if repeats < 1:
        raise UsageError(f"--runs={repeats}: give 1 or more")
    names = list(grid)
    combos = [dict(zip(names, values)) for values in itertools.product(*grid.values())] or [{}]
    return [(combo, r) for combo in combos for r in range(1, repeats + 1)]


def hp_arguments(hparams: dict[str, Any]) -> str:
    """The hparams as command-line flags: ` --lr 0.1 --bs 32`."""
    return "".join(f" --{name} {shlex.quote(str(value))}" for name, value in hparams.items())


HP_PLACEHOLDER = "{hparams}"


def run_command(command: str, hparams: dict[str, Any]) -> str:
    """A run's command: `{hparams}` in the command becomes the flags; a command that reads
    $SINGKIT_HP_* itself gets none; any other command gets them appended."""
    if HP_PLACEHOLDER in command:
        return command.replace(HP_PLACEHOLDER, hp_arguments(hparams).strip())
    if "SINGKIT_HP" in command:
        return command
    return command + hp_arguments(hparams)


def hp_environment(hparams: dict[str, Any]) -> dict[str, str]:
    """The hparams as environment: SINGKIT_HPARAMS (JSON) and SINGKIT_HP_<NAME> each."""
    env = {"SINGKIT_HPARAMS": json.dumps(hparams)}
    for name, value in hparams.items():
        env["SINGKIT_HP_" + re.sub(r"[^A-Za-z0-9_]", "_", name).upper()] = str(value)
    return env


def plain(value: Any) -> Any:
    """Config values as plain YAML-able data (`$env:` references stay references, as text)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def setup_prefix(setup: dict[str, Any] | None) -> str:
    """A setup's pre-commands and pip installs, as a shell prefix for the command."""
    if not setup:
        return ""
    steps = [str(c) for c in setup.get("pre-cmds") or []]
    if setup.get("pip"):
        steps.append("python -m pip install -q " + " ".join(shlex.quote(str(p)) for p in setup["pip"]))
    return "".join(f"{s} && " for s in steps)


def build_spec(env: Any, cfg: Any, target: dict[str, Any], service: dict[str, Any],
               request: SubmitRequest, default_parallel: int | None) -> dict[str, Any]:
    """The job spec without its id, code and runs' ids (the pipeline fills those)."""
    command = (request.command or "").strip() or DEFAULT_COMMAND
    grid = parse_hp(request.hp)
    plan = expand(grid, request.runs)
    parallel = request.parallel if request.parallel is not None else (default_parallel or len(plan))
    if parallel < 1:
        raise UsageError(f"--parallel={parallel}: give 1 or more")
    docker = cfg.docker(target["docker"]) if target.get("docker") else None
    setup = cfg.setup(target["setup"]) if target.get("setup") else None
    general = cfg.general
    job_env = {**(setup or {}).get("env", {}), **(target.get("env") or {})}
    return plain({
        "job": None,
        "created": round(time.time(), 3),
        "experiment": general.get("experiment"),
        "project_root": str(env.project_root),
        "target": target,
        "service": service,
        "docker": docker,
        "setup": setup,
        "command": command,
        "setup_prefix": setup_prefix(setup),
        "env": job_env,
        "parallel": min(parallel, len(plan)),
        "repeats": request.runs,
        "hp": grid,
        "dry_run": bool(request.dry_run),
        "allow_unpinned": bool(request.allow_unpinned),
        "code": None,
        "runs": [{"run": None, "hparams": hp, "repeat": repeat, "command": run_command(command, hp)}
                 for hp, repeat in plan],
    })


def number_runs(spec: dict[str, Any], job_id: str) -> None:
    spec["job"] = job_id
    for i, run in enumerate(spec["runs"], start=1):
        run["run"] = f"{job_id}.{i}"
