"""Reconciling dead runners in bulk (issue 14 item 2): a listing looks for the runners of every
job it brings up to date in one listing of the processes, not one per job (the first job.list
of a store with thousands of such jobs read /proc thousands of times)."""

from __future__ import annotations

from pathlib import Path

import storegen
from storegen import RunSpec

from singkit import procs
from singkit.jobs import control


def test_job_list_looks_for_the_runners_of_many_dead_jobs_in_one_listing(tmp_path: Path, monkeypatch) -> None:
    env = storegen.store_env(tmp_path)
    for n in range(1, 7):  # `running` runs, no runner.json, submitted long ago: their runner died
        storegen.write_job(env.home, f"job{n}", [RunSpec({"lr": 0.1}, status="running"),
                                                 RunSpec({"lr": 0.2}, status="running")])
    listings: list[int] = []
    real = procs._runner_pids
    monkeypatch.setattr(procs, "_runner_pids", lambda: listings.append(1) or real())

    jobs = control.list_jobs(env)
    assert [(j["job"], j["status"]) for j in jobs] == [(f"job{n}", "failed") for n in range(1, 7)]
    assert len(listings) == 1
    status = control.status(env, "job4")
    assert all("runner" in r["reason"] and "gone" in r["reason"] for r in status["runs"]), status["runs"]
    assert control.list_jobs(env) == jobs and len(listings) == 1  # all settled: nothing looked for again


def test_outside_a_listing_each_question_lists_the_processes_afresh(tmp_path: Path, monkeypatch) -> None:
    listings: list[int] = []
    real = procs._runner_pids
    monkeypatch.setattr(procs, "_runner_pids", lambda: listings.append(1) or real())
    assert procs.find_runner(tmp_path) is None and procs.find_runner(tmp_path) is None
    assert len(listings) == 2  # a follower asking again later must see a runner started meanwhile
    with procs.one_listing():
        assert procs.find_runner(tmp_path) is None and procs.find_runner(tmp_path / "x") is None
    assert len(listings) == 3
