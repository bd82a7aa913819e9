"""Failed runs grouped by error signature, each group with the tail of one run's stderr.

A signature is the last line of stderr that looks like an error (a Python exception line,
"Killed", "CUDA out of memory", "error: ..."), else the last line of stderr, else the
status line's reason, else the exit code. Numbers, hex addresses and quoted values are
blanked before grouping, so "index 7 out of range" and "index 9 out of range" group together.
"""

from __future__ import annotations

import re
from typing import Any

from singkit.environment import Environment
from singkit.reports.model import StoreReader
from singkit.reports.source import tail_text

_ERROR_LINE = re.compile(
    r"^\s*([\w.]+(Error|Exception|Exit|Interrupt|Fault)\b|Killed\b|Segmentation fault|"
    r".*\b(error|fatal|out of memory|killed|oom)\b)", re.IGNORECASE)
_NOISE = [
    (re.compile(r"0x[0-9a-fA-F]+"), "0x…"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "'…'"),
    (re.compile(r"\d+(\.\d+)?(e[-+]?\d+)?"), "N"),
    (re.compile(r"\s+"), " "),
]


def error_line(stderr_lines: list[str]) -> str | None:
    for line in reversed(stderr_lines):
        if _ERROR_LINE.match(line):
            return line.strip()
    for line in reversed(stderr_lines):
        if line.strip():
            return line.strip()
    return None


def signature(text: str) -> str:
    for pattern, repl in _NOISE:
        text = pattern.sub(repl, text)
    return text.strip()[:200]


def error_groups(env: Environment, job: str | None = None, statuses: tuple[str, ...] = ("failed",),
                 tail: int = 10) -> list[dict[str, Any]]:
    """Groups of runs in `statuses`, most frequent first: signature, example message, runs,
    exit codes, reason, and the last `tail` lines of the first run's stderr."""
    with StoreReader(env) as reader:
        runs = [r for r in reader.runs(job) if r.status in statuses]
    groups: dict[str, dict[str, Any]] = {}
    for run in runs:
        state = run.state
        reason, exit_code = (state.reason, state.exit_code) if state else (None, None)
        lines = tail_text(run.ref.stderr, max(tail, 200))
        message = error_line(lines) or reason or (
            f"exit code {exit_code}" if exit_code is not None else f"{run.status}, no error output")
        key = signature(str(message))
        group = groups.get(key)
        if group is None:
            group = groups[key] = {"signature": key, "message": str(message), "count": 0, "runs": [],
                                   "statuses": [], "exit_codes": [], "reason": reason,
                                   "example": run.run, "tail": lines[-tail:] if tail else []}
        group["count"] += 1
        group["runs"].append(run.run)
        if run.status not in group["statuses"]:
            group["statuses"].append(run.status)
        if exit_code is not None and exit_code not in group["exit_codes"]:
            group["exit_codes"].append(exit_code)
    return sorted(groups.values(), key=lambda g: -g["count"])


def details(group: dict[str, Any]) -> list[str]:
    """What a group's headline does not already say: exit codes, statuses other than failed,
    the recorded reason — each once (a reason of `exit code 3` is not repeated after it)."""
    said = [str(group["message"])]
    parts = []
    if group["exit_codes"]:
        codes = ("exit code " if len(group["exit_codes"]) == 1 else "exit codes ") + ", ".join(str(c) for c in group["exit_codes"])
        if not any(codes in s for s in said):
            parts.append(codes)
            said.append(codes)
    if group["statuses"] != ["failed"]:
        parts.append("status " + ", ".join(group["statuses"]))
    reason = group.get("reason")
    if reason and not any(str(reason) in s for s in said):
        parts.append(f"reason: {reason}")
    return ["; ".join(parts)] if parts else []


def render_groups(groups: list[dict[str, Any]], scope: str) -> str:
    if not groups:
        return f"no failed runs in {scope}"
    total = sum(g["count"] for g in groups)
    out = [f"{total} failed run(s) in {scope}, {len(groups)} distinct error(s)", ""]
    for g in groups:
        runs = ", ".join(g["runs"][:12]) + (f", ... ({len(g['runs']) - 12} more)" if len(g["runs"]) > 12 else "")
        out.append(f"{g['count']} × {g['message']}")
        out.append(f"  runs: {runs}")
        out += [f"  {line}" for line in details(g)]
        if g["tail"]:
            out.append(f"  stderr of {g['example']} (last {len(g['tail'])} lines):")
            out += [f"    | {line}" for line in g["tail"]]
        out.append("")
    return "\n".join(out).rstrip()
