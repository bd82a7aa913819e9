"""The job store: run.log protocol, id allocation under concurrency, the index, the audit log."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from singkit.exceptions import UsageError
from singkit.store import Store, events, runlog


def test_runlog_skips_torn_and_garbage_lines(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    runlog.append(log, "status", status="running")
    runlog.append(log, "metrics", step=1, metrics={"loss": 1.0})
    with open(log, "ab") as fh:
        fh.write(b"not json\n[1, 2]\n")
        fh.write(b'{"t": 1, "event": "metrics", "step": 2, "metr')  # a writer mid-line
    records, offset = runlog.read(log)
    assert [r["event"] for r in records] == ["status", "metrics"]
    assert offset < log.stat().st_size
    state = runlog.state(log)
    assert state.status == "running" and state.last_metrics == {"loss": 1.0} and state.last_step == 1


def test_first_terminal_status_wins(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    for status in ("queued", "running", "cancelled", "failed", "running", "completed"):
        runlog.append(log, "status", status=status, reason=f"r-{status}")
    state = runlog.state(log)
    assert (state.status, state.reason) == ("cancelled", "r-cancelled")


def test_preempted_is_not_final(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    for status in ("running", "preempted", "running", "completed"):
        runlog.append(log, "status", status=status)
    assert runlog.state(log).status == "completed"


@pytest.mark.parametrize("statuses, expected", [
    ([], "queued"), (["queued", "queued"], "queued"), (["running", "queued"], "running"),
    (["completed", "queued"], "running"), (["completed", "completed"], "completed"),
    (["completed", "failed", "cancelled"], "failed"), (["completed", "cancelled"], "cancelled"),
    (["preempted"], "preempted"),
])
def test_job_status_from_runs(statuses: list[str], expected: str) -> None:
    assert runlog.job_status(statuses) == expected


def test_allocate_gives_distinct_ids_to_threads(tmp_path: Path) -> None:
    store = Store(tmp_path / "home")
    ids: list[str] = []
    lock = threading.Lock()

    def grab() -> None:
        job = Store(store.root).allocate()
        with lock:
            ids.append(job.id)

    threads = [threading.Thread(target=grab) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(ids, key=lambda j: int(j[3:])) == [f"job{i}" for i in range(1, 31)]


def _allocate_and_record(root: str, queue: multiprocessing.Queue) -> None:
    store = Store(Path(root))
    job = store.allocate()
    job.write_spec({"job": job.id, "created": 1.0, "target": {"name": "local"}, "service": {"name": "local"},
                    "command": "true", "runs": [{"run": f"{job.id}.1", "hparams": {}}]})
    for run in job.runs:
        run.create()
    store.save(job)
    queue.put(job.id)


def test_allocate_and_index_from_20_processes(tmp_path: Path) -> None:
    root = tmp_path / "home"
    queue: multiprocessing.Queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_allocate_and_record, args=(str(root), queue)) for _ in range(20)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    ids = sorted(queue.get(timeout=5) for _ in range(20))
    assert len(set(ids)) == 20
    store = Store(root)
    assert sorted(store.index.statuses()) == ids
    for job_id in ids:
        assert store.job(job_id).spec["job"] == job_id


def test_index_rebuilds_from_files(tmp_path: Path) -> None:
    store = Store(tmp_path / "home")
    for _ in range(3):
        job = store.allocate()
        job.write_spec({"job": job.id, "created": 1.0, "target": {"name": "local"}, "service": {"name": "local"},
                        "command": "true", "runs": [{"run": f"{job.id}.1", "hparams": {"lr": 0.1}}]})
        job.runs[0].create()
        job.runs[0].set_status("completed", exit_code=0)
        store.save(job)
    store.close()
    # a damaged index is set aside and refilled from the job folders
    (tmp_path / "home" / "index.sqlite").write_bytes(b"this is not sqlite" * 100)
    for suffix in ("-wal", "-shm"):
        Path(str(tmp_path / "home" / "index.sqlite") + suffix).unlink(missing_ok=True)
    fresh = Store(tmp_path / "home")
    fresh.sync_index()
    rows = fresh.index.summaries()
    assert [r["job"] for r in rows] == ["job1", "job2", "job3"]
    assert all(r["status"] == "completed" and r["runs_done"] == 1 for r in rows)
    assert (tmp_path / "home" / "index.sqlite.damaged").exists()
    assert fresh.rebuild_index() == 3
    mode = sqlite3.connect(tmp_path / "home" / "index.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_unknown_job_suggests(tmp_path: Path) -> None:
    store = Store(tmp_path / "home")
    with pytest.raises(UsageError, match="no jobs yet"):
        store.job("job1")
    job = store.allocate()
    job.write_spec({"job": job.id, "runs": []})
    with pytest.raises(UsageError, match="did you mean job1"):
        store.job("jobl")
    assert store.job("1").id == "job1"


def test_run_refs(tmp_path: Path) -> None:
    store = Store(tmp_path / "home")
    job = store.allocate()
    job.write_spec({"job": job.id, "runs": [{"run": "job1.1"}, {"run": "job1.2"}]})
    assert job.run("2").id == job.run("job1.2").id == job.run("1.2").id == "job1.2"
    with pytest.raises(UsageError, match="job1.1, job1.2"):
        job.run("7")


def test_audit_events_append(tmp_path: Path) -> None:
    class Home:
        home = tmp_path / "home"

    events.record(Home, "submit", job="job1", runs=2)
    events.record(Home, "cancel", job="job1")
    lines = [json.loads(line) for line in (tmp_path / "home" / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in lines] == ["submit", "cancel"]
    assert lines[0]["job"] == "job1" and "t" in lines[0]
    assert events.read(Home)[1]["event"] == "cancel"


def test_metrics_module_protocol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from singkit import metrics

    log = tmp_path / "run.log"
    monkeypatch.setenv("SINGKIT_RUN_LOG", str(log))
    monkeypatch.setenv("SINGKIT_NODE", "1")
    monkeypatch.setenv("SINGKIT_OUTPUTS", str(tmp_path / "out"))
    metrics.log_hparams({"lr": 0.1})
    metrics.log_metrics({"loss": 0.5}, step=3)
    records = runlog.events(log)
    assert records[0]["event"] == "hparams" and records[0]["hparams"] == {"lr": 0.1}
    assert records[1]["step"] == 3 and records[1]["metrics"] == {"loss": 0.5} and records[1]["node"] == 1
    assert metrics.outputs_dir() == tmp_path / "out" and (tmp_path / "out").is_dir()


def test_metrics_module_is_stdlib_only() -> None:
    """It is copied into jobs whose images have nothing installed: it may import only the stdlib."""
    import ast
    import sys

    source = Path(__file__).resolve().parents[1] / "src" / "singkit_metrics.py"
    entry = Path(__file__).resolve().parents[1] / "scripts" / "singkit_entry.py"
    for path in (source, entry):
        tree = ast.parse(path.read_text())
        names = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        names |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert names <= set(sys.stdlib_module_names) | {"__future__"}, (path.name, names)
    assert os.access(entry, os.R_OK)
