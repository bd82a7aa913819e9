"""The run.log fold line by line (store.runlog.RunState.apply): every status transition, the
first-final-wins rule and the exit code that completes it, preemptions, the times, and the
fields a job may write with the wrong type. Written for the mutants `make mutate` found alive:
each assertion here fails on a one-token change of the fold."""

from __future__ import annotations

from pathlib import Path

import pytest

from singkit.store import runlog


def fold(*records: dict) -> runlog.RunState:
    state = runlog.RunState()
    for record in records:
        state.apply(record)
    return state


def status(name: str, t: object = None, **fields: object) -> dict:
    return {"event": "status", "status": name, "t": t, **fields}


def test_a_run_is_queued_until_a_line_says_otherwise() -> None:
    state = fold()
    assert state.to_dict() == {"status": "queued", "reason": None, "exit_code": None, "queued": None,
                               "started": None, "ended": None, "hparams": {}, "last_metrics": {},
                               "last_step": None, "preemptions": 0, "skipped_lines": 0}
    assert not state.terminal


def test_times_queued_and_started_are_the_first_ended_is_the_final() -> None:
    state = fold(status("queued", 1), status("running", 2), status("queued", 3), status("running", 4),
                 status("completed", 5, exit_code=0, reason="done"))
    assert (state.queued, state.started, state.ended) == (1, 2, 5)
    assert (state.status, state.exit_code, state.reason) == ("completed", 0, "done")
    assert state.terminal


@pytest.mark.parametrize("final", ["completed", "failed", "cancelled"])
def test_each_final_status_is_final(final: str) -> None:
    state = fold(status("running", 1), status(final, 2, exit_code=3, reason="why"), status("running", 3),
                 status("queued", 4), status("preempted", 5))
    assert (state.status, state.ended, state.exit_code, state.reason, state.preemptions) == (final, 2, 3, "why", 0)
    assert state.terminal


def test_a_final_status_without_exit_code_is_completed_by_the_next_final_line_only() -> None:
    # a cancel writes `cancelled` first; the wrapper's own line brings the exit code (SIGTERM: 143)
    state = fold(status("running", 1), status("cancelled", 2, reason="cancelled by user"),
                 status("failed", 3, exit_code=143, reason="signal"))
    assert (state.status, state.exit_code, state.reason, state.ended) == ("cancelled", 143, "cancelled by user", 2)
    # the first exit code stays: a later final line does not replace it
    assert fold(status("failed", 1, exit_code=1), status("failed", 2, exit_code=2)).exit_code == 1
    # a later non-final line brings none
    assert fold(status("cancelled", 1), status("running", 2, exit_code=5)).exit_code is None


@pytest.mark.parametrize("bad", [True, "1", 1.5, None])
def test_an_exit_code_that_is_not_a_whole_number_is_not_taken(bad: object) -> None:
    assert fold(status("failed", 1, exit_code=bad)).exit_code is None
    assert fold(status("cancelled", 1), status("failed", 2, exit_code=bad)).exit_code is None


def test_preemptions_count_moves_into_preempted() -> None:
    state = fold(status("running", 1), status("preempted", 2, reason="spot"), status("preempted", 3),
                 status("queued", 4), status("running", 5), status("preempted", 6, reason="again"))
    assert (state.status, state.preemptions, state.reason) == ("preempted", 2, "again")
    assert not state.terminal
    assert fold(status("preempted", 1)).preemptions == 1  # from queued


@pytest.mark.parametrize("again", ["queued", "running"])
def test_going_again_after_preemption_forgets_its_reason_not_its_count(again: str) -> None:
    state = fold(status("running", 1), status("preempted", 2, reason="spot"), status(again, 3))
    assert (state.status, state.reason, state.preemptions) == (again, None, 1)


def test_a_reason_on_a_running_line_is_not_taken() -> None:
    assert fold(status("running", 1, reason="x")).reason is None
    state = fold(status("running", 1), status("completed", 2, reason=7))  # not text
    assert state.reason is None and state.status == "completed"


@pytest.mark.parametrize("bad", [True, False, "5", None, [1]])
def test_a_time_that_is_not_a_number_is_no_time(bad: object) -> None:
    state = fold(status("queued", bad), status("running", bad), status("completed", bad))
    assert (state.queued, state.started, state.ended) == (None, None, None)
    assert fold(status("running", 2.5)).started == 2.5


def test_unknown_statuses_and_events_change_nothing() -> None:
    state = fold(status("running", 1), status("exploded", 2), status(None, 3), {"event": "other", "status": "failed"},
                 {"status": "failed"})
    assert state.to_dict() == fold(status("running", 1)).to_dict()


def test_hparams_and_metrics_merge_and_the_last_whole_step_counts() -> None:
    state = fold({"event": "hparams", "hparams": {"lr": 0.1, "bs": 32}}, {"event": "hparams", "hparams": {"lr": 0.2}},
                 {"event": "hparams", "hparams": ["not", "a", "map"]},
                 {"event": "metrics", "step": 1, "metrics": {"loss": 1.0, "acc": 0.5}},
                 {"event": "metrics", "step": 2, "metrics": {"loss": 0.5}},
                 {"event": "metrics", "step": True, "metrics": {"acc": 0.7}},
                 {"event": "metrics", "step": "3", "metrics": {"acc": 0.8}},
                 {"event": "metrics", "step": 9, "metrics": "not a map"})
    assert state.hparams == {"lr": 0.2, "bs": 32}
    assert state.last_metrics == {"loss": 0.5, "acc": 0.8}
    assert state.last_step == 2
    assert state.to_dict()["hparams"] == {"lr": 0.2, "bs": 32} and state.to_dict()["last_step"] == 2


def test_to_dict_carries_every_field() -> None:
    state = fold(status("queued", 1), status("running", 2), status("preempted", 3, reason="spot"), status("running", 4),
                 {"event": "hparams", "hparams": {"lr": 1}}, {"event": "metrics", "step": 4, "metrics": {"m": 2}},
                 status("failed", 5, exit_code=2, reason="boom"))
    state.skipped_lines = 3
    assert state.to_dict() == {"status": "failed", "reason": "boom", "exit_code": 2, "queued": 1, "started": 2,
                               "ended": 5, "hparams": {"lr": 1}, "last_metrics": {"m": 2}, "last_step": 4,
                               "preemptions": 1, "skipped_lines": 3}


def test_read_counted_counts_unusable_lines_and_resumes_from_an_offset(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    assert runlog.read_counted(log, 7) == ([], 7, 0)  # no file yet: nothing, same offset
    log.write_bytes(b'{"event": "a"}\n\n   \nnot json\n[1]\n"text"\n\n{"event": "b"}\n{"event": "c"')
    records, end, skipped = runlog.read_counted(log)
    assert [r["event"] for r in records] == ["a", "b"] and skipped == 3  # blank lines are not counted
    assert end == log.read_bytes().rindex(b"\n") + 1
    assert runlog.read(log) == (records, end)
    later, end2, skipped2 = runlog.read_counted(log, len(b'{"event": "a"}\n'))
    assert [r["event"] for r in later] == ["b"] and (end2, skipped2) == (end, 3)
    assert runlog.read(log, len(b'{"event": "a"}\n')) == (later, end)
    assert runlog.state(log).skipped_lines == 3


@pytest.mark.parametrize("lines, events, skipped", [
    ([b'{"a": 1}', b'{"b": NaN}', b' {"c": [1, {"d": 2}]} '], ["a", "b", "c"], 0),  # one parse of them all
    ([b'{"a": 1}, {"b": 2}', b'{"c": 3}'], ["c"], 1),   # two objects on one line: that line is no event
    ([b'{"a": 1}', b'{"b": 2', b'}'], ["a"], 2),         # an object across two lines is none
    ([b'{"a": 1}', b'[1]', b'{"b": 2}'], ["a", "b"], 1),
    ([b'{"a": 1}', b'\xff{}', b'{"a": 1}{}'], ["a"], 2),
])
def test_lines_are_read_as_one_by_one_however_they_are_parsed(lines, events, skipped) -> None:
    found, count = runlog.parse_lines(lines)
    assert [next(iter(r)) for r in found] == events and count == skipped
