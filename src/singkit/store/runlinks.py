"""The symbolic links among a job's run files, found without listing every run folder each time.

job.status warns of each run.log, stdout.log, stderr.log or outputs/ that is a link (such files
are never read or followed: singkit.store.safe). Listing 10,000 run folders on every look costs
more than the rest of a warm job.status; so the store keeps, per job,

    <root>/cache/runlinks/<jobN>.json   {run id: [ctime_ns, inode] of its folder when seen link-free}

and lists again only the folders whose ctime or inode changed since (see safe.links_in_runs for
why that is enough). Only a cache: one missing, unreadable or of another shape is ignored and
rewritten, and a store that cannot be written is simply listed in full next time.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from singkit.fsutil import write_cache
from singkit.store.safe import links_in_runs, open_stored


def cache_path(root: Path, job_id: str) -> Path:
    return Path(root) / "cache" / "runlinks" / f"{job_id}.json"


def links(root: Path, job_id: str, job_dir: Path, run_ids: list[str], names: tuple[str, ...]) -> list[str]:
    """The links among `names` in the run folders of `run_ids` (links_in_runs), in order."""
    path = cache_path(root, job_id)
    known = _read(path)
    clean = dict(known)
    found = links_in_runs(job_dir, run_ids, names, clean=clean)
    if clean != known:
        _write(path, clean)
    return found


def _read(path: Path) -> dict[str, Any]:
    try:
        import orjson

        with open_stored(path) as fh:  # no link followed, no FIFO waited on
            data = orjson.loads(fh.read())
    except (OSError, ValueError, ImportError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, clean: dict[str, Any]) -> None:
    with contextlib.suppress(OSError, ImportError, TypeError):
        import orjson

        write_cache(path, orjson.dumps(clean))
