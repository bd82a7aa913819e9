"""Issue 12 (typed contracts): the JobSpec TypedDict is the shape of job.yaml. mypy checks the
readers against it; these tests keep it true to what the submit pipeline writes and to what
the store checks when it reads a job.yaml back (store/records.py)."""

from __future__ import annotations

from pathlib import Path

from jobtools import make_env, make_project

from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit
from singkit.store import Store
from singkit.store.jobspec import JobSpec, RunEntry, run_entry
from singkit.store.records import RUN_FIELDS, SPEC_FIELDS
from singkit.store.yamlio import load_mapping

JOB_KEYS = JobSpec.__required_keys__ | JobSpec.__optional_keys__
RUN_KEYS = RunEntry.__required_keys__ | RunEntry.__optional_keys__


def test_a_written_job_yaml_has_the_keys_of_a_jobspec(tmp_path: Path) -> None:
    env = make_env(make_project(tmp_path))
    job = submit(env, SubmitRequest(target="local", command="python train.py", hp=["lr=0.1,0.01"], dry_run=True))
    written = load_mapping(job.spec_path)
    assert written is not None
    assert JobSpec.__required_keys__ == {"target", "service", "runs"} <= set(written)
    assert set(written) <= JOB_KEYS, set(written) - JOB_KEYS
    for entry in written["runs"]:
        assert set(entry) <= RUN_KEYS, set(entry) - RUN_KEYS
    stored = Store.of(env).job(job.id).spec
    assert run_entry(stored, f"{job.id}.2")["hparams"] == {"lr": 0.01}
    assert run_entry(stored, f"{job.id}.3") == {}


def test_every_field_the_store_checks_is_a_jobspec_key() -> None:
    assert set(SPEC_FIELDS) <= JOB_KEYS, set(SPEC_FIELDS) - JOB_KEYS
    assert set(RUN_FIELDS) <= RUN_KEYS, set(RUN_FIELDS) - RUN_KEYS
