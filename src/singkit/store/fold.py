"""The one fold of a run.log (issue 12): what job.status, job.monitor and the reports know of a run.

Folding is incremental — folding events a then b gives what folding a + b gives — so a reader
can resume a growing log from the byte offset it reached (job.monitor, the index). Rules:
- a run's status is its status lines in file order, whatever "node" they carry; the first
  completed/failed/cancelled line is final and later status lines are ignored, except that a
  later final line's whole exit code completes a cancel that had none (SIGTERM: 143);
- `preempted` is not final: the run is requeued and runs again; each move into `preempted`
  counts one preemption, and going again clears the preemption's reason;
- a run.log is written by the job itself: a field of the wrong type is not trusted.

Per metric the fold keeps [last, last_step, min, max, count, nonfinite] (a list, to keep the
cached JSON small): min/max ignore NaN and inf (they count in `nonfinite`), `last` keeps them.
Per node it keeps {status, started, ended, last_t, metric_lines} for the reports' nodes table.

`to_dict` is what job.status shows (its --json keys); `to_json`/`from_json` are the whole fold as
plain JSON data, for caches.
"""

from __future__ import annotations

import math
import sys
from collections import deque
from dataclasses import dataclass, field, fields
from itertools import chain, compress, repeat
from operator import eq, not_
from typing import Any

from singkit.store.status import STOPPED, TERMINAL, RunStatus, parse

# indexes into a metric's stats list
LAST, LAST_STEP, MIN, MAX, COUNT, NONFINITE = range(6)
FLOAT_MAX = int(sys.float_info.max)  # a metric integer beyond it (any digits are JSON) folds as ±inf
BATCH_FROM = 8  # records: below this the bulk fold's set-up costs more than it saves


@dataclass
class RunState:
    """What a run's events say about it (see the module docstring for the rules)."""

    status: RunStatus = RunStatus.QUEUED
    reason: str | None = None
    exit_code: int | None = None
    queued: float | None = None
    started: float | None = None
    ended: float | None = None
    hparams: dict[str, Any] = field(default_factory=dict)
    last_metrics: dict[str, Any] = field(default_factory=dict)
    last_step: int | None = None
    preemptions: int = 0  # times the run moved into `preempted` (repeated preempted lines count once)
    skipped_lines: int = 0  # run.log lines no reader could use (see runlog.read_counted): said, never fatal
    # what the reports need besides
    first_t: float | None = None
    last_t: float | None = None
    metrics_t: float | None = None  # the first metrics line's time: logging metrics means it ran
    metric_lines: int = 0
    metrics: dict[str, list[Any]] = field(default_factory=dict)  # name -> [last, last_step, min, max, count, nonfinite]
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)  # "0" -> {status, started, ended, last_t, metric_lines}
    # True only for a fold made afresh from records orjson decoded (runlog.states): then it holds
    # no NaN or inf (orjson refuses them), no int past 64 bits and no lone surrogate, so orjson
    # writes it as json would read it back (foldcache.json_texts need not check). Any later
    # fold or apply clears it. Not a field: never in to_json, eq or repr.
    json_exact = False  # (unannotated: a class attribute, not a dataclass field)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def fold(self, records: list[dict[str, Any]]) -> RunState:
        """Apply `records` in file order; returns self. The same as `apply` on each record in turn:
        records of the usual shape (see _fold_batch) are folded in bulk, a few C-level passes per
        metric instead of Python steps per value (a cold listing of 10,000 runs folds half a
        million values); any other batch goes record by record."""
        if len(records) < BATCH_FROM or not _fold_batch(self, records):
            for record in records:
                self.apply(record)
        if self.json_exact:
            del self.json_exact  # (back to the class's False)
        return self

    def apply(self, record: dict[str, Any]) -> None:
        if self.json_exact:
            del self.json_exact
        t = _number(record.get("t"))
        if t is not None:
            if self.first_t is None:
                self.first_t = t
            if self.last_t is None or t > self.last_t:
                self.last_t = t
        node = record.get("node")
        nrec = None
        if node is not None:
            nrec = self.nodes.setdefault(str(node), {"status": None, "started": None, "ended": None,
                                                     "last_t": None, "metric_lines": 0})
            if t is not None:
                nrec["last_t"] = t
        self._event(record, t, nrec)

    def _event(self, record: dict[str, Any], t: float | None, nrec: dict[str, Any] | None) -> None:
        """What `record` says besides its time."""
        kind = record.get("event")
        if kind == "status":
            self._status(record, t, nrec)
        elif kind == "metrics" and isinstance(record.get("metrics"), dict):
            values = record["metrics"]
            self.last_metrics.update(values)
            step = record.get("step")
            if _whole(step) is not None:
                self.last_step = step
            self.metric_lines += 1
            if nrec is not None:
                nrec["metric_lines"] += 1
            if self.metrics_t is None:
                self.metrics_t = t
            for name, value in values.items():
                _fold_metric(self.metrics, name, value, step)
        elif kind == "hparams" and isinstance(record.get("hparams"), dict):
            self.hparams.update(record["hparams"])
        elif kind == "exit" and nrec is not None and nrec["status"] not in TERMINAL:
            # a remote rank's process ended (scripts/singkit_entry.py --exit-event): the node
            # stops there, and shows the run's outcome, which only the backend records
            nrec["status"], nrec["ended"] = None, t

    def _status(self, record: dict[str, Any], t: float | None, nrec: dict[str, Any] | None) -> None:
        word = record.get("status")
        # (a decoded line's text: one dict lookup, not the enum's call; anything else as parse says)
        status = _STATUS_OF.get(word) if type(word) is str else parse(word)
        if status is None:
            return
        if nrec is not None and nrec["status"] not in TERMINAL:
            nrec["status"] = status.value
            if status == RunStatus.RUNNING and nrec["started"] is None:
                nrec["started"] = t
            nrec["ended"] = t if status in STOPPED else None  # requeued after preemption: going again
        if self.terminal:
            # the first final status wins (a cancel's); the process's own exit code, recorded by
            # its wrapper just after, completes it (SIGTERM: 143)
            if status in TERMINAL and self.exit_code is None and _whole(record.get("exit_code")) is not None:
                self.exit_code = record["exit_code"]
            return
        if status == RunStatus.PREEMPTED and self.status != RunStatus.PREEMPTED:
            self.preemptions += 1
        if status in (RunStatus.QUEUED, RunStatus.RUNNING) and self.status == RunStatus.PREEMPTED:
            self.reason = None  # going again: why it was stopped is history (the count keeps it)
        self.status = status
        if status == RunStatus.QUEUED and self.queued is None:
            self.queued = t
        if status == RunStatus.RUNNING and self.started is None:
            self.started = t
        if status in TERMINAL:
            self.ended = t
            self.reason = _text(record.get("reason"))
            self.exit_code = _whole(record.get("exit_code"))
        elif status == RunStatus.PREEMPTED:
            self.reason = _text(record.get("reason"))

    def times(self, now: float) -> tuple[float | None, float | None, float | None]:
        """(started, ended, duration seconds) as the reports show them: a run that logged metrics
        ran; one stopped without an end time ended at its last line; one still going is measured
        up to `now`."""
        started = self.started if self.started is not None else self.metrics_t
        if started is None:
            return None, None, None
        ended = self.ended
        if ended is None and self.status in STOPPED:
            ended = self.last_t
        stop = ended if ended is not None else now
        return started, ended, max(0.0, stop - started)

    def to_dict(self) -> dict[str, Any]:
        """The run as job.status shows it."""
        return {"status": self.status.value, "reason": self.reason, "exit_code": self.exit_code,
                "queued": self.queued, "started": self.started, "ended": self.ended,
                "hparams": self.hparams, "last_metrics": self.last_metrics, "last_step": self.last_step,
                "preemptions": self.preemptions, "skipped_lines": self.skipped_lines}

    def to_json(self) -> dict[str, Any]:
        """The whole fold as plain JSON data (from_json reads it back)."""
        data = {name: getattr(self, name) for name in _FIELDS}  # shallow: json.dumps walks the rest
        data["status"] = self.status.value
        return data

    @classmethod
    def from_text(cls, text: str) -> RunState | None:
        """A fold from the JSON text of to_json's data (an index row); None when it is not one."""
        try:
            return cls.from_json(_loads(text))
        except (ValueError, RecursionError):
            return None

    @classmethod
    def from_json(cls, data: object) -> RunState | None:
        """A fold from to_json's data; None for anything not of its shape (a damaged cache row)."""
        if not isinstance(data, dict) or data.keys() != _FIELD_SET:
            return None
        status = _STATUS_OF.get(data["status"]) if isinstance(data["status"], str) else None
        # map(isinstance, ...): the type checks at C speed (job.status of 10,000 runs makes 10,000)
        if status is None or not all(map(isinstance, map(data.__getitem__, _TYPE_KEYS), _TYPE_TYPES)):
            return None
        if any(not (isinstance(m, list) and len(m) == 6) for m in data["metrics"].values()):
            return None
        if any(not isinstance(n, dict) for n in data["nodes"].values()):
            return None
        state = object.__new__(cls)  # what __init__ would do with these very fields, without its cost
        state.__dict__.update(data)
        state.status = status
        return state


_FIELDS = tuple(f.name for f in fields(RunState))
_FIELD_SET = frozenset(_FIELDS)


def _loads(text: str) -> Any:
    """JSON text as data: orjson (a job.status of 10,000 runs decodes 10,000 folds, ~2.5x faster),
    json for what orjson refuses (NaN and inf, which a metric's last value may be) and for a text
    json wrote (foldcache.JSON_WROTE: an int past 64 bits, which orjson would read as a float)."""
    if text[:1] != " ":
        try:
            import orjson

            return orjson.loads(text)
        except (ImportError, ValueError):
            pass
    import json

    return json.loads(text)
_NUMBER = (int, float, type(None))
_TYPES: dict[str, tuple[type, ...]] = {
    "reason": (str, type(None)), "exit_code": (int, type(None)), "queued": _NUMBER, "started": _NUMBER,
    "ended": _NUMBER, "hparams": (dict,), "last_metrics": (dict,), "last_step": (int, type(None)),
    "preemptions": (int,), "skipped_lines": (int,), "first_t": _NUMBER, "last_t": _NUMBER, "metrics_t": _NUMBER,
    "metric_lines": (int,), "metrics": (dict,), "nodes": (dict,)}
_TYPE_KEYS, _TYPE_TYPES = tuple(_TYPES), tuple(_TYPES.values())
_STATUS_OF = {status.value: status for status in RunStatus}


def _fold_metric(metrics: dict[str, list[Any]], name: str, value: Any, step: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return  # strings and nested values are not plottable metrics
    if type(value) is int and not -FLOAT_MAX <= value <= FLOAT_MAX:
        value = math.inf if value > 0 else -math.inf  # JSON allows any digits; as a float it overflows
    stats = metrics.get(name)
    if stats is None:
        stats = metrics[name] = [None, None, None, None, 0, 0]
    stats[COUNT] += 1
    stats[LAST] = value
    stats[LAST_STEP] = step if isinstance(step, (int, float)) and not isinstance(step, bool) else stats[COUNT] - 1
    if not math.isfinite(value):
        stats[NONFINITE] += 1
        return
    if stats[MIN] is None or value < stats[MIN]:
        stats[MIN] = value
    if stats[MAX] is None or value > stats[MAX]:
        stats[MAX] = value


def _number(value: Any) -> float | None:
    """A time from a run.log line: a number (not true/false), else None."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# --- the bulk fold ---------------------------------------------------------------------------
_NUMS = frozenset((int, float))  # a metric value or time the fold takes (bool is neither: its type is bool)
_JSON = frozenset((dict, list, str, int, float, bool, type(None)))  # all a decoded line holds
_KINDS = frozenset((str, type(None)))
_DICT, _FLOAT = frozenset((dict,)), frozenset((float,))


def _fold_batch(state: RunState, records: list[dict[str, Any]]) -> bool:
    """Fold `records` into `state` exactly as `apply` on each would, in bulk; False (and `state`
    untouched) for a batch not of the shape this handles: lines with a `node`, a time that is not
    a number, a `metrics` that is not a mapping, types no JSON decoder makes, or metric names so
    scattered that a column per name would cost more than a step per value.

    Every column is a C-level pass (map/compress/min/max over a list); the rules that make it
    equal to the step-by-step fold:
    - times: first_t is the first line's, last_t the running `t > last_t` maximum, which is what
      max() computes from the same start (NaN included);
    - status, hparams and other lines are few: applied one by one, in order (they touch nothing
      metrics do, so doing them before the metric lines changes nothing);
    - per metric, only numbers (not bool) count: `last` and its step are the last number's,
      min/max the first smallest/largest finite number (min() and max() keep the first of
      equals, as `<` did), and a metric is created where its first number is, in file order."""
    get: Any = dict.get  # (Any: map() over it, which typeshed cannot follow)
    if set(map(type, records)) != _DICT or any(map(dict.__contains__, records, repeat("node"))):
        return False
    ts: list[Any] = list(map(get, records, repeat("t")))
    kinds: list[Any] = list(map(get, records, repeat("event")))
    if not set(map(type, ts)) <= _NUMS or not set(map(type, kinds)) <= _KINDS:
        return False
    count = kinds.count("metrics")
    first = kinds.index("metrics") if count else len(kinds)
    if kinds[first:first + count].count("metrics") == count:  # the usual log: metric lines in one block
        lines = records[first:first + count]
        others = list(zip(records[:first] + records[first + count:], ts[:first] + ts[first + count:]))
    else:
        is_metric = list(map(eq, kinds, repeat("metrics")))
        lines = list(compress(records, is_metric))
        others = list(compress(zip(records, ts), map(not_, is_metric)))
    values: list[Any] = list(map(get, lines, repeat("metrics")))
    steps: list[Any] = list(map(get, lines, repeat("step")))
    if not set(map(type, values)) <= _DICT or not set(map(type, steps)) <= _JSON:
        return False
    # every line logs the same names (as many as the first line, each of them): a column per name
    # by key, the names in the first line's order (a column by getitem is cheaper than a tuple
    # of its keys per line to compare)
    names = list(values[0]) if values else []
    uniform = bool(values) and set(map(len, values)) == {len(names)}
    columns: list[Any] = []
    if uniform:
        try:
            columns = [list(map(dict.__getitem__, values, repeat(name))) for name in names]
        except KeyError:
            uniform = False
    if not uniform:
        names = list(dict.fromkeys(chain.from_iterable(values)))
        if len(names) * len(values) > 4 * sum(map(len, values)) + 1000:
            return False  # each name on few lines: a column per name would be quadratic
        columns = [list(map(get, values, repeat(name))) for name in names]  # a line without it: None
    kinds_of = [set(map(type, column)) for column in columns]
    if not all(map(_JSON.issuperset, kinds_of)):
        return False
    for column, types in zip(columns, kinds_of):  # an int past float's range: apply folds it as ±inf
        if int in types and max(map(abs, (v for v in column if type(v) is int))) > FLOAT_MAX:
            return False

    # the shape is known: from here on the fold cannot refuse
    if state.first_t is None:
        state.first_t = ts[0]
    state.last_t = max(ts) if state.last_t is None else max(chain((state.last_t,), ts))
    for record, t in others:
        state._event(record, t, None)
    if not lines:
        return True
    if uniform:  # the same names on every line: the first line orders them, the last one's values stay
        state.last_metrics.update(values[0])
        state.last_metrics.update(values[-1])
    else:
        deque(map(state.last_metrics.update, values), 0)
    whole = next((step for step in reversed(steps) if type(step) is int), None)
    if whole is not None:
        state.last_step = whole
    state.metric_lines += len(lines)
    if state.metrics_t is None:
        state.metrics_t = ts[first]
    metrics, created = state.metrics, []
    numbers: Any
    for name, column, types in zip(names, columns, kinds_of):
        if types <= _NUMS:
            numbers, at, where = column, steps, 0
        else:
            keep = list(map(_NUMS.__contains__, map(type, column)))
            if True not in keep:
                continue
            numbers, at, where = list(compress(column, keep)), list(compress(steps, keep)), keep.index(True)
        stats = metrics.get(name)
        if stats is None:
            stats = [None, None, None, None, 0, 0]
            created.append(((where, list(values[where]).index(name)), name, stats))
        total = stats[COUNT] + len(numbers)
        stats[COUNT] = total
        stats[LAST] = numbers[-1]
        stats[LAST_STEP] = at[-1] if type(at[-1]) in _NUMS else total - 1
        # floats only: a finite sum means no NaN or inf among them (ints past float's range were refused above)
        if types != _FLOAT or not math.isfinite(sum(numbers)):
            finite = list(map(math.isfinite, numbers))
            if False in finite:
                stats[NONFINITE] += finite.count(False)
                numbers = list(compress(numbers, finite))
                if not numbers:
                    continue
        low, high = min(numbers), max(numbers)
        if stats[MIN] is None or low < stats[MIN]:
            stats[MIN] = low
        if stats[MAX] is None or high > stats[MAX]:
            stats[MAX] = high
    for _, name, stats in sorted(created, key=lambda c: c[0]):
        metrics[name] = stats
    return True
