"""job.status's table is built column by column, each sweep value formatted once (issue 14): the
text must be byte for byte what the row-by-row builder it replaced printed. That builder is kept
here as the oracle, and both are run on values that format alike only by accident (1, 1.0 and
True; 0.0 and -0.0; NaN), lists and maps, runs without a sweep, preemptions and long reasons."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest

from singkit import fmt
from singkit.environment import Environment
from singkit.jobs import control
from singkit.tasks import job as tasks

HEADER = ["run", "status", "exit", "took", "sweep", "reason"]


def _old_table(env: Environment, data: dict, wide: bool) -> str:
    """The rows job.status built before, as it built them."""
    rows = [[r["run"], r["status"], r.get("exit_code") if r.get("exit_code") is not None else "-",
             tasks._duration(r.get("started"), r.get("ended")),
             " ".join(f"{k}={fmt.cell(v)}" for k, v in (r.get("sweep") or {}).items()) or "-",
             r.get("reason") or ""] for r in data["runs"]]
    header = list(HEADER)
    if any(r.get("preemptions") for r in data["runs"]):
        for row, r in zip(rows, data["runs"]):
            row.insert(2, r.get("preemptions") or 0)
        header.insert(2, "preempted")
    return tasks._table(env, rows, header, wide=wide)


def _runs(preempted: bool) -> list[dict]:
    values = [1, 1.0, True, 0.0, -0.0, math.nan, math.inf, 1e-7, 123456789.123, "a b", None, [1, 2], {"x": 1}, False, 0]
    runs = []
    for k in range(60):
        sweep = {"lr": values[k % len(values)], "bs": values[(k * 7) % len(values)]} if k % 9 else ({} if k % 2 else None)
        ended = 1000.0 + k * 37.5 if k % 4 else None
        runs.append({"run": f"job1.{k + 1}", "status": ["completed", "failed", "running", "queued"][k % 4],
                     "exit_code": [0, 1, None, 137][k % 4], "started": 1000.0 if k % 5 else None, "ended": ended,
                     "sweep": sweep, "reason": ("out of memory " * (k % 3)).strip() or None,
                     "preemptions": (k % 3) if preempted else 0})
    return runs


@pytest.mark.parametrize("preempted", [False, True])
@pytest.mark.parametrize("wide", [False, True])
def test_the_table_is_what_the_row_builder_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     preempted: bool, wide: bool) -> None:
    data = {"job": "job1", "status": "running", "target": "local", "runs_done": 1, "runs_total": 60,
            "created": 1000.0, "started": 1000.0, "ended": None, "runs": _runs(preempted)}
    monkeypatch.setattr(control, "status", lambda env, job_id: data)
    monkeypatch.setattr(tasks.time, "time", lambda: 5000.0)  # "took" of a run still going: one clock for both
    out = io.StringIO()
    env = Environment(project_root=tmp_path, environ={"COLUMNS": "120"}, stdout=out, stderr=io.StringIO())
    tasks._status(env, "job1", False, wide)
    expected = _old_table(env, data, wide)
    assert out.getvalue().split("\n", 1)[1] == expected + "\n"
