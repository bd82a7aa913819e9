"""What a run sees: the job's code folder, the in-job files on PYTHONPATH, its environment.

    jobs/<jobN>/code/                 the snapshot: hard links into its shared tree (singkit.codetree; the runs' working dir)
    jobs/<jobN>/lib/singkit_metrics.py   a copy of the installed top-level module (src/singkit_metrics.py)
    jobs/<jobN>/lib/singkit_entry.py     the entry wrapper (scripts/singkit_entry.py)
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import singkit
from singkit import mounts
from singkit.backends.runtime.variables import OWN_CREDENTIALS, SECRET_PREFIX, hp_environment
from singkit.exceptions import SingkitError
from singkit.store import Job, Run
from singkit.store.jobspec import run_entry

METRICS_MODULE = "singkit_metrics.py"
ENTRY_SCRIPT = "singkit_entry.py"
SETUP_JOIN = " && "  # how singkit.jobs.spec.setup_prefix ends each step
GRACE_SECONDS = 30.0  # SIGTERM → SIGKILL on a cancel or a preemption, unless the target says `grace-seconds`
# POSIX shell builtins and reserved words (POSIX.1-2017 XCU 2.4, 2.14, and the utilities that
# must be builtins), plus dash/bash's `source`/`local` and bash's own builtins and reserved words
# (bash(1) RESERVED WORDS, SHELL BUILTIN COMMANDS: the job's shell is bash where there is bash):
# `exec WORD` would look WORD up on PATH instead of running the builtin, so a command starting
# with one keeps its shell.
SHELL_WORDS = frozenset("""! { } case do done elif else esac fi for if in then until while
    . : break continue eval exec exit export readonly return set shift times trap unset
    alias bg cd command false fc fg getopts hash jobs kill newgrp pwd read true type ulimit umask
    unalias wait echo printf test [ source local
    [[ ]] function select time coproc declare typeset let shopt pushd popd dirs builtin enable help
    history disown suspend caller complete compgen compopt mapfile readarray bind logout""".split())
# The job's shell, one rule for every target (local, docker, Singularity): bash where the machine
# or image has it, else sh. XT and Amulet users write bash (`source venv/bin/activate`, `[[ ]]`,
# arrays, `set -o pipefail`): XT starts every job script with bash (xtlib factory_config.yaml
# `script-launch-prefix: linux: "bash --login"`; backends/backend_aml.py and backend_singularity.py
# run `/bin/bash --login __node_script__.sh`). Under dash, Debian's and Ubuntu's /bin/sh, they end
# in `source: not found` (exit 127). An image without bash (busybox, alpine) keeps sh, where the
# same POSIX command works as before. `bash -c`, not XT's `--login`: a login shell reads
# /etc/profile, which on Debian/Ubuntu sets PATH anew and would drop what the image's ENV PATH
# (conda's /opt/conda/bin) and a local run's PATH (the interpreter's folder first) put there.
# The choice is made where the command runs, by /bin/sh (every image has one): singkit cannot look
# inside an image it only names. The chosen shell gets itself as $0, so a supervising script
# (docker's ONE_SH, RANKS_SH) starts its child shells as "$0".
SHELLS = ("auto", "bash", "sh")  # a target's `shell:` (default auto)
_PICK = ('_sk_s=$1; shift; if command -v bash >/dev/null 2>&1; then exec bash -c "$_sk_s" bash "$@"; fi; '
         'exec sh -c "$_sk_s" sh "$@"')
_BASH = ('_sk_s=$1; shift; command -v bash >/dev/null 2>&1 || { echo "singkit: the target says shell: bash, '
         'and there is no bash here; use an image with bash, or shell: auto" >&2; exit 127; }; '
         'exec bash -c "$_sk_s" bash "$@"')


def entry_script() -> Path:
    """scripts/singkit_entry.py: packaged as singkit/data/ in a wheel, beside src/ in a checkout."""
    package = Path(singkit.__file__).resolve().parent  # wherever this module sits inside it
    for candidate in (package / "data" / ENTRY_SCRIPT, package.parent.parent / "scripts" / ENTRY_SCRIPT):
        if candidate.is_file():
            return candidate
    raise SingkitError(f"cannot find {ENTRY_SCRIPT} (looked in singkit/data and scripts/); reinstall singkit")


def prepare(job: Job) -> tuple[Path, Path]:
    """Extract the code and place the in-job files; (code dir, lib dir). Idempotent."""
    code, lib = job.dir / "code", job.dir / "lib"
    if not (code / ".singkit-extracted").exists():
        # the snapshot's one shared, read-only tree, hard-linked into the job's own folders
        from singkit.codetree import job_view  # tarfile and the snapshot code: only when a run starts

        recorded = job.spec.get("code")
        job_view(job.store.root, job.dir, job.code_archive, recorded.get("sha256") if isinstance(recorded, dict) else None)
    lib.mkdir(exist_ok=True)
    import singkit_metrics  # the installed module itself, byte for byte (standard library only)

    shutil.copyfile(singkit_metrics.__file__, lib / METRICS_MODULE)
    shutil.copyfile(entry_script(), lib / ENTRY_SCRIPT)
    return code, lib


@dataclass(frozen=True)
class RunPaths:
    """Where a run's files are as the run itself sees them (host paths, or container paths)."""

    run_dir: str
    run_log: str
    outputs: str
    code: str
    lib: str


def host_paths(run: Run) -> RunPaths:
    job_dir = run.job.dir
    return RunPaths(str(run.dir), str(run.log_path), str(run.outputs_dir), str(job_dir / "code"), str(job_dir / "lib"))


def resolve_env(values: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """The job's env with `$env:NAME` secrets looked up now (never written anywhere)."""
    if not any(str(v).startswith("$env:") for v in values.values()):
        return {str(k): "" if v is None else str(v) for k, v in values.items()}
    from singkit.config import resolve_secret  # only then: it loads the config machinery

    return {str(k): (resolve_secret(v, environ) or "") for k, v in values.items()}


def host_environment(spec: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """What a local run inherits from the runner: its environment less singkit's own credentials
    (the literal secrets it carries for `$env:SINGKIT_SECRET_*`, the Azure tokens, the registry
    password and storage keys a service record names: spec `withheld_env`). A run gets one only
    when its job's `env:` references it, under the name given there."""
    withheld = set(OWN_CREDENTIALS) | {str(n) for n in spec.get("withheld_env") or ()}
    return {k: v for k, v in environ.items() if k not in withheld and not k.startswith(SECRET_PREFIX)}


def run_environment(run: Run, paths: RunPaths, base: Mapping[str, str], secrets_from: Mapping[str, str]) -> dict[str, str]:
    """`base` (the host's environment for local runs, empty for containers), then the job's env,
    then singkit's variables, which always win."""
    spec = run.job.spec
    entry = run_entry(spec, run.id)
    env = dict(base)
    env.update(resolve_env(spec.get("env") or {}, secrets_from))
    env.update(hp_environment(run.hparams, entry.get("hparams_text")))
    service = str((spec.get("target") or {}).get("service") or "local")
    if spec.get("data") and service in ("local", "docker"):  # Singularity: the command exports the mounts
        env.update(mounts.run_variables(spec, entry, run.id, container=service == "docker"))
    env.update({
        "SINGKIT_JOB": run.job.id,
        "SINGKIT_RUN": run.id,
        "SINGKIT_REPEAT": str(entry.get("repeat", 1)),
        "SINGKIT_TARGET": str((spec.get("target") or {}).get("name", "")),
        "SINGKIT_EXPERIMENT": str(spec.get("experiment") or ""),
        "SINGKIT_RUN_DIR": paths.run_dir,
        "SINGKIT_RUN_LOG": paths.run_log,
        "SINGKIT_OUTPUTS": paths.outputs,
        "SINGKIT_CODE": paths.code,
        "PYTHONUNBUFFERED": "1",
    })
    env["PYTHONPATH"] = os.pathsep.join(p for p in (paths.lib, base.get("PYTHONPATH", "")) if p)
    return env


def user_command(run: Run) -> str:
    """The run's own shell command: the job's command with its hparams."""
    spec = run.job.spec
    entry = run_entry(spec, run.id)
    return str(entry.get("command") or spec["command"])


def setup_command(run: Run) -> str:
    """The setup's steps (pre-commands, pip install) as one shell command; "" without a setup.

    Stored as a prefix (`a && b && `), the form a single process per node runs it in."""
    prefix = str(run.job.spec.get("setup_prefix") or "")
    return prefix[:-len(SETUP_JOIN)] if prefix.endswith(SETUP_JOIN) else prefix.strip()


def job_shell(spec: Mapping[str, Any]) -> str:
    """The target's `shell:` (auto, bash or sh; validated by the schema): auto when unset or unknown."""
    value = str((spec.get("target") or {}).get("shell") or "auto").strip().lower()
    return value if value in SHELLS else "auto"


def shell_argv(script: str, *args: str, shell: str = "auto") -> list[str]:
    """argv that runs the shell text `script` in the job's shell (see _PICK) with `args` as $1...
    and the shell's own name ("bash" or "sh") as $0. `shell`: a target's `shell:`; "sh" forces
    POSIX sh, "bash" fails with exit code 127 and one line where there is no bash."""
    if shell == "sh":
        return ["/bin/sh", "-c", script, "sh", *args]
    return ["/bin/sh", "-c", _BASH if shell == "bash" else _PICK, "singkit-shell", script, *args]


def shell_line(script: str, shell: str = "auto") -> str:
    """shell_argv as one line of shell text (the Singularity job's command)."""
    return shlex.join(shell_argv(script, shell=shell))


def exec_form(command: str) -> str:
    """`command` for the last act of the job's shell: `exec COMMAND` when it is one simple command (no
    `;`, `&`, `|`, parentheses, substitutions, newlines, assignments, builtins or keywords),
    so the shell is replaced by the program and a signal sent to the shell's pid reaches the
    program itself (neither dash nor bash passes SIGTERM on to its foreground child). Otherwise the
    command unchanged: it keeps its shell, and singkit signals its whole process group."""
    text = command.strip()
    if not text or "\n" in text or "`" in text or "$(" in text or text.startswith("exec "):
        return command
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:  # an unclosed quote: the shell will say so, in its own words
        return command
    if not words or words[0] in SHELL_WORDS or "=" in words[0].split("/")[0]:
        return command
    if any(w and set(w) <= set("();&|") for w in words):  # an operator (redirections are fine)
        return command
    return f"exec {text}"


def program_command(run: Run) -> str:
    """The run's command as its shell's last act (exec_form of user_command)."""
    return exec_form(user_command(run))


def run_command(run: Run) -> str:
    """The shell command of a run with one process per node: the setup's steps, then the
    command with its hparams, exec'd where it can be (exec_form). (With more processes the
    setup runs apart, once per node: singkit_entry.py --setup.)"""
    return str(run.job.spec.get("setup_prefix") or "") + program_command(run)


def grace_seconds(spec: Mapping[str, Any]) -> float:
    """Seconds a run gets between SIGTERM and SIGKILL (the target's `grace-seconds`, default
    GRACE_SECONDS): on a cancel (local, docker), and inside the job on a preemption (the
    entry wrapper's --grace). Validated by the schema; a value this cannot read counts as the default."""
    value = (spec.get("target") or {}).get("grace-seconds")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return GRACE_SECONDS
    return float(value)


def max_run_seconds(spec: Mapping[str, Any]) -> int | None:
    """The target's `max-run-seconds` (None: no limit): Azure ML cancels a run after it
    (limits.timeout), and the local and docker targets stop it (SIGTERM, then SIGKILL after
    grace_seconds) with timeout_reason(). Validated by the schema; an unreadable value is no limit."""
    value = (spec.get("target") or {}).get("max-run-seconds")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value


def timeout_reason(seconds: float) -> str:
    """A stopped run's reason: it starts with `timeout` (what job.status and report filter on)."""
    return f"timeout: the run passed the target's max-run-seconds ({seconds:g} s) and was stopped"


def processes_per_node(spec: Mapping[str, Any]) -> int | str:
    """The target's `processes-per-node`: a whole number (default 1), or "gpus" (one per GPU).
    Validated when the config is loaded; a value this cannot read counts as 1."""
    value = (spec.get("target") or {}).get("processes-per-node")
    if isinstance(value, str) and value.strip().lower() == "gpus":
        return "gpus"
    try:
        return max(1, int(value)) if value is not None and not isinstance(value, bool) else 1
    except (TypeError, ValueError):
        return 1
