"""Issue 13, a tester's findings on the reports: a name the user typed that no run logged is
exit 2 with "did you mean" and nothing written; dry runs are `dry-run` in every job table;
every printed table fits COLUMNS, and so does the line saying what was left out."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import storegen
from clirunner import cli
from jobtools import make_env, make_project, run_here
from storegen import T0, RunSpec, curve

SRC = Path(__file__).resolve().parents[1] / "src" / "singkit"


@pytest.fixture
def store(tmp_path):
    home = tmp_path / ".singkit"
    storegen.write_job(home, "job1", [RunSpec({"lr": lr, "seed": 1}, [(s, {**v, "val_acc": v["acc"] - 0.01})
                                                                      for s, v in curve(5, 2.0, 0.3 + lr)])
                                      for lr in (0.1, 0.01)])
    storegen.write_events(home, [
        {"t": T0, "event": "build", "docker": "pytorch", "image": "registry.example.com/team/pytorch:" + "f" * 64,
         "id": "sha256:" + "a" * 64, "inputs": "b" * 64},
        {"t": T0 + 1, "event": "submit", "job": "job1", "target": "local", "runs": 2, "code": "c" * 64},
    ])
    return tmp_path


def _run(root: Path, *args: str, columns: str | None = None) -> object:
    env = {"SINGKIT_HOME": str(root / ".singkit")}
    if columns:
        env["COLUMNS"] = columns
    return cli(list(args), cwd=root, env=env)


# -- 2: --metric and --event typos ---------------------------------------------------------------------
def test_report_html_with_a_mistyped_metric_is_refused_and_keeps_the_good_page(store):
    good = _run(store, "report.html", "job1", "--metric", "acc")
    assert good.returncode == 0, good.stderr
    page = Path(good.stdout.strip())
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in page.parent.iterdir()}
    typo = _run(store, "report.html", "job1", "--metric", "accc")
    assert typo.returncode == 2 and typo.stdout == "", typo          # was exit 0, an unranked page
    assert typo.stderr.count("\n") == 1 and "did you mean acc?" in typo.stderr, typo.stderr
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in page.parent.iterdir()} == before  # nothing written


def test_report_html_with_a_mistyped_metric_writes_nothing_at_all(store):
    typo = _run(store, "report.html", "job1", "--metric", "los")
    assert typo.returncode == 2 and "did you mean loss?" in typo.stderr, typo.stderr
    assert not (store / "reports").exists()


def test_report_summary_names_the_metric_the_user_meant_not_pass_metric(store):
    out = _run(store, "report.summary", "job1", "--metric", "val_ac", "--no-plot")
    assert out.returncode == 2, out
    line = out.stderr.strip()
    assert "\n" not in line and "did you mean val_acc?" in line and "pass --metric" not in line, line
    assert _run(store, "report.summary", "job1", "--metric", "val_acc", "--no-plot").returncode == 0


def test_report_events_with_a_mistyped_kind_is_exit_2_with_the_kind_meant(store):
    out = _run(store, "report.events", "--event", "buidl")
    assert out.returncode == 2 and "did you mean build?" in out.stderr, out       # was exit 0, "no events"
    none_yet = _run(store, "report.events", "--event", "cancel")                  # a real kind, none recorded
    assert none_yet.returncode == 0 and "no events" in none_yet.stderr, none_yet
    builds = _run(store, "report.events", "--event", "build", "--json")
    assert [e["event"] for e in json.loads(builds.stdout)] == ["build"]


def test_the_known_event_kinds_are_every_kind_singkit_records():
    from singkit.reports.views import AUDIT_EVENTS

    written = set()
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        written |= set(re.findall(r'(?:events\.record|\baudit)\([\w.]+,\s*"([\w-]+)"', text))
        written |= set(re.findall(r'event, reason = "([\w-]+)"', text))
    assert written and written == set(AUDIT_EVENTS)


# -- 8: --columns -------------------------------------------------------------------------------------
def test_columns_with_a_slip_of_a_long_metric_name_says_did_you_mean(store):
    out = _run(store, "report.list", "--columns", "run,acuracy")
    assert out.returncode == 2, out
    assert "did you mean metrics.acc?" in out.stderr and "columns are" not in out.stderr, out.stderr
    assert "did you mean metrics.loss.best?" in _run(store, "report.list", "--columns", "los_best").stderr


# -- 3: dry runs ----------------------------------------------------------------------------------------
def test_a_dry_run_is_dry_run_in_report_list_as_in_job_list(tmp_path):
    project = make_project(tmp_path)
    env = make_env(project, COLUMNS="200")
    assert run_here(["job.submit", "--cmd", "true", "--dry-run"], project, env).returncode == 0
    listed = run_here(["job.list"], project, env).stdout.splitlines()
    assert listed[2].split()[:3] == ["job1", "local", "dry-run"], listed
    rows = json.loads(run_here(["report.list", "--jobs", "--json"], project, env).stdout)
    assert rows[0]["status"] == "dry-run" and rows[0]["statuses"] == "1 dry-run", rows   # was `completed`
    table = run_here(["report.list", "--jobs"], project, env).stdout
    assert re.search(r"^job1 .* dry-run ", table, re.M) and "completed" not in table, table


# -- 7: every printed table fits COLUMNS ----------------------------------------------------------------
def _widest(text: str) -> int:
    return max(map(len, text.splitlines()), default=0)


def test_report_events_and_report_log_fit_the_terminal(store):
    events = _run(store, "report.events", columns="80")
    assert events.returncode == 0, events.stderr
    assert _widest(events.stdout) <= 80 and "…" in events.stdout, events.stdout     # was 157 wide
    assert events.stdout.splitlines()[0].split() == ["time", "job", "event", "detail"]
    assert "docker=pytorch image=registry.example.com/" in events.stdout            # cut, not dropped
    whole = json.loads(_run(store, "report.events", "--json", columns="80").stdout)
    assert whole[0]["image"].endswith("f" * 64)                                      # --json keeps everything
    log = _run(store, "report.log", "job1", columns="60")
    assert log.returncode == 0 and _widest(log.stdout) <= 60, log.stdout              # was 102 wide
    assert "step 4: loss=" in _run(store, "report.log", "job1").stdout                 # piped: nothing cut


def test_the_line_naming_left_out_columns_fits_too(store):
    metrics = {f"metric_number_{i}": 0.5 + i / 100 for i in range(8)}
    storegen.write_job(store / ".singkit", "job2", [RunSpec({"lr": lr, "optimizer": "adam" if lr > 0.05 else "sgd"},
                                                            [(0, metrics)]) for lr in (0.1, 0.01)])
    out = _run(store, "report.list", "--job", "job2", columns="80")
    assert out.returncode == 0, out.stderr
    assert _widest(out.stdout) <= 80 and out.stderr.count("\n") == 1, out            # was a 125-character line
    assert _widest(out.stderr) <= 80 and "left out to fit 80 characters" in out.stderr and "more;" in out.stderr
    assert "--wide" in out.stderr
    narrow = _run(store, "report.list", "--job", "job2", columns="30")
    assert _widest(narrow.stderr) <= 30 and "metric_number_7 best" in narrow.stderr.replace("\n", " ")  # wrapped


def test_the_shared_values_line_wraps_at_the_terminal_width(store):
    shared = {f"setting_{i}": "value-" + str(i) * 6 for i in range(6)}
    storegen.write_job(store / ".singkit", "job3", [RunSpec({"lr": lr, **shared}, [(0, {"loss": lr})])
                                                    for lr in (0.1, 0.01)])
    out = _run(store, "report.list", "--job", "job3", columns="60")
    head = out.stdout.split("\nrun ")[0]
    assert head.startswith("all 2 runs: target=local  setting_0=") and _widest(out.stdout) <= 60, out.stdout
    assert all(line.startswith("  setting_") for line in head.splitlines()[1:]) and head.count("setting_") == 6


def test_report_log_says_the_exit_code_once():
    from singkit.reports.views import describe

    assert describe({"event": "status", "status": "failed", "exit_code": 3, "reason": "exit code 3"}) == "failed (exit 3)"
    assert describe({"event": "status", "status": "failed", "exit_code": 1, "reason": "node lost"}) == \
        "failed (exit 1; node lost)"


def test_report_metrics_with_a_mistyped_metric_names_the_one_meant(store):
    out = _run(store, "report.metrics", "job1", "--metrics", "val_ac")
    assert out.returncode == 2 and "did you mean val_acc?" in out.stderr, out
