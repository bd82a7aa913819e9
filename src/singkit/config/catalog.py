"""The vm-size catalog shipped with singkit (src/singkit/data/skus.yaml), read once."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any


@functools.lru_cache(maxsize=1)
def shipped_skus() -> dict[str, dict[str, Any]]:
    from singkit.config.layers import plain, yaml_rt

    source = resources.files("singkit") / "data" / "skus.yaml"
    if not source.is_file():
        return {}
    doc = yaml_rt().load(source.read_text(encoding="utf-8")) or {}
    return plain(doc.get("skus", doc))
