"""The store's audit log: $SINGKIT_HOME/events.jsonl, one JSON object per line.

    {"t": 1732450000.12, "event": "submit", "job": "job3", "target": "local", "runs": 4}

Events used so far: build, build-failed, push, pin (images), submit, cancel, rerun, reconcile. Each line is
one write on an O_APPEND descriptor, so concurrent writers never interleave.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def record(env: Any, event: str, **fields: Any) -> dict[str, Any]:
    """Append one audit event under env.home (an Environment, or anything with .home)."""
    from singkit.store import runlog

    home = Path(env.home)
    home.mkdir(parents=True, exist_ok=True)
    return runlog.append(home / "events.jsonl", event, **fields)


def read(env: Any) -> list[dict[str, Any]]:
    """Every complete event (a torn last line is skipped)."""
    from singkit.store import runlog

    return runlog.events(Path(env.home) / "events.jsonl")
