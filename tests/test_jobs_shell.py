"""The job's shell: bash where the machine or image has bash, else sh, on every target.

XT and Amulet users write bash in setups and commands (`source venv/bin/activate`, `[[ ]]`,
arrays, `set -o pipefail`); XT runs its job scripts with bash (xtlib 0.0.342
helpers/factory_config.yaml `script-launch-prefix: linux: "bash --login"`, backends/backend_aml.py
`['/bin/bash', '--login', script]`). Under dash (Debian's /bin/sh) those fail with exit code 127.
Here: the same bash command runs on local (this machine's bash), on docker in an image holding
bash (busybox + this machine's bash), with a setup and with 2 ranks; in a busybox image (no bash)
the job falls back to sh and the POSIX spelling works; `shell: sh` forces sh, `shell: bash`
fails in one line where there is no bash; the Singularity job's command (dry run) carries the
same rule, and run as Azure ML runs it, it runs the bash command.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from docker_services import add_host_program, busybox_rootfs_tar
from jobreaper import reaped  # noqa: F401  (autouse: every job ends with its test)
from jobtools import make_env, make_project, run_cli, wait_done
from services import TEST_LABELS, find_tool
from singtools import NOWHERE, SINGULARITY
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit
from singkit.backends.runtime.workdir import shell_argv, shell_line

# bash only: `source`, `[[ ]]`, an array, pipefail (a failing stage fails the pipeline)
BASH_COMMAND = ('source ./env.sh && [[ "$FROM_SOURCE" == yes ]] && words=(a b c) && set -o pipefail && '
                '{ false | cat; [[ $? == 1 ]]; } && echo "bash ok ${words[2]} $FROM_SOURCE $0 rank=${RANK:-none}"')
POSIX_COMMAND = '. ./env.sh && [ "$FROM_SOURCE" = yes ] && echo "posix ok $FROM_SOURCE $0"'
TARGETS = """\
setups:
  venv:
    pre-cmds:
      - source ./env.sh
      - "[[ -n $FROM_SOURCE ]] && export FROM_SETUP=$FROM_SOURCE"
compute-targets:
  {kind}:
    service: {kind}{docker}
  {kind}-setup:
    service: {kind}{docker}
    setup: venv
  {kind}-two:
    service: {kind}{docker}
    setup: venv
    processes-per-node: 2
  {kind}-sh:
    service: {kind}{docker}
    shell: sh
  {kind}-bash:
    service: {kind}{docker}
    shell: bash
"""
SETUP_COMMAND = 'echo "setup $FROM_SETUP $0 rank=${RANK:-none}"'


def write_code(project: Path) -> None:
    (project / "env.sh").write_text("FROM_SOURCE=yes\nexport FROM_SOURCE\n")


def run_output(env: Any, target: str, command: str) -> tuple[str, str, list[str]]:
    """Submit, wait; (status, stderr, stdout lines sorted) of the job's only run."""
    job = submit(env, SubmitRequest(target=target, command=command))
    status = wait_done(env, job.id)
    run = job.runs[0]
    return status, run.stderr_path.read_text(), sorted(run.stdout_path.read_text().splitlines())


def test_the_rule_falls_back_to_sh_where_there_is_no_bash(tmp_path: Path) -> None:
    """The rule itself, on this machine: with bash on PATH the text runs in bash; on a PATH
    with sh and no bash, in sh; `shell: bash` there ends 127 with one line saying why."""
    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "sh").symlink_to(os.path.realpath("/bin/sh"))
    text = 'echo "$0 ${BASH_VERSION:+has-bash}"'
    with_bash = subprocess.run(shell_argv(text), capture_output=True, text=True)
    assert with_bash.stdout == "bash has-bash\n"
    without = subprocess.run(shell_argv(text), capture_output=True, text=True, env={"PATH": str(bare)})
    assert (without.returncode, without.stdout) == (0, "sh \n")
    forced = subprocess.run(shell_argv(text, shell="sh"), capture_output=True, text=True)
    assert forced.stdout == "sh \n"
    refused = subprocess.run(shell_argv(text, shell="bash"), capture_output=True, text=True, env={"PATH": str(bare)})
    assert refused.returncode == 127 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "shell: bash" in refused.stderr and "no bash" in refused.stderr
    args = subprocess.run(shell_argv('echo "$0:$1:$2"', "one", "two words"), capture_output=True, text=True)
    assert args.stdout == "bash:one:two words\n"  # $0 is the shell (docker's scripts start "$0" -c)


# -- local ------------------------------------------------------------------------------------------
@pytest.fixture
def local_project(tmp_path: Path) -> Path:
    project = make_project(tmp_path, TARGETS.format(kind="local", docker=""))
    write_code(project)
    return project


def test_local_runs_bash_commands_setups_and_ranks(local_project: Path) -> None:
    env = make_env(local_project)
    assert run_output(env, "local", BASH_COMMAND)[::2] == ("completed", ["bash ok c yes bash rank=none"])
    assert run_output(env, "local-setup", SETUP_COMMAND)[::2] == ("completed", ["setup yes bash rank=none"])
    # two ranks: the setup runs once, in bash, in the wrapper; each rank's command in bash
    status, _err, out = run_output(env, "local-two", SETUP_COMMAND)
    assert status == "completed" and out == ["[rank 1] setup yes bash rank=1", "setup yes bash rank=0"]


def test_local_shell_sh_forces_posix_sh(local_project: Path) -> None:
    env = make_env(local_project)
    assert run_output(env, "local-sh", POSIX_COMMAND)[::2] == ("completed", ["posix ok yes sh"])
    status, err, _out = run_output(env, "local-sh", BASH_COMMAND)
    assert status == "failed" and err.startswith("sh: 1: ")  # dash refuses the bash: the user chose sh


def test_a_bad_shell_value_is_one_line(tmp_path: Path) -> None:
    project = make_project(tmp_path, "compute-targets:\n  a:\n    service: local\n    shell: zsh\n")
    done = run_cli(["config.validate"], project, make_env(project))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr == "configs/singkit.yaml:4:12: `zsh` is not a valid shell; did you mean `sh`?\n"


# -- docker -----------------------------------------------------------------------------------------
BASH_REF = "singkit-test/bash:1"


@pytest.fixture(scope="module")
def bash_image(docker_client: Any) -> str:
    """busybox (its sh is /bin/sh) plus this machine's bash at /bin/bash: an image with bash."""
    busybox = find_tool("SINGKIT_TEST_BUSYBOX", "/bin/busybox", "busybox")
    if busybox is None:
        pytest.skip("no busybox binary")
    buf = io.BytesIO(busybox_rootfs_tar(busybox))
    with tarfile.open(fileobj=buf, mode="a") as tar:
        add_host_program(tar, shutil.which("bash") or "/bin/bash", "bin/bash")
    repo, tag = BASH_REF.rsplit(":", 1)
    changes = ["ENV PATH=/usr/bin:/bin", *(f"LABEL {k}={v}" for k, v in TEST_LABELS.items())]
    docker_client.api.import_image_from_data(buf.getvalue(), repository=repo, tag=tag, changes=changes)
    return BASH_REF


def docker_project(tmp_path: Path, image: str) -> Path:
    config = f"dockers:\n  img:\n    image: {image}\n" + TARGETS.format(kind="docker", docker="\n    docker: img")
    project = make_project(tmp_path, config)
    write_code(project)
    return project


def test_docker_runs_bash_where_the_image_has_it(tmp_path: Path, bash_image: str, docker_host: str) -> None:
    env = make_env(docker_project(tmp_path, bash_image))
    assert run_output(env, "docker", BASH_COMMAND)[::2] == ("completed", ["bash ok c yes bash rank=none"])
    assert run_output(env, "docker-setup", SETUP_COMMAND)[::2] == ("completed", ["setup yes bash rank=none"])
    # RANKS_SH: the setup in the supervising shell (bash here), each rank's command in bash too
    status, _err, out = run_output(env, "docker-two", SETUP_COMMAND)
    assert status == "completed" and out == ["[rank 1] setup yes bash rank=1", "setup yes bash rank=0"]
    assert run_output(env, "docker-sh", POSIX_COMMAND)[::2] == ("completed", ["posix ok yes sh"])


def test_docker_falls_back_to_sh_without_bash(tmp_path: Path, busybox_image: Any, docker_host: str) -> None:
    env = make_env(docker_project(tmp_path, busybox_image.ref))
    assert run_output(env, "docker", POSIX_COMMAND)[::2] == ("completed", ["posix ok yes sh"])
    status, err, out = run_output(env, "docker-bash", POSIX_COMMAND)
    assert status == "failed" and out == [] and "shell: bash" in err and "no bash" in err


# -- Singularity: the dry run's command, and that command run as Azure ML runs it ----------------------
def test_singularity_spec_runs_the_command_in_the_job_shell(tmp_path: Path) -> None:
    project = make_project(tmp_path, SINGULARITY + "    setup: venv\n" + TARGETS.split("compute-targets:")[0])
    write_code(project)
    env = make_env(project, **NOWHERE)
    done = run_cli(["job.submit", "--dry-run", "--target=sing", f"--cmd={BASH_COMMAND}"], project, env)
    assert done.returncode == 0, done.stderr
    job_dir = env.home / "jobs" / done.stdout.strip()
    (spec,) = (job_dir / "azureml").glob("*.yaml")
    document = yaml.safe_load(spec.read_text())
    line = document["command"]
    setup = "source ./env.sh && [[ -n $FROM_SOURCE ]] && export FROM_SETUP=$FROM_SOURCE && "
    in_shell = shell_line(setup + BASH_COMMAND)
    assert line.endswith(" -- " + in_shell) and in_shell.startswith("/bin/sh -c '_sk_s=$1; shift; if command -v bash")
    # the line as Azure ML runs it (its own shell; the in-job scripts need the job's code folder)
    code = job_dir / "code"
    environ = {**{k: str(v) for k, v in (document.get("environment_variables") or {}).items()},
               "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"], "HOME": str(tmp_path)}
    run = subprocess.run(["sh", "-c", line], cwd=code, capture_output=True, text=True, timeout=120, env=environ)
    assert run.returncode == 0, run.stderr
    assert "bash ok c yes bash rank=none" in run.stdout.splitlines()


def test_bash_words_keep_their_shell() -> None:
    """`exec WORD` looks WORD up on PATH: a bash builtin or keyword first must stay in its shell."""
    from singkit.backends.runtime.workdir import exec_form

    for kept in ("[[ -f x ]]", "declare -a x", "time python x.py", "shopt -s globstar", "pushd d", "let i=1",
                 "mapfile -t lines", "function f { :; }"):
        assert exec_form(kept) == kept
    assert exec_form("python x.py --arg '[[x]]'") == "exec python x.py --arg '[[x]]'"
