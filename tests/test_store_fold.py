"""The one run.log fold as the store keeps it: parsed at most once per command, and kept in the
index keyed by run.log's size and mtime_ns, so a warm job.status parses nothing unchanged.
Parses are counted by wrapping the reader, never timed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import storegen
from storegen import RunSpec, curve
from singkit.jobs import control
from singkit.store import Store, runlog


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every run.log parse (runlog.read_counted, which runlog.state folds) this test causes."""
    seen: list[str] = []
    real = runlog.read_counted

    def counting(path, offset=0):
        seen.append(Path(path).parent.name)
        return real(path, offset)

    monkeypatch.setattr(runlog, "read_counted", counting)
    return seen


def _job(tmp_path: Path, runs: int = 5):
    storegen.write_job(tmp_path / ".singkit", "job1", [RunSpec({"lr": 0.1 * k}, curve(4, 2.0, 1.0)) for k in range(runs)])
    return storegen.store_env(tmp_path)


def test_job_status_parses_each_run_log_once_then_never_while_unchanged(tmp_path: Path, parses: list[str]) -> None:
    env = _job(tmp_path)
    cold = control.status(env, "job1")
    assert sorted(parses) == [f"job1.{k}" for k in range(1, 6)]  # once each, however many readers ask
    parses.clear()
    warm = control.status(env, "job1")  # a new command: the index's folds are reused
    assert parses == [] and warm == cold
    log = tmp_path / ".singkit/jobs/job1/runs/job1.3/run.log"
    with open(log, "a") as fh:  # a run.log that changes is parsed again, and only that one
        fh.write(json.dumps({"t": storegen.T0 + 999, "event": "metrics", "step": 9, "metrics": {"loss": 0.25}}) + "\n")
    grown = control.status(env, "job1")
    assert parses == ["job1.3"]
    assert grown["runs"][2]["last_metrics"]["loss"] == 0.25 and grown["runs"][2]["last_step"] == 9


def test_a_damaged_indexed_fold_is_parsed_again(tmp_path: Path, parses: list[str]) -> None:
    env = _job(tmp_path, runs=2)
    expected = control.status(env, "job1")
    store = Store.of(env)
    store.index.db.execute("UPDATE runs SET fold = '{\"status\": \"weird\"}' WHERE run = 'job1.2'")
    store.close()
    parses.clear()
    assert control.status(env, "job1") == expected and parses == ["job1.2"]


def test_a_run_log_rewritten_to_the_same_size_is_parsed_again(tmp_path: Path, parses: list[str]) -> None:
    """The key is size AND mtime_ns: a run.log replaced by one as long (a job rewriting its own log,
    a copy from the Blob mirror) must not be answered from the indexed fold of the old one."""
    env = _job(tmp_path, runs=1)
    control.status(env, "job1")
    log = tmp_path / ".singkit/jobs/job1/runs/job1.1/run.log"
    text = log.read_text()
    changed = text.replace('"loss": 1.', '"loss": 7.', 1)
    assert changed != text and len(changed) == len(text)
    before = log.stat().st_mtime_ns
    log.write_text(changed)
    import os

    os.utime(log, ns=(before + 5_000_000_000, before + 5_000_000_000))
    parses.clear()
    control.status(env, "job1")
    assert parses == ["job1.1"]
