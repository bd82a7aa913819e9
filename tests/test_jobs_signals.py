"""Signals reach the program, on every target: a Python program that saves a checkpoint when it
gets SIGTERM saves it when the run is cancelled (local: real processes; docker: the real Docker
Engine, in an image holding this machine's own Python) or preempted (Singularity: the job's
exact command line, run here as Azure ML runs it, sent SIGTERM as the platform sends it), with
and without a setup before the command, with a command that keeps its shell, and with several
processes per node; a program that does not exit on SIGTERM is SIGKILLed after the target's
`grace-seconds`.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from clirunner import run_singkit
from docker_services import add_host_program, busybox_rootfs_tar
from jobreaper import reaped  # noqa: F401  (autouse: every job ends with its test)
from jobtools import make_env, make_project, pid_gone, wait_for
from services import TEST_LABELS, find_tool
from singtools import job_process, only_job, sing_env
from singtools import project as sing_project
from singkit.jobs import control
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit
from singkit.backends.runtime.workdir import exec_form

# Saves for SAVE seconds on SIGTERM (longer than the 5 s every cancel gave before grace-seconds),
# then exits 0; `stubborn`: notes the SIGTERM and carries on, so only SIGKILL ends it.
PROGRAM = """\
import os, signal, sys, time
out, rank = os.environ["SINGKIT_OUTPUTS"], os.environ.get("RANK", "0")
os.makedirs(out, exist_ok=True)
def note(name, text=""):
    with open(os.path.join(out, f"{name}-{rank}"), "w") as handle:
        handle.write(text)
def save(signum, _frame):
    note("term")
    time.sleep(float(os.environ.get("SAVE", "6")))
    note("checkpoint", signal.Signals(signum).name)
    sys.exit(0)
signal.signal(signal.SIGTERM, (lambda signum, _frame: note("term")) if sys.argv[1:] == ["stubborn"] else save)
note("ready", str(os.getpid()))
while True:
    time.sleep(0.05)
"""

TARGETS = """\
setups:
  s:
    pre-cmds:
      - export SAVE=6
compute-targets:
  {kind}:
    service: {kind}{docker}
    grace-seconds: 20
  {kind}-setup:
    service: {kind}{docker}
    grace-seconds: 20
    setup: s
  {kind}-two:
    service: {kind}{docker}
    grace-seconds: 20
    processes-per-node: 2
    setup: s
  {kind}-short:
    service: {kind}{docker}
    grace-seconds: 1
"""
CASES = [  # (target, command): exec'd with no setup, exec'd after a setup, kept in its shell
    ("", "python prog.py"), ("-setup", "python prog.py"), ("", "true; python prog.py; echo after")]


def write_program(project: Path) -> None:
    (project / "prog.py").write_text(PROGRAM)


def ready_pids(outputs: Path, ranks: int) -> list[int]:
    """Wait until every rank's program runs with its handler set; their pids (host or container)."""
    files = [outputs / f"ready-{k}" for k in range(ranks)]
    wait_for(lambda: all(f.exists() and f.read_text() for f in files), what="the program to be ready")
    return [int(f.read_text()) for f in files]


def test_exec_form_only_where_one_simple_command() -> None:
    assert exec_form("python train.py --lr 0.1 > log 2>&1") == "exec python train.py --lr 0.1 > log 2>&1"
    assert exec_form('python -c "import a; a.b()"') == 'exec python -c "import a; a.b()"'
    for kept in ("cd x && python y", "python a.py; python b.py", "python x | tee l", "A=1 python x", "echo hi",
                 "python $(which x)", "python x &", "for i in 1; do x; done", "python 'open", "exec python x",
                 "python a.py\npython b.py"):
        assert exec_form(kept) == kept


@pytest.mark.parametrize("value, words", [("-1", "must be at least 0, not -1"), ("thirty", "must be a number, not `thirty`"),
                                          ('"30"', "quoted text"), ("true", "must be a number, not `true`")])
def test_a_bad_grace_is_one_precise_line(tmp_path: Path, value: str, words: str) -> None:
    config = tmp_path / "configs" / "singkit.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(f"compute-targets:\n  a:\n    service: local\n    grace-seconds: {value}\n")
    result = run_singkit(["config.validate"], cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("configs/singkit.yaml:4:20: ") and words in result.stderr


# -- local ------------------------------------------------------------------------------------
@pytest.fixture
def local_project(tmp_path: Path) -> Path:
    project = make_project(tmp_path, TARGETS.format(kind="local", docker=""))
    write_program(project)
    return project


@pytest.mark.parametrize("suffix, command", CASES)
def test_local_cancel_gives_the_program_its_grace_to_save(local_project: Path, suffix: str, command: str) -> None:
    env = make_env(local_project)
    job = submit(env, SubmitRequest(target="local" + suffix, command=command))
    run = job.runs[0]
    (pid,) = ready_pids(run.outputs_dir, 1)
    assert control.cancel(env, job.id) == [run.id]
    assert (run.outputs_dir / "checkpoint-0").read_text() == "SIGTERM"
    assert run.state().status == "cancelled"
    assert pid_gone(pid)
    wait_for(lambda: run.state().exit_code == 143, what="the process's own exit code (SIGTERM) beside the cancel")


def test_local_cancel_reaches_every_rank(local_project: Path) -> None:
    env = make_env(local_project)
    job = submit(env, SubmitRequest(target="local-two", command="python prog.py"))
    run = job.runs[0]
    pids = ready_pids(run.outputs_dir, 2)
    control.cancel(env, job.id)
    assert [(run.outputs_dir / f"checkpoint-{k}").read_text() for k in range(2)] == ["SIGTERM", "SIGTERM"]
    assert run.state().status == "cancelled" and all(pid_gone(p) for p in pids)


def test_local_program_that_stays_is_killed_after_the_grace(local_project: Path) -> None:
    env = make_env(local_project)
    job = submit(env, SubmitRequest(target="local-short", command="python prog.py stubborn"))
    run = job.runs[0]
    (pid,) = ready_pids(run.outputs_dir, 1)
    control.cancel(env, job.id)
    assert (run.outputs_dir / "term-0").exists()  # it got SIGTERM, and stayed
    assert pid_gone(pid) and run.state().status == "cancelled"


# -- docker -------------------------------------------------------------------------------------
PYTHON_REF = "singkit-test/python-signals:1"


def python_rootfs_tar() -> bytes:
    """busybox's root filesystem plus this machine's Python at its own prefix (the binary, the
    shared libraries it loads, the standard library's .py files) and its bash, as a python image
    has them: an image with Python, whose jobs run in bash, built without pulling anything."""
    busybox = find_tool("SINGKIT_TEST_BUSYBOX", "/bin/busybox", "busybox")
    if busybox is None:
        pytest.skip("no busybox binary")
    python = Path(os.path.realpath(sys.executable))
    libs = [line.split("=>")[-1].split("(")[0].strip() for line in
            subprocess.run(["ldd", str(python)], capture_output=True, text=True, check=True).stdout.splitlines()]
    stdlib = Path(os.path.dirname(os.__file__))
    buf = io.BytesIO(busybox_rootfs_tar(busybox))
    buf.seek(0)
    with tarfile.open(fileobj=buf, mode="a") as tar:
        tar.add(python, arcname="usr/local/bin/python")
        tar.add(python, arcname=str(python).lstrip("/"))
        for lib in (lib for lib in libs if lib.startswith("/")):
            tar.add(os.path.realpath(lib), arcname=lib.lstrip("/"))
        add_host_program(tar, shutil.which("bash") or "/bin/bash", "bin/bash")
        for path in stdlib.rglob("*.py"):
            if not any(part in ("test", "site-packages", "idlelib", "tkinter", "lib2to3") for part in path.parts):
                tar.add(path, arcname=str(path).lstrip("/"))
    return buf.getvalue()


@pytest.fixture(scope="module")
def python_image(docker_client: Any) -> str:
    repo, tag = PYTHON_REF.rsplit(":", 1)
    changes = ["ENV PATH=/usr/local/bin:/usr/bin:/bin", *(f"LABEL {k}={v}" for k, v in TEST_LABELS.items())]
    docker_client.api.import_image_from_data(python_rootfs_tar(), repository=repo, tag=tag, changes=changes)
    return PYTHON_REF


@pytest.fixture
def docker_project(tmp_path: Path, python_image: str, docker_host: str) -> Path:
    config = f"dockers:\n  py:\n    image: {python_image}\n" + TARGETS.format(kind="docker", docker="\n    docker: py")
    project = make_project(tmp_path, config)
    write_program(project)
    return project


def containers_of(client: Any, job: Any) -> list[str]:
    return [c["Id"] for c in client.api.containers(all=True, filters={"label": [f"singkit.job={job.id}"]})]


@pytest.mark.parametrize("suffix, command", CASES)
def test_docker_cancel_gives_the_program_its_grace_to_save(docker_project: Path, docker_client: Any,
                                                          suffix: str, command: str) -> None:
    env = make_env(docker_project)
    job = submit(env, SubmitRequest(target="docker" + suffix, command=command))
    run = job.runs[0]
    ready_pids(run.outputs_dir, 1)
    assert control.cancel(env, job.id) == [run.id]
    assert (run.outputs_dir / "checkpoint-0").read_text() == "SIGTERM"
    assert run.state().status == "cancelled"
    wait_for(lambda: containers_of(docker_client, job) == [], what="the container to be removed")


def test_docker_cancel_reaches_every_rank(docker_project: Path, docker_client: Any) -> None:
    env = make_env(docker_project)
    job = submit(env, SubmitRequest(target="docker-two", command="python prog.py"))
    run = job.runs[0]
    ready_pids(run.outputs_dir, 2)
    control.cancel(env, job.id)
    assert [(run.outputs_dir / f"checkpoint-{k}").read_text() for k in range(2)] == ["SIGTERM", "SIGTERM"]
    assert run.state().status == "cancelled"


def test_docker_program_that_stays_is_killed_after_the_grace(docker_project: Path, docker_client: Any) -> None:
    env = make_env(docker_project)
    job = submit(env, SubmitRequest(target="docker-short", command="python prog.py stubborn"))
    run = job.runs[0]
    ready_pids(run.outputs_dir, 1)
    control.cancel(env, job.id)  # returns once the container is gone (SIGTERM, the grace, SIGKILL)
    assert (run.outputs_dir / "term-0").exists()
    assert run.state().status == "cancelled"
    wait_for(lambda: containers_of(docker_client, job) == [], what="the container to be removed")


# -- Singularity: the job's own command line, preempted as the platform does it ------------------
def sing_job(world: Any, tmp_path: Path, per_node: str, command: str, setup: bool) -> tuple[Any, Any, str]:
    si, azurite, _root = world
    root = sing_project(tmp_path / "p", si, azurite, per_node=per_node)
    config = root / "configs" / "singkit.yaml"
    text = config.read_text().replace("  s:\n", "  s:\n    pre-cmds:\n      - export SAVE=2\n", 1)
    if not setup:
        text = text.replace("    setup: s\n", "")
    text = text.replace("    sla: premium\n", "    sla: premium\n    grace-seconds: 20\n")
    config.write_text(text)
    write_program(root)
    job = submit(sing_env(root, si, azurite), SubmitRequest(target="sing", command=command))
    return job, si, only_job(si)


@pytest.mark.parametrize("setup, command, to_group", [
    (False, "python prog.py", True), (True, "python prog.py", False), (False, "true; python prog.py", False)])
def test_singularity_preemption_reaches_the_program(world: Any, tmp_path: Path, setup: bool, command: str,
                                                   to_group: bool) -> None:
    """SIGTERM to the job's process group (what a node agent sends), or to its first process only."""
    job, si, name = sing_job(world, tmp_path, "1", command, setup)
    line = si.job_body(name)["properties"]["command"]
    assert "--grace 20 " in line and ("exec python prog.py" in line) == (";" not in command)
    argv, env, cwd = job_process(job, si, name, SAVE="2")
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        outputs = cwd / "outputs"  # the command's SINGKIT_OUTPUTS
        wait_for(lambda: (outputs / "ready-0").exists(), what="the program to be ready")
        (os.killpg if to_group else os.kill)(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert (outputs / "checkpoint-0").read_text() == "SIGTERM"
    assert proc.returncode == 143
    exits = [e for e in map(json.loads, (cwd / ".singkit-run" / "rank0" / "run.log").read_text().splitlines())
             if e["event"] == "exit"]
    assert [e["exit_code"] for e in exits] == [143] and "SIGTERM" in exits[0]["reason"]


def test_singularity_preemption_reaches_every_process_of_a_node(world: Any, tmp_path: Path) -> None:
    """Azure ML starts the command once per process; the platform's SIGTERM reaches each one."""
    job, si, name = sing_job(world, tmp_path, "2", "python prog.py", True)
    started = []
    for k in range(2):
        argv, env, cwd = job_process(job, si, name, RANK=str(k), LOCAL_RANK=str(k), WORLD_SIZE="2", NODE_RANK="0",
                                     AZUREML_RUN_ID=name, TMPDIR=str(tmp_path))
        started.append(subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        start_new_session=True))
    try:
        for k in range(2):
            wait_for(lambda k=k: (cwd / "outputs" / f"ready-{k}").exists(),
                     what=f"rank {k} to be ready")
        for proc in started:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in started:
            proc.communicate(timeout=60)
    finally:
        for proc in started:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert [p.returncode for p in started] == [143, 143]
    for k in range(2):
        assert (cwd / "outputs" / f"checkpoint-{k}").read_text() == "SIGTERM"
