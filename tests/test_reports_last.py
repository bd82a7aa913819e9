"""`report.list --runs --last N` reads what it shows (issue 14): the newest jobs, newest first,
until N runs are found; its hparam and metric columns are those of the runs it shows."""

from __future__ import annotations

import pytest

import storegen
from storegen import RunSpec, curve
from singkit.reports import views


@pytest.fixture
def store(tmp_path):
    """job1: old runs with a hparam and a metric no later run has, and a job.yaml that no longer
    parses; job2..job4: three runs each of the same sweep."""
    home = tmp_path / ".singkit"
    storegen.write_job(home, "job1", [RunSpec({"lr": 0.1, "wd": 0.5}, [(0, {"loss": 1.0, "old_metric": 3.0})])] * 2)
    for num in (2, 3, 4):
        storegen.write_job(home, f"job{num}", [RunSpec({"lr": 0.01 * k, "seed": k}, curve(5, 2.0, 0.5 + k / 10))
                                               for k in (1, 2, 3)], created=storegen.T0 + 100 * num)
    return storegen.store_env(tmp_path)


def _damage_job1(env) -> None:
    (env.home / "jobs/job1/job.yaml").write_text("runs: [unclosed\n")


@pytest.mark.parametrize("last", [1, 3, 4, 8, 9])
def test_last_rows_are_the_full_tables_last_rows(store, last):
    full = views.list_table(store, "runs", now=storegen.T0 + 10_000)
    table = views.list_table(store, "runs", last=last, now=storegen.T0 + 10_000)
    assert [r["run"] for r in table.rows] == [r["run"] for r in full.rows[-last:]]
    assert table.rows == full.rows[-last:]
    assert set(table.columns) <= set(full.columns)


def test_last_reads_only_the_jobs_it_shows(store):
    _damage_job1(store)
    table = views.list_table(store, "runs", last=9)
    assert [r["run"] for r in table.rows][0] == "job2.1"
    assert store.stderr.getvalue() == ""  # job1's job.yaml was never read
    views.list_table(store, "runs")
    assert store.stderr.getvalue().startswith("warning: job1 shown from its run folders only: ")


def test_last_shows_the_columns_of_its_runs(store):
    old = views.list_table(store, "runs", last=10)  # reaches job1.2
    assert "hparams.wd" in old.columns and "metrics.old_metric" in old.columns
    new = views.list_table(store, "runs", last=9)
    assert "hparams.wd" not in new.columns and "metrics.old_metric" not in new.columns
    assert new.columns == ["run", "status", "target", "duration", "hparams.lr", "hparams.seed",
                           "metrics.loss", "metrics.loss.best", "metrics.acc", "metrics.acc.best"]
    # a filter, sort or group still reads every run: its columns are those of the runs shown too,
    # and the others can still be named
    sorted_ = views.list_table(store, "runs", last=9, sort="run")
    assert "metrics.old_metric" not in sorted_.columns and "metrics.old_metric" in sorted_.names
    assert sorted_.columns == new.columns


def test_last_of_one_job_and_past_the_first_job(store):
    table = views.list_table(store, "runs", "job3", last=2)
    assert [r["run"] for r in table.rows] == ["job3.2", "job3.3"]
    every = views.list_table(store, "runs", last=100)
    assert [r["run"] for r in every.rows] == [r["run"] for r in views.list_table(store, "runs").rows]
