"""Jobs files: named jobs that `invoke job.submit --from FILE [--job NAME]` submits.

A jobs file is small YAML, written by `config.import-amlt` or by hand:

    jobs:
      train-2node:                  # the job's name (letters, digits, _ . -)
        target: train-2node         # a compute target of the config (default: local)
        command: python train.py    # a string, or a list of lines run one after another (&&)
        env: {WANDB_PROJECT: bb, WANDB_API_KEY: $env:WANDB_API_KEY}   # the job's variables
        runs: 1                     # repeats of each hparam set (default 1)
        parallel: 4                 # runs at once (default: the target's; --parallel overrides it)
        sweep:                      # optional: one run per hparam set
          type: grid                # every combination, params in order
          params: {lr: [0.1, 0.01], seed: [1, 2]}
          max-trials: 100           # optional: only the first N combinations
      search-lr:
        command: python train.py --lr ${SINGKIT_HP_LR}
        sweep:
          type: random              # max-trials sets drawn with `seed` (the same sets every time)
          max-trials: 8
          seed: 0
          params:
            lr: {loguniform: [1.0e-5, 1.0e-3]}
            bs: [16, 32]            # a list: one of these values (choice)
            depth: {randint: [2, 8]}   # a whole number in [low, high]
            dropout: {uniform: [0.0, 0.5]}

Each run gets its hparams as singkit always gives them (`$SINGKIT_HP_<NAME>`, and `--NAME V`
appended unless the command reads `SINGKIT_HP` itself or places `{hparams}`). Values reach
the command as text: a list value `0.001` as YAML reads it, a drawn float with 6 significant
digits. Mistakes are ConfigError problems at the file's line and column (exit 2).
"""

from __future__ import annotations

import itertools
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from singkit.config.layers import position, read_layer
from singkit.exceptions import ConfigError, Problem

JOB_KEYS = ("target", "command", "env", "runs", "parallel", "sweep", "description")
SWEEP_KEYS = ("type", "params", "max-trials", "seed")
DISTRIBUTIONS = ("uniform", "loguniform", "randint")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
PLACEHOLDER = "FILL-IN"  # what an importer writes for a value it could not know (singkit.configcheck)
_BRACED = re.compile(r"(?<![{$])\{(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)(?::[^{}]*)?\}(?!\})")
_PARAM = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")  # as --hp names (singkit.jobs.spec._HP_NAME)


@dataclass
class FileJob:
    """One named job of a jobs file, ready to become a SubmitRequest."""

    name: str
    target: str = "local"
    command: str | None = None
    env: dict[str, Any] = field(default_factory=dict)
    runs: int = 1
    parallel: int | None = None
    sweep: list[dict[str, str]] | None = None  # hparam sets, values as text; None: no sweep


def load(path: Path) -> dict[str, FileJob]:
    """Every job of the file by name, in file order. Raises ConfigError (all problems at once)."""
    doc = read_layer(path).doc
    problems: list[Problem] = []

    def say(node: Any, key: Any, message: str, of_value: bool = False) -> None:
        line, col = position(node, key, of_value=of_value)
        problems.append(Problem(path, line, col, message))

    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), dict) or not doc["jobs"]:
        where = (doc, "jobs") if isinstance(doc, dict) and "jobs" in doc else (doc, None)
        say(*where, "a jobs file needs `jobs:`, a mapping of job names to {target, command, env, sweep}")
        raise ConfigError(problems)
    for key in doc:
        if key != "jobs":
            say(doc, key, f"unknown key `{key}` in a jobs file; it holds only `jobs:`")
    jobs: dict[str, FileJob] = {}
    for name, body in doc["jobs"].items():
        name = str(name)
        if not _NAME.match(name):
            say(doc["jobs"], name, f"job name `{name}` must be letters, digits, _ . - (e.g. train-2node)")
        if not isinstance(body, dict):
            say(doc["jobs"], name, f"job `{name}` must be a mapping with `target`, `command`, ...", of_value=True)
            continue
        jobs[name] = _job(name, body, say)
    if problems:
        raise ConfigError(problems)
    return jobs


def _job(name: str, body: dict, say) -> FileJob:
    job = FileJob(name)
    for key in body:
        if key not in JOB_KEYS:
            say(body, key, f"unknown key `{key}` in job `{name}`; expected one of: " + ", ".join(f"`{k}`" for k in JOB_KEYS))
    if "target" in body:
        if isinstance(body["target"], str) and body["target"].strip():
            job.target = body["target"].strip()
        else:
            say(body, "target", "`target` must be the name of a compute target (e.g. local)", of_value=True)
    command = body.get("command")
    if isinstance(command, str):
        job.command = command
    elif isinstance(command, list) and command and all(isinstance(c, str) for c in command):
        job.command = " && ".join(command)  # each line must succeed before the next, as in a `set -e` script
    elif command is not None:
        say(body, "command", "`command` must be a string or a list of strings", of_value=True)
    env = body.get("env")
    if isinstance(env, dict):
        for key, value in env.items():
            if isinstance(value, (dict, list)) or value is None:
                say(env, key, f"env `{key}` must be a string, number or true/false", of_value=True)
        job.env = {str(k): _scalar(v) for k, v in env.items()}
    elif env is not None:
        say(body, "env", "`env` must be a mapping NAME: value", of_value=True)
    runs = body.get("runs", 1)
    if isinstance(runs, int) and not isinstance(runs, bool) and runs >= 1:
        job.runs = runs
    else:
        say(body, "runs", "`runs` must be a whole number >= 1", of_value=True)
    parallel = body.get("parallel")
    if parallel is not None:
        if isinstance(parallel, int) and not isinstance(parallel, bool) and parallel >= 1:
            job.parallel = parallel
        else:
            say(body, "parallel", "`parallel` must be a whole number >= 1", of_value=True)
    if "sweep" in body:
        job.sweep = _sweep(name, body, say)
        _leftover_placeholders(name, body, say)
    return job


def _leftover_placeholders(name: str, body: dict, say) -> None:
    """A sweep param placed as `{lr}` (Amulet's and str.format's spelling): singkit fills only
    `{hparams}` (singkit.jobs.spec.HP_PLACEHOLDER), so each run would get the text `{lr}`. Only the
    names of this job's params are refused: other braces (`{final}`, awk's `{print}`) are the
    command's own text."""
    params = (body.get("sweep") or {}).get("params") if isinstance(body.get("sweep"), dict) else None
    command = body.get("command")
    lines = [command] if isinstance(command, str) else [c for c in command or [] if isinstance(c, str)] \
        if isinstance(command, list) else []
    if not isinstance(params, dict):
        return
    for line in lines:
        for found in _BRACED.finditer(line):
            if found["name"] in params:
                hp = "SINGKIT_HP_" + re.sub(r"[^A-Za-z0-9_]", "_", found["name"]).upper()
                say(body, "command", f"`{found.group(0)}` in job `{name}`'s command is not filled by singkit: write "
                    f"${{{hp}}} (each run's value of `{found['name']}`) or {{hparams}} (all its flags)", of_value=True)
                return


def _scalar(value: Any) -> Any:
    if isinstance(value, bool) or isinstance(value, (int, float)):
        return value
    return str(value)


def text(value: Any) -> str:
    """A hparam value as the command and $SINGKIT_HP_* get it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _sweep(name: str, body: dict, say) -> list[dict[str, str]] | None:
    sweep = body["sweep"]
    if not isinstance(sweep, dict):
        say(body, "sweep", "`sweep` must be a mapping with `type` (grid|random) and `params`", of_value=True)
        return None
    for key in sweep:
        if key not in SWEEP_KEYS:
            say(sweep, key, f"unknown key `{key}` in the sweep of `{name}`; expected one of: " + ", ".join(f"`{k}`" for k in SWEEP_KEYS))
    kind = sweep.get("type", "grid")
    if kind not in ("grid", "random"):
        say(sweep, "type", f"sweep type `{kind}` is not one singkit runs; expected `grid` or `random`", of_value=True)
        return None
    params = sweep.get("params")
    if not isinstance(params, dict) or not params:
        say(sweep, "params" if "params" in sweep else None, "a sweep needs `params`: NAME: [values] (or {uniform|loguniform|randint: [low, high]})")
        return None
    limit = sweep.get("max-trials")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        say(sweep, "max-trials", "`max-trials` must be a whole number >= 1", of_value=True)
        return None
    seed = sweep.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        say(sweep, "seed", "`seed` must be a whole number", of_value=True)
        return None
    spaces: dict[str, Any] = {}
    for param, space in params.items():
        param = str(param)
        if not _PARAM.match(param):
            say(params, param, f"hparam name `{param}` must be letters, digits, _ . - (e.g. lr, batch_size)")
        elif isinstance(space, str) and space.startswith(PLACEHOLDER):
            say(params, param, f"hparam `{param}` is still `{space}`: an importer could not read its values; "
                "write them as a list, e.g. [16, 32]", of_value=True)
        elif isinstance(space, list) and space:
            spaces[param] = list(space)
        elif kind == "random" and _distribution(space):
            spaces[param] = _distribution(space)
        else:
            wanted = "a non-empty list of values" + (" or {uniform|loguniform|randint: [low, high]}" if kind == "random" else
                                                     " (a grid takes lists only; `type: random` draws from ranges)")
            say(params, param, f"hparam `{param}` must be {wanted}", of_value=True)
    if len(spaces) != len(params):
        return None
    if kind == "grid":
        combos = [dict(zip(spaces, values)) for values in itertools.product(*spaces.values())]
        return [{k: text(v) for k, v in combo.items()} for combo in combos[:limit]]
    if limit is None:
        say(sweep, "type", "a random sweep needs `max-trials`: how many hparam sets to draw", of_value=True)
        return None
    return draw(spaces, limit, seed)


def _distribution(space: Any) -> tuple[str, float, float] | None:
    """{uniform: [low, high]} → ("uniform", low, high); None when it is not one."""
    if not isinstance(space, dict) or len(space) != 1:
        return None
    (kind, bounds), = space.items()
    if kind not in DISTRIBUTIONS or not isinstance(bounds, list) or len(bounds) != 2:
        return None
    if not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds) or bounds[0] > bounds[1]:
        return None
    if kind == "loguniform" and bounds[0] <= 0:
        return None
    if kind == "randint" and not all(isinstance(b, int) for b in bounds):
        return None
    return str(kind), bounds[0], bounds[1]


def draw(spaces: dict[str, Any], count: int, seed: int) -> list[dict[str, str]]:
    """`count` hparam sets drawn from the spaces with Python's Mersenne Twister seeded `seed`:
    the same file gives the same sets on every machine (dry run, then the real submit)."""
    rng = random.Random(seed)
    sets = []
    for _ in range(count):
        chosen: dict[str, str] = {}
        for name, space in spaces.items():
            if isinstance(space, list):
                chosen[name] = text(rng.choice(space))
                continue
            kind, low, high = space
            if kind == "randint":
                chosen[name] = str(rng.randint(low, high))
            elif kind == "loguniform":
                chosen[name] = text(math.exp(rng.uniform(math.log(low), math.log(high))))
            else:
                chosen[name] = text(rng.uniform(low, high))
        sets.append(chosen)
    return sets
