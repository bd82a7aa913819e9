"""The fast cold path against the reference one, on many random and hostile run.logs (issue 15):
- `runlog.decode` (one orjson call over a clean file) gives what `runlog.parse_lines` (json,
  line by line when it must) gives: the same objects, the same types (an int past 64 bits stays
  an int), the same skipped count;
- `RunState.fold` (the bulk fold) gives what `RunState.apply` on each record in turn gives, also
  when a log is folded in pieces (a growing run.log read from an offset).
Values are compared by type and value, NaN equal to NaN, key order included."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest

from singkit.store import fold, runlog
from singkit.store.fold import RunState

STATUSES = ["queued", "running", "completed", "failed", "cancelled", "preempted", "weird", 3, None]
NAMES = ["loss", "acc", "lr", "val/loss", "1"]
HOSTILE_LINES = [
    b"", b"   ", b"\t", b"[1, 2]", b"3", b'"text"', b"null", b"{", b'{"t": 1', b'{"a": 1}, {"b": 2}',
    b'{"t": 1, "t": 2, "event": "status", "status": "running", "status": "failed"}',
    b'{"event": "metrics", "metrics": {"loss": NaN, "acc": Infinity, "x": -Infinity}, "step": 1}',
    b'{"event": "metrics", "metrics": {"loss": 123456789012345678901}, "step": 2}',
    b'{"event": "metrics", "metrics": {"loss": -9223372036854775809}, "step": 18446744073709551616}',
    b'{"event": "metrics", "metrics": {"loss": 1e400, "acc": -1e400, "z": 1e-400}}',
    b'{"event": "metrics", "metrics": {"loss": 0.1000000000000000055511151231257827021181583404541015625}}',
    b'{"event": "hparams", "hparams": {"s": "\\ud800", "n": "\\u0000"}}',
    b'{"event": "metrics", "metrics": {"loss": 1}}\x0c', b'\x0b{"event": "status", "status": "running"}',
    b' {"event": "status", "status": "running", "t": 5} ', b'{"event": "metrics"\xff, "metrics": {}}',
    b'{"event": "metrics", "metrics": {"a": 1}}\r{"event": "metrics", "metrics": {"a": 2}}',
    b'{"event": "metrics", "metrics": {"a": 1, "a": 3, "b": true}, "step": true}',
    b'{"event": "metrics", "metrics": [1, 2]}', b'{"event": "metrics", "metrics": null, "t": 9}',
    b'{"event": 7, "t": 8}', b'{"event": ["metrics"], "t": 8}', b'{"t": "soon", "event": "metrics", "metrics": {"a": 1}}',
    b'{"event": "exit", "node": 1, "t": 4}', b'{"event": "metrics", "node": 0, "metrics": {"a": 1}, "t": 3}',
]


def deep(depth: int) -> bytes:
    return b'{"event": "hparams", "hparams": {"d": ' + b"[" * depth + b"1" + b"]" * depth + b"}}"


def same(a: Any, b: Any) -> bool:
    """Equal in type and value, recursively (dict key order too); NaN is NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(same, a, b))
    return a == b


def value(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.55:
        return rng.choice([rng.random(), rng.uniform(-1e6, 1e6), round(rng.random(), 2), 0.5, 1.0])
    if roll < 0.75:
        return rng.choice([rng.randint(-5, 5), 7, 10**18, -(2**63)])
    return rng.choice([float("nan"), float("inf"), -float("inf"), True, False, None, "x", [1], {"a": 1}, 10**25, -0.0,
                       10**400, -(10**400)])


def line(rng: random.Random, names: list[str], shape: str) -> bytes:
    record: dict[str, Any] = {}
    if shape == "clean" or rng.random() < 0.9:
        record["t"] = rng.choice([rng.uniform(1e9, 2e9), rng.randint(0, 100), 1.5e9])
    else:
        record["t"] = rng.choice([None, "x", True, float("nan"), float("inf"), [1]])
    roll = rng.random()
    if roll < 0.75:
        record["event"] = "metrics"
        if shape == "clean":
            record["step"] = rng.randint(0, 50)
            record["metrics"] = {name: rng.random() for name in names}
        else:
            if rng.random() < 0.85:
                record["step"] = rng.choice([rng.randint(0, 50), rng.randint(0, 50), 2.5, None, True, "s", float("nan")])
            picked = rng.sample(names, rng.randint(0, len(names)))
            record["metrics"] = {name: value(rng) for name in picked}
    elif roll < 0.88:
        record.update(event="status", status=rng.choice(STATUSES))
        if rng.random() < 0.5:
            record["exit_code"] = rng.choice([0, 1, 143, True, 2.0, "1", None])
        if rng.random() < 0.5:
            record["reason"] = rng.choice(["why", None, 3, ""])
    elif roll < 0.94:
        record.update(event="hparams", hparams=rng.choice([{"lr": rng.random()}, {"seed": 1, "lr": None}, [1], "x"]))
    else:
        record["event"] = rng.choice(["exit", "other", None] + [5] * (shape != "clean"))
    if shape != "clean" and rng.random() < 0.05:
        record["node"] = rng.choice([0, 1, "n", None])
    return json.dumps(record).encode()


def run_log(rng: random.Random, shape: str) -> bytes:
    names = rng.sample(NAMES, rng.randint(1, len(NAMES)))
    lines = [line(rng, names, shape) for _ in range(rng.randint(8 if shape == "clean" else 0, 60))]
    if shape == "hostile":
        for _ in range(rng.randint(1, 4)):
            extra = rng.choice([*HOSTILE_LINES, deep(rng.choice([100, 300, 960, 1010, 1030, 1200]))])
            lines.insert(rng.randint(0, len(lines)), extra)
    data = b"\n".join(lines) + b"\n"
    if shape == "hostile" and rng.random() < 0.3:
        data = data.replace(b"\n", b"\r\n") if rng.random() < 0.5 else data + data[: rng.randint(1, 40)]  # a torn last line
    return data


def folded_one_by_one(records: list[dict]) -> RunState:
    state = RunState()
    for record in records:
        state.apply(record)
    return state


def assert_same_state(fast: RunState, slow: RunState) -> None:
    assert same(fast.__dict__, slow.__dict__), (fast, slow)


@pytest.mark.parametrize("shape", ["clean", "messy", "hostile"])
def test_the_fast_reader_and_the_bulk_fold_agree_with_the_reference_on_random_logs(shape: str, monkeypatch) -> None:
    rng = random.Random(f"issue-15-{shape}")
    reference_parse, slow_reads, bulk_folds = runlog.parse_lines, [], 0
    monkeypatch.setattr(runlog, "parse_lines", lambda lines: slow_reads.append(1) or reference_parse(lines))
    for _ in range(400):
        data = run_log(rng, shape)
        body = data[: data.rfind(b"\n") + 1]  # what runlog.read_counted decodes: the complete lines
        records, skipped = runlog.decode(body)
        reference, ref_skipped = reference_parse(body.splitlines())
        assert same(records, reference) and skipped == ref_skipped, data
        try:
            slow = folded_one_by_one(reference)
        except OverflowError:  # an int metric past float's range: the fold fails on it both ways
            with pytest.raises(OverflowError):
                RunState().fold(records)
            continue
        assert_same_state(RunState().fold(records), slow)
        cut = rng.randint(0, len(records))  # a growing log folded in two reads
        assert_same_state(RunState().fold(records[:cut]).fold(records[cut:]), slow)
        bulk_folds += fold._fold_batch(RunState(), records)
    if shape == "clean":  # the clean logs all took the one-call read and the bulk fold
        assert slow_reads == [] and bulk_folds == 400
    else:
        assert slow_reads and 0 < bulk_folds < 400  # both paths were compared


def test_huge_ints_and_deep_lines_are_read_as_json_reads_them() -> None:
    big = b'{"event": "metrics", "metrics": {"loss": 123456789012345678901}, "step": 3}\n'
    records, skipped = runlog.decode(b'{"t": 1}\n' + big)
    assert records[1]["metrics"]["loss"] == 123456789012345678901 and type(records[1]["metrics"]["loss"]) is int
    for depth in (1010, 2000):  # past json's recursion limit: skipped (orjson alone would read the first)
        lines = [b'{"t": 1}', deep(depth)]
        assert runlog.decode(b"\n".join(lines)) == runlog.parse_lines(lines) == ([{"t": 1}], 1)


def test_the_bulk_fold_keeps_the_first_of_equal_extremes_and_the_order_metrics_first_had_numbers() -> None:
    lines = [{"t": 1.0, "event": "metrics", "step": 0, "metrics": {"a": "warming up", "b": 1}}]
    lines += [{"t": 2.0 + i, "event": "metrics", "step": i, "metrics": {"a": [0, 1, 0.0, 1.0][i % 4], "b": 2.0}}
              for i in range(1, 12)]
    fast, slow = RunState().fold(lines), folded_one_by_one(lines)
    assert_same_state(fast, slow)
    assert list(fast.metrics) == ["b", "a"]  # a's first number came after b's
    assert same(fast.metrics["a"][2:4], [0.0, 1])  # the first of equals: 0.0 came before 0, 1 before 1.0
    assert fast.last_t == 13.0 and fast.metrics_t == 1.0


def test_a_log_folded_in_pieces_keeps_ties_and_nan_times_as_line_by_line() -> None:
    """The bulk fold resumes from what an earlier piece left: extremes equal across the cut keep
    the earlier one, and a piece that starts with a NaN time still moves last_t on."""
    lines = [{"t": float(i), "event": "metrics", "step": i, "metrics": {"a": [0, 1][i % 2]}} for i in range(12)]
    lines += [{"t": float("nan") if i == 12 else float(i), "event": "metrics", "step": i,
               "metrics": {"a": [0.0, 1.0][i % 2]}} for i in range(12, 24)]
    slow = folded_one_by_one(lines)
    pieces = RunState().fold(lines[:12]).fold(lines[12:])
    assert_same_state(pieces, slow)
    assert same(pieces.metrics["a"][2:4], [0, 1]) and pieces.last_t == 23.0


def test_an_integer_past_float_range_folds_as_inf_in_both_folds_and_plots_as_inf() -> None:
    """JSON allows any digits: a 401-digit metric used to stop job.status and report.list with an
    internal OverflowError. It reads as ±inf (not finite: no best), in the bulk fold and line by line."""
    from singkit.reports import series

    lines = [b'{"t": %d, "event": "metrics", "step": %d, "metrics": {"acc": 0.5}}' % (i, i) for i in range(40)]
    lines += [b'{"t": 50, "event": "metrics", "step": 50, "metrics": {"acc": 1' + b"0" * 400 + b'}}',
              b'{"t": 51, "event": "metrics", "step": 51, "metrics": {"acc": -1' + b"0" * 400 + b'}}']
    records, skipped = runlog.decode(b"\n".join(lines) + b"\n")
    assert skipped == 0 and len(records) >= fold.BATCH_FROM  # long enough for the bulk fold to be asked
    for state in (RunState().fold(records), folded_one_by_one(records)):
        last, step, low, high, count, nonfinite = state.metrics["acc"]
        assert (last, step, low, high, count, nonfinite) == (-math.inf, 51, 0.5, 0.5, 42, 2)
    ys, ok = series._numbers([r["metrics"]["acc"] for r in records])
    assert list(ys[-3:]) == [0.5, math.inf, -math.inf] and ok.all()


@pytest.mark.parametrize("seed", range(20))
def test_lines_of_as_many_names_in_another_order_or_other_names_fold_as_line_by_line(seed: int) -> None:
    """The bulk fold takes a column per name when every line logs as many names as the first and
    each of them (issue 14: not a tuple of keys per line): lines that list them in another order,
    or as many other names, must fold exactly as line by line."""
    rng = random.Random(f"issue-14-order-{seed}")
    names = ["loss", "acc", "lr", "x"]
    lines = []
    for i in range(rng.randint(8, 40)):
        picked = rng.sample(names, 3) if seed % 2 else rng.sample(names[:3], 3)  # other names / only the order
        lines.append({"t": float(i), "event": "metrics", "step": i, "metrics": {n: rng.choice([rng.random(), 1, 0.5]) for n in picked}})
    assert fold._fold_batch(RunState(), lines)  # (the bulk fold takes it)
    assert_same_state(RunState().fold(lines), folded_one_by_one(lines))
    assert_same_state(RunState().fold(lines[:5]).fold(lines[5:]), folded_one_by_one(lines))


def test_only_a_fold_made_afresh_from_a_log_orjson_read_whole_is_known_json_exact(tmp_path) -> None:
    """RunState.json_exact lets the index write a fold with orjson unchecked (issue 14): it must
    be set only where orjson decoded every line, and cleared by any later fold."""
    clean, nan = tmp_path / "clean.log", tmp_path / "nan.log"
    clean.write_bytes(b'{"t": 1, "event": "metrics", "metrics": {"a": 1.5}}\n' * 10)
    nan.write_bytes(b'{"t": 1, "event": "metrics", "metrics": {"a": 1.5}}\n' * 9 + b'{"t": 2, "event": "metrics", "metrics": {"a": NaN}}\n')
    fresh, other = runlog.states([str(clean), str(nan)])
    assert fresh.json_exact and not other.json_exact and not RunState().json_exact
    fresh.fold([{"t": 3 + i, "event": "metrics", "metrics": {"a": float("nan")}} for i in range(fold.BATCH_FROM)])  # (bulk)
    assert not fresh.json_exact
    again = runlog.states([str(clean)])[0]
    again.apply({"t": 3, "event": "metrics", "metrics": {"a": float("inf")}})
    assert not again.json_exact and "json_exact" not in again.to_json()
