"""Pausing Python's cycle collector while a command builds objects by the thousand.

A status, a listing or a parse makes fresh dicts by the thousand and keeps them; the cycle
collector, run every few hundred allocations, would walk them again and again (~15 % of
job.status of a 10,000-run job). They hold no cycles, so reference counting frees them as usual."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused_gc(freeze: bool = False) -> Iterator[None]:
    """Pause the cyclic GC while parsing: fresh dicts by the million make it rescan the heap
    over and over, which costs more than the parsing itself.

    freeze=True also moves everything alive into the collector's permanent generation on the
    way out, so the objects just built are never scanned (they hold no cycles; refcounting
    still frees them). Only for short-lived CLI commands, where that scan (at the next
    collection, or at interpreter exit) costs a tenth of the command."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if enabled:
            gc.enable()
