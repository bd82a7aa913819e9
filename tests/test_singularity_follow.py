"""Preemption as a state, and a log follower that survives it: the real azure-ai-ml MLClient
and azure-storage-blob against the loopback Azure ML stand-in and Azurite.

- Azure ML's Paused/Pausing and a running job Queued again (requeued) are singkit's
  `preempted`, not final; job.status counts each run's preemptions (text and --json).
- The follower keeps following through them, starts a log again when the service replaced it
  (shorter blob: 416; same length or longer: the re-read overlap differs), and asks only for the
  new bytes: the Range of each GET starts OVERLAP bytes before what it already has.
"""

from __future__ import annotations

import json

import pytest
from singtools import only_job, sing_env

from singkit.backends.singularity.logs import OVERLAP
from singkit.jobs import control
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit

RANK0, RANK1 = "user_logs/std_log_process_0.txt", "user_logs/std_log_process_1.txt"


def _follow(env, job):
    _, stored, backend = control.open_job(env, job.id)
    return list(backend.logs(stored, f"{job.id}.1", follow=True))


def _ranges(si, name, file):
    return [r.range for r in si.blob_requests if r.method == "GET" and r.path.endswith(f"dcid.{name}/{file}")]


@pytest.mark.parametrize("stop", ["Queued", "Paused"])
def test_a_preempted_then_requeued_run_is_followed_without_losing_or_repeating_a_line(world, stop):
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    name = only_job(si)
    # one step per poll of the follower (it reads run details once a poll)
    si.script(name, [("Running", "a1\na2\n"), ("Running", "a3\ncut by the preemp"), ("Preempt", stop), stop,
                     ("Requeue", "b1\n"), ("Running", "b2\nb3\n"), "Running", ("Completed", "b4\n")])
    lines = _follow(env, job)
    assert lines == ["a1\n", "a2\n", "a3\n", "cut by the preemp\n", "b1\n", "b2\n", "b3\n", "b4\n"]
    assert si.jobs[name].preemptions == 1 and si.jobs[name].fresh_logs == 1
    assert "warning" not in env.stderr.getvalue()


def test_every_poll_asks_only_for_the_new_bytes_and_a_replaced_log_is_read_again(world):
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    name = only_job(si)
    si.set_status(name, "Running")
    first = "".join(f"rank 0 line {i}\n" for i in range(100))
    si.append_log(name, first, file=RANK0)
    si.append_log(name, "rank 1 line 0\n", file=RANK1)
    grown = "".join(f"rank 0 line {i}\n" for i in range(100, 110))
    long_fresh = "".join(f"rank 1 again {i}\n" for i in range(50))  # longer than the old rank-1 log
    si.script(name, ["Running", ("Running", None), "Preempt", "Queued", "Queued", "Completed"])
    # between polls: the log grows, then the requeued run writes fresh logs of its own
    steps = iter([lambda: si.append_log(name, grown, file=RANK0), lambda: None, lambda: None,
                  lambda: (si.requeue(name, "", RANK0), si.append_log(name, long_fresh, file=RANK1)),
                  lambda: si.append_log(name, "rank 0 fresh\n", file=RANK0)])
    from singkit.backends.singularity import logs

    _, stored, backend = control.open_job(env, job.id)
    with backend.session() as ml:
        out = list(logs.follow_logs(ml, name, follow=True, nodes=1, per_node=2, poll=0, call=backend.call,
                                    sleep=lambda _: next(steps)()))
    rank0 = [line for line in out if line.startswith("[rank 0]")]
    rank1 = [line for line in out if line.startswith("[rank 1]")]
    assert rank0 == [f"[rank 0] rank 0 line {i}\n" for i in range(110)] + ["[rank 0] rank 0 fresh\n"]
    assert rank1 == ["[rank 1] rank 1 line 0\n"] + [f"[rank 1] rank 1 again {i}\n" for i in range(50)]
    # rank 0: the whole log once, then from OVERLAP bytes before each offset; the fresh log
    # (empty, shorter than that: 416) from its first byte again, and so on
    size, grown_size = len(first), len(first) + len(grown)
    starts = [r.split("=")[1].split("-")[0] for r in _ranges(si, name, RANK0) if r]
    assert starts[:5] == ["0", str(size - OVERLAP)] + [str(grown_size - OVERLAP)] * 3
    assert set(starts[5:]) == {"0"}
    starts1 = [r.split("=")[1].split("-")[0] for r in _ranges(si, name, RANK1) if r]
    # under OVERLAP bytes read: from 0 each poll, and once more to restart; then the fresh log's offset
    assert starts1 == ["0"] * 6 + [str(len(long_fresh) - OVERLAP)]


def test_requests_stay_small_on_a_long_log(world):
    """Day 7 costs what day 1 does: after the first read, each poll's GET brings back the new
    bytes and the overlap, not the log (bytes counted at the stand-in's proxy)."""
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    name = only_job(si)
    si.set_status(name, "Running")
    si.append_log(name, "x" * 999 + "\n" * 1 + ("y" * 99 + "\n") * 10_000)  # ~1 MB
    costs = []
    before = [si.blob_bytes_down]

    def between_polls(_):
        costs.append(si.blob_bytes_down - before[0])
        if len(costs) == 4:
            si.set_status(name, "Completed")
        si.append_log(name, "z" * 99 + "\n")
        before[0] = si.blob_bytes_down

    from singkit.backends.singularity import logs

    _, stored, backend = control.open_job(env, job.id)
    with backend.session() as ml:
        out = list(logs.follow_logs(ml, name, follow=True, poll=0, call=backend.call, sleep=between_polls))
    assert len(out) == 1 + 10_000 + 4
    assert costs[0] > 1_000_000
    assert all(cost < 4_000 for cost in costs[1:]), costs  # 100 new bytes + overlap + headers


def test_job_status_counts_each_runs_preemptions(world):
    from clirunner import run_singkit

    si, azurite, root = world
    env = sing_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py", runs=2))
    first, second = (run.backend_info()["azureml_name"] for run in job.runs)
    seen = []
    for step in (lambda: si.set_status(first, "Running"), lambda: si.preempt(first),
                 lambda: si.set_status(first, "Running"), lambda: si.preempt(first, "Paused"),
                 lambda: si.set_status(first, "Running")):
        step()
        seen.append(control.status(env, job.id)["runs"][0]["status"])
    assert seen == ["running", "preempted", "running", "preempted", "running"]
    cli_env = {"HOME": str(root / "home"), "SINGKIT_HOME": str(root / ".singkit"),
               "SINGKIT_AZURE_TOKEN": env.environ["SINGKIT_AZURE_TOKEN"]}
    result = run_singkit(["job.status", job.id, "--json"], cwd=root, env=cli_env)
    assert result.returncode == 0, result.stderr
    runs = json.loads(result.stdout)["runs"]
    assert [r["preemptions"] for r in runs] == [2, 0]
    assert [r["status"] for r in runs] == ["running", "queued"]
    text = run_singkit(["job.status", job.id], cwd=root, env=cli_env)
    header, _, row1, row2 = text.stdout.splitlines()[1:5]  # the job line, then the table
    assert header.split()[:3] == ["run", "status", "preempted"]
    assert row1.split()[:3] == [f"{job.id}.1", "running", "2"] and row2.split()[:3] == [f"{job.id}.2", "queued", "0"]


def test_the_monitor_line_counts_preemptions():
    from singkit.backends.follow import status_counts
    from singkit.store import runlog

    states = {}
    for run, history in {"a": ["running", "preempted", "running", "preempted"], "b": ["running", "preempted", "running"],
                         "c": ["running"]}.items():
        states[run] = runlog.RunState()
        for s in history:
            states[run].apply({"event": "status", "status": s})
    assert status_counts(states) == "2 running, 1 preempted (3 preemptions)"
    assert status_counts({"c": states["c"]}) == "1 running"


def test_a_failed_log_read_never_shows_the_sas():
    from azure.core.exceptions import ServiceRequestError

    from singkit.backends.singularity.logs import sas_safe
    from singkit.exceptions import ServiceError

    url = "/azureml/ExperimentRun/dcid.x/user_logs/std_log.txt?sv=2021-08-06&se=2026&sr=b&sp=r&sig=c2VjcmV0%3D"

    def fails():
        raise ServiceRequestError(f"HTTPSConnectionPool(host='a.blob.core.windows.net', port=443): "
                                  f"Max retries exceeded with url: {url} (Caused by ConnectTimeoutError())")

    with pytest.raises(ServiceError) as caught:
        sas_safe("reading std_log.txt of x", fails)
    text = str(caught.value)
    assert "sig=" not in text and "c2VjcmV0" not in text and "se=2026" not in text
    assert text.startswith("reading std_log.txt of x: ") and "std_log.txt?<SAS> (Caused by" in text

    def other():
        raise ValueError("no credential here")

    with pytest.raises(ValueError):  # nothing to hide: the error goes on as it was
        sas_safe("reading", other)
