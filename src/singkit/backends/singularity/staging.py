"""What goes into a run's Azure ML job besides the YAML's resources: the code folder with the
in-job scripts, the command that runs them, and the environment — secrets kept apart.

The job's code, singkit_metrics and singkit_entry are laid out by singkit.backends.runtime.workdir exactly
as for local runs; only the Blob mirror (scripts/blob_sync.py) is Singularity's own. The
in-job files go in a plain folder inside the uploaded code: Azure ML honours .gitignore, which
often lists dot folders and .singkit.
"""

from __future__ import annotations

import dataclasses
import shlex
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from singkit.exceptions import SingkitError

if TYPE_CHECKING:
    from singkit.store.model import Job
    from singkit.store.run import Run

IN_JOB = "_singkit"
SYNC_SCRIPT = "blob_sync.py"
# RunPaths placeholder: a rank's run folder, log and outputs are chosen inside the job
# (blob_sync.child_environ, one folder per rank), so the YAML must not fix them
_IN_JOB_PATH = "\x00set inside the job"


def is_secret(name: Any, value: Any) -> bool:
    """A job env variable that goes to Azure ML only at submit, never into a file: a `$env:`
    reference, or a variable whose name says secret (API_KEY, ..._TOKEN) whatever its value —
    a literal one can come from the user's own config layer."""
    from singkit.config.schema import is_secret_env
    from singkit.config.secrets import is_env_ref

    return is_env_ref(value) or is_secret_env(str(name))


def stage_code(job: Job) -> Path:
    """The job's code folder (workdir.prepare) with the in-job scripts in IN_JOB; idempotent."""
    from singkit.backends.runtime.workdir import entry_script, prepare

    code, lib = prepare(job)
    sync = entry_script().parent / SYNC_SCRIPT  # packaged beside singkit_entry.py
    if not sync.is_file():
        raise SingkitError(f"cannot find {SYNC_SCRIPT} beside {entry_script()}; reinstall singkit")
    shutil.copytree(lib, code / IN_JOB, dirs_exist_ok=True)
    shutil.copyfile(sync, code / IN_JOB / SYNC_SCRIPT)
    return code


def run_variables(run: Run, nodes: int) -> dict[str, str]:
    """The run's environment as the YAML holds it: workdir.run_environment (the one list of
    singkit's variables, after the job's env) without secrets and without host paths."""
    from singkit.backends.runtime.workdir import RunPaths, run_environment

    spec_env = run.job.spec.get("env") or {}
    # `$env:` references resolve to a placeholder here and are dropped below: no secret is read
    placeholders = {str(v)[5:]: _IN_JOB_PATH for v in spec_env.values() if str(v).startswith("$env:")}
    paths = RunPaths(**{f.name: _IN_JOB_PATH for f in dataclasses.fields(RunPaths)})
    env = run_environment(run, paths, {}, placeholders)
    secret = {str(k) for k, v in spec_env.items() if is_secret(k, v)}
    out = {k: v for k, v in env.items() if k not in secret and _IN_JOB_PATH not in v}
    out["SINGKIT_NODES"] = str(nodes)
    return out


def secret_variables(job: Job, environ: Mapping[str, str]) -> dict[str, str]:
    """The job env's secret variables, resolved now (for the entity sent, never a file)."""
    from singkit.config import resolve_secret

    return {str(k): resolve_secret(v, environ) or "" for k, v in (job.spec.get("env") or {}).items() if is_secret(k, v)}


def secret_names(job: Job) -> list[str]:
    """What a dry run may say of the job env's secret variables: `NAME ($env:SOURCE)` for a
    reference, `NAME (a literal from your config, hidden)` otherwise; never a value."""
    from singkit.config.secrets import is_env_ref

    out = []
    for name, value in sorted((job.spec.get("env") or {}).items()):
        if is_secret(name, value):
            shown = str(value).strip() if is_env_ref(value) else "a literal from your config, hidden"
            out.append(f"{name} ({shown})")
    return out


def command(run: Run) -> str:
    """blob_sync (mirror) → singkit_entry (files, console, an `exit` event per rank: Azure ML's
    state, not a rank, decides the outcome) → the run's shell command (workdir.run_command), in
    the job's shell (workdir.shell_line: bash where the image has it, else sh; the setup too).

    With more than one process per node Azure ML runs this very line once per process, so the
    setup goes to the wrapper (`--setup`): LOCAL_RANK 0 runs it, the node's other ranks wait
    for its outcome; with one, it stays a prefix of the command (one process per node).

    Signals: each shell on the way ends in `exec` (this line's own, and the run's command where
    it is one simple command: workdir.exec_form), so a SIGTERM sent to the job's process or to
    its group (Singularity's preemption, a cancel) reaches blob_sync, which passes it to the
    wrapper, which passes it to the command's whole process group and SIGKILLs what still runs
    after the target's `grace-seconds` (--grace). (The platform sends SIGTERM, then stops the
    container after a timeout, and a shell must pass the signal on for a Python program to see
    it: microsoft.github.io/ai4s-jobq/misc/10-preemption.html.)"""
    from singkit.backends.runtime.workdir import (grace_seconds, job_shell, processes_per_node, program_command,
                                                  run_command, setup_command, shell_line)

    setup = setup_command(run) if processes_per_node(run.job.spec) != 1 else ""
    options = f"--grace {grace_seconds(run.job.spec):g} " + (f"--setup {shlex.quote(setup)} " if setup else "")
    # python3 where an image has only that; the scripts need nothing beyond the standard library
    return ('PY="$(command -v python3 || command -v python)" && '
            f'PYTHONPATH="$PWD/{IN_JOB}${{PYTHONPATH:+:$PYTHONPATH}}" SINGKIT_OUTPUTS="$PWD/outputs" '
            f'exec "$PY" {IN_JOB}/{SYNC_SCRIPT} -- "$PY" {IN_JOB}/singkit_entry.py --tee --exit-event {options}-- '
            + shell_line(program_command(run) if setup else run_command(run), job_shell(run.job.spec)))
