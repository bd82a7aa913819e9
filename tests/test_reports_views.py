"""report.metrics, report.log, report.errors, report.events, and the report tasks end to end."""

from __future__ import annotations

import csv
import json

import pytest

import storegen
from clirunner import cli
from storegen import T0, RunSpec, curve
from singkit.exceptions import UsageError
from singkit.reports import errors, render, views

OOM = "Traceback (most recent call last):\n  File \"train.py\", line 3\nRuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB\n"


@pytest.fixture
def store(tmp_path):
    home = tmp_path / ".singkit"
    storegen.write_job(home, "job1", [
        RunSpec({"lr": 0.1}, [(0, {"loss": 2.0}), (0, {"acc": 0.1}), (1, {"loss": 1.5, "acc": 0.4})]),
        RunSpec({"lr": 0.2}, None, status="failed", exit_code=1, stderr="loading\n" + OOM.replace("2.00", "3.50")),
        RunSpec({"lr": 0.3}, None, status="failed", exit_code=1, stderr=OOM),
        RunSpec({"lr": 0.4}, None, status="failed", exit_code=2, stderr="KeyError: 'label'\n"),
        RunSpec({"lr": 0.5}, None, status="failed", reason="node lost", stderr=""),
        RunSpec({"lr": 0.6}, None, status="cancelled", reason="cancelled by the user"),
    ])
    storegen.write_events(home, [
        {"t": T0, "event": "build", "docker": "pytorch", "image": "reg/pytorch:sing"},
        {"t": T0 + 1, "event": "push", "image": "reg/pytorch:sing", "digest": "sha256:abc"},
        {"t": T0 + 2, "event": "submit", "job": "job1", "target": "local", "runs": 6},
        {"t": T0 + 3, "event": "cancel", "job": "job1", "run": "job1.6"},
        {"t": T0 + 4, "event": "submit", "job": "job2", "target": "local", "runs": 1},
    ])
    with open(home / "events.jsonl", "a") as fh:
        fh.write('{"t": 1, "event": "torn')
    return storegen.store_env(tmp_path)


def test_metrics_table_merges_lines_of_the_same_step(store):
    table = views.metrics_table(store, "job1", run="1")
    assert table.columns == ["run", "step", "metrics.loss", "metrics.acc"]
    assert [(r["step"], r.get("metrics.loss"), r.get("metrics.acc")) for r in table.rows] == [(0, 2.0, 0.1), (1, 1.5, 0.4)]
    only = views.metrics_table(store, "job1", metrics="acc", filters=["acc>0.2"])
    assert [r["metrics.acc"] for r in only.rows] == [0.4]
    with pytest.raises(UsageError, match="no run `job1.9`"):
        views.metrics_table(store, "job1", run="job1.9")
    with pytest.raises(UsageError, match="logged f1"):
        views.metrics_table(store, "job1", metrics="f1")


def test_metrics_table_shows_nodes_of_multi_node_runs(tmp_path):
    storegen.write_job(tmp_path / ".singkit", "job1", [RunSpec({}, curve(3, 2.0, 1.0), nodes=2)])
    table = views.metrics_table(storegen.store_env(tmp_path), "job1")
    assert table.columns[:3] == ["run", "node", "step"] and len(table.rows) == 6


def test_log_events_in_time_order_with_readable_details(store):
    evs = views.log_events(store, "job1", run="job1.4")
    assert [e["event"] for e in evs] == ["status", "status", "hparams", "status"]
    text = render.render_text(*(lambda t: (t.columns, t.rows))(views.event_table(evs, with_run=True)))
    assert "failed (exit 2)" in text and "lr=0.4" in text
    assert [e["event"] for e in views.log_events(store, "job1", events="hparams")] == ["hparams"] * 6
    assert len(views.log_events(store, "job1", last=2)) == 2


def test_errors_grouped_by_signature_with_stderr_tail(store):
    groups = errors.error_groups(store, "job1", tail=3)
    assert [(g["count"], g["runs"]) for g in groups] == [
        (2, ["job1.2", "job1.3"]), (1, ["job1.4"]), (1, ["job1.5"])]
    oom = groups[0]
    assert oom["message"].startswith("RuntimeError: CUDA out of memory") and oom["exit_codes"] == [1]
    assert oom["tail"][-1].startswith("RuntimeError") and len(oom["tail"]) == 3
    assert groups[2]["message"] == "node lost"                       # no stderr: the status reason
    text = errors.render_groups(groups, "job1")
    assert "4 failed run(s) in job1, 3 distinct error(s)" in text and "| RuntimeError" in text
    everything = errors.error_groups(store, "job1", ("failed", "cancelled", "preempted"))
    assert sum(g["count"] for g in everything) == 5
    assert errors.render_groups([], "job9") == "no failed runs in job9"


def test_audit_events_filter_by_job_and_kind(store):
    assert [e["event"] for e in views.audit_events(store)] == ["build", "push", "submit", "cancel", "submit"]
    assert [e["event"] for e in views.audit_events(store, job="job1")] == ["submit", "cancel"]
    assert [e["job"] for e in views.audit_events(store, events="submit", last=1)] == ["job2"]
    table = views.event_table(views.audit_events(store), with_run=False)
    assert table.columns == ["time", "job", "event", "detail"]
    assert "digest=sha256:abc" in table.rows[1]["detail"]


# -- the tasks, as a user runs them -------------------------------------------------------------------
def _run(tmp_path, *args):
    return cli(list(args), cwd=tmp_path, env={"SINGKIT_HOME": str(tmp_path / ".singkit"), "HOME": str(tmp_path)})


def test_tasks_print_tables_json_and_paths(store, tmp_path):
    out = _run(tmp_path, "report.list", "--job=job1", "--filter", "status=failed", "--sort", "lr", "--reverse")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("all 4 runs: target=local")      # what every row shares, said once
    assert lines[1].split()[:2] == ["run", "status"] and lines[3].startswith("job1.5")
    as_json = _run(tmp_path, "report.list", "--job=JOB=job1", "--group=status", "--json")
    assert {r["status"]: r["runs"] for r in json.loads(as_json.stdout)} == {"completed": 1, "failed": 4, "cancelled": 1}
    export = _run(tmp_path, "report.list", "--jobs", "--export", str(tmp_path / "jobs.csv"))
    assert export.stdout.strip() == str(tmp_path / "jobs.csv")
    assert next(csv.DictReader(open(tmp_path / "jobs.csv")))["job"] == "job1"
    metrics = _run(tmp_path, "report.metrics", "JOB=job1", "--json")
    assert json.loads(metrics.stdout)[1]["metrics.loss"] == 1.5
    log = _run(tmp_path, "report.log", "job1", "--run=2", "--json")
    assert json.loads(log.stdout)[-1]["status"] == "failed"
    errs = _run(tmp_path, "report.errors", "--job=job1", "--json")
    assert json.loads(errs.stdout)[0]["count"] == 2
    events = _run(tmp_path, "report.events", "--event=push")
    assert "sha256:abc" in events.stdout


def test_task_errors_are_one_line_with_exit_codes(store, tmp_path):
    unknown = _run(tmp_path, "report.list", "--job=job7")
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr.strip().startswith("error: no job `job7`") and len(unknown.stderr.strip().splitlines()) == 1
    bad = _run(tmp_path, "report.list", "--filter", "acc >> 1")
    assert bad.returncode == 2 and "error:" in bad.stderr
    missing = _run(tmp_path, "report.plot")
    assert missing.returncode != 0
    both = _run(tmp_path, "report.list", "--jobs", "--nodes")
    assert both.returncode == 2 and "one of --jobs, --runs, --nodes" in both.stderr
