"""`processes-per-node` on the embedded targets and the setup once per node: real processes,
the real Docker Engine (busybox: shell only), and the in-job command of a Singularity job run
the way Azure ML runs it, once per process.

A run of N processes starts N ranks with Azure ML's PyTorch variables; the setup runs once,
before them (or, on Singularity, on local rank 0 while the others wait); the run completes
only when every rank exits 0; the first failing rank fails it and the others are stopped; a
cancel stops every rank; N == 1 is what it always was.
"""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jobreaper import reaped  # noqa: F401  (autouse: every job ends with its test)
import jobtools
from jobtools import ROOT, make_env, make_project, pid_gone, read_pid, wait_done, wait_for
from singtools import job_process, only_job, sing_env
from singtools import project as sing_project
from singkit.backends.embedded import visible_gpus
from singkit.jobs import control
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit

SETUP = """\
setups:
  s:
    pre-cmds:
      - echo ran >> "$SINGKIT_OUTPUTS/setup-count.txt"
      - touch "$SINGKIT_OUTPUTS/setup-done"
      - export FROM_SETUP=exported
      - SETUP_LOCAL=not-exported
"""

LOCAL_CONFIG = """\
general:
  experiment: test
compute-targets:
  local:
    service: local
  four:
    service: local
    processes-per-node: 4
    setup: s
  three:
    service: local
    processes-per-node: 3
  one:
    service: local
    processes-per-node: 1
    setup: s
  per-gpu:
    service: local
    processes-per-node: gpus
""" + SETUP

# What torch.distributed's env:// init needs, checked for real: rank 0 listens on MASTER_PORT
# (as its TCPStore does), every other rank connects to it and says who it is.
RANKS_PY = """\
import json, os, socket, sys, time

names = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "FROM_SETUP", "SETUP_LOCAL")
seen = {name: os.environ.get(name) for name in names}
seen["setup_done_first"] = os.path.exists(os.path.join(os.environ["SINGKIT_OUTPUTS"], "setup-done"))
rank, world = int(seen["RANK"]), int(seen["WORLD_SIZE"])
address = (seen["MASTER_ADDR"], int(seen["MASTER_PORT"]))
if rank == 0:
    server = socket.create_server(address)
    server.settimeout(120)
    peers = []
    for _ in range(world - 1):
        conn, _ = server.accept()
        peers.append(int(conn.recv(16)))
        conn.close()
    seen["peers"] = sorted(peers)
else:
    for _ in range(1200):
        try:
            conn = socket.create_connection(address, timeout=120)
            break
        except OSError:
            time.sleep(0.1)
    conn.sendall(str(rank).encode())
    conn.close()
with open(os.path.join(os.environ["SINGKIT_OUTPUTS"], f"rank{rank}.json"), "w") as out:
    json.dump(seen, out)
print(f"hello from rank {rank} of {world}")
print(f"rank {rank} on stderr", file=sys.stderr)
"""

# Each rank records its shell and a child; rank 2 (of 3) fails once the others are under way;
# the others note the SIGTERM they get (a SIGKILL after the grace would leave no note). The
# trap comes after the fork: a child forked with it could swallow a SIGTERM before its exec.
FAIL_RANK_2 = ('echo $$ > "$SINGKIT_OUTPUTS/sh$RANK.pid"; '
               'if [ "$RANK" = 2 ]; then '
               'while [ ! -s "$SINGKIT_OUTPUTS/ready0" ] || [ ! -s "$SINGKIT_OUTPUTS/ready1" ]; do sleep 0.05; done; '
               'echo failing >&2; exit 5; fi; '
               'sleep 300 & echo $! > "$SINGKIT_OUTPUTS/sleep$RANK.pid"; '
               'trap \'echo term > "$SINGKIT_OUTPUTS/stopped$RANK"; exit 143\' TERM; echo 1 > "$SINGKIT_OUTPUTS/ready$RANK"; wait')
SLEEPERS = 'echo $$ > "$SINGKIT_OUTPUTS/sh$RANK.pid"; sleep 300 & echo $! > "$SINGKIT_OUTPUTS/sleep$RANK.pid"; wait'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = make_project(tmp_path, LOCAL_CONFIG)
    (root / "ranks.py").write_text(RANKS_PY)
    return root


def rank_pids(run: Any, ranks: int) -> dict[str, int]:
    """The pids every rank's shell and its `sleep` wrote (waits until all are there)."""
    names = [f"{kind}{k}" for k in range(ranks) for kind in ("sh", "sleep")]
    return wait_for(lambda: all(read_pid(run.outputs_dir / f"{n}.pid") for n in names)
                    and {n: read_pid(run.outputs_dir / f"{n}.pid") for n in names}, what="every rank to start")


# -- local -------------------------------------------------------------------------------------
def test_local_four_ranks_with_one_setup(project: Path) -> None:
    env = make_env(project)
    job = submit(env, SubmitRequest(target="four", command="python ranks.py"))
    assert wait_done(env, job.id) == "completed"
    run = job.runs[0]
    assert (run.outputs_dir / "setup-count.txt").read_text() == "ran\n"  # once, not once per rank
    seen = [json.loads((run.outputs_dir / f"rank{k}.json").read_text()) for k in range(4)]
    port = seen[0]["MASTER_PORT"]
    assert port.isdigit() and 0 < int(port) < 65536
    for k, values in enumerate(seen):
        assert (values["RANK"], values["LOCAL_RANK"], values["WORLD_SIZE"], values["NODE_RANK"]) == (str(k), str(k), "4", "0")
        assert (values["MASTER_ADDR"], values["MASTER_PORT"]) == ("127.0.0.1", port)
        assert values["setup_done_first"] and values["FROM_SETUP"] == "exported"  # after the setup, with its exports
    assert seen[0]["peers"] == [1, 2, 3]  # every rank reached rank 0 on MASTER_PORT
    out = run.stdout_path.read_text().splitlines()
    assert sorted(out) == sorted(["hello from rank 0 of 4"] + [f"[rank {k}] hello from rank {k} of 4" for k in (1, 2, 3)])
    err = run.stderr_path.read_text().splitlines()
    assert sorted(err) == sorted(["rank 0 on stderr"] + [f"[rank {k}] rank {k} on stderr" for k in (1, 2, 3)])
    state = run.state()
    assert (state.status, state.exit_code, state.reason) == ("completed", 0, None)


def test_local_failing_rank_fails_the_run_and_stops_the_others(project: Path) -> None:
    env = make_env(project)
    job = submit(env, SubmitRequest(target="three", command=FAIL_RANK_2))
    run = job.runs[0]
    assert wait_done(env, job.id) == "failed"
    state = run.state()
    assert state.exit_code == 5 and state.reason == "rank 2: exit code 5"
    pids = {n: read_pid(run.outputs_dir / f"{n}.pid") for n in ("sh0", "sleep0", "sh1", "sleep1")}
    wait_for(lambda: all(pid_gone(p) for p in pids.values()), what="the other ranks to be stopped")
    assert (run.outputs_dir / "stopped0").exists() and (run.outputs_dir / "stopped1").exists()  # by SIGTERM
    err = run.stderr_path.read_text()
    assert "[rank 2] failing\n" in err and "singkit: rank 2 ended (exit code 5); stopping the other ranks\n" in err


def test_local_cancel_stops_every_rank(project: Path) -> None:
    env = make_env(project)
    job = submit(env, SubmitRequest(target="three", command=SLEEPERS))
    run = job.runs[0]
    pids = rank_pids(run, 3)
    wrapper = run.backend_info()["pid"]
    assert not any(pid_gone(p) for p in pids.values())
    assert control.cancel(env, job.id) == [run.id]
    assert [n for n, p in pids.items() if not pid_gone(p)] == [] and pid_gone(wrapper)
    assert control.status(env, job.id)["status"] == "cancelled"


def test_local_setup_failure_starts_no_rank(tmp_path: Path) -> None:
    config = LOCAL_CONFIG.replace("      - export FROM_SETUP=exported\n", "      - sh -c 'exit 3'\n")
    project = make_project(tmp_path, config)
    env = make_env(project)
    job = submit(env, SubmitRequest(target="four", command='touch "$SINGKIT_OUTPUTS/rank$RANK"'))
    assert wait_done(env, job.id) == "failed"
    run = job.runs[0]
    state = run.state()
    assert state.exit_code == 3 and "setup failed (exit code 3)" in state.reason
    assert sorted(p.name for p in run.outputs_dir.iterdir()) == ["setup-count.txt", "setup-done"]


def test_local_one_process_is_as_before(project: Path) -> None:
    """processes-per-node: 1 — no rank variables, and the setup is still a prefix of the
    command in one shell (its unexported variables reach the command, as they always did)."""
    env = make_env(project)
    job = submit(env, SubmitRequest(target="one", command='echo "${RANK-unset} ${WORLD_SIZE-unset} $SETUP_LOCAL $FROM_SETUP"'))
    assert wait_done(env, job.id) == "completed"
    run = job.runs[0]
    assert run.stdout_path.read_text() == "unset unset not-exported exported\n"
    assert run.stderr_path.read_text() == ""
    assert run.backend_info()["processes"] == 1


def test_local_gpus_without_a_gpu_starts_one_process_and_says_so(project: Path) -> None:
    env = make_env(project, CUDA_VISIBLE_DEVICES="")  # no GPU visible, whatever this machine has
    job = submit(env, SubmitRequest(target="per-gpu", command='echo "rank=${RANK-unset}"'))
    assert wait_done(env, job.id) == "completed"
    run = job.runs[0]
    assert run.stdout_path.read_text() == "rank=unset\n"
    lines = run.stderr_path.read_text().splitlines()
    assert len(lines) == 1 and "gpus" in lines[0] and "no GPU" in lines[0] and "1 process" in lines[0]


def test_local_gpus_counts_nvidia_smi_within_cuda_visible_devices(project: Path, tmp_path: Path) -> None:
    """A stand-in nvidia-smi listing three GPUs; CUDA_VISIBLE_DEVICES=0,2 leaves two: two ranks."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text('#!/bin/sh\n[ "$1" = -L ] || exit 9\n'
                   'for i in 0 1 2; do echo "GPU $i: Stand-in GPU (UUID: GPU-0000000$i)"; done\n')
    smi.chmod(0o755)
    env = make_env(project, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", CUDA_VISIBLE_DEVICES="0,2")
    job = submit(env, SubmitRequest(target="per-gpu", command='echo "rank=$RANK world=$WORLD_SIZE"'))
    assert wait_done(env, job.id) == "completed"
    run = job.runs[0]
    assert sorted(run.stdout_path.read_text().splitlines()) == ["[rank 1] rank=1 world=2", "rank=0 world=2"]


@pytest.mark.parametrize("devices, expected", [(None, 4), ("", 0), ("-1", 0), ("1,3", 2), ("0,7,1", 1),
                                               ("GPU-abc, 2", 2), ("0,1,2,3,0", 4)])
def test_cuda_visible_devices_limits_the_count(devices: str | None, expected: int) -> None:
    assert visible_gpus(4, devices) == expected


def run_entry(tmp_path: Path, command: str, *options: str) -> subprocess.CompletedProcess:
    """The wrapper directly with --procs 2 (what the local target runs), $OUT = tmp_path."""
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "singkit_entry.py"), "--run-dir", str(tmp_path),
                           "--procs", "2", *options, "--", "/bin/sh", "-c", command],
                          env={**os.environ, "OUT": str(tmp_path)}, capture_output=True, text=True, timeout=240)


def test_entry_kills_a_rank_that_ignores_sigterm_after_the_grace(tmp_path: Path) -> None:
    """The wrapper directly, with a 1 s grace: rank 0 ignores SIGTERM, so it gets SIGKILL."""
    stubborn = ('if [ "$RANK" = 1 ]; then while [ ! -s "$OUT/sleep0.pid" ]; do sleep 0.05; done; exit 4; fi; '
                'trap "" TERM; sleep 300 & echo $! > "$OUT/sleep0.pid"; wait; wait; wait')
    result = run_entry(tmp_path, stubborn, "--grace", "1")
    assert result.returncode == 4, result.stderr
    last = json.loads((tmp_path / "run.log").read_text().splitlines()[-1])
    assert (last["status"], last["exit_code"], last["reason"]) == ("failed", 4, "rank 1: exit code 4")
    sleeper = read_pid(tmp_path / "sleep0.pid")
    wait_for(lambda: pid_gone(sleeper), what="rank 0's child to be killed")


def test_entry_a_child_left_by_a_failed_rank_is_stopped_with_it(tmp_path: Path) -> None:
    """Rank 1 fails, leaving a child that ignores SIGTERM and holds rank 1's output pipe: it
    gets the grace, then SIGKILL, and the run still ends with rank 1's code."""
    command = ('if [ "$RANK" = 1 ]; then sh -c \'trap "" TERM; exec sleep 300\' & echo $! > "$OUT/left.pid"; '
               'echo leaving; exit 3; fi; sleep 300')
    result = run_entry(tmp_path, command, "--grace", "1")
    assert result.returncode == 3, result.stderr
    left = read_pid(tmp_path / "left.pid")
    wait_for(lambda: pid_gone(left), what="the left-behind child to be killed")
    assert "[rank 1] leaving\n" in (tmp_path / "stdout.log").read_text()


def test_entry_a_child_left_by_a_finished_rank_does_not_hold_the_run(tmp_path: Path) -> None:
    """Every rank exits 0 but rank 1 leaves a child holding its output pipe: the run completes
    (its output is drained for a moment, not until that child ends)."""
    result = run_entry(tmp_path, 'if [ "$RANK" = 1 ]; then sleep 300 & echo $! > "$OUT/left.pid"; fi; echo "done $RANK"')
    try:
        assert result.returncode == 0, result.stderr
        assert sorted((tmp_path / "stdout.log").read_text().splitlines()) == ["[rank 1] done 1", "done 0"]
        assert json.loads((tmp_path / "run.log").read_text().splitlines()[-1])["status"] == "completed"
    finally:
        os.kill(read_pid(tmp_path / "left.pid"), 9)  # left running by design: this test ends it


# -- docker (busybox: no Python in the image) ------------------------------------------------------
# Each rank writes every line in two pieces, a moment apart: a line torn by another rank's shows.
HALF_LINES = 'i=0; while [ $i -lt 25 ]; do printf "r$RANK-$i-a"; sleep 0.01; printf "b\\n"; i=$((i+1)); done'


def assert_untorn(text: str, ranks: int) -> None:
    seen = {k: 0 for k in range(ranks)}
    for line in text.splitlines():
        match = re.fullmatch(r"(\[rank (\d)\] )?r(\d)-(\d+)-ab", line)
        assert match, f"torn line: {line!r}"
        rank = int(match.group(3))
        assert (match.group(2) or "0") == str(rank), line
        seen[rank] += 1
    assert seen == {k: 25 for k in range(ranks)}


def test_entry_no_rank_tears_another_ranks_line(tmp_path: Path) -> None:
    result = run_entry(tmp_path, HALF_LINES)
    assert result.returncode == 0, result.stderr
    assert_untorn((tmp_path / "stdout.log").read_text(), 2)


DOCKER_CONFIG = jobtools.DOCKER_CONFIG + """\
  three:
    service: docker
    docker: bb
    processes-per-node: 3
    setup: s
  per-gpu:
    service: docker
    docker: bb
    processes-per-node: gpus
""" + SETUP

# Ranks meet at a barrier (all three running at once), then report what they see.
DOCKER_RANKS = ('touch "$SINGKIT_OUTPUTS/started$RANK"; i=0; '
                'while [ "$(ls "$SINGKIT_OUTPUTS" | grep -c started)" -lt 3 ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done; '
                'test -f "$SINGKIT_OUTPUTS/setup-done" && ok=yes || ok=no; '
                'echo "rank=$RANK local=$LOCAL_RANK world=$WORLD_SIZE node=$NODE_RANK addr=$MASTER_ADDR '
                'port=$MASTER_PORT setup=$FROM_SETUP/$ok host=$(hostname)"; echo "err $RANK" >&2')


@pytest.fixture
def docker_project(tmp_path: Path, busybox_image: Any, docker_host: str) -> Path:
    return make_project(tmp_path, DOCKER_CONFIG.format(image=busybox_image.ref))


def containers_of(client: Any, job: Any) -> list[str]:
    found = client.api.containers(all=True, filters={"label": [f"singkit.job={job.id}", f"singkit.store={job.store.root}"]})
    return [c["Id"] for c in found]


def test_docker_three_ranks_in_one_container(docker_project: Path, docker_client: Any) -> None:
    env = make_env(docker_project)
    job = submit(env, SubmitRequest(target="three", command=DOCKER_RANKS))
    assert wait_done(env, job.id) == "completed"
    run = job.runs[0]
    assert (run.outputs_dir / "setup-count.txt").read_text() == "ran\n"
    lines = run.stdout_path.read_text().splitlines()
    assert len(lines) == 3
    fields = {}
    for line in lines:
        prefix, _, rest = line.rpartition("rank=")
        values = dict(item.split("=", 1) for item in ("rank=" + rest).split())
        assert prefix == ("" if values["rank"] == "0" else f"[rank {values['rank']}] ")
        fields[values["rank"]] = values
    assert sorted(fields) == ["0", "1", "2"]
    port = fields["0"]["port"]
    assert port.isdigit() and 0 < int(port) < 65536
    for k, values in fields.items():
        assert (values["local"], values["world"], values["node"], values["addr"], values["port"]) == (k, "3", "0", "127.0.0.1", port)
        assert values["setup"] == "exported/yes"
    assert len({values["host"] for values in fields.values()}) == 1  # one container
    assert sorted(run.stderr_path.read_text().splitlines()) == ["[rank 1] err 1", "[rank 2] err 2", "err 0"]
    assert run.state().exit_code == 0
    assert containers_of(docker_client, job) == []


def test_docker_no_rank_tears_another_ranks_line(docker_project: Path, docker_client: Any) -> None:
    env = make_env(docker_project)
    job = submit(env, SubmitRequest(target="three", command=HALF_LINES))
    assert wait_done(env, job.id) == "completed"
    assert_untorn(job.runs[0].stdout_path.read_text(), 3)


def test_docker_failing_rank_fails_the_run_and_stops_the_others(docker_project: Path, docker_client: Any) -> None:
    env = make_env(docker_project)
    command = ('if [ "$RANK" = 1 ]; then '
               'while [ ! -f "$SINGKIT_OUTPUTS/ready0" ] || [ ! -f "$SINGKIT_OUTPUTS/ready2" ]; do sleep 0.05; done; exit 6; fi; '
               'sleep 300 & trap \'echo stopped > "$SINGKIT_OUTPUTS/stopped$RANK"; exit 143\' TERM; '
               'touch "$SINGKIT_OUTPUTS/ready$RANK"; wait')
    job = submit(env, SubmitRequest(target="three", command=command))
    assert wait_done(env, job.id) == "failed"
    run = job.runs[0]
    state = run.state()
    assert state.exit_code == 6 and state.reason == "rank 1: exit code 6"
    assert (run.outputs_dir / "stopped0").exists() and (run.outputs_dir / "stopped2").exists()  # got SIGTERM
    assert "singkit: rank 1 ended (exit code 6); stopping the other ranks" in run.stderr_path.read_text()
    assert containers_of(docker_client, job) == []


def test_docker_cancel_stops_every_rank(docker_project: Path, docker_client: Any) -> None:
    env = make_env(docker_project)
    job = submit(env, SubmitRequest(target="three", command='echo "up $RANK"; sleep 300'))
    run = job.runs[0]
    wait_for(lambda: len(run.stdout_path.read_text().splitlines()) == 3, what="three ranks to start")
    assert len(containers_of(docker_client, job)) == 1  # all three in one container
    assert control.cancel(env, job.id) == [run.id]
    assert containers_of(docker_client, job) == []
    assert control.status(env, job.id)["status"] == "cancelled"


def test_docker_setup_failure_starts_no_rank(tmp_path: Path, busybox_image: Any, docker_client: Any) -> None:
    config = DOCKER_CONFIG.format(image=busybox_image.ref).replace("      - export FROM_SETUP=exported\n", "      - sh -c 'exit 3'\n")
    env = make_env(make_project(tmp_path, config))
    job = submit(env, SubmitRequest(target="three", command='touch "$SINGKIT_OUTPUTS/rank$RANK"'))
    assert wait_done(env, job.id) == "failed"
    run = job.runs[0]
    state = run.state()
    assert state.exit_code == 3 and state.reason == "the setup failed (exit code 3); the command did not start"
    assert sorted(p.name for p in run.outputs_dir.iterdir()) == ["setup-count.txt", "setup-done"]
    assert containers_of(docker_client, job) == []


def test_docker_gpus_without_the_nvidia_runtime_is_one_process(docker_project: Path, docker_client: Any) -> None:
    if "nvidia" in (docker_client.info().get("Runtimes") or {}):
        pytest.skip("this engine has the NVIDIA runtime: `gpus` would start one rank per GPU")
    env = make_env(docker_project)
    job = submit(env, SubmitRequest(target="per-gpu", command='echo "rank=${RANK-unset}"'))
    assert wait_done(env, job.id) == "completed"
    run = job.runs[0]
    assert run.stdout_path.read_text() == "rank=unset\n"
    assert "no GPU" in run.stderr_path.read_text()


def test_docker_ranks_script_ends_a_rank_that_ignores_sigterm(docker_client: Any, busybox_image: Any) -> None:
    """RANKS_SH itself in a container with a 1 s grace: rank 0 ignores SIGTERM, and the
    container still ends, with the failing rank's code."""
    from services import TEST_LABELS

    from singkit.backends.containersh import RANKS_SH
    from singkit.backends.runtime.workdir import shell_argv

    command = ('if [ "$RANK" = 1 ]; then sleep 0.2; exit 9; fi; trap "" TERM; sleep 300')
    container = docker_client.containers.run(busybox_image.id, shell_argv(RANKS_SH, "", command, "2", "1"),
                                             network_mode="none", labels=TEST_LABELS, detach=True)
    try:
        assert container.wait(timeout=120)["StatusCode"] == 9
        assert b"singkit: rank 1 ended (exit code 9)" in container.logs(stdout=False, stderr=True)
    finally:
        container.remove(force=True)


# -- Singularity: Azure ML starts every process itself, each running the job's command --------------
def singularity_project(tmp_path: Path, si: Any, azurite: Any, per_node: str, pre_cmds: list[str]) -> Path:
    root = sing_project(tmp_path, si, azurite, per_node=per_node)
    config = root / "configs" / "singkit.yaml"
    steps = "".join(f"      - {json.dumps(step)}\n" for step in pre_cmds)
    config.write_text(config.read_text().replace("  s:\n", f"  s:\n    pre-cmds:\n{steps}", 1))
    return root


def run_ranks(job: Any, si: Any, name: str, ranks: int, tmp_path: Path) -> list[subprocess.CompletedProcess]:
    """Start the job's command once per process, at once, with what Azure ML sets per process."""
    started = []
    for k in range(ranks):
        argv, env, cwd = job_process(job, si, name, RANK=str(k), LOCAL_RANK=str(k), WORLD_SIZE=str(ranks),
                                     NODE_RANK="0", AZUREML_RUN_ID=name, TMPDIR=str(tmp_path))
        started.append(subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for proc in started:
        out, err = proc.communicate(timeout=180)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


# the setup takes a moment, so a rank that did not wait for it would start before it is done
SING_SETUP = ['echo ran >> setup-count.txt', 'sleep 1', 'touch setup-done', 'export FROM_SETUP_CMD=exported']
SING_RANK = 'test -f setup-done && echo "rank $RANK after the setup: $FROM_SETUP_CMD"'


def test_singularity_ranks_share_one_setup_per_node(world: Any, tmp_path: Path) -> None:
    si, azurite, _root = world
    root = singularity_project(tmp_path / "four", si, azurite, "4", SING_SETUP)
    env = sing_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command=SING_RANK))
    name = only_job(si)
    assert "--setup" in si.job_body(name)["properties"]["command"]
    results = run_ranks(job, si, name, 4, tmp_path)
    assert [r.returncode for r in results] == [0, 0, 0, 0], [r.stderr for r in results]
    for k, result in enumerate(results):
        assert f"rank {k} after the setup: exported" in result.stdout
    assert (job.dir / "code" / "setup-count.txt").read_text() == "ran\n"


def test_singularity_failed_setup_fails_every_rank(world: Any, tmp_path: Path) -> None:
    si, azurite, _root = world
    root = singularity_project(tmp_path / "bad", si, azurite, "3", ["echo trying", "sh -c 'exit 3'"])
    env = sing_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="touch rank-ran-$RANK"))
    results = run_ranks(job, si, only_job(si), 3, tmp_path)
    assert [r.returncode for r in results] == [3, 3, 3]
    for k in range(3):
        last = json.loads((job.dir / "code" / ".singkit-run" / f"rank{k}" / "run.log").read_text().splitlines()[-1])
        assert (last["event"], last["exit_code"], last["rank"]) == ("exit", 3, k)
        assert "setup failed (exit code 3)" in last["reason"]
    assert not list((job.dir / "code").glob("rank-ran-*"))


def test_singularity_one_process_per_node_keeps_the_setup_in_the_command(world: Any, tmp_path: Path) -> None:
    si, azurite, _root = world
    root = singularity_project(tmp_path / "one", si, azurite, "1", ["SETUP_LOCAL=in-one-shell"])
    env = sing_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command='echo "local=$SETUP_LOCAL"'))
    name = only_job(si)
    command = si.job_body(name)["properties"]["command"]
    assert "--setup" not in command and "SETUP_LOCAL=in-one-shell && echo" in command
    results = run_ranks(job, si, name, 1, tmp_path)
    assert results[0].returncode == 0 and "local=in-one-shell" in results[0].stdout
