"""Values a careless hand or a bad disk puts where singkit wrote something (found by a fresh-user
pass after issues 15 and 16): each is one line or a harmless reading, never a crash or a kill."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import storegen
from clirunner import cli
from singkit import procs

ROOT = Path(__file__).resolve().parents[1]


def test_a_process_record_without_its_start_time_is_no_live_process_of_ours():
    """job.cancel signals what `alive` vouches for: a backend.json that lost its `start` must not
    make some other process with that pid a target."""
    ours = procs.identity(os.getpid())
    assert procs.alive(ours)
    assert not procs.alive({k: v for k, v in ours.items() if k != "start"})
    assert not procs.alive({**ours, "start": "soon"}) and not procs.alive({**ours, "start": None})
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert not procs.alive({"pid": victim.pid, "boot_id": ours["boot_id"]})
    finally:
        victim.kill()
        victim.wait()


def test_an_infinite_node_count_is_one_line_at_its_place(tmp_path):
    project = tmp_path / "p"
    shutil.copytree(ROOT / "configs", project / "configs")
    config = project / "configs" / "singkit.yaml"
    text = config.read_text()
    config.write_text(text.replace("    nodes: 1\n", "    nodes: .inf\n", 1))
    line = next(n for n, l in enumerate(config.read_text().splitlines(), 1) if "nodes: .inf" in l)
    done = cli(["config.validate"], project, timeout=120)
    assert done.returncode == 2 and "internal error" not in done.stderr, done.stderr
    assert f"singkit.yaml:{line}:" in done.stderr and "must be an integer" in done.stderr


def test_a_time_out_of_the_calendar_is_shown_as_written(tmp_path):
    home = tmp_path / ".singkit"
    storegen.sweep_job(home, "job1", lrs=(0.1,), seeds=(1,))
    log = home / "jobs" / "job1" / "runs" / "job1.1" / "run.log"
    with log.open("a") as fh:
        fh.write(json.dumps({"t": 1e308, "event": "metrics", "step": 3, "metrics": {"loss": 1}}) + "\n")
        fh.write(json.dumps({"t": -1e20, "event": "metrics", "step": 4, "metrics": {"loss": 1}}) + "\n")
    storegen.write_events(home, [{"t": 1e308, "event": "submit", "job": "job1"}])
    for args in (["report.log", "job1.1"], ["report.events"], ["report.list", "--runs", "job1", "--json"]):
        done = cli(args, tmp_path, {"SINGKIT_HOME": str(home)})
        assert done.returncode == 0 and "internal error" not in done.stderr, (args, done.stderr)


def test_a_made_job_keeps_no_creating_marker(tmp_path):
    from jobtools import make_env, make_project
    from singkit.jobs.spec import SubmitRequest
    from singkit.jobs.submit import submit

    project = make_project(tmp_path)
    job = submit(make_env(project), SubmitRequest(command="true", dry_run=True))
    assert job.spec_path.is_file() and not (job.dir / ".creating").exists()


def _strict(text: str):
    """json.loads as strict parsers read (JavaScript's JSON.parse): no NaN, Infinity, -Infinity."""
    def refuse(token: str):
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_json_output_is_strict_json_with_non_finite_metrics(tmp_path):
    """run.log may hold NaN and ±Infinity (Python's json writes them); `job.status --json` printed
    them bare, which JSON.parse refuses (fresh-user finding). Every --json is now null there, as
    report.list's was."""
    home = tmp_path / ".singkit"
    storegen.sweep_job(home, "job1", lrs=(0.1,), seeds=(1,))
    log = home / "jobs" / "job1" / "runs" / "job1.1" / "run.log"
    with log.open("a") as fh:
        for k, value in enumerate((float("nan"), float("inf"), float("-inf"))):
            fh.write(json.dumps({"t": 2e9 + k, "event": "metrics", "step": 10 + k, "metrics": {f"m{k}": value}}) + "\n")
    for args in (["job.status", "job1", "--json"], ["job.list", "--json"], ["report.list", "--runs", "job1", "--json"]):
        done = cli(args, tmp_path, {"SINGKIT_HOME": str(home)})
        assert done.returncode == 0, (args, done.stderr)
        data = _strict(done.stdout)
        if args[0] == "job.status":
            assert {data["runs"][0]["last_metrics"][f"m{k}"] for k in range(3)} == {None}
