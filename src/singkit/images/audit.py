"""Audit lines (build, push, pin) in the store's events.jsonl."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from singkit.environment import Environment


def audit(env: Environment, event: str, **fields: Any) -> None:
    """Record an event if the store module is installed; never fields that hold secrets."""
    try:
        from singkit.store.events import record
    except ImportError:  # the store lands separately; images work without it
        return
    record(env, event, **fields)
