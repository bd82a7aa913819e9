"""The local wrap record: which digest a wrap of these exact inputs gave, so a no-op wrap asks no registry.

A cached `docker build` decides "nothing to do" from what it has locally; a no-op `image.wrap`
does the same when it can. After a wrap pushed and pinned an image, and after a registry check
found the registry's image up to date, singkit records (for a record whose inputs hash needs no
registry, the only kind the check below can use)

    wrapped image (host/repo:tag) → {inputs: the inputs hash, digest: the registry's digest}

in one small JSON file in the user's cache folder (`~/.cache/singkit/wraps.json`, or
`$XDG_CACHE_HOME/singkit/`). images/wrap.py answers "up to date" from it alone when the inputs
hash computed now (which needs no registry when the base is pinned by digest and the installer and
validator images by tag or digest) is the one recorded, the config's `sha256:` (and
`base-sha256:`) still pin what was recorded, and dockerfiles/<docker>.Dockerfile names these
inputs. Anything else asks the registry, as before; `--force` ignores the record.

Why this is safe: a job pulls the image by the digest pinned in the config, and a digest names
fixed bytes, so a tag moved in the registry cannot change what a job runs. What it does not
notice: the image deleted from the registry (or the registry reset). `image.wrap --force`
rebuilds and pushes it again, and a job's pull says so. The registry stays the memory for a
fresh clone or another machine: there the first no-op wrap asks it, and records the answer.

The file is a cache: a missing, damaged or unreadable one (a folder, a FIFO, a link) is no
record, and one that cannot be written costs the next wrap a registry check. Two wraps that write
at the same time may keep only one entry: the other image's next no-op asks the registry again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from singkit.fsutil import read_cache, write_cache

if TYPE_CHECKING:
    from singkit.environment import Environment

FILE_NAME = "wraps.json"
FORMAT = 1  # bump when an entry's meaning changes: an older file then reads as no record


def memo_path(env: Environment) -> Path:
    """Where the record is kept: singkit's folder in the user's cache."""
    return env.cache_dir / FILE_NAME


def _entries(env: Environment) -> dict[str, Any]:
    """image → {"inputs", "digest"}; {} for a missing, damaged or unreadable file."""
    blob = read_cache(memo_path(env))
    if blob is None:
        return {}
    try:
        doc = json.loads(blob)
    except ValueError:  # UnicodeDecodeError too
        return {}
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("images"), dict):
        return {}
    return doc["images"]


def has_records(env: Environment) -> bool:
    """Is anything recorded at all (a readable, well-formed file with an entry)?"""
    return bool(_entries(env))


def recorded(env: Environment, image: str, inputs_hash: str) -> str | None:
    """The digest recorded for wrapped image `image` (host/repo:tag) built from `inputs_hash`, or None."""
    entry = _entries(env).get(image)
    if not isinstance(entry, dict) or entry.get("inputs") != inputs_hash:
        return None
    digest = entry.get("digest")
    return digest if isinstance(digest, str) and digest else None


def remember(env: Environment, image: str, inputs_hash: str, digest: str) -> None:
    """Record that `image` built from `inputs_hash` is `digest` in its registry (replacing what
    was recorded for that image). Never raises for a cache folder that cannot be written."""
    entries = dict(_entries(env))
    if entries.get(image) == {"inputs": inputs_hash, "digest": digest}:
        return  # nothing new: no write on every no-op
    entries[image] = {"inputs": inputs_hash, "digest": digest}
    blob = json.dumps({"format": FORMAT, "images": entries}, sort_keys=True, indent=1).encode()
    try:
        write_cache(memo_path(env), blob)
    except OSError:
        pass  # a read-only cache folder: the next no-op wrap asks the registry, as before
