"""The submit pipeline as data (issue 12): each step of jobs.submit alone, the one dry-run rule
of `execute`, rerun on the same steps, and a store left consistent by a failure in any step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jobreaper import reaped  # noqa: F401  (autouse: every job ends with its test)
from jobtools import make_env, make_project, wait_done
from singkit.exceptions import ConfigError, UsageError
from singkit.jobs import control
from singkit.jobs import submit as pipeline
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import RERUN, SUBMIT, State, execute
from singkit.store import Store, events

DIGEST = "ab" * 32
CONFIG = f"""\
general:
  experiment: test
external-services:
  ws:
    type: singularity
    subscription-id: 00000000-0000-4000-8000-00000000beef
    resource-group: rg
  vc:
    type: virtual_cluster
    subscription-id: 00000000-0000-4000-8000-00000000beef
    resource-group: rg
  amlws:
    type: aml
    subscription-id: 00000000-0000-4000-8000-00000000beef
    resource-group: rg
    workspace: w
  acr:
    type: registry
    login-server: singkit.azurecr.io
dockers:
  pinned:
    image: research/torch:2.1
    registry: acr
    sha256: {DIGEST}
  wrapped:
    image: research/torch:2.1@sha256:{"cd" * 32}
    registry: acr
    sing-wrap: true
    sha256: {DIGEST}
  loose:
    image: research/torch:2.1
    registry: acr
  registered:
    image: azureml:torch-env:3
compute-targets:
  local:
    service: local
  local-with-image:
    service: local
    docker: pinned
  docker-pinned:
    service: docker
    docker: pinned
  docker-loose:
    service: docker
    docker: loose
  sing-registered:
    service: ws
    compute: vc
    vm-size: NC6_v3
    docker: registered
  sing:
    service: ws
    compute: vc
    vm-size: NC6_v3
    docker: wrapped
  cluster:
    service: amlws
    compute: cpu-cluster
    vm-size: Standard_D4s_v3
    docker: wrapped
"""


@pytest.fixture
def env(tmp_path: Path) -> Any:
    return make_env(make_project(tmp_path, CONFIG))


def through(env: Any, last: str, **request: Any) -> State:
    """The SUBMIT steps up to and including `last`, run one by one (each a plain function)."""
    state = State(env, request=SubmitRequest(**request))
    for step in SUBMIT:
        state = step(state)
        if step.__name__ == last:
            return state
    raise AssertionError(last)


def jobs_dir(env: Any) -> Path:
    return env.home / "jobs"


def half_folders(env: Any) -> list[str]:
    """Job folders without job.yaml: what a reader must never be left to skip."""
    folder = jobs_dir(env)
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not (p / "job.yaml").exists()) if folder.exists() else []


# -- each step alone ------------------------------------------------------------------------------
def test_load_config_needs_a_project_and_loads_it(env: Any, tmp_path: Path) -> None:
    state = pipeline.load_config(State(env))
    assert "sing" in state.cfg.targets
    stranger = make_env(tmp_path / "elsewhere")
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(UsageError, match="job.submit needs a singkit project"):
        pipeline.load_config(State(stranger))


def test_resolve_target_picks_the_record_its_service_and_backend(env: Any) -> None:
    state = pipeline.load_config(State(env, request=SubmitRequest(target="sing")))
    state = pipeline.resolve_target(state)
    assert state.target is not None and state.target["name"] == "sing"
    assert state.service is not None and state.service["type"] == "singularity"
    assert state.backend is not None and state.backend.name == "singularity"
    with pytest.raises(Exception, match="nowhere"):
        pipeline.resolve_target(pipeline.load_config(State(env, request=SubmitRequest(target="nowhere"))))


def test_build_spec_makes_the_runs_and_writes_nothing(env: Any) -> None:
    state = through(env, "build_spec", command="echo {hparams}", hp=["lr=0.1,0.01"])
    assert [r["command"] for r in state.spec["runs"]] == ["echo --lr 0.1", "echo --lr 0.01"]
    assert state.spec["job"] is None and state.spec["code"] is None and "image" not in state.spec
    assert not env.home.exists()  # no store yet: nothing before snapshot touches it


@pytest.mark.parametrize(("target", "image"), [
    ("docker-pinned", f"singkit.azurecr.io/research/torch@sha256:{DIGEST}"),  # pinned: by digest, never the tag
    ("docker-loose", "singkit.azurecr.io/research/torch:2.1"),
    ("sing", f"singkit.azurecr.io/research/torch@sha256:{DIGEST}"),           # the wrapped image image.wrap pinned
    ("cluster", f"singkit.azurecr.io/research/torch@sha256:{'cd' * 32}"),     # a compute cluster runs the base
    ("local-with-image", None),                                              # runs no image
    ("sing-registered", None),                                               # azureml: is no image reference
    ("local", None),
])
def test_resolve_image_puts_the_one_image_a_run_uses_into_the_spec(env: Any, target: str, image: str | None) -> None:
    state = pipeline.resolve_image(through(env, "build_spec", target=target))
    assert (state.spec.get("image") or {}).get("ref") == image


def test_resolve_image_keeps_a_rerun_image_id_and_locates_an_unreadable_record(env: Any) -> None:
    state = through(env, "build_spec", target="docker-loose")
    state.spec["image"] = {"ref": "old", "id": "sha256:" + "1" * 64}
    assert pipeline.resolve_image(state).spec["image"] == {"ref": "singkit.azurecr.io/research/torch:2.1",
                                                           "id": "sha256:" + "1" * 64}
    state.spec["docker"] = {**state.spec["docker"], "sha256": "nonsense"}
    with pytest.raises(ConfigError) as caught:
        pipeline.resolve_image(state)
    assert "dockers.loose: `nonsense` is not a sha256 digest" in str(caught.value)
    assert "configs/singkit.yaml:" in str(caught.value)  # at the record's line
    state.cfg = None  # a stored job's record, no config to point into
    with pytest.raises(UsageError, match="in the job's stored docker record"):
        pipeline.resolve_image(state)


def test_snapshot_fills_the_shared_snapshots_only(env: Any) -> None:
    state = through(env, "snapshot")
    assert state.archive is not None and state.archive.parent == Store.of(env).snapshots_dir
    assert state.spec["code"]["sha256"] and state.spec["code"]["files"] >= 2
    assert not jobs_dir(env).exists()


def test_commit_writes_a_whole_job_folder(env: Any) -> None:
    state = through(env, "commit", hp=["k=1,2"])
    assert state.job is not None and state.job.id == "job1"
    assert state.job.spec_path.is_file() and state.job.code_archive.is_file()
    assert [r.id for r in state.job.runs] == ["job1.1", "job1.2"] and all(r.dir.is_dir() for r in state.job.runs)
    dry = through(env, "commit", dry_run=True)
    assert dry.job is not None and not any(r.dir.exists() for r in dry.job.runs)  # nothing will run them


def test_prepare_hands_literal_secrets_to_the_backend_only(env: Any) -> None:
    state = through(env, "commit")
    state.secrets = {"SINGKIT_SECRET_TOKEN": "s3cret"}
    state = pipeline.prepare(state)
    assert state.backend is not None and state.backend.env.environ["SINGKIT_SECRET_TOKEN"] == "s3cret"
    assert state.job is not None and "s3cret" not in state.job.spec_path.read_text()


def test_the_singularity_backend_runs_the_image_the_step_resolved(tmp_path: Path) -> None:
    """prepare writes the Azure ML spec with job.yaml's `image.ref`, whatever else the record says."""
    env = make_env(make_project(tmp_path, CONFIG), ARM_CLOUD_METADATA_URL="https://127.0.0.1:9/metadata/endpoints",
                   SINGKIT_AZURE_TOKEN="")
    state = through(env, "commit", target="sing", dry_run=True)
    assert state.job is not None
    other = f"elsewhere.azurecr.io/other@sha256:{'ef' * 32}"
    state.spec["image"] = {"ref": other}
    pipeline.prepare(state)
    written = (state.job.dir / "azureml" / "job1.1.yaml").read_text()
    assert f"image: {other}" in written and "research/torch" not in written
    state.spec["image"] = {"ref": "elsewhere.azurecr.io/other:1"}  # resolved without a digest: refused
    with pytest.raises(ConfigError, match="not pinned by digest"):
        pipeline.prepare(state)


def test_start_runs_the_job(env: Any) -> None:
    state = pipeline.start(through(env, "prepare", command="echo started"))
    assert state.job is not None and wait_done(env, state.job.id) == "completed"
    assert state.job.runs[0].stdout_path.read_text() == "started\n"


# -- the runner -----------------------------------------------------------------------------------
def test_a_dry_run_stops_after_prepare_and_writes_nothing_past_it(env: Any) -> None:
    started: list[str] = []

    def start(state: State) -> State:  # stands in for the last step: was it reached?
        started.append(state.job.id if state.job else "?")
        return state

    steps = (*SUBMIT[:-1], start)
    job = execute(steps, State(env, request=SubmitRequest(command="echo hi", dry_run=True))).job
    assert job is not None and started == []
    assert not (job.dir / "runs").exists() and not job.runner_path.exists()
    assert control.status(env, job.id)["status"] == "dry-run"
    assert [e["event"] for e in events.read(env)] == ["submit"] and events.read(env)[0]["dry_run"] is True
    real = execute(steps, State(env, request=SubmitRequest(command="echo hi"))).job
    assert real is not None and started == [real.id]  # the same steps, not dry: start is reached


def test_rerun_runs_on_the_same_steps_from_the_stored_spec(env: Any) -> None:
    shared = ("resolve_image", "commit", "prepare", "start")
    assert [s for s in SUBMIT if s.__name__ in shared] == [s for s in RERUN if s.__name__ in shared]
    first = pipeline.submit(env, SubmitRequest(command="echo again", dry_run=True))
    again = pipeline.rerun(env, first.id)
    assert wait_done(env, again.id) == "completed" and again.spec["rerun_of"] == first.id
    assert again.runs[0].stdout_path.read_text() == "again\n"


# -- a failure in any step leaves the store consistent --------------------------------------------
class Planted(RuntimeError):
    pass


def failing_after(step: Any) -> Any:
    """`step`, whose every effect is done, then a failure (the worst moment for the store)."""
    def failed(state: State) -> State:
        step(state)
        raise Planted(f"planted after {step.__name__}")
    failed.__name__ = step.__name__
    return failed


@pytest.mark.parametrize("k", range(len(SUBMIT)))
def test_a_failure_in_any_step_leaves_no_half_job(env: Any, k: int) -> None:
    steps = tuple(failing_after(s) if i == k else s for i, s in enumerate(SUBMIT))
    with pytest.raises(Planted):
        execute(steps, State(env, request=SubmitRequest(command="echo hi")))
    assert half_folders(env) == []
    listed = control.list_jobs(env)
    name = SUBMIT[k].__name__
    if name == "start":  # something may have started: the job is kept, and never looks pending
        assert [row["job"] for row in listed] == ["job1"]
        assert wait_done(env, "job1") in ("failed", "completed")
        assert {s.status for s in Store.of(env).job("job1").states().values()} <= {"failed", "completed"}
    else:  # nothing started: no job is left, the attempt is in the audit log, and its id stays taken
        assert listed == []
        if SUBMIT.index(pipeline.commit) <= k:
            assert [e["event"] for e in events.read(env)] == ["submit-abandoned"]
            assert "planted after" in events.read(env)[0]["reason"]
    after = pipeline.submit(env, SubmitRequest(command="echo hi", dry_run=True))
    assert after.id == ("job2" if k >= SUBMIT.index(pipeline.commit) else "job1")


def test_a_commit_cut_short_is_removed_not_left_half_written(env: Any) -> None:
    """The code archive vanishes between snapshot and commit: commit fails after it allocated."""
    state = through(env, "snapshot")
    assert state.archive is not None
    state.archive.unlink()
    with pytest.raises(OSError):
        execute((pipeline.commit, pipeline.prepare, pipeline.start), state)
    assert half_folders(env) == [] and control.list_jobs(env) == []
    assert (jobs_dir(env) / "job1.refused").is_file()
    assert json.loads((env.home / "events.jsonl").read_text().splitlines()[-1])["event"] == "submit-abandoned"
