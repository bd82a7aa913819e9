"""Reading the store's files: torn lines, job.yaml shapes, and the index's folds staying right."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

import storegen
from storegen import RunSpec, curve
from singkit.reports.cache import OLD_CACHE
from singkit.reports.model import StoreReader
from singkit.reports.source import natural_key, parse_jsonl
from singkit.store.fold import LAST, MIN, RunState


def test_parse_jsonl_skips_torn_and_foreign_lines():
    data = b'{"a": 1}\nnot json\n[1, 2]\n\n{"b": NaN}\n{"c": 3'
    events, consumed, unterminated = parse_jsonl(data)
    assert [list(e) for e in events] == [["a"], ["b"]]
    assert consumed == data.rfind(b"\n") + 1 and not unterminated
    events, consumed, unterminated = parse_jsonl(b'{"a": 1}\n{"b": 2}')
    assert len(events) == 2 and consumed == 9 and unterminated   # complete JSON, no newline yet


def test_natural_order():
    assert sorted(["job10", "job2", "job1.10", "job1.2"], key=natural_key) == ["job1.2", "job1.10", "job2", "job10"]


def test_first_final_status_wins_and_preempted_runs_can_resume():
    state = RunState().fold([
        {"t": 1, "event": "status", "status": "running"},
        {"t": 5, "event": "status", "status": "preempted", "reason": "low priority"},
        {"t": 9, "event": "status", "status": "running"},
        {"t": 20, "event": "status", "status": "failed", "exit_code": 3, "reason": "boom"},
        {"t": 21, "event": "status", "status": "completed", "exit_code": 0},
    ])
    assert state.status == "failed" and state.exit_code == 3 and state.preemptions == 1
    assert state.times(now=100) == (1, 20, 19)
    stopped = RunState().fold([{"t": 1, "event": "status", "status": "running"},
                               {"t": 4, "event": "status", "status": "preempted"}])
    assert stopped.times(now=100) == (1, 4, 3)
    going = RunState().fold([{"t": 1, "event": "status", "status": "running"},
                             {"t": 4, "event": "status", "status": "preempted", "reason": "paused"},
                             {"t": 9, "event": "status", "status": "running"}])
    assert going.status == "running" and going.reason is None  # no stale "paused"
    # the second poll after a preemption (Azure ML says Queued again) keeps the run preempted
    again = RunState().fold([{"t": 1, "event": "status", "status": "running"},
                             {"t": 4, "event": "status", "status": "preempted", "reason": "requeued"},
                             {"t": 6, "event": "status", "status": "preempted", "reason": "requeued"}])
    assert again.status == "preempted" and again.preemptions == 1 and again.reason == "requeued"
    cancelled = RunState().fold([{"t": 1, "event": "status", "status": "cancelled", "reason": "job.cancel"},
                                 {"t": 2, "event": "status", "status": "failed", "exit_code": 143}])
    assert cancelled.status == "cancelled" and cancelled.exit_code == 143  # the process's code


def test_one_fold_keeps_metric_stats_nodes_and_round_trips_as_json():
    """The fold reports read: last/best/count/non-finite per metric (inf and NaN never best),
    per-node records, and its JSON form (what caches keep) reads back the same."""
    state = RunState().fold([
        {"t": 1, "event": "status", "status": "running", "node": 0},
        {"t": 2, "event": "metrics", "step": 0, "metrics": {"loss": 2.0, "note": "warm"}, "node": 0},
        {"t": 3, "event": "metrics", "step": 1, "metrics": {"loss": float("inf")}, "node": 1},
        {"t": 4, "event": "metrics", "step": 2, "metrics": {"loss": float("nan")}},
        {"t": 5, "event": "metrics", "step": 3, "metrics": {"loss": 1.5}},
        {"t": 6, "event": "exit", "exit_code": 0, "node": 1},
    ])
    last, last_step, low, high, count, nonfinite = state.metrics["loss"]
    assert (last, last_step, low, high, count, nonfinite) == (1.5, 3, 1.5, 2.0, 4, 2)
    assert "note" not in state.metrics and state.last_metrics["note"] == "warm" and state.metric_lines == 4
    assert state.nodes["0"]["status"] == "running" and state.nodes["1"] == {
        "status": None, "started": None, "ended": 6, "last_t": 6, "metric_lines": 1}
    copy = RunState.from_json(json.loads(json.dumps(state.to_json())))
    assert copy is not None and copy.to_json().keys() == state.to_json().keys()
    assert copy.status == state.status and copy.nodes == state.nodes and copy.metrics["loss"][:2] == [1.5, 3]
    assert RunState.from_json({**state.to_json(), "metrics": {"loss": [1]}}) is None  # a damaged row
    assert RunState.from_json({**state.to_json(), "status": "weird"}) is None


def _env_with_job(tmp_path, runs):
    storegen.write_job(tmp_path / ".singkit", "job1", runs)
    return storegen.store_env(tmp_path)


def _load(env):
    with StoreReader(env) as reader:
        return {r.run: r for r in reader.runs()}


INDEX = "index.sqlite"  # the store's one index: the reports keep their folds there (issue 14)


def test_cache_follows_appends_rewrites_and_deletion(tmp_path):
    env = _env_with_job(tmp_path, [RunSpec({"lr": 0.1}, curve(3, 2.0, 1.0), status="running")])
    log = tmp_path / ".singkit/jobs/job1/runs/job1.1/run.log"
    first = _load(env)["job1.1"]
    assert first.status == "running" and first.state.metric_lines == 3
    assert (tmp_path / ".singkit" / INDEX).is_file()

    with open(log, "a") as fh:  # the job goes on: the log is folded again
        fh.write(json.dumps({"t": storegen.T0 + 900, "event": "metrics", "step": 3, "metrics": {"loss": 0.1}}) + "\n")
        fh.write(json.dumps({"t": storegen.T0 + 901, "event": "status", "status": "completed", "exit_code": 0}) + "\n")
    grown = _load(env)["job1.1"]
    assert grown.status == "completed" and grown.state.metric_lines == 4
    assert grown.metrics["loss"][LAST] == 0.1 and grown.metrics["loss"][MIN] == 0.1

    # a rewritten log (same size or not) is read again from the start
    log.write_text(json.dumps({"t": 1.0, "event": "status", "status": "failed", "exit_code": 9}) + "\n")
    rewritten = _load(env)["job1.1"]
    assert rewritten.status == "failed" and rewritten.metrics == {}

    (tmp_path / ".singkit" / INDEX).unlink()  # the index is rebuildable
    assert _load(env)["job1.1"].status == "failed"


def test_torn_line_is_read_once_it_is_complete(tmp_path):
    env = _env_with_job(tmp_path, [RunSpec({}, curve(2, 2.0, 1.0), status="running", torn=True)])
    log = tmp_path / ".singkit/jobs/job1/runs/job1.1/run.log"
    assert _load(env)["job1.1"].state.metric_lines == 2
    with open(log, "a") as fh:  # the writer finishes its line
        fh.write('ics": {"loss": 0.5}, "step": 7}\n')
    assert _load(env)["job1.1"].state.metric_lines == 3


def test_unusable_cache_still_reports(tmp_path):
    env = _env_with_job(tmp_path, [RunSpec({"lr": 0.1}, curve(2, 2.0, 1.0))])
    (tmp_path / ".singkit" / INDEX).write_bytes(b"this is not sqlite" * 100)
    assert _load(env)["job1.1"].status == "completed"


def test_a_fold_row_that_is_no_fold_is_read_again(tmp_path):
    env = _env_with_job(tmp_path, [RunSpec({"lr": 0.1}, curve(2, 2.0, 1.0))])
    _load(env)
    db = sqlite3.connect(tmp_path / ".singkit" / INDEX)
    db.execute("UPDATE runs SET fold = '{\"bogus\": 1}'")
    db.commit()
    db.close()
    assert _load(env)["job1.1"].state.metric_lines == 2


def test_the_old_reports_cache_is_removed(tmp_path):
    """An older singkit kept a copy of the folds in reports-cache.sqlite: its rows are never
    read, and the file goes at the first report."""
    env = _env_with_job(tmp_path, [RunSpec({"lr": 0.1}, curve(2, 2.0, 1.0))])
    old = tmp_path / ".singkit" / OLD_CACHE
    db = sqlite3.connect(old)
    db.execute("CREATE TABLE bundles (job TEXT PRIMARY KEY, bundle TEXT)")
    db.execute("INSERT INTO bundles VALUES ('job1', '{}')")
    db.commit()
    db.close()
    assert _load(env)["job1.1"].state.metric_lines == 2
    assert not old.exists()


def test_job_yaml_shapes_runs_without_folders_and_folders_without_spec(tmp_path):
    home = tmp_path / ".singkit"
    job = home / "jobs" / "job4"
    (job / "runs" / "job4.2").mkdir(parents=True)
    (job / "runs" / "job4.10").mkdir(parents=True)
    (job / "job.yaml").write_text(
        "job: job4\ncreated: 2024-11-24T12:00:00Z\n"
        "target: {name: eus-v100, vm-size: ND40rs_v2, nodes: 2}\n"
        "service: {name: ws, type: singularity}\nprice-per-hour: 10\n"
        "runs:\n- run: job4.1\n  hparams: {lr: 0.1}\n  repeat: 1\n- run: 2\n  hparams: {lr: 0.2}\n")
    (job / "runs" / "job4.2" / "run.log").write_text(
        '{"t": 1000, "event": "status", "status": "running"}\n'
        '{"t": 1000, "event": "hparams", "hparams": {"lr": 0.25, "extra": true}}\n'
        '{"t": 4600, "event": "status", "status": "completed", "exit_code": 0}\n')
    env = storegen.store_env(tmp_path)
    runs = _load(env)
    assert list(runs) == ["job4.1", "job4.2", "job4.10"]
    assert runs["job4.1"].status == "queued" and runs["job4.1"].hparams == {"lr": 0.1}
    assert runs["job4.2"].hparams == {"lr": 0.25, "extra": True}     # what the run logged wins
    assert runs["job4.2"].cost == pytest.approx(10 * 1 * 2)          # price × hours × nodes
    from singkit.reports import views

    jobs = views.list_table(env, "jobs", columns="job,created,target,service,sku")
    assert jobs.rows[0]["target"] == "eus-v100" and jobs.rows[0]["service"] == "ws"
    assert jobs.rows[0]["sku"] == "ND40rs_v2" and jobs.rows[0]["created"] == 1732449600.0


def test_report_modules_import_no_heavy_libraries():
    code = ("import sys, singkit.tasks, singkit.reports.views, singkit.reports.plots, singkit.reports.html, "
            "singkit.reports.summary, singkit.reports.errors; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'pandas', 'numpy', 'seaborn', 'matplotlib', 'tabulate', 'jinja2'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.stdout.strip() == "[]"


def test_reports_and_job_status_read_one_fold(tmp_path):
    """The reports keep a run's fold in the store's index, keyed as job.status keys it: what one
    folded the other reads, skipped lines counted the same."""
    from singkit.store import runlog
    from singkit.store.model import Store

    env = _env_with_job(tmp_path, [RunSpec({"lr": 0.1}, curve(3, 2.0, 1.0), torn=True)])
    log = tmp_path / ".singkit/jobs/job1/runs/job1.1/run.log"
    with open(log, "r+b") as fh:  # a line that is no JSON, then the torn one (still being written)
        text = fh.read()
        cut = text.rindex(b"\n") + 1
        fh.seek(cut)
        fh.write(b"not json\n" + text[cut:])
    assert _load(env)["job1.1"].state.skipped_lines == 1
    db = sqlite3.connect(tmp_path / ".singkit" / INDEX)
    (fold,) = db.execute("SELECT fold FROM runs WHERE run = 'job1.1'").fetchone()
    db.close()
    assert json.loads(fold) == runlog.state(log).to_json()
    store = Store(tmp_path / ".singkit")
    assert store.indexed_folds("job1")["job1.1"][1] == fold  # job.status finds it there
    store.close()


def test_generated_stores_are_read_as_the_store_reads_them(tmp_path):
    """tests/storegen.py writes what job.submit writes: job.status's readers take its jobs."""
    home = tmp_path / ".singkit"
    storegen.sweep_job(home, "job1")
    storegen.write_job(home, "job2", [RunSpec({"lr": 0.1}, curve(3, 2.0, 1.0), status="failed", exit_code=1),
                                      RunSpec({"lr": 0.2}, log=False)], target="eus-v100", service="sing",
                       service_type="singularity", **{"vm-size": "ND12_v2"})
    assert storegen.check_readable(home, "job1")["status"] == "completed"
    summary = storegen.check_readable(home, "job2")
    assert (summary["status"], summary["target"], summary["service"], summary["runs_total"]) == ("running", "eus-v100", "sing", 2)
    assert not (home / "index.sqlite").exists()  # reading creates nothing
