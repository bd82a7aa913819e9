"""Singularity submit faults against the Azure ML stand-in and Azurite: refusals and outages
as one-line exit-4 errors, nothing half recorded — and the Azure ML jobs a submit can leave
behind when it fails or dies between sending the create and hearing back (orphans using
quota): recorded by name before the create, then adopted, withdrawn or failed.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from singtools import count, only_job, sing_env

from singkit.environment import Environment
from singkit.exceptions import ServiceError
from singkit.jobs import control
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit
from singkit.store import Store, events


def assert_nothing_half_recorded(env: Environment, si=None) -> None:
    """A refused submit leaves a job whose runs all failed, with no Azure ML job recorded —
    or, when Azure ML could not even be asked whether the create landed (auth refused), the
    name it was being submitted under (`submitting`), which the stand-in does not have."""
    store = Store.of(env)
    (job_id,) = store.job_ids()
    job = store.job(job_id)
    for run in job.runs:
        info = run.backend_info()
        if si is None:
            assert info == {}
        else:
            assert info == {} or (info["submitting"] and info["azureml_name"] not in si.jobs), info
        state = run.state()
        assert state.status == "failed" and state.reason.startswith("submit failed:")


def assert_refused(env: Environment, si, reason: str) -> None:
    """A submit signed out before Azure ML created anything is refused like any refusal
    (tests/test_jobs_refused.py): no job folder, no Azure ML job, one `submit-refused` event."""
    store = Store.of(env)
    assert store.job_ids() == [] and not (store.jobs_dir / "job1").exists()
    assert not si.jobs
    [event] = events.read(env)
    assert event["event"] == "submit-refused" and event["job"] == "job1" and reason in event["reason"], event


def test_401_is_one_line_exit_4(world):
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    si.fail_next(r"PUT .*/jobs/", 401, times=None)
    with pytest.raises(ServiceError) as caught:
        submit(env, SubmitRequest(target="sing", command="python train.py"))
    message = str(caught.value)
    assert "\n" not in message and "401" in message and "az login" in message, message
    assert count(si, "PUT", r"/jobs/") == 1  # an auth failure is not retried
    # Azure refuses a request it cannot authenticate before acting on it: nothing was created
    assert_refused(env, si, "401")


def test_signed_out_on_a_retry_is_not_a_refusal(world):
    """The first create landed but its answer was lost (500 after storing); the retry's look-up
    is refused (401). Azure ML may hold the job: the submit is not discarded as refused, the job
    is kept with the name it was submitted under, for refresh to settle."""
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    si.fail_next(r"PUT .*/jobs/", 500, times=1, handled=True)
    si.fail_next(r"GET .*/jobs/singkit-", 401, times=None)
    with pytest.raises(ServiceError, match="401"):
        submit(env, SubmitRequest(target="sing", command="python train.py"))
    name = only_job(si)
    (job_id,) = Store.of(env).job_ids()
    info = Store.of(env).job(job_id).runs[0].backend_info()
    assert info["submitting"] and info["azureml_name"] == name
    assert [e["event"] for e in events.read(env)] != ["submit-refused"]


def test_429_then_success_is_retried(world):
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    si.fail_next(r"PUT .*/jobs/", 429, times=2, retry_after=0.01)
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    assert count(si, "PUT", r"/jobs/") == 3
    assert job.runs[0].backend_info()["azureml_name"] == only_job(si)


def test_500_forever_is_bounded_and_one_line(world):
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    si.fail_next(r"PUT .*/jobs/", 500, times=None)
    with pytest.raises(ServiceError) as caught:
        submit(env, SubmitRequest(target="sing", command="python train.py"))
    message = str(caught.value)
    assert "\n" not in message and "500" in message and "after retries" in message, message
    assert caught.value.exit_code == 4
    assert count(si, "PUT", r"/jobs/") == 5  # bounded
    assert_nothing_half_recorded(env)


def test_unknown_workspace_is_404(world):
    si, azurite, root = world
    config = root / "configs" / "singkit.yaml"
    config.write_text(config.read_text().replace(f"  {si.workspace}:\n", "  no-such-ws:\n")
                      .replace(f"service: {si.workspace}", "service: no-such-ws"))
    env = sing_env(root, si, azurite)
    with pytest.raises(ServiceError) as caught:
        submit(env, SubmitRequest(target="sing", command="python train.py"))
    assert "404" in str(caught.value) and "workspace no-such-ws" in str(caught.value)
    assert_nothing_half_recorded(env)


def test_expired_token_is_one_line(world):
    si, azurite, root = world
    import jwt

    expired = jwt.encode({"aud": si.url, "tid": si.tenant_id, "exp": 1_600_000_000}, "k", algorithm="HS256")
    env = sing_env(root, si, azurite, SINGKIT_AZURE_TOKEN=expired)
    with pytest.raises(ServiceError, match=r"SINGKIT_AZURE_TOKEN expired at 2020-09-13.*az account get-access-token"):
        submit(env, SubmitRequest(target="sing", command="python train.py"))
    assert_refused(env, si, "expired at 2020-09-13")
    # as a user sees it: one line, exit 4, and the next submit gets a new id
    proc = subprocess.run([sys.executable, "-m", "singkit", "job.submit", "--target=sing", "--cmd=python train.py"],
                          cwd=root, env=dict(env.environ), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 4 and proc.stdout == "", proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "expired at 2020-09-13" in proc.stderr and "Traceback" not in proc.stderr
    assert Store.of(env).job_ids() == []
    assert [(e["event"], e["job"]) for e in events.read(env)] == [("submit-refused", "job1"), ("submit-refused", "job2")]


def test_missing_credential_is_one_line(world):
    si, azurite, root = world
    env = sing_env(root, si, azurite, SINGKIT_AZURE_TOKEN="")  # DefaultAzureCredential finds nothing here
    with pytest.raises(ServiceError, match=r"no usable Azure credential: .*; run `az login`, or set SINGKIT_AZURE_TOKEN"):
        submit(env, SubmitRequest(target="sing", command="python train.py"))
    assert_refused(env, si, "no usable Azure credential")


def test_network_down_on_cancel(world):
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    si.stop()
    with pytest.raises(ServiceError) as caught:
        control.cancel(env, job.id)
    assert "\n" not in str(caught.value) and caught.value.exit_code == 4
    assert job.runs[0].state().status == "queued"  # not recorded as cancelled





@pytest.mark.parametrize("fault", [500, 0], ids=["500-after-storing", "reset-after-storing"])
def test_a_create_retried_after_a_lost_answer_adopts_the_job(world, fault):
    """Azure ML stored the job but its answer was lost (a 500 sent after the fact, or the
    connection reset): the retry GETs the name first, finds the job carrying this run's tag,
    and follows it — one PUT, nothing cancelled, the submit succeeds."""
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    si.fail_next(r"PUT .*/jobs/", fault, times=None, handled=True)
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    name = only_job(si)
    assert count(si, "PUT", r"/jobs/") == 1 and count(si, "GET", rf"/jobs/{name}$") >= 1
    assert si.jobs[name].cancel_requests == 0 and si.jobs[name].status != "CancelRequested"
    info = job.runs[0].backend_info()
    assert info["azureml_name"] == name and info["studio_url"] and "submitting" not in info and "withdrawn" not in info
    assert job.runs[0].state().status == "queued"
    assert f"Azure ML job {name} was created by an earlier attempt whose answer was lost" in env.stderr.getvalue()


def test_a_retry_that_misses_the_job_and_gets_already_exists_adopts_it(world):
    """The retry's GET answers 404 (the stored job not yet readable), so the PUT goes again and
    Azure ML refuses it, 400 "already exists": that job is the run's, and is followed too."""
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    si.fail_next(r"PUT .*/jobs/", 500, times=1, handled=True)
    si.fail_next(r"GET .*/jobs/singkit-", 404, times=1)
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    name = only_job(si)
    puts = [r for r in si.state.request_log if r.method == "PUT" and r.path.endswith(f"/jobs/{name}")]
    assert [r.status for r in puts] == [500, 400]  # the second PUT was refused: the first had landed
    assert job.runs[0].backend_info()["azureml_name"] == name and si.jobs[name].cancel_requests == 0


def test_a_job_of_the_same_name_that_is_not_the_runs_is_never_adopted(world):
    """The retry's GET finds a job of that name whose singkit.run tag is another run's: refused
    (exit 4) and left alone — singkit never adopts, or cancels, a job it did not submit."""
    import threading

    si, azurite, root = world
    env = sing_env(root, si, azurite)
    si.fail_next(r"PUT .*/jobs/", 500, times=None, handled=True)
    hold = si.hold(r"PUT .*/jobs/", handled=True)

    def foreign() -> None:  # once the PUT landed, the stored job carries another run's tag
        hold.arrived.wait(60)
        with si.state.lock:
            (stored,) = si.jobs.values()
            stored.resource["properties"]["tags"] = {"singkit.run": "someone-else.1"}
        hold.release()

    threading.Thread(target=foreign, daemon=True).start()
    with pytest.raises(ServiceError) as caught:
        submit(env, SubmitRequest(target="sing", command="python train.py"))
    name = only_job(si)
    assert "already has a job named" in str(caught.value) and "not this run's" in str(caught.value), caught.value
    assert si.jobs[name].cancel_requests == 0
    run = Store.of(env).job(Store.of(env).job_ids()[0]).runs[0]
    assert run.backend_info() == {} and run.state().status == "failed"  # the store does not claim it either


@pytest.mark.parametrize("status", [400, 401])
def test_a_failed_later_run_withdraws_the_runs_already_submitted(world, status):
    """Run 2 of a sweep is refused (400, not retried; or 401, signed out after run 1 was
    created — not a refusal then, run 1 exists): the submit fails, and run 1's job, which the
    store now records as failed, must not keep running."""
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    si.fail_next(r"PUT .*/jobs/singkit-job1-2-", status, times=None, body={"error": {"code": "UserError", "message": "refused"}})
    with pytest.raises(ServiceError):
        submit(env, SubmitRequest(target="sing", command="python train.py", runs=2))
    name = only_job(si)
    assert si.jobs[name].cancel_requests == 1
    run = Store.of(env).job("job1").runs[0]
    assert run.backend_info()["azureml_name"] == name and run.backend_info()["withdrawn"]
    assert run.state().status == "failed"


SUBMIT = """\
import io, os, sys
from pathlib import Path
from singkit.environment import Environment
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit
env = Environment(project_root=Path(sys.argv[1]), environ=dict(os.environ), stdout=io.StringIO(), stderr=sys.stderr)
submit(env, SubmitRequest(target="sing", command="python train.py"))
"""


def submit_killed_at_the_create(env: Environment, si, root, handled: bool) -> tuple[str, dict]:
    """`job.submit` in a process killed (SIGKILL: no cleanup runs) while its job PUT is held:
    after Azure ML carried it out (handled) or before it did. (job id, its run's backend.json)"""
    hold = si.hold(r"PUT .*/jobs/", handled=handled)
    proc = subprocess.Popen([sys.executable, "-c", SUBMIT, str(root)], env=dict(env.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        arrived = hold.arrived.wait(120)
        proc.kill()
        _, err = proc.communicate(timeout=60)
    finally:
        hold.release()
    assert arrived, err
    (job_id,) = Store.of(env).job_ids()
    run = Store.of(env).job(job_id).runs[0]
    assert run.state().status == "queued"
    return job_id, run.backend_info()


def test_a_submit_killed_after_azure_ml_created_the_job_is_adopted(world):
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    job_id, info = submit_killed_at_the_create(env, si, root, handled=True)
    name = only_job(si)
    assert info["azureml_name"] == name and info["submitting"]  # written before the create

    si.set_status(name, "Running")
    assert control.status(env, job_id)["runs"][0]["status"] == "running"  # found by name, followed
    assert f"found Azure ML job {name}" in env.stderr.getvalue()
    run = Store.of(env).job(job_id).runs[0]
    adopted = run.backend_info()
    assert adopted["studio_url"] and "submitting" not in adopted and adopted["mirror"]["prefix"].endswith(run.id)
    events = [json.loads(line) for line in (root / ".singkit" / "events.jsonl").read_text().splitlines()]
    assert [e["name"] for e in events if e["event"] == "azureml-adopt"] == [name]
    # and singkit can cancel it: no quota left behind
    assert control.cancel(env, job_id) == [run.id]
    assert si.jobs[name].status == "Canceled" and run.state().status == "cancelled"


def test_a_submit_killed_before_azure_ml_saw_it_fails_after_the_grace_period(world):
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    job_id, info = submit_killed_at_the_create(env, si, root, handled=False)
    assert not si.jobs and info["submitting"]

    # within the grace period the submit may still be under way elsewhere: wait
    assert control.status(env, job_id)["runs"][0]["status"] == "queued"
    assert Store.of(env).job(job_id).runs[0].backend_info()["submitting"]

    later = sing_env(root, si, azurite, SINGKIT_SUBMIT_GRACE="0")
    run = control.status(later, job_id)["runs"][0]
    assert run["status"] == "failed" and "never reached Azure ML" in run["reason"] and info["azureml_name"] in run["reason"]
    assert control.status(later, job_id)["status"] == "failed"  # settled: no further lookups
    assert not si.jobs
