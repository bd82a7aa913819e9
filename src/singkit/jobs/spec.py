"""From a target and the command line to the resolved job spec (job.yaml) and its runs."""

from __future__ import annotations

import itertools
import math
import re
import shlex
import time
from dataclasses import dataclass, field
from typing import Any

from singkit import macros
from singkit.backends.runtime.variables import OWN_CREDENTIALS, SECRET_PREFIX, hp_variable
from singkit.config.layers import plain
from singkit.exceptions import UsageError
from singkit.mounts import plan as data_plan
from singkit.mounts import with_options as with_data_options
from singkit.store.jobspec import JobSpec

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
    inputs: list[str] = field(default_factory=list)   # ["data=azureml://datastores/S/paths/P"] (singkit.mounts)
    outputs: list[str] = field(default_factory=list)
    create_registry_connection: bool = False  # Singularity: create the workspace connection the image pull needs
    env: dict[str, Any] = field(default_factory=dict)  # the job's own variables, over the setup's and target's
    sweep: list[dict[str, str]] | None = None  # explicit hparam sets (a jobs file's sweep); replaces `hp`


_INT = re.compile(r"[+-]?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?[0-9]+[eE][+-]?[0-9]+")


def parse_value(text: str) -> Any:
    """The typed value a swept hparam is recorded with (job.yaml, run.log, reports): `0.1` → 0.1,
    `32` → 32, `true` → True, anything else stays text (`007`, `1_000`, `nan`, `1e400`, `v2`).

    Only the record is typed: the command line and $SINGKIT_HP_* get the text as the user
    wrote it (`1.10` stays `1.10`, `1e-3` stays `1e-3`), see parse_hp_text."""
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        value = float(text)
        if math.isfinite(value):  # `1e400` is past float's range: text, as `inf` is (no Infinity in JSON)
            return value
    return text


def parse_hp_text(specs: list[str]) -> dict[str, list[str]]:
    """`--hp lr=0.1,1e-3 --hp bs=32` → {"lr": ["0.1", "1e-3"], "bs": ["32"]}: the values as typed
    (order kept), each name checked once."""
    grid: dict[str, list[str]] = {}
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
            variable = hp_variable(name)
            if clash := next((other for other in grid if hp_variable(other) == variable), None):
                raise UsageError(f"--hp {clash} and --hp {name} are both ${variable} in the run: rename one")
            grid[name] = [v.strip() for v in values.split(",")]
            if not any(grid[name]):
                raise UsageError(f"--hp {name}= has no values; e.g. --hp {name}=0.1,0.01")
            if "" in grid[name]:
                raise UsageError(f"--hp {item} has an empty value; e.g. --hp {name}=0.1,0.01")
    return grid


def typed(hparams: dict[str, str]) -> dict[str, Any]:
    return {name: parse_value(text) for name, text in hparams.items()}


def parse_hp(specs: list[str]) -> dict[str, list[Any]]:
    """`--hp lr=0.1,0.01 --hp bs=32` → {"lr": [0.1, 0.01], "bs": [32]} (typed, order kept)."""
    return {name: [parse_value(v) for v in values] for name, values in parse_hp_text(specs).items()}


# The most runs one job may have. Each run is a folder, a run.log and a process or Azure ML job;
# past this a typo (`--runs 10**20`, a sweep multiplied out) would fill the disk or the memory
# before anything was said. A real sweep this large is several jobs.
MAX_RUNS = 100_000


def expand(grid: dict[str, list[Any]], repeats: int) -> list[tuple[dict[str, Any], int]]:
    """Every combination of the grid, each `repeats` times: [(hparams, repeat)]. UsageError for
    fewer than 1 repeat, or more than MAX_RUNS runs in all (counted before any is made)."""
    if repeats < 1:
        raise UsageError(f"--runs={repeats}: give 1 or more")
    total = repeats
    for values in grid.values():
        total *= max(len(values), 1)
    if total > MAX_RUNS:
        sizes = " x ".join([*(str(len(v)) for v in grid.values()), f"--runs {repeats}"])
        raise UsageError(f"{sizes} makes {total} runs; one job takes at most {MAX_RUNS}: "
                         "sweep fewer values, or submit the sweep as several jobs")
    names = list(grid)
    combos = [dict(zip(names, values)) for values in itertools.product(*grid.values())] or [{}]
    return [(combo, r) for combo in combos for r in range(1, repeats + 1)]


def hp_arguments(hparams: dict[str, Any]) -> str:
    """The hparams as command-line flags: ` --lr 0.1 --bs 32` (give the text as typed: a
    value is passed as str(value), quoted for the shell only when it must be)."""
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


def setup_prefix(setup: dict[str, Any] | None) -> str:
    """A setup's steps (singkit.backends.runtime.setup.steps), as a shell prefix for the command."""
    from singkit.backends.runtime.setup import steps

    return "".join(f"{s} && " for s in steps(setup))


def build_spec(env: Any, cfg: Any, target: dict[str, Any], service: dict[str, Any],
               request: SubmitRequest, default_parallel: int | None) -> tuple[JobSpec, dict[str, str]]:
    """The job spec without its id, code and runs' ids (the pipeline fills those), and the
    literal secrets it references as `$env:SINGKIT_SECRET_*` (for the runner's environment only)."""
    command = (request.command or "").strip() or DEFAULT_COMMAND
    text_grid = parse_hp_text(request.hp)
    plan = expand(text_grid, request.runs)
    if request.sweep is not None:  # sets listed one by one (a jobs file): no product, values as given
        if request.hp:
            raise UsageError("--hp and a jobs file's sweep cannot be combined; put the values in the file's sweep")
        if len(request.sweep) * request.runs > MAX_RUNS:
            raise UsageError(f"{len(request.sweep)} sweep sets x runs {request.runs} makes "
                             f"{len(request.sweep) * request.runs} runs; one job takes at most {MAX_RUNS}")
        plan = [(dict(hp), r) for hp in request.sweep for r in range(1, request.runs + 1)] or [({}, 1)]
        text_grid = {}
        for hp in request.sweep:
            for name, value in hp.items():
                text_grid.setdefault(name, [])
                if value not in text_grid[name]:
                    text_grid[name].append(value)
    parallel = request.parallel if request.parallel is not None else (default_parallel or len(plan))
    if parallel < 1:
        raise UsageError(f"--parallel={parallel}: give 1 or more")
    if request.inputs or request.outputs:
        target = with_data_options(target, request.inputs, request.outputs, cfg.datastores, env.project_root)
    docker = cfg.docker(target["docker"]) if target.get("docker") else None
    setup = cfg.setup(target["setup"]) if target.get("setup") else None
    if setup:  # XT's macros (`$current_conda_env`, `$username`) in setup commands: the submitting machine's
        setup = {**setup, **({"activate": macros.expand(str(setup["activate"]), env.environ)} if setup.get("activate") else {}),
                 "pre-cmds": [macros.expand(str(c), env.environ) for c in setup.get("pre-cmds") or []]}
    general = cfg.general
    setup_env, setup_secrets = seal_secrets((setup or {}).get("env") or {})
    target_env, target_secrets = seal_secrets(target.get("env") or {})
    own_env, own_secrets = seal_secrets(request.env or {})
    job_env = {**setup_env, **target_env, **own_env}
    secrets = {**setup_secrets, **target_secrets, **own_secrets}
    if not request.dry_run:  # a missing `$env:` variable is said now, at its config line
        check_env_refs(job_env, {**env.environ, **secrets})
    if setup and "env" in setup:
        setup = {**setup, "env": setup_env}
    if "env" in target:
        target = {**target, "env": target_env}
    spec = plain({
        "job": None,
        "created": round(time.time(), 3),
        "experiment": macros.expand(general.get("experiment"), env.environ),  # `$username`, ...: XT's macros
        "project_root": str(env.project_root),
        "target": target,
        "service": service,
        "docker": docker,
        "setup": setup,
        "command": command,
        "setup_prefix": setup_prefix(setup),
        "env": job_env,
        "withheld_env": credential_variables(cfg),  # names only: local runs never inherit these
        "data": data_plan(target, cfg.datastores, env.project_root),  # inputs/outputs: singkit.mounts
        "parallel": min(parallel, len(plan)),
        "repeats": request.runs,
        "hp": {name: [parse_value(v) for v in values] for name, values in text_grid.items()},
        "dry_run": bool(request.dry_run),
        "allow_unpinned": bool(request.allow_unpinned),
        "create_registry_connection": bool(request.create_registry_connection),
        "code": None,
        # hparams: typed, for the record; hparams_text: as typed, what the run is given
        "runs": [{"run": None, "hparams": typed(hp), "hparams_text": hp, "repeat": repeat,
                  "command": run_command(command, hp)} for hp, repeat in plan],
    })
    return spec, secrets


def credential_variables(cfg: Any) -> list[str]:
    """Names of the variables that hold singkit's own credentials: the Azure tokens, and each
    variable a secret field of a service record names (`password: $env:REG_PW`, a storage
    `connection-string`, a SAS). Recorded in job.yaml (names only) as `withheld_env`."""
    from singkit.config.schema import SECRET_KEYS
    from singkit.config.secrets import ENV_PREFIX, is_env_ref

    names = set(OWN_CREDENTIALS)
    for record in (getattr(cfg, "services", None) or {}).values():
        for key, value in (record or {}).items():
            if key in SECRET_KEYS and is_env_ref(value):
                names.add(str(value)[len(ENV_PREFIX):].strip())
    return sorted(names)


def seal_secrets(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """An `env:` map whose literal secrets (names like HF_TOKEN, API_KEY; possible only in the
    user's own config) are replaced by `$env:SINGKIT_SECRET_<NAME>`, and those variables' values.

    job.yaml and every store file then hold the reference only; the value travels in the
    runner's process environment, where `$env:` references are resolved at the moment of use."""
    from singkit.config.schema import is_secret_env
    from singkit.config.secrets import ENV_PREFIX, is_env_ref

    sealed: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for key, value in values.items():
        if value is not None and is_secret_env(str(key)) and not is_env_ref(value):
            variable = SECRET_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", str(key)).upper()
            secrets[variable] = str(value)
            value = ENV_PREFIX + variable
        sealed[key] = value
    return sealed, secrets


def check_env_refs(values: dict[str, Any], environ: Any, source: Any = None) -> None:
    """ConfigError (at the line that names it) for an `$env:NAME` whose variable is not set.

    `source` is the job.yaml a rerun copies its env from; config values know their own line."""
    from singkit.config.secrets import EnvRef, is_env_ref, resolve_secret

    for value in values.values():
        if not is_env_ref(value):
            continue
        if not isinstance(value, EnvRef) and source is not None:
            line, col = _locate(source, str(value))
            value = EnvRef.at(str(value), str(source), line, col)
        resolve_secret(value, environ)


def _locate(path: Any, text: str) -> tuple[int, int]:
    """1-based line and column of the first `text` in a file (0, 0 when not found)."""
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError:
        return 0, 0
    for number, line in enumerate(lines, start=1):
        if text in line:
            return number, line.index(text) + 1
    return 0, 0


def number_runs(spec: JobSpec, job_id: str) -> None:
    """Give the spec its job id and each run its id (`jobN.1`, ...); `$job_id` in the experiment
    name (an XT macro) becomes the id."""
    spec["job"] = job_id
    if spec.get("experiment") and "$job_id" in str(spec["experiment"]):
        spec["experiment"] = macros.expand(str(spec["experiment"]), {}, job_id=job_id)
    for i, run in enumerate(spec["runs"], start=1):
        run["run"] = f"{job_id}.{i}"


# Commands that start their own workers on each node (torchrun's own `--nproc_per_node`, ...):
# with Azure ML starting several of them per node too, the processes multiply.
LAUNCHERS = ("torchrun", "accelerate", "deepspeed", "tune", "mpirun", "horovodrun")
LAUNCHER_MODULES = ("torch.distributed.run", "torch.distributed.launch", "accelerate.commands.launch", "deepspeed.launcher.runner")


def launcher_warning(command: str, per_node: int | str) -> str | None:
    """A warning when a launcher command would run as several processes per node (None: fine)."""
    import shlex

    if per_node == 1:
        return None
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    while words and "=" in words[0] and not words[0].startswith("-"):  # leading VAR=value
        words.pop(0)
    if not words:
        return None
    program = words[0].rsplit("/", 1)[-1]
    launcher = program if program in LAUNCHERS else None
    if program.startswith("python") and len(words) > 2 and words[1] == "-m" and words[2] in LAUNCHER_MODULES:
        launcher = f"python -m {words[2]}"
    if launcher is None:
        return None
    return (f"`{launcher}` starts its own workers, and processes-per-node: {per_node} starts that many `{launcher}`s on each "
            "node; with a launcher set processes-per-node: 1")
