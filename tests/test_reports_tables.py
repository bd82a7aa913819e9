"""report.list tables over generated stores: contents, filters, sort, group, mean, exports."""

from __future__ import annotations

import csv
import json
import math
import random

import pytest
import tabulate

import storegen
from storegen import T0, RunSpec, curve
from singkit.exceptions import UsageError
from singkit.reports import render, tables, views
from singkit.reports.tables import Table


@pytest.fixture
def store(tmp_path):
    """job1: a 3 lr × 2 seed sweep on a priced target; job2: failed, running, queued, NaN/inf
    and no-metrics runs; job3: a two-node run."""
    home = tmp_path / ".singkit"
    storegen.sweep_job(home, "job1", target="eus-v100", **{"price-per-hour": 3.6, "vm-size": "ND40rs_v2"})
    storegen.write_job(home, "job2", [
        RunSpec({"lr": 0.1, "opt": "adam"}, curve(20, 2.0, 0.5)),
        RunSpec({"lr": -1, "opt": "sgd"}, None, status="failed", exit_code=1,
                stderr="Traceback (most recent call last):\nValueError: lr must be positive, got -1\n"),
        RunSpec({"lr": 0.3, "opt": "adamw"}, curve(5, 2.0, 1.0), status="running"),
        RunSpec({"lr": 0.5, "opt": "sgd"}, log=False),
        RunSpec({"lr": 0.2, "opt": "adam"}, [(0, {"loss": 1.0}), (1, {"loss": float("nan")}),
                                             (2, {"loss": float("inf")})], torn=True),
    ], created=T0 + 3600)
    storegen.write_job(home, "job3", [RunSpec({"lr": 0.1}, curve(4, 2.0, 1.0), nodes=2)], created=T0 + 7200)
    return storegen.store_env(tmp_path)


def rows_by_run(table: Table) -> dict[str, dict]:
    return {row["run"]: row for row in table.rows}


def test_run_table_carries_hparams_last_and_best_metrics_status_duration_cost(store):
    table = views.list_table(store, "runs", "job1", now=T0 + 10**6)
    assert table.columns[:5] == ["run", "status", "target", "duration", "cost"]
    for column in ["hparams.lr", "hparams.seed", "metrics.loss", "metrics.loss.best", "metrics.acc", "metrics.acc.best"]:
        assert column in table.columns
    row = rows_by_run(table)["job1.3"]
    assert row["hparams.lr"] == 0.01 and row["hparams.seed"] == 1
    assert row["metrics.loss"] == pytest.approx(0.21) and row["metrics.loss.best"] == pytest.approx(0.21)
    assert row["metrics.acc.best"] == pytest.approx(1 - 0.21 / 2)   # acc: higher is better
    assert row["status"] == "completed" and row["target"] == "eus-v100"
    assert row["duration"] == pytest.approx(600.0)
    assert row["cost"] == pytest.approx(3.6 * 600 / 3600)


def test_best_differs_from_last_and_follows_direction(tmp_path):
    home = tmp_path / ".singkit"
    storegen.write_job(home, "job1", [RunSpec({"lr": 0.1}, [(0, {"loss": 3.0, "acc": 0.2}), (1, {"loss": 1.0, "acc": 0.9}),
                                                            (2, {"loss": 2.0, "acc": 0.5})])])
    row = views.list_table(storegen.store_env(tmp_path)).rows[0]
    assert (row["metrics.loss"], row["metrics.loss.best"]) == (2.0, 1.0)
    assert (row["metrics.acc"], row["metrics.acc.best"]) == (0.5, 0.9)


def test_non_finite_values_never_become_the_best_either_way(tmp_path):
    home = tmp_path / ".singkit"
    nan, inf = float("nan"), float("inf")
    storegen.write_job(home, "job1", [
        RunSpec({"lr": 0.1}, [(0, {"loss": nan, "acc": nan}), (1, {"loss": 2.0, "acc": 0.4}), (2, {"loss": -inf, "acc": inf}),
                              (3, {"loss": inf, "acc": -inf}), (4, {"loss": 1.0, "acc": 0.3})]),
        RunSpec({"lr": 0.2}, [(0, {"loss": inf, "acc": nan})]),
    ])
    first, only_inf = views.list_table(storegen.store_env(tmp_path)).rows
    assert (first["metrics.loss.best"], first["metrics.acc.best"]) == (1.0, 0.4)  # neither -inf, inf nor NaN
    assert first["metrics.loss"] == 1.0 and first["metrics.acc"] == 0.3
    assert only_inf["metrics.loss.best"] is None and only_inf["metrics.acc.best"] is None
    assert math.isinf(only_inf["metrics.loss"]) and math.isnan(only_inf["metrics.acc"])  # last: as logged


def test_in_progress_queued_failed_nan_and_missing_metrics(store):
    rows = rows_by_run(views.list_table(store, "runs", "job2", now=T0 + 3600 + 100))
    assert rows["job2.2"]["status"] == "failed" and rows["job2.2"]["exit_code"] == 1
    assert "metrics.loss" not in rows["job2.2"]                  # never logged a metric
    assert rows["job2.3"]["status"] == "running"
    assert rows["job2.3"]["duration"] == pytest.approx(100 - 30 - 1)  # up to now: started at T0+3600+31
    assert rows["job2.4"]["status"] == "queued" and rows["job2.4"]["duration"] is None
    assert rows["job2.4"]["hparams.lr"] == 0.5                   # hparams from job.yaml alone
    nan_run = rows["job2.5"]
    assert math.isinf(nan_run["metrics.loss"])                   # last value kept as logged
    assert nan_run["metrics.loss.best"] == 1.0                   # best ignores NaN and inf
    assert nan_run["steps"] == 3                                 # the torn last line is skipped
    text = render.render_text(*_shown(views.list_table(store, "runs", "job2")))
    assert "inf" in text and "job2.4" in text


def _shown(table: Table):
    return table.columns, table.rows, table.footer, table.labels


@pytest.mark.parametrize("expr, expected", [
    ("metrics.acc>0.8", {"job1.3", "job1.4"}),
    ("acc>=0.89", {"job1.3", "job1.4"}),
    ("metrics.loss<0.3", {"job1.3", "job1.4"}),
    ("hparams.lr=0.1", {"job1.1", "job1.2"}),
    ("lr!=0.1", {"job1.3", "job1.4", "job1.5", "job1.6"}),
    ("seed==2", {"job1.2", "job1.4", "job1.6"}),
    ("run~\\.[12]$", {"job1.1", "job1.2"}),
    ("run!~[1-5]$", {"job1.6"}),
    ("status=completed", {f"job1.{k}" for k in range(1, 7)}),
    ("metrics.loss.best<=0.21", {"job1.3"}),
])
def test_filters(store, expr, expected):
    table = views.list_table(store, "runs", "job1", filters=[expr])
    assert {r["run"] for r in table.rows} == expected


def test_filters_combine_and_handle_missing_nan_and_text(store):
    both = views.list_table(store, "runs", "job1", filters=["lr<0.05", "seed=1"])
    assert {r["run"] for r in both.rows} == {"job1.3", "job1.5"}
    assert {r["run"] for r in views.list_table(store, "runs", "job1", filters="lr<0.05,seed=1").rows} == {"job1.3", "job1.5"}
    assert {r["run"] for r in views.list_table(store, "runs", "job2", filters=["metrics.loss=none"]).rows} == {"job2.2", "job2.4"}
    assert {r["run"] for r in views.list_table(store, "runs", "job2", filters=["metrics.loss=inf"]).rows} == {"job2.5"}
    assert {r["run"] for r in views.list_table(store, "runs", "job2", filters=["opt=adam"]).rows} == {"job2.1", "job2.5"}
    assert {r["run"] for r in views.list_table(store, "runs", "job2", filters=['opt~"^adam"']).rows} == {"job2.1", "job2.3", "job2.5"}
    # missing values never satisfy an order comparison
    assert {r["run"] for r in views.list_table(store, "runs", "job2", filters=["metrics.acc<10"]).rows} == {"job2.1", "job2.3"}


@pytest.mark.parametrize("expr, message", [
    ("metrics.acc", "COLUMN OP VALUE"),
    ("nosuch>1", "no column `nosuch`"),
    ("metrics.acx>1", "did you mean metrics.acc"),
    ("run~[", "bad regular expression"),
])
def test_bad_filters_are_usage_errors(store, expr, message):
    with pytest.raises(UsageError, match=message.replace("[", r"\[")):
        views.list_table(store, "runs", "job1", filters=[expr])


def test_filter_is_parsed_not_evaluated(store):
    with pytest.raises(UsageError):
        views.list_table(store, "runs", "job1", filters=["__import__('os').system('true')>1"])


def test_sort_reverse_and_last(store):
    by_loss = views.list_table(store, "runs", "job1", sort="loss")
    assert [r["run"] for r in by_loss.rows][:2] == ["job1.3", "job1.4"]
    desc = views.list_table(store, "runs", "job1", sort="metrics.acc", reverse=True, last=2)
    assert [r["run"] for r in desc.rows] == ["job1.1", "job1.2"]
    assert [r["metrics.acc"] for r in desc.rows] == sorted([r["metrics.acc"] for r in desc.rows], reverse=True)
    assert views.list_table(store, "runs", None, last=3).rows[-1]["run"] == "job3.1"   # natural order: newest last
    # runs without the sort column go last, whichever the direction
    for reverse in (False, True):
        ordered = views.list_table(store, "runs", "job2", sort="acc", reverse=reverse)
        assert {r["run"] for r in ordered.rows[-3:]} == {"job2.2", "job2.4", "job2.5"}


def test_group_by_hparams_means_over_repeats(store):
    grouped = views.list_table(store, "runs", "job1", group="hparams", mean="acc,loss", sort="loss")
    assert grouped.columns == ["hparams.lr", "runs", "mean(metrics.acc)", "mean(metrics.loss)"]  # seed is a repeat key
    first = grouped.rows[0]
    assert first["hparams.lr"] == 0.01 and first["runs"] == 2
    assert first["mean(metrics.loss)"] == pytest.approx(0.215)
    by_status = views.list_table(store, "runs", "job2", group="status")
    counts = {r["status"]: r["runs"] for r in by_status.rows}
    assert counts == {"completed": 2, "failed": 1, "running": 1, "queued": 1}
    assert "mean(metrics.loss)" in by_status.columns   # default: means of every metric


def test_mean_without_group_adds_a_footer_row(store):
    table = views.list_table(store, "runs", "job1", filters=["lr=0.01"], mean="loss")
    assert table.footer[0]["run"] == "mean"
    assert table.footer[0]["metrics.loss"] == pytest.approx(0.215)
    text = render.render_text(*_shown(table))
    assert text.splitlines()[-1].startswith("mean") and text.count("------") >= 2


def test_columns_selection_and_globs(store):
    table = views.list_table(store, "runs", "job1", columns="run,hparams.*,acc,started")
    assert table.columns == ["run", "hparams.lr", "hparams.seed", "metrics.acc", "started"]
    with pytest.raises(UsageError, match="ambiguous|no column"):
        views.list_table(store, "runs", "job1", columns="nope")


def test_exports_csv_tsv_json(store, tmp_path):
    table = views.list_table(store, "runs", "job2")
    for suffix in ("csv", "tsv"):
        path = render.export(tmp_path / f"runs.{suffix}", table.columns, table.rows)
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="," if suffix == "csv" else "\t"))
        assert [r["run"] for r in rows] == [f"job2.{k}" for k in range(1, 6)]
        assert rows[4]["metrics.loss"] == "inf" and rows[1]["metrics.loss"] == ""
        assert float(rows[0]["hparams.lr"]) == 0.1
    data = json.loads(render.export(tmp_path / "runs.json", table.columns, table.rows).read_text())
    assert data[4]["metrics.loss"] is None                       # strict JSON: inf -> null
    assert data[0]["hparams.opt"] == "adam"
    with pytest.raises(UsageError, match=r"\.csv, \.tsv or \.json"):
        render.export(tmp_path / "runs.xlsx", table.columns, table.rows)


def test_jobs_and_nodes_tables(store):
    jobs = views.list_table(store, "jobs", now=T0 + 10**5)
    by_job = {r["job"]: r for r in jobs.rows}
    assert by_job["job1"]["runs"] == 6 and by_job["job1"]["status"] == "completed"
    assert by_job["job1"]["cost"] == pytest.approx(6 * 3.6 * 600 / 3600)
    assert by_job["job2"]["status"] == "running" and by_job["job2"]["failed"] == 1
    nodes = views.list_table(store, "nodes", "job3")
    assert [(r["run"], r["node"], r["status"]) for r in nodes.rows] == [("job3.1", 0, "completed"), ("job3.1", 1, "completed")]
    assert all(r["steps"] == 4 for r in nodes.rows)


def test_unknown_job_and_empty_store(store, tmp_path):
    with pytest.raises(UsageError, match="did you mean job1"):
        views.list_table(store, "runs", "jobb1")
    empty = storegen.store_env(tmp_path / "empty")
    assert views.list_table(empty).rows == []
    with pytest.raises(UsageError, match="no jobs yet"):
        views.list_table(empty, "runs", "job1")


def test_fast_renderer_draws_what_tabulate_draws():
    rng = random.Random(7)
    headers = ["run", "status", "lr", "acc best", "note"]
    right = [False, False, True, True, False]
    cells = [[f"job1.{i}", rng.choice(["completed", "failed", " running "]), str(rng.choice([0.1, 0.01])),
              f"{rng.random():.4g}", rng.choice(["", "x", "long note here"])] for i in range(2050)]
    expected = tabulate.tabulate(cells, headers, tablefmt="simple", disable_numparse=True,
                                 colalign=["right" if r else "left" for r in right])
    assert render.text_table(headers, cells, right) == expected


def test_fast_renderer_draws_what_tabulate_draws_for_small_and_empty_tables():
    rng = random.Random(11)
    for _ in range(1500):
        width, height = rng.randint(1, 5), rng.randint(0, 4)
        headers = [rng.choice(["", "a", "run", "long header name"]) for _ in range(width)]
        right = [rng.random() < 0.5 for _ in range(width)]
        cells = [[rng.choice(["", "x", "-", "1.5", "completed", "a b"]) for _ in range(width)] for _ in range(height)]
        expected = tabulate.tabulate(cells, headers, tablefmt="simple", disable_numparse=True,
                                     colalign=["right" if r else "left" for r in right])
        assert render.text_table(headers, cells, right) == expected, (headers, right, cells)


def test_short_headers_fall_back_to_full_names_on_collision():
    rows = [{"hparams.lr": 0.1, "metrics.lr": 0.2}]
    text = render.render_text(["hparams.lr", "metrics.lr"], rows, labels={"hparams.lr": "lr", "metrics.lr": "lr"})
    assert "hparams.lr" in text.splitlines()[0] and "metrics.lr" in text.splitlines()[0]


def test_negated_filters_keep_rows_that_lack_the_column():
    table = Table(["run", "opt"], [{"run": "a", "opt": "adam"}, {"run": "b"}, {"run": "c", "opt": "sgd"}, {"run": "d", "opt": None}])
    kept = {expr: [r["run"] for r in tables.filter_rows(table, expr).rows]
            for expr in ("opt!=adam", "opt!~^ad", "opt=adam", "opt~^ad", "opt!=none", "opt=none")}
    assert kept == {"opt!=adam": ["b", "c", "d"], "opt!~^ad": ["b", "c", "d"], "opt=adam": ["a"], "opt~^ad": ["a"],
                    "opt!=none": ["a", "c"], "opt=none": ["b", "d"]}


def test_table_ops_on_plain_tables():
    table = Table(["a", "b"], [{"a": 2, "b": "x"}, {"a": None, "b": "y"}, {"a": float("nan"), "b": "z"}, {"a": 1, "b": "w"}])
    assert [r["b"] for r in tables.sort_rows(table, "a").rows] == ["w", "x", "y", "z"]
    assert [r["b"] for r in tables.sort_rows(table, "a", reverse=True).rows][:2] == ["x", "w"]
    assert tables.last(table, 0).rows == []
    with pytest.raises(UsageError):
        tables.last(table, -1)


def test_mean_of_an_unknown_name_suggests_metric_columns_only(store):
    with pytest.raises(UsageError) as unknown:
        views.list_table(store, "runs", "job1", mean="nosuch")
    assert str(unknown.value) == ("no metric column `nosuch`; metric columns are: metrics.loss, metrics.loss.best, "
                                  "metrics.acc, metrics.acc.best")
    with pytest.raises(UsageError, match=r"^no metric column `los`; did you mean metrics.loss\?"):
        views.list_table(store, "runs", "job1", mean="los")
    with pytest.raises(UsageError, match=r"^no metric column `acc.bset`; did you mean metrics.acc.best\?"):
        views.list_table(store, "runs", "job1", group="hparams", mean="acc.bset")
    assert views.list_table(store, "runs", "job1", mean="loss").footer  # a real one still works


# -- issue 14: a fresh user's report fixes ---------------------------------------------------------
def _list(root, *args: str):
    from clirunner import cli

    return cli(["report.list", *args], cwd=root, env={"SINGKIT_HOME": str(root / ".singkit"), "COLUMNS": "200"})


def test_mean_of_huge_finite_values_is_finite():
    assert tables.mean_of([1e308, 1e308]) == 1e308                  # sum first overflowed to inf
    assert tables.mean_of([1e308, -1e308, 1e308]) == pytest.approx(1e308 / 3)
    assert tables.mean_of([1.0, 2.0, float("nan"), float("inf")]) == 1.5   # NaN/inf still left out
    assert tables.mean_of([float("inf")]) is None and tables.mean_of([]) is None


def test_group_and_footer_mean_of_huge_values_is_the_value_in_text_and_json(tmp_path):
    storegen.write_job(tmp_path / ".singkit", "job1", [RunSpec({"lr": 0.1, "seed": s}, [(0, {"f": 1e308})])
                                                       for s in (1, 2)])
    grouped = _list(tmp_path, "--runs", "--group=lr", "--mean=f", "--json")
    assert grouped.returncode == 0, grouped.stderr
    assert json.loads(grouped.stdout)[0]["mean(metrics.f)"] == 1e308    # was null
    text = _list(tmp_path, "--runs", "--group=lr", "--mean=f")
    assert "inf" not in text.stdout and "1e+308" in text.stdout.replace("1.0e+308", "1e+308"), text.stdout
    footer = _list(tmp_path, "--runs", "--mean=f", "--json")
    assert json.loads(footer.stdout)[-1]["metrics.f"] == 1e308
    assert "inf" not in _list(tmp_path, "--runs", "--mean=f").stdout


@pytest.fixture
def two_stores(tmp_path):
    """job1 logged `old` and hparam `wd`; job2's runs logged x (and y only in its first run)."""
    home = tmp_path / ".singkit"
    storegen.write_job(home, "job1", [RunSpec({"lr": 0.1, "wd": 0.5}, [(0, {"old": 3.0})])] * 2)
    storegen.write_job(home, "job2", [RunSpec({"lr": 0.1 * k}, [(0, {"x": float(k), **({"y": 1.0} if k == 1 else {})})])
                                      for k in (1, 2, 3)], created=T0 + 100)
    return tmp_path


def test_filtered_table_drops_hparam_and_metric_columns_empty_in_every_row_shown(two_stores):
    env = storegen.store_env(two_stores)
    table = views.list_table(env, "runs", filters=["metrics.x>=0"], last=2)
    assert [r["run"] for r in table.rows] == ["job2.2", "job2.3"]
    assert table.columns == ["run", "status", "target", "duration", "hparams.lr", "metrics.x", "metrics.x.best"]
    assert "metrics.old" in table.names                               # still a column a flag may name
    named = views.list_table(env, "runs", filters=["metrics.x>=0"], last=2, columns="run,wd,old,y.best")
    assert named.columns == ["run", "hparams.wd", "metrics.old", "metrics.y.best"]
    every = views.list_table(env, "runs", filters=["metrics.x>=0"])   # y: logged by one of the rows shown
    assert "metrics.y" in every.columns and "hparams.wd" not in every.columns
    assert "metrics.old" in views.list_table(env, "runs").columns     # unfiltered: every run, every column
    out = _list(two_stores, "--runs", "--filter", "metrics.x>=0", "--last", "2", "--json")
    assert out.returncode == 0, out.stderr
    assert all(set(row) == {"run", "status", "target", "duration", "hparams.lr", "metrics.x", "metrics.x.best"}
               for row in json.loads(out.stdout)), out.stdout
    text = _list(two_stores, "--runs", "--filter", "metrics.x>=0", "--last", "2", "--wide")
    assert "old" not in text.stdout and "wd" not in text.stdout, text.stdout
