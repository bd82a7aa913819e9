"""A run.log line no reader can decode, and a follower thread that fails (issue 16): the line is
skipped and counted, the count is said; `--follow` ends in one line through the edge, never a
raw thread traceback; the job never stays `queued`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from jobreaper import reaped  # noqa: F401  (autouse: every job ends with its test)
from jobtools import make_env, make_project, run_cli, wait_done, wait_for
from singkit.store import Store

# a line nested far past the recursion limit, a line that is JSON but no object, then a good one
BAD_LINES = ('python -c "import os, json; log = open(os.environ[\'SINGKIT_RUN_LOG\'], \'a\'); '
             'log.write(\'[\' * 100000 + \']\' * 100000 + chr(10)); log.flush(); log.write(\'[1, 2]\' + chr(10)); log.flush(); '
             'log.write(json.dumps({\'event\': \'metrics\', \'step\': 1, \'metrics\': {\'loss\': 0.5}}) + chr(10))"')


def test_undecodable_run_log_lines_are_counted_and_said(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    followed = run_cli(["job.submit", "--cmd", BAD_LINES, "--follow"], project, env)
    assert followed.returncode == 0, followed.stderr
    assert "Traceback" not in followed.stderr and "Exception in thread" not in followed.stderr, followed.stderr
    assert "note: job1.1: 2 undecodable run.log lines skipped" in followed.stderr, followed.stderr
    listed = run_cli(["job.list", "--json"], project, env)
    assert [(j["job"], j["status"]) for j in json.loads(listed.stdout)] == [("job1", "completed")], listed.stderr
    shown = run_cli(["job.status", "job1"], project, env)
    assert shown.returncode == 0 and shown.stderr.splitlines() == ["note: job1.1: 2 undecodable run.log lines skipped"], shown
    run = json.loads(run_cli(["job.status", "job1", "--json"], project, env).stdout)["runs"][0]
    assert (run["status"], run["skipped_lines"], run["last_metrics"]) == ("completed", 2, {"loss": 0.5}), run


def test_a_follower_thread_that_fails_ends_follow_in_one_line(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    follow = subprocess.Popen([sys.executable, "-m", "singkit", "job.submit", "--cmd", "echo first; sleep 2; echo second",
                               "--follow"], cwd=project, env=dict(env.environ), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        store = Store.of(env)
        wait_for(lambda: "job1" in store.job_ids() and (store.jobs_dir / "job1" / "job.yaml").exists(), what="the job")
        run = store.job("job1").runs[0]
        wait_for(lambda: run.stdout_path.exists() and run.stdout_path.read_text() == "first\n", what="the first line")
        # the store's stdout.log turns into something no reader can open (a damaged or tampered store)
        run.stdout_path.rename(run.stdout_path.with_name("stdout.moved"))
        run.stdout_path.mkdir()
        out, err = follow.communicate(timeout=120)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.communicate()
    assert "Traceback" not in err and "Exception in thread" not in err, err
    assert follow.returncode == 1, (follow.returncode, err)
    assert err.splitlines()[-1] == f"error: could not follow job1.1: Is a directory: {run.stdout_path}", err
    assert wait_done(env, "job1") == "completed"
