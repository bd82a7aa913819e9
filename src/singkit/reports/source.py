"""The store's on-disk layout, as reports read it. The one place in reports that knows paths.

    $SINGKIT_HOME/events.jsonl                       audit log (JSON lines)
    $SINGKIT_HOME/jobs/<job>/job.yaml                resolved spec: target, service, runs [{run, hparams}], ...
    $SINGKIT_HOME/jobs/<job>/runs/<run>/run.log      JSONL events: status, hparams, metrics
    $SINGKIT_HOME/jobs/<job>/runs/<run>/stdout.log, stderr.log

Writers append to these files while we read, so every JSONL reader here tolerates a torn last
line (and any other line that is not a JSON object: it is skipped, never fatal).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from collections.abc import Container, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from singkit.exceptions import UsageError
from singkit.refs import RUN_ID
from singkit.store.runlog import UNDECODABLE
from singkit.gcpause import paused_gc
from singkit.store.safe import open_stored

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key that puts job2 before job10 and job3.2 before job3.10."""
    return tuple(int(p) if p.isdigit() else p for p in _DIGITS.split(name))


class RunRef(NamedTuple):
    """A run's folder. Paths are plain strings, and a tuple: listing 50,000 runs cannot afford
    pathlib, nor a frozen dataclass's __init__."""
    job: str
    run: str
    dir: str

    @property
    def log(self) -> str:
        return self.dir + "/run.log"

    @property
    def stdout(self) -> str:
        return self.dir + "/stdout.log"

    @property
    def stderr(self) -> str:
        return self.dir + "/stderr.log"


class StoreLayout:
    """Paths of one local store (the folder $SINGKIT_HOME, default ./.singkit)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.jobs_dir = self.root / "jobs"
        self.events_log = self.root / "events.jsonl"
        self._jobs = str(self.jobs_dir)

    def job_names(self) -> list[str]:
        from singkit.store.model import is_job_folder  # the store's rule: a half-created folder is no job

        try:
            names = [e.name for e in os.scandir(self.jobs_dir) if is_job_folder(e)]
        except FileNotFoundError:
            return []
        return sorted(names, key=natural_key)

    def newest_job_names(self) -> Iterator[str]:
        """Job names newest first, each checked only when reached: a listing of the last N runs
        stats the jobs it shows, not every job folder (one scandir of jobs/ names them all)."""
        from singkit.refs import JOB_ID
        from singkit.store.model import is_job_folder

        try:
            entries = [e for e in os.scandir(self.jobs_dir) if JOB_ID.match(e.name)]
        except FileNotFoundError:
            return
        entries.sort(key=lambda e: int(e.name[3:]), reverse=True)  # jobN only: natural order is N's
        for entry in entries:
            if is_job_folder(entry):
                yield entry.name

    def job_dir(self, job: str) -> Path:
        return self.jobs_dir / job

    def job_yaml(self, job: str) -> Path:
        return self.jobs_dir / job / "job.yaml"

    def check_job(self, job: str) -> str:
        """`job` as stored (`7` means `job7`); UsageError naming the closest jobs if unknown."""
        from singkit.refs import JOB_ID, check_word

        check_word(job)
        if job.isdigit():
            job = f"job{job}"
        if JOB_ID.match(job) and self.job_dir(job).is_dir():  # no path is built from any other word
            return job
        from singkit.store.model import no_such_job

        raise no_such_job(job, self.job_names(), self.root)

    def run_names(self, job: str, known: Container[str] = ()) -> list[str]:
        """Run folders present under jobs/<job>/runs/ (a queued run may have none yet), unsorted,
        but for those in `known` (job.yaml's runs, already checked)."""
        try:
            # a run folder is `jobN.K` of this job; a link (to a folder outside the store) is none
            return [e.name for e in os.scandir(f"{self._jobs}/{job}/runs")
                    if e.name not in known and e.is_dir(follow_symlinks=False) and is_run_of(job, e.name)]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def run_ref(self, job: str, run: str) -> RunRef:
        return RunRef(job, run, f"{self._jobs}/{job}/runs/{run}")

    def check_run(self, job: str, run: str, known: list[str]) -> str:
        """Accept `job3.2`, `3.2` or `2` for run 2 of job3; UsageError listing the runs if unknown."""
        from singkit.refs import check_word

        check_word(run, "run")
        candidates = [run, f"{job}.{run}", f"job{run}"]
        for cand in candidates:
            if cand in known:
                return cand
        raise UsageError(f"no run `{run}` in {job}; its runs are {', '.join(known) or '(none)'}")


def is_run_of(job: str, run: str) -> bool:
    """Is `run` (read from the store: untrusted) an id of one of `job`'s runs, `jobN.K`? Only
    such ids are made into paths."""
    match = RUN_ID.match(run)
    return match is not None and match[1] == job


def parse_job_yaml(path: Path) -> Any:
    """A job.yaml's data exactly as parsed (None when missing), as the store parses it; a file
    that does not parse is a one-line SingkitError naming it (singkit.store.yamlio)."""
    from singkit.store.yamlio import parse_yaml, read_text

    text = read_text(path)
    return None if text is None else parse_yaml(text, path)


def plain_yaml(data: Any) -> dict[str, Any]:
    """Parsed job.yaml data as plain data ({} when it is not a mapping)."""
    return _plain(data) if isinstance(data, dict) else {}


def _plain(value: Any) -> Any:
    """YAML timestamps become epoch seconds so the result is JSON (and cache) friendly."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.timestamp()
    if isinstance(value, _dt.date):
        return _dt.datetime(value.year, value.month, value.day, tzinfo=_dt.timezone.utc).timestamp()
    return value


def to_epoch(value: Any) -> float | None:
    """Epoch seconds from a number or an ISO 8601 string; None when it is neither."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = _dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=_dt.timezone.utc)
        return parsed.timestamp()
    return None


def parse_jsonl(data: bytes) -> tuple[list[dict[str, Any]], int, bool]:
    """Events in `data`, the byte count of the complete lines consumed, and whether a final
    line without a newline was parsed anyway (a finished writer that forgot the newline).

    One `json.loads` over all lines joined into an array is several times faster than one call
    per line; any bad line sends us to the per-line path, which skips what does not parse.
    """
    end = data.rfind(b"\n") + 1
    body, tail = data[:end], data[end:]
    lines = [ln for ln in body.split(b"\n") if ln.strip()]
    events: list[Any] = []
    if lines:
        with paused_gc():
            try:
                events = json.loads(b"[" + b",".join(lines) + b"]")
            except UNDECODABLE:
                events = [ev for ev in map(loads_or_none, lines) if ev is not None]
    unterminated = False
    if tail.strip():
        last = loads_or_none(tail)
        if last is not None:  # complete JSON without its newline: use it, but re-read it next time
            events.append(last)
            unterminated = True
    return [ev for ev in events if isinstance(ev, dict)], end, unterminated


def loads_or_none(line: bytes) -> Any:
    try:
        return json.loads(line)
    except UNDECODABLE:
        return None


def read_jsonl(path: Path | str, offset: int = 0) -> tuple[list[dict[str, Any]], int, bool]:
    """parse_jsonl over a file from `offset`; a missing file reads as empty."""
    try:
        with open_stored(path) as fh:  # a link is read as missing, never followed
            if offset:
                fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return [], offset, False
    events, consumed, unterminated = parse_jsonl(data)
    return events, offset + consumed, unterminated


def tail_text(path: Path | str, lines: int, max_bytes: int = 65536) -> list[str]:
    """The last `lines` lines of a text file (reading at most its last `max_bytes`)."""
    try:
        with open_stored(path) as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except (FileNotFoundError, IsADirectoryError):
        return []
    text = data.decode("utf-8", errors="replace")
    return text.splitlines()[-lines:] if lines > 0 else []
