"""Progress lines on stderr for the engine's JSON streams (pull, push).

stderr may be a log file rather than a terminal, so no bars: one line when a layer changes
state, and a line per quarter of a long transfer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from singkit.environment import Environment

_TRANSFER = ("Downloading", "Pushing", "Extracting")


def human_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class LayerProgress:
    """Follows `{"id", "status", "progressDetail"}` events and prints what changed."""

    def __init__(self, env: Environment, verb: str):
        self.env, self.verb = env, verb
        self.state: dict[str, tuple[str, int]] = {}  # layer -> (status, quarter shown)

    def update(self, event: dict[str, Any]) -> None:
        status = str(event.get("status") or "").strip()
        if not status:
            return
        layer = event.get("id")
        if not layer or status.startswith("Pulling from"):  # `id` is then the tag, not a layer
            self.env.err(f"  {self.verb}: {status}")
            return
        detail = event.get("progressDetail") or {}
        current, total = detail.get("current") or 0, detail.get("total") or 0
        # the engine's `current` can pass `total` (compressed vs raw sizes): cap it
        quarter = min(4, int(4 * current / total)) if total else 0
        previous = self.state.get(layer)
        if previous and previous[0] == status and (status not in _TRANSFER or quarter <= previous[1]):
            return
        self.state[layer] = (status, quarter)
        size = f" {25 * quarter}% of {human_size(total)}" if total and status in _TRANSFER else ""
        self.env.err(f"  {self.verb} {layer}: {status}{size}")
