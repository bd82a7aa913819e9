"""Cancelling a Singularity sweep at once, on the real azure-ai-ml SDK against the Azure ML
stand-in: every run gets its cancel request before any is waited for (the stand-in's recorded
arrival times, not the test's clock), a run slow to stop is reported by name and never makes
singkit skip the others, and cancelling again is safe.
"""

from __future__ import annotations

import threading
import time

import pytest
from singtools import sing_env

from singkit.exceptions import ServiceError
from singkit.jobs import control
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit


def cancel_posts(si, names=None) -> list:
    """The stand-in's record of the cancel POSTs it received (of these job names), in order."""
    return [r for r in si.state.request_log if r.method == "POST" and r.path.endswith("/cancel")
            and (names is None or r.path.rsplit("/", 2)[-2] in names)]


def release_when(si, hold, count: int, limit: float = 20.0) -> threading.Thread:
    """Release `hold` once the stand-in has received `count` cancel POSTs (or after `limit`
    seconds, so a singkit that waits on the held run before sending the rest fails, not hangs)."""
    def watch() -> None:
        deadline = time.monotonic() + limit
        while len(cancel_posts(si)) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        hold.release()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_sweep_is_cancelled_at_once_and_the_slow_run_is_reported(world):
    si, azurite, root = world
    env = sing_env(root, si, azurite, SINGKIT_CANCEL_TIMEOUT="2")
    job = submit(env, SubmitRequest(target="sing", command="python train.py", runs=6))
    names = {r.id: r.backend_info()["azureml_name"] for r in job.runs}
    assert len(set(names.values())) == 6 and set(names.values()) == set(si.jobs)
    for name in names.values():
        si.set_status(name, "Running")
    first, slow = job.runs[0].id, job.runs[2].id
    # the first run's cancel is answered only once all six have arrived: a singkit that waits
    # for one run before it asks the next never gets there
    hold = si.hold(rf"POST .*/jobs/{names[first]}/cancel", handled=True)
    watcher = release_when(si, hold, 6)
    si.slow_cancel(names[slow], 3600)  # its nodes will not stop within SINGKIT_CANCEL_TIMEOUT

    with pytest.raises(ServiceError) as caught:
        control.cancel(env, job.id)
    watcher.join()
    message = str(caught.value)
    assert "\n" not in message and caught.value.exit_code == 4
    assert f"{slow} ({names[slow]}) still CancelRequested" in message and "1 of 6 runs" in message, message
    assert not any(f"{r.id} (" in message for r in job.runs if r.id != slow), message

    posts = cancel_posts(si)
    assert sorted(p.path.rsplit("/", 2)[-2] for p in posts) == sorted(names.values())  # each once, none skipped
    arrivals = [p.at for p in posts]
    assert max(arrivals) - min(arrivals) < 2.0, arrivals
    statuses = {r.id: r.state().status for r in job.runs}
    assert statuses == {**{r: "cancelled" for r in names}, slow: "queued"}, statuses  # as the store last saw it
    assert all(si.jobs[n].status == "Canceled" for r, n in names.items() if r != slow)

    # later the slow one has stopped: a second cancel asks it alone again and records it
    si.slow_cancel(names[slow], 0)
    assert control.cancel(env, job.id) == [slow]
    assert job.runs[2].state().status == "cancelled"
    assert len(cancel_posts(si)) == 7 and si.jobs[names[slow]].cancel_requests == 2
    assert control.cancel(env, job.id) == [] and len(cancel_posts(si)) == 7  # idempotent


def test_a_refused_cancel_is_reported_and_the_others_still_cancelled(world):
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py", runs=3))
    names = {r.id: r.backend_info()["azureml_name"] for r in job.runs}
    refused = job.runs[0].id
    si.fail_next(rf"POST .*/jobs/{names[refused]}/cancel", 500, times=None)
    with pytest.raises(ServiceError) as caught:
        control.cancel(env, job.id)
    message = str(caught.value)
    assert f"cancelling {refused} ({names[refused]})" in message and "500" in message and "1 of 3 runs" in message, message
    assert {r.id: r.state().status for r in job.runs} == {**{r: "cancelled" for r in names}, refused: "queued"}
    assert len(cancel_posts(si, {names[refused]})) == 5  # retried, bounded


def test_a_run_that_ended_meanwhile_is_recorded_as_it_ended(world):
    """Azure ML refuses to cancel a job that is ending or has ended (400); singkit reads its state
    instead and records what it ended as — no error, the other run is cancelled."""
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py", runs=2))
    names = [r.backend_info()["azureml_name"] for r in job.runs]
    si.set_status(names[0], "Completed")
    assert control.cancel(env, job.id) == [r.id for r in job.runs]
    refused = [r for r in cancel_posts(si, {names[0]})]
    assert [r.status for r in refused] == [400]  # asked once, refused, not retried
    assert [r.state().status for r in job.runs] == ["completed", "cancelled"]


def test_status_reads_use_the_sdks_own_get_without_building_entities(world):
    """cancel.job_status reads through JobOperations._get_job (private, the GET jobs.get sends):
    this fails when a new azure-ai-ml moves it, before the fallback silently costs a sweep."""
    from singkit.backends.singularity.cancel import job_status

    si, azurite, root = world
    job = submit(sing_env(root, si, azurite), SubmitRequest(target="sing", command="python train.py"))
    name = job.runs[0].backend_info()["azureml_name"]
    ml = si.ml_client()
    assert callable(getattr(ml.jobs, "_get_job", None))
    si.set_status(name, "Running")
    start = len(si.state.request_log)
    assert job_status(ml, name) == "Running" == ml.jobs.get(name).status
    reads = [r for r in si.state.request_log[start:] if r.route == "job_get"]
    assert [r.query.get("api-version") for r in reads] == ["2024-01-01-preview"] * 2  # the same request both ways
