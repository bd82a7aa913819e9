"""A Singularity sweep's finished runs are skipped by later looks (issue 14): a look records the
runs it found over for good (backend-settled.json, keyed by job.yaml's stamp), and later looks
read backend.json only for the others; a new job.yaml, a damaged or linked record, or a job.yaml
changed within the racy window means a full look."""

from __future__ import annotations

import os
import stat
import time

import pytest
from singtools import sing_env

from singkit.backends.singularity import settled
from singkit.jobs import control
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit
from singkit.store.model import Run


@pytest.fixture
def reads(monkeypatch):
    """The runs whose backend.json the code under test read (the real reader does the reading)."""
    seen: list[str] = []
    real = Run.backend_info

    def counted(self):
        seen.append(self.id)
        return real(self)

    monkeypatch.setattr(Run, "backend_info", counted)
    return seen


def _aged(job) -> None:
    """job.yaml as a sweep's is by the time its runs finish: older than the racy window."""
    old = time.time() - 60
    os.utime(job.spec_path, (old, old))


def _sweep(world, runs: int):
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py", runs=runs))
    _aged(job)
    names = {r.id: r.backend_info()["azureml_name"] for r in job.runs}
    return si, env, job, names


def test_a_finished_run_of_an_active_sweep_is_not_read_again(world, reads):
    si, env, job, names = _sweep(world, 3)
    si.set_status(names[f"{job.id}.1"], "Completed")
    si.set_status(names[f"{job.id}.2"], "Failed")
    control.status(env, job.id)  # finds runs 1 and 2 over for good
    reads.clear()
    control.status(env, job.id)
    assert set(reads) == {f"{job.id}.3"}  # only the run still queued on Azure ML
    # a new job.yaml (the writer of runs) voids the record: every run is read again
    spec = job.spec_path.read_bytes()
    job.spec_path.unlink()
    job.spec_path.write_bytes(spec)
    _aged(job)
    reads.clear()
    control.status(env, job.id)
    assert {f"{job.id}.1", f"{job.id}.2", f"{job.id}.3"} <= set(reads)


def test_nothing_is_kept_for_a_job_yaml_inside_the_racy_window(world, reads):
    si, env, job, names = _sweep(world, 2)
    os.utime(job.spec_path)  # just written: a same-tick rewrite would keep its stamp
    si.set_status(names[f"{job.id}.1"], "Completed")
    control.status(env, job.id)
    assert not (job.dir / settled.NAME).exists()


def test_a_damaged_or_linked_record_is_only_a_full_look(world, reads, tmp_path):
    si, env, job, names = _sweep(world, 2)
    si.set_status(names[f"{job.id}.1"], "Completed")
    control.status(env, job.id)
    record = job.dir / settled.NAME
    for damage in ("{not json", '{"spec": 1, "over": 2}', "[]", '{"spec": null}'):
        record.write_text(damage)
        reads.clear()
        control.status(env, job.id)
        assert f"{job.id}.1" in reads, damage
    outside = tmp_path / "outside.json"
    outside.write_text("keep")
    record.unlink()
    os.symlink(outside, record)
    control.status(env, job.id)
    assert outside.read_text() == "keep" and not record.is_symlink()
    record.unlink()
    os.mkfifo(record)  # nobody writes it: an open that waits for a writer would never return
    reads.clear()
    control.status(env, job.id)
    assert f"{job.id}.1" in reads and stat.S_ISREG(os.lstat(record).st_mode)  # a full look, then a file again


def test_after_a_refresh_only_the_runs_it_asked_about_are_summed_up_again(world, monkeypatch):
    """job.status sums each run up before the refresh; afterwards only the runs Azure ML was
    asked about (the refresh writes no other run's files), and what it recorded is shown."""
    si, env, job, names = _sweep(world, 3)
    si.set_status(names[f"{job.id}.1"], "Completed")
    control.status(env, job.id)  # run 1 is over for good from now on
    summed: list[str] = []
    real = Run.summary

    def counted(self, state=None):
        summed.append(self.id)
        return real(self, state)

    monkeypatch.setattr(Run, "summary", counted)
    si.set_status(names[f"{job.id}.2"], "Running")
    data = control.status(env, job.id)
    assert sorted(summed) == [f"{job.id}.1", f"{job.id}.2", f"{job.id}.2", f"{job.id}.3", f"{job.id}.3"]
    assert [r["status"] for r in data["runs"]] == ["completed", "running", "queued"]
    assert data["status"] == "running" and data["runs_done"] == 1
