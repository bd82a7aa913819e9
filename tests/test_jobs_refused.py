"""A submit refused before anything started leaves no job behind (only an audit line), and its
id is never given to another job. Outside a project, submit and rerun are refused outright."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from jobreaper import reaped  # noqa: F401  (autouse: every job ends with its test)
from jobtools import make_env, make_project, run_here, wait_done
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit
from singkit.store import Store, events
from singtools import NOWHERE, SINGULARITY

# a Singularity target whose image is not pinned by digest: refused by the backend's prepare,
# before anything reaches Azure (submit --allow-unpinned would take it, so validate cannot)
UNPINNED = SINGULARITY.replace("    sha256: " + "ab" * 32 + "\n", "")


def _ids_in_events(env) -> list[tuple[str, str]]:
    return [(e["event"], e.get("job")) for e in events.read(env)]


def test_refused_at_prepare_leaves_no_job_and_the_id_is_not_reused(tmp_path: Path) -> None:
    project = make_project(tmp_path, UNPINNED)
    env = make_env(project, **NOWHERE)
    refused = run_here(["job.submit", "--target=sing", "--cmd", "true"], project, env)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "not pinned by digest" in refused.stderr
    store = Store.of(env)
    assert store.job_ids() == [] and not (store.jobs_dir / "job1").exists()
    assert run_here(["job.list", "--json"], project, env).stdout.strip() == "[]"
    [event] = events.read(env)
    assert event["event"] == "submit-refused" and event["job"] == "job1" and event["target"] == "sing"
    assert "not pinned by digest" in event["reason"]
    shown = run_here(["report.events"], project, env)
    assert "submit-refused" in shown.stdout and "docker record `torch` is not" in shown.stdout
    status = run_here(["job.status", "job1"], project, env)
    assert status.returncode == 2 and "job1 was refused at submit" in status.stderr, status.stderr
    ok = run_here(["job.submit", "--cmd", "true"], project, env)
    assert ok.stdout.strip() == "job2"  # job1 is named in events.jsonl: never given out again
    assert wait_done(env, "job2") == "completed"
    assert _ids_in_events(env) == [("submit-refused", "job1"), ("submit", "job2")]


def test_an_unpinned_singularity_image_is_refused_without_a_trace(tmp_path: Path) -> None:
    project = make_project(tmp_path, UNPINNED)
    env = make_env(project, **NOWHERE)
    for extra in ([], ["--dry-run"]):
        refused = run_here(["job.submit", "--target=sing", "--cmd=python train.py", *extra], project, env)
        assert refused.returncode == 2 and "not pinned by digest" in refused.stderr, refused.stderr
    assert Store.of(env).job_ids() == []
    assert [e for e, _job in _ids_in_events(env)] == ["submit-refused", "submit-refused"]


def test_concurrent_refused_and_accepted_submits_never_share_an_id(tmp_path: Path) -> None:
    project = make_project(tmp_path, UNPINNED)
    env = make_env(project, **NOWHERE)
    argv = [sys.executable, "-m", "singkit", "job.submit", "--cmd", "true"]
    procs = [subprocess.Popen(argv + (["--target=sing"] if i % 2 else ["--dry-run"]), cwd=project, env=dict(env.environ),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(12)]
    for proc in procs:
        proc.communicate(timeout=120)
    assert sorted(p.returncode for p in procs) == [0] * 6 + [2] * 6
    named = [job for _event, job in _ids_in_events(env)]
    assert len(named) == 12 and len(set(named)) == 12  # each id names one attempt only
    kept = Store.of(env).job_ids()
    assert len(kept) == 6 and set(kept) == {job for event, job in _ids_in_events(env) if event == "submit"}
    after = submit(env, SubmitRequest(command="true", dry_run=True))
    assert after.id not in named


def test_discarded_ids_stay_taken(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    first = store.allocate()
    first.write_spec({"job": first.id, "runs": []})
    store.discard(first, "refused for a test")
    assert store.job_ids() == [] and store.allocate().id == "job2"


def test_outside_a_project_submit_and_rerun_are_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    job = submit(env, SubmitRequest(command="true"))
    assert wait_done(env, job.id) == "completed"
    outside = tmp_path / "elsewhere"
    (outside / "lots").mkdir(parents=True)
    (outside / "lots" / "file.txt").write_text("not code\n")
    for args in (["job.submit", "--cmd", "true"], ["job.submit", "--dry-run"], ["job.rerun", job.id]):
        done = run_here(args, outside, env)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, (args, done.stderr)
        assert str(outside) in done.stderr and "configs/singkit.yaml" in done.stderr, done.stderr
    assert Store.of(env).job_ids() == [job.id]  # nothing was snapshotted or allocated
    assert not (outside / ".singkit").exists()
    for args in (["job.list"], ["job.status", job.id], ["report.list"], ["job.logs", job.id]):
        done = run_here(args, outside, env)  # read-only tasks keep working anywhere
        assert done.returncode == 0, (args, done.stderr)
        assert job.id in done.stdout or args[0] == "job.logs", (args, done.stdout)
    listed = json.loads(run_here(["job.list", "--json"], outside, env).stdout)
    assert [j["job"] for j in listed] == [job.id]
