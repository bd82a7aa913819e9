"""The job tasks as a user runs them: monitor's Ctrl-C, logs --tail/--follow, list filters, --json."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from jobreaper import reaped  # noqa: F401  (autouse: every job ends with its test)
from jobtools import make_env, make_project, run_here, wait_done, wait_for
from singkit.jobs import control
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit


def test_monitor_ctrl_c_detaches_and_says_how_to_cancel(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    job = submit(env, SubmitRequest(command="echo tick; sleep 300"))
    monitor = subprocess.Popen([sys.executable, "-m", "singkit", "job.monitor", job.id], cwd=project,
                               env=dict(env.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert monitor.stdout.readline() == "tick\n"  # following: the run's output arrived
    monitor.send_signal(signal.SIGINT)
    _out, err = monitor.communicate(timeout=30)
    assert monitor.returncode == 130
    assert f"invoke job.cancel {job.id}" in err and "keeps running" in err
    assert control.status(env, job.id)["status"] == "running"  # detached, not cancelled
    control.cancel(env, job.id)


def test_logs_tail_follow_and_prefixes(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    job = submit(env, SubmitRequest(command="for i in 1 2 3 4 5; do echo line $i; done; echo warn >&2; echo",
                                    hp=["k=a,b"], parallel=2))
    assert wait_done(env, job.id) == "completed"
    tail = run_here(["job.logs", job.id, "--run=2", "--tail=2"], project, env)
    assert tail.stdout == "line 5\n--k b\n" and tail.stderr == "warn\n"
    both = run_here(["job.logs", f"JOB={job.id}"], project, env)
    assert both.stdout.splitlines()[0] == f"[{job.id}.1] line 1" and f"[{job.id}.2] --k b" in both.stdout
    follow = run_here(["job.logs", job.id, "--follow"], project, env, timeout=60)  # ended: returns at once
    assert follow.returncode == 0 and follow.stdout.count("line 3") == 2


def test_logs_follow_until_the_run_ends(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    job = submit(env, SubmitRequest(command="echo one; sleep 0.5; echo two"))
    follow = run_here(["job.logs", job.id, "--follow"], project, env, timeout=60)
    assert follow.stdout == "one\ntwo\n"


def test_list_filters_and_json(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    ok = submit(env, SubmitRequest(command="true"))
    bad = submit(env, SubmitRequest(command="false"))
    dry = submit(env, SubmitRequest(command="true", dry_run=True))
    wait_done(env, ok.id), wait_done(env, bad.id)
    listed = json.loads(run_here(["job.list", "--json"], project, env).stdout)
    assert [(j["job"], j["status"]) for j in listed] == [(ok.id, "completed"), (bad.id, "failed"), (dry.id, "dry-run")]
    assert [j["job"] for j in control.list_jobs(env, status="failed")] == [bad.id]
    assert [j["job"] for j in control.list_jobs(env, last=2)] == [bad.id, dry.id]
    assert control.list_jobs(env, target="docker") == []
    table = run_here(["job.list"], project, env).stdout.splitlines()
    assert table[0].split() == ["job", "target", "status", "runs", "created", "duration"]
    assert table[3].split()[:4] == [bad.id, "local", "failed", "1/1"]


def test_submit_follow_json_keeps_stdout_for_json(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    done = run_here(["job.submit", "--cmd", "echo noisy", "--follow", "--json"], project, env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)  # JSON alone on stdout
    assert data["status"] == "completed" and data["runs"][0]["status"] == "completed"
    assert "noisy" in done.stderr
    index = wait_for(lambda: (env.home / "index.sqlite").exists(), what="the index")
    assert index


def test_list_says_when_filters_match_nothing(tmp_path: Path) -> None:
    project = make_project(tmp_path, "compute-targets:\n  local:\n    service: local\n  other:\n    service: local\n")
    env = make_env(project)
    empty = run_here(["job.list"], project, env)
    assert empty.returncode == 0 and empty.stderr.startswith("no jobs yet")
    submit(env, SubmitRequest(command="true", dry_run=True))
    submit(env, SubmitRequest(target="other", command="true", dry_run=True))
    nope = run_here(["job.list", "--target", "nope"], project, env)
    assert nope.returncode == 0 and nope.stdout == ""
    assert nope.stderr == "no jobs match --target nope (targets in the store: local, other)\n"
    both = run_here(["job.list", "--status=failed", "--target=local"], project, env)
    assert both.returncode == 0 and both.stderr == ("no jobs match --status failed --target local "
                                                    "(statuses in the store: dry-run; targets in the store: local, other)\n")
    assert json.loads(run_here(["job.list", "--target=nope", "--json"], project, env).stdout) == []
