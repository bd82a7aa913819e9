"""Jobs on the `docker` target, on the real local Docker Engine, in a busybox image (no Python)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jobreaper import reaped  # noqa: F401  (autouse: every job ends with its test)
from jobtools import DOCKER_CONFIG, make_env, make_project, run_cli, wait_done, wait_for
from singkit.jobs import control
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit

CONFIG = DOCKER_CONFIG + """\
  docker-net:
    service: docker
    docker: bb
    network: true
    env:
      GREETING: hello
  docker-limited:
    service: docker
    docker: bb
    max-run-seconds: 2
    grace-seconds: 1
"""

JOB = ('echo "out $SINGKIT_RUN $SINGKIT_HP_X $GREETING"; echo "err line" >&2; '
       'echo \'{"t": 1, "event": "metrics", "step": 1, "metrics": {"acc": 0.5}}\' >> "$SINGKIT_RUN_LOG"; '
       'ls /singkit/code > "$SINGKIT_OUTPUTS/listing.txt"; '
       'touch /singkit/code/written 2>/dev/null && echo code-writable || echo code-read-only; '
       'ls /sys/class/net | tr "\\n" " "; echo; :')


@pytest.fixture
def project(tmp_path: Path, busybox_image: Any, docker_host: str) -> Path:
    return make_project(tmp_path, CONFIG.format(image=busybox_image.ref))


def containers_of(client: Any, job: Any) -> list[str]:
    """Ids of the job's containers still on the engine (this store's job only)."""
    found = client.api.containers(all=True, filters={"label": [f"singkit.job={job.id}", f"singkit.store={job.store.root}"]})
    return [c["Id"] for c in found]


def test_docker_job_yields_logs_and_outputs(project: Path, docker_client: Any, busybox_image: Any) -> None:
    env = make_env(project)
    job = submit(env, SubmitRequest(target="docker", command=JOB, hp=["x=1,2"], parallel=2))
    assert job.spec["image"]["id"] == busybox_image.id
    assert wait_done(env, job.id) == "completed"
    for run in job.runs:
        out = run.stdout_path.read_text().splitlines()
        assert out[0] == f"out {run.id} {run.hparams['x']} "
        assert "code-read-only" in out  # the snapshot is mounted read-only
        assert out[-1].split() == ["lo"]  # no network unless the target asks
        assert run.stderr_path.read_text() == "err line\n"
        assert "job.sh" in (run.outputs_dir / "listing.txt").read_text()
        state = run.state()
        assert state.last_metrics == {"acc": 0.5} and state.hparams == run.hparams and state.exit_code == 0
        assert (run.outputs_dir / "listing.txt").stat().st_uid == __import__("os").getuid()
    assert containers_of(docker_client, job) == []  # removed once their logs were saved


def test_docker_target_env_network_and_failure(project: Path, docker_client: Any) -> None:
    env = make_env(project)
    done = run_cli(["job.submit", "--target=docker-net", "--cmd", 'echo "$GREETING"; ls /sys/class/net | wc -l; exit 5',
                    "--follow"], project, env)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "job1" and lines[1] == "hello"
    status = json.loads(run_cli(["job.status", "job1", "--json"], project, env).stdout)
    assert status["runs"][0]["exit_code"] == 5 and status["runs"][0]["reason"] == "exit code 5"


def test_docker_cancel_stops_and_removes_the_container(project: Path, docker_client: Any) -> None:
    env = make_env(project)
    job = submit(env, SubmitRequest(target="docker", command="echo started; sleep 300", runs=2))
    run = job.runs[0]
    wait_for(lambda: run.stdout_path.read_text() == "started\n", what="the container to start")
    assert len(containers_of(docker_client, job)) == 1
    assert control.cancel(env, job.id) == [run.id, job.runs[1].id]
    assert containers_of(docker_client, job) == []
    assert control.status(env, job.id)["status"] == "cancelled"
    assert run.stdout_path.read_text() == "started\n"


def test_docker_target_without_image_record(tmp_path: Path) -> None:
    project = make_project(tmp_path, "compute-targets:\n  bare:\n    service: docker\n")
    env = make_env(project)
    done = run_cli(["job.submit", "--target=bare"], project, env)
    assert done.returncode == 2 and "names no image" in done.stderr


def test_docker_runner_killed_is_reconciled_from_the_engine(project: Path, docker_client: Any) -> None:
    """The runner dies mid-run: the container goes on; the next status reads its outcome and
    its whole output from the engine, then removes it."""
    import os
    import signal

    from jobtools import pid_gone

    env = make_env(project)
    job = submit(env, SubmitRequest(target="docker", command="echo started; sleep 1; echo finished; exit 4"))
    run = job.runs[0]
    wait_for(lambda: run.stdout_path.read_text() == "started\n", what="the container to start")
    runner = job.runner_info()["pid"]
    os.kill(runner, signal.SIGKILL)
    wait_for(lambda: pid_gone(runner), what="the runner to die")
    assert wait_done(env, job.id) == "failed"
    state = run.state()
    assert (state.exit_code, state.reason) == (4, "exit code 4")
    assert run.stdout_path.read_text() == "started\nfinished\n"
    assert containers_of(docker_client, job) == []


def test_docker_run_past_max_run_seconds_is_stopped_with_reason_timeout(project: Path, docker_client: Any) -> None:
    env = make_env(project)
    job = submit(env, SubmitRequest(target="docker-limited", command="echo started; sleep 300"))
    assert wait_done(env, job.id) == "failed"
    run = control.status(env, job.id)["runs"][0]
    assert run["reason"].startswith("timeout: ") and "max-run-seconds (2 s)" in run["reason"], run
    assert containers_of(docker_client, job) == [] and job.runs[0].stdout_path.read_text() == "started\n"
    quick = submit(env, SubmitRequest(target="docker-limited", command="echo quick"))
    assert wait_done(env, quick.id) == "completed"


def test_a_pinned_docker_record_runs_the_pinned_bytes_not_what_the_tag_names_now(
        tmp_path: Path, docker_client: Any, busybox_image: Any, registry: Any, docker_host: str) -> None:
    """The record pins image A by digest; the engine's local tag meanwhile names image B (a
    rebuild, a `docker pull` of a moved tag). The run uses A, as on Singularity (issue 12)."""
    import io
    import tarfile

    import docker_services
    import services

    def image_with(marker: str) -> str:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            data = f"FROM {busybox_image.id}\nRUN echo {marker} > /marker\n".encode()
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        buf.seek(0)
        image, _ = docker_client.images.build(fileobj=buf, custom_context=True, rm=True, labels=services.TEST_LABELS)
        return image.id

    first = image_with("pinned-A")
    pushed = docker_services.push_image(docker_client, first, registry, "singkit-test/pinned", "1")
    docker_client.images.get(image_with("moved-B")).tag(f"{registry.host}/singkit-test/pinned", "1")
    docker_client.images.remove(first, force=True)  # A is in the registry only; the tag names B here
    config = CONFIG.format(image=pushed.ref).replace(f"    image: {pushed.ref}\n",
                                                     f"    image: {pushed.ref}\n    sha256: {pushed.digest}\n")
    project = make_project(tmp_path, config)
    env = make_env(project)
    job = submit(env, SubmitRequest(target="docker", command="cat /marker"))
    assert wait_done(env, job.id) == "completed"
    assert job.runs[0].stdout_path.read_text() == "pinned-A\n"
    assert job.spec["image"]["ref"] == f"{registry.host}/singkit-test/pinned@{pushed.digest}"
