"""A setup record as shell steps, run in the job's shell before its command, on every target.

    activate   one shell command that changes the shell the command then runs in (XT's `activate`)
    pre-cmds   shell commands, in order
    conda      packages for `conda install`
    pip        packages for `python -m pip install`

The steps are joined with `&&` in front of the command (local, and Singularity with one process
per node), or run once per node before the ranks start, in the shell whose exported environment
the ranks then get (singkit_entry.py --setup, docker's RANKS_SH). Either way an `activate` that
exports PATH/CONDA_PREFIX reaches the command, as XT's node script does it (XT runs `activate`
first, then pre-setup commands, conda, then pip: xtlib 0.0.342 backends/node_scriptor.py
`gen_prep_code_and_working_dir`, `gen_package_setup`).

conda: XT prefixes a conda `activate` with `eval "$(conda shell.bash hook)"` so `conda activate`
works in a non-interactive shell (xtlib backends/backend_base.py `get_activate_cmd`); singkit's
job shell is bash where the image has it and sh where it has not (workdir.shell_argv), so the steps
are written to work in both: conda's POSIX hook (`conda shell.posix hook`, which bash runs too),
and `activate`'s `source` spelled `.`. A machine or image without conda fails the setup at once with exit code 127 and one line
saying what is missing, instead of a `conda: not found` in the middle of the setup.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

CONDA_HOOK = 'eval "$(conda shell.posix hook)"'
# XT's Windows marker (`$call conda activate ...` → `call ...` on Windows, removed on Linux:
# xtlib backends/backend_base.py get_activate_cmd)
XT_CALL = "$call "
_NEEDS_CONDA = re.compile(r"(^|[\s;&|(])conda\s")


def steps(setup: Mapping[str, Any] | None, pip_options: str = "-q") -> list[str]:
    """The setup's shell steps, in the order they run; [] for no setup (or an empty one).
    `pip_options`: what follows `python -m pip install` (the Singularity spec adds --no-input)."""
    if not setup:
        return []
    name = str(setup.get("name") or "?")
    out: list[str] = []
    activate = str(setup.get("activate") or "").strip()
    if activate:
        out.append(activate_step(activate, name))
    out += [str(c) for c in setup.get("pre-cmds") or []]
    if setup.get("conda"):
        packages = " ".join(shlex.quote(str(p)) for p in setup["conda"])
        out.append(f"{conda_check(name, 'conda: ' + packages)} && conda install -y -q {packages}")
    if setup.get("pip"):
        out.append(f"python -m pip install {pip_options} " + " ".join(shlex.quote(str(p)) for p in setup["pip"]))
    return out


def activate_step(activate: str, name: str) -> str:
    """`activate` as a step of the job's shell: XT's `$call ` marker dropped, `source` spelled `.`
    (a busybox image's sh has no bash, and dash has no `source`), and a conda command preceded by
    the conda check and conda's hook."""
    text = activate[len(XT_CALL):] if activate.startswith(XT_CALL) else activate
    if text.startswith("source "):
        text = ". " + text[len("source "):]
    if _NEEDS_CONDA.search(f" {text} "):
        return f"{conda_check(name, 'activate: ' + text)} && {CONDA_HOOK} && {text}"
    return text


def conda_check(name: str, what: str) -> str:
    """A step that fails (exit code 127, one line on stderr) when `conda` is not on PATH.

    `(exit 127)` rather than `exit 127`: the setup may run inside `eval` in a supervising shell
    (docker's RANKS_SH), which must live on to record why the run failed."""
    message = (f"singkit: setup `{name}` needs conda ({what}), and there is no `conda` on PATH here; "
               f"use an image with conda installed, or remove `activate`/`conda` from setups.{name}")
    return f"{{ command -v conda >/dev/null 2>&1 || {{ printf '%s\\n' {shlex.quote(message)} >&2; (exit 127); }}; }}"
