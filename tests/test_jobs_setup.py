"""A setup's `activate` and `conda` (XT's setup keys) run in the job's shell before its command, on
local, docker and Singularity alike; without conda the run fails at once and says why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from jobreaper import reaped  # noqa: F401  (autouse: every job ends with its test)
from jobtools import make_env, make_project, run_cli, wait_done
from singkit.jobs import control
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit

CONFIG = """\
general:
  experiment: test
dockers:
  bb:
    image: {image}
setups:
  act:
    activate: source ./envs/act.sh
    pre-cmds: ["echo pre=$XT_ACT by=$username"]
  condas:
    conda: [numpy=1.26]
  conda-act:
    activate: conda activate $current_conda_env
compute-targets:
  local-act: {{service: local, setup: act}}
  local-act2: {{service: local, setup: act, processes-per-node: 2}}
  local-conda: {{service: local, setup: condas}}
  local-conda-act: {{service: local, setup: conda-act}}
  docker-act: {{service: docker, docker: bb, setup: act}}
  docker-conda: {{service: docker, docker: bb, setup: condas}}
"""
ACT = 'export XT_ACT=on\nPATH="$PWD/envs/bin:$PATH"\n'
NO_CONDA = "needs conda ({what}), and there is no `conda` on PATH here; use an image with conda installed, or remove `activate`/`conda` from setups.{name}"


@pytest.fixture
def project(tmp_path: Path, busybox_image: Any, docker_host: str) -> Path:
    project = make_project(tmp_path, CONFIG.format(image=busybox_image.ref))
    (project / "envs" / "bin").mkdir(parents=True)
    (project / "envs" / "act.sh").write_text(ACT)
    return project


def ended(env: Any, target: str, command: str = "echo cmd=$XT_ACT") -> tuple[dict[str, Any], Any]:
    job = submit(env, SubmitRequest(target=target, command=command))
    wait_done(env, job.id)
    return control.status(env, job.id)["runs"][0], job.runs[0]


@pytest.mark.parametrize("target", ["local-act", "local-act2", "docker-act"])
def test_activate_runs_first_and_what_it_exports_reaches_the_command(project: Path, target: str) -> None:
    env = make_env(project, USER="alice")
    status, run = ended(env, target)
    out = run.stdout_path.read_text()
    assert status["status"] == "completed", run.stderr_path.read_text()
    assert "pre=on by=alice" in out and "cmd=on" in out  # activate before pre-cmds (XT's $username filled), and the command
    if target == "local-act2":
        assert "[rank 1] cmd=on" in out


@pytest.mark.parametrize("target", ["local-conda", "docker-conda"])
def test_conda_without_conda_fails_at_once_and_says_why(project: Path, target: str) -> None:
    env = make_env(project)
    status, run = ended(env, target)
    assert status["status"] == "failed" and status.get("exit_code") == 127, status
    stderr = run.stderr_path.read_text()
    assert NO_CONDA.format(what="conda: numpy=1.26", name="condas") in stderr
    assert "not found" not in stderr  # stopped at the check: no `conda install` was tried


def test_a_conda_activate_takes_the_submitting_machines_env(project: Path) -> None:
    env = make_env(project, CONDA_DEFAULT_ENV="research")
    status, run = ended(env, "local-conda-act")
    assert run.job.spec["setup"]["activate"] == "conda activate research"  # XT's $current_conda_env, at submit
    assert status["status"] == "failed" and status.get("exit_code") == 127
    stderr = run.stderr_path.read_text()
    assert NO_CONDA.format(what="activate: conda activate research", name="conda-act") in stderr and "not found" not in stderr


SINGULARITY = """\
general:
  experiment: exp-$username
external-services:
  ws: {type: singularity, subscription-id: 00000000-0000-4000-8000-00000000beef, resource-group: rg}
  acr: {type: registry, login-server: singkit.azurecr.io}
dockers:
  torch: {image: research/torch:2.1, registry: acr, sha256: "%s"}
setups:
  conda-act:
    activate: conda activate $current_conda_env
    conda: [numpy]
    pip: [tqdm]
compute-targets:
  sing: {service: ws, compute: vc, vm-size: NC6_v3, sla: basic, docker: torch, setup: conda-act}
""" % ("ab" * 32)


def test_singularity_runs_the_same_setup_and_sends_the_expanded_experiment(tmp_path: Path) -> None:
    project = make_project(tmp_path, SINGULARITY)
    env = make_env(project, USER="alice", CONDA_DEFAULT_ENV="research", ARM_CLOUD_METADATA_URL="https://127.0.0.1:9/x")
    done = run_cli(["job.submit", "--target=sing", "--dry-run", "--cmd", "python train.py"], project, env)
    assert done.returncode == 0, done.stderr
    job = done.stdout.strip()
    spec = YAML(typ="safe").load((project / ".singkit" / "jobs" / job / "azureml" / f"{job}.1.yaml").read_text())
    assert spec["experiment_name"] == "exp-alice"
    command = spec["command"]
    hook = command.index('eval "$(conda shell.posix hook)" && conda activate research')
    assert command.index("command -v conda") < hook < command.index("conda install -y -q numpy") < command.index("pip install -q")
    assert command.index("pip install -q") < command.index("exec python train.py")
