"""Tables fit the terminal: COLUMNS (else the tty's width, else no limit when piped), hparams
every run shares said once above the table, --wide for everything; --json unchanged."""

from __future__ import annotations

import io
import json

import pytest

import storegen
from clirunner import cli
from jobtools import make_env, make_project, run_here
from storegen import RunSpec
from singkit.reports import layout, render

# examples/train.py's hparams: five of the seven are the same in every run of a sweep over lr
SHARED = {"bs": 32, "epochs": 20, "dim": 8, "samples": 800, "step_time": 0.02}


@pytest.fixture
def sweep(tmp_path):
    runs = [RunSpec({"lr": lr, **SHARED, "seed": seed},
                    [(s, {"loss": 2.0 / (s + 1) + lr, "acc": 0.5 + s / 100, "val_loss": 1.0 / (s + 1) + 0.0123,
                          "val_acc": 0.6 + s / 200}) for s in range(0, 50, 5)])
            for lr in (0.1, 0.01, 0.001) for seed in (1, 2)]
    storegen.write_job(tmp_path / ".singkit", "job1", runs)
    return tmp_path


def _list(root, *args, columns: str | None = "100"):
    env = {"SINGKIT_HOME": str(root / ".singkit")}
    if columns is not None:
        env["COLUMNS"] = columns
    return cli(["report.list", *args], cwd=root, env=env)


def test_a_sweep_table_fits_the_terminal_and_says_shared_hparams_once(sweep):
    out = _list(sweep)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert max(map(len, lines)) <= 100, out.stdout                 # was 220 characters
    assert lines[0] == "all 6 runs: target=local  bs=32  epochs=20  dim=8  samples=800  step_time=0.02"
    header = lines[1].split()
    assert header[:5] == ["run", "status", "duration", "lr", "seed"]
    assert not {"bs", "epochs", "target"} & set(header)             # not repeated in every row
    assert "loss" in header and len(lines) == 1 + 2 + 6
    assert "--wide" in out.stderr and "loss best" in out.stderr     # what was left out is named
    assert out.stdout.count("800") == 1


def test_wide_shows_every_column_and_json_is_unchanged(sweep):
    wide = _list(sweep, "--wide")
    header = wide.stdout.splitlines()[0].split()
    assert header[:3] == ["run", "status", "target"] and "bs" in header and "best" in header
    assert wide.stderr == ""
    rows = json.loads(_list(sweep, "--json").stdout)
    assert rows[0]["hparams.bs"] == 32 and "metrics.loss.best" in rows[0] and rows[0]["target"] == "local"


def test_piped_output_is_not_cut_without_columns(sweep):
    out = _list(sweep, columns=None)       # a pipe, no COLUMNS: nothing to fit, like git and ls
    lines = out.stdout.splitlines()
    assert lines[0].startswith("all 6 runs: ") and "val_acc best" in lines[1] and out.stderr == ""
    assert max(map(len, lines)) > 100


def test_a_single_run_keeps_its_hparams_in_the_table(sweep):
    out = _list(sweep, "--filter", "run=job1.3")
    assert out.stdout.splitlines()[0].split()[:4] == ["run", "status", "target", "duration"]


def test_job_tables_fit_the_terminal(tmp_path):
    project = make_project(tmp_path)
    env = make_env(project, COLUMNS="60")
    value = "a-very-long-hparam-value-" * 4
    done = run_here(["job.submit", "--cmd", "true", "--hp", f"name={value}", "--follow"], project, env)
    assert done.returncode == 0, done.stderr
    status = run_here(["job.status", "job1"], project, env)
    table = status.stdout.splitlines()[1:]
    assert max(map(len, table)) <= 60 and "…" in table[2], status.stdout
    assert table[0].split()[:2] == ["run", "status"]
    whole = run_here(["job.status", "job1", "--wide"], project, env)
    assert f"name={value}" in whole.stdout
    listed = run_here(["job.list"], project, make_env(project, COLUMNS="40"))
    assert max(map(len, listed.stdout.splitlines())) <= 40 and "job1" in listed.stdout
    assert "left out" in listed.stderr and "--wide" in listed.stderr


def test_terminal_width_prefers_columns_then_the_tty_else_no_limit():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert layout.terminal_width(io.StringIO(), {"COLUMNS": "87"}) == 87
    assert layout.terminal_width(io.StringIO(), {}) is None                  # piped: no limit
    assert layout.terminal_width(io.StringIO(), {"COLUMNS": "wide"}) is None  # junk is ignored
    assert layout.terminal_width(Tty(), {"COLUMNS": "0"}) is None             # no real fd behind it


def test_fit_cuts_text_then_drops_best_columns_first_and_keeps_run_and_status():
    columns = ["run", "status", "note", "lr", "loss", "loss.best", "acc"]
    rows = [{"run": f"job1.{i}", "status": "completed", "note": "x" * 40, "lr": 0.1 * i, "loss": 0.5, "loss.best": 0.4,
             "acc": 0.9} for i in range(1, 4)]
    shown = render.render_fitted(columns, rows, width=60)
    assert max(map(len, shown.text.splitlines())) <= 60
    assert shown.hidden[0] == "loss.best"                    # a best column goes before any other
    assert "…" in shown.text and shown.text.split()[:2] == ["run", "status"]
    tiny = render.render_fitted(columns, rows, width=10)
    assert tiny.text.splitlines()[0].split() == ["run", "status"]   # never fewer than these
    whole = render.render_fitted(columns, rows, width=10, wide=True)
    assert whole.hidden == [] and "x" * 40 in whole.text
