"""singkit.fmt: one way to write durations, numbers, booleans and sizes — its edge cases, and
each place that prints through it (job tables, report tables, config.show, summary, errors)."""

from __future__ import annotations

import json
import math
import re

import pytest

import storegen
from clirunner import cli
from jobtools import make_env, make_project, run_here
from storegen import RunSpec, curve
from singkit import fmt


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (0.004, "0.004s"), (0.0004, "<0.001s"), (0.0096, "0.01s"), (0.04, "0.04s"), (0.5, "0.50s"), (8.34, "8.3s"), (9.96, "10s"), (42.4, "42s"), (59.6, "1m00s"),
    (65, "1m05s"), (7380, "2h03m"), (93784, "1d02h"), (1e9, "11574d01h"),
    (-4, "-4.0s"), (float("nan"), ""), (None, ""), (float("inf"), "inf"), (True, ""),
])
def test_duration(seconds, text):
    assert fmt.duration(seconds) == text


@pytest.mark.parametrize("start, end, text", [(0, 25.2, "25s"), (0, 65, "1m05s"), (10, 10.004, "0.004s"),
                                             (5, 4, "0s"), (None, 3, "-")])
def test_follow_says_how_long_a_job_took_as_job_list_does(start, end, text):
    # was `25.2s`, `1:05` and `0.0s` beside job.list's `25s`, `1m05s` and job.status' `0.004s`
    from singkit.backends.follow import took

    assert took(start, end) == text


@pytest.mark.parametrize("value, text", [
    (0, "0"), (0.0, "0"), (-0.0, "0"), (-3, "-3"), (12345.0, "12345"), (0.123456, "0.1235"), (-0.123456, "-0.1235"),
    (1e-300, "1e-300"), (1e300, "1e+300"), (10**30, str(10**30)), (1e15, "1e+15"), (float("nan"), "nan"),
    (float("inf"), "inf"), (float("-inf"), "-inf"), (None, ""), (True, "true"), (False, "false"),
])
def test_number(value, text):
    assert fmt.number(value) == text


def test_aligned_numbers_share_decimals_and_keep_edge_values():
    assert fmt.aligned([0.215, 0.00707107, 0.21]) == ["0.21500", "0.00707", "0.21000"]
    assert fmt.aligned([123.4, 2.5, None, float("nan"), float("inf")]) == ["123.40", "2.50", "", "nan", "inf"]
    assert fmt.aligned([-0.000001, 0.5, True]) == ["-1.000e-06", "5.000e-01", "true"]   # never a false 0.0000
    assert fmt.aligned([-0.00004, 0.5]) == ["-0.00004", "0.50000"]
    assert fmt.aligned([0, 0]) == ["0", "0"] and fmt.aligned([20.0, 3]) == ["20", "3"]   # whole numbers stay whole
    assert fmt.aligned([25123456.7, 1.5]) == ["2.512e+07", "1.500e+00"]   # beyond fixed decimals: e-notation, all
    assert fmt.aligned([1e-6, 2e-6]) == ["1.000e-06", "2.000e-06"]
    assert fmt.aligned([]) == []


@pytest.mark.parametrize("values, texts", [
    ([1, 0.9688], ["1.0000", "0.9688"]),              # the tester's acc column: was `1` beside `0.9688`
    ([0.08704, 0.1148], ["0.08704", "0.11480"]),      # loss best: was `0.08704` beside `0.1148`
    ([0.975, 0.9], ["0.9750", "0.9000"]),
    ([2.3, 0.0123, 0.5], ["2.3000", "0.0123", "0.5000"]),   # two decades down: fewer digits, never zero
    ([-1.5, 0.25], ["-1.5000", "0.2500"]),
])
def test_a_column_shares_one_count_of_decimals(values, texts):
    assert fmt.aligned(values) == texts
    assert fmt.column_format(values) == fmt.column_format(list(reversed(values)))


@pytest.mark.parametrize("n, text", [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (60317, "60.3 kB"),
                                     (1.5e6, "1.5 MB"), (2e15, "2000.0 TB"), (-2048, "-2.0 kB"), (None, ""),
                                     (float("nan"), "nan")])
def test_nbytes(n, text):
    assert fmt.nbytes(n) == text


@pytest.mark.parametrize("value, text", [(True, "true"), (False, "false"), (None, "null"), (0.1, "0.1"), (3, "3"),
                                         (["a", 1], '["a", 1]'), ({"k": True}, '{"k": true}'), ("x" * 300, "x" * 300),
                                         (float("nan"), ".nan"), (float("-inf"), "-.inf")])
def test_scalar_is_what_yaml_writes_and_never_cut(value, text):
    assert fmt.scalar(value) == text


def test_when_and_cell():
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", fmt.when(storegen.T0))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", fmt.when(storegen.T0, seconds=True))
    assert fmt.when(None) == "" and fmt.when(math.nan) == ""
    assert fmt.cell(True) == "true" and fmt.cell([1, 2]) == "[1,2]" and fmt.cell(None) == "" and fmt.cell(0.5) == "0.5"


# -- call sites ------------------------------------------------------------------------------------------
DURATION = re.compile(r"^(<?\d+(\.\d+)?s|\d+m\d\ds|\d+h\d\dm|\d+d\d\dh)$")


def test_job_tables_write_durations_as_report_tables_do(tmp_path):
    project = make_project(tmp_path)
    env = make_env(project, COLUMNS="200")
    done = run_here(["job.submit", "--cmd", "echo hi", "--hp", "flag=true,false", "--follow"], project, env)
    assert done.returncode == 0, done.stderr
    status = run_here(["job.status", "job1"], project, env)
    assert status.returncode == 0, status.stderr
    took = re.search(r"took (\S+)", status.stdout.splitlines()[0]).group(1)
    assert DURATION.match(took), status.stdout                   # was `0:00`
    rows = [line.split() for line in status.stdout.splitlines()[3:]]
    assert all(DURATION.match(row[3]) for row in rows), status.stdout
    assert {row[4] for row in rows} == {"flag=true", "flag=false"}   # not Python's True
    listed = run_here(["job.list"], project, env).stdout.splitlines()
    assert DURATION.match(listed[2].split()[-1]), listed
    runs = run_here(["report.list", "--job=job1"], project, env).stdout
    assert re.search(r"completed\s+<?\d+(\.\d+)?s", runs), runs   # the same style in the report table


def test_config_show_prints_yaml_booleans_and_whole_values(tmp_path):
    long = "a description that is much longer than eighty characters, so the old table cut it off with dots"
    project = make_project(tmp_path, "general:\n  primary-metric: acc\n  maximize: true\ncompute-targets:\n"
                                     f"  local:\n    service: local\n    description: {long}\n")
    env = make_env(project)
    shown = run_here(["config.show"], project, env)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"^maximize\s+true\s", shown.stdout, re.M), shown.stdout
    assert "True" not in shown.stdout and long in shown.stdout


@pytest.fixture
def store(tmp_path):
    home = tmp_path / ".singkit"
    storegen.write_job(home, "job1", [
        RunSpec({"lr": 0.1, "seed": 1}, curve(10, 2.0, 0.2)),
        RunSpec({"lr": 0.1, "seed": 2}, curve(10, 2.0, 0.21)),
        RunSpec({"lr": 0.01, "seed": 1}, curve(10, 2.0, 0.6)),
        RunSpec({"lr": 0.01, "seed": 2}, curve(10, 2.0, 0.61)),
        RunSpec({"lr": 1.0, "seed": 1}, None, status="failed", exit_code=3, reason="exit code 3"),
    ])
    return tmp_path


def _run(root, *args):
    return cli(list(args), cwd=root, env={"SINGKIT_HOME": str(root / ".singkit"), "COLUMNS": "200"})


def test_summary_numbers_share_decimals(store):
    out = _run(store, "report.summary", "job1", "--metric", "loss", "--no-plot")
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[2].split()
    assert first[:3] == ["1", "0.1", "2"]
    assert first[3:6] == ["0.2050", "0.0071", "0.2000"], out.stdout  # mean ± std, best: one precision
    data = json.loads(_run(store, "report.summary", "job1", "--metric", "loss", "--json").stdout)
    assert data["groups"][0]["std"] == pytest.approx(0.00707107, rel=1e-4)   # JSON keeps the raw value


def test_errors_say_the_exit_code_once(store):
    out = _run(store, "report.errors")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("exit code 3") == 1, out.stdout        # was `exit code 3; reason: exit code 3`
    assert "1 × exit code 3" in out.stdout


# -- issue 13 finding 9: one count of decimals per column, in text and HTML alike ------------------------
@pytest.fixture
def precision(tmp_path):
    storegen.write_job(tmp_path / ".singkit", "job1", [
        RunSpec({"lr": 0.1}, [(0, {"acc": 0.9, "loss": 0.1148}), (1, {"acc": 1.0, "loss": 0.08704})]),
        RunSpec({"lr": 0.01}, [(0, {"acc": 0.9688, "loss": 0.1148})]),
        RunSpec({"lr": 0.001}, [(0, {"acc": 0.975, "loss": 0.2})]),
    ])
    return tmp_path


def test_report_list_writes_a_column_with_one_count_of_decimals(precision):
    out = _run(precision, "report.list", "--columns", "run,acc,acc.best,loss,loss.best,lr")
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines()[2:]}
    assert rows == {"job1.1": ["1.0000", "1.0000", "0.08704", "0.08704", "0.1"],    # was `1` beside `0.9688`
                    "job1.2": ["0.9688", "0.9688", "0.11480", "0.11480", "0.01"],   # and 0.08704 beside 0.1148
                    "job1.3": ["0.9750", "0.9750", "0.20000", "0.20000", "0.001"]}, out.stdout  # hparams as typed
    raw = json.loads(_run(precision, "report.list", "--json").stdout)
    assert raw[0]["metrics.acc"] == 1.0 and raw[1]["metrics.acc"] == 0.9688         # scripts get the values


def test_the_html_summary_and_runs_table_write_a_value_alike(precision):
    from singkit.reports.html import write_html

    path, _ = write_html(storegen.store_env(precision), "job1", metric="acc")
    cells = re.findall(r'<td class="num" data-v="([^"]+)">([^<]+)', path.read_text())
    shown = {text for value, text in cells if value == "0.975"}
    assert shown == {"0.9750"}, cells                         # summary said 0.9750, runs table 0.975
    assert {text for value, text in cells if value == "1.0"} == {"1.0000"}, cells
