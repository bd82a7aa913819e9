"""Following an Azure ML job's user logs, with a node/rank prefix when there are several.

Azure ML lists a run's log files with their (SAS) URLs in its run-history details; user output
is `user_logs/std_log.txt` for one process and `user_logs/std_log_process_<R>.txt` (or with a
`node_<N>` part) for distributed runs. Each poll reads the files again and yields only the
complete lines not yet yielded.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from singkit.backends.singularity.status import AZURE_FINAL

USER_LOG = re.compile(r"^user_logs/std_log.*\.txt$")
# a paused job stops writing too: stop following it
AZURE_TERMINAL = AZURE_FINAL | {"paused"}
_NUMBER = {"node": re.compile(r"node_?(\d+)"), "rank": re.compile(r"(?:process|rank|worker)_?(\d+)")}


def _numbers(name: str) -> tuple[int | None, int | None]:
    node = _NUMBER["node"].search(name)
    rank = _NUMBER["rank"].search(name)
    return (int(node.group(1)) if node else None, int(rank.group(1)) if rank else None)


def prefix_for(name: str, nodes: int, per_node: int) -> str:
    """`[node 1] `, `[rank 3] ` or `[node 1 rank 9] ` for a log file; '' for a single process."""
    node, rank = _numbers(name)
    if node is None and rank is not None and nodes > 1:
        node = rank // max(per_node, 1)
    parts = []
    if nodes > 1 and node is not None:
        parts.append(f"node {node}")
    if per_node > 1 and rank is not None:
        parts.append(f"rank {rank}")
    return f"[{' '.join(parts)}] " if parts else ""


def _order(name: str) -> tuple[int, int, str]:
    node, rank = _numbers(name)
    return (node or 0, rank or 0, name)


def follow_logs(client: Any, name: str, *, follow: bool, nodes: int = 1, per_node: int = 1,
                poll: float = 5.0, call: Callable[..., Any], sleep: Callable[[float], None] = time.sleep,
                tail: int | None = None) -> Iterator[str]:
    """Lines of the job's user logs (each ending in a newline): the last `tail` of what is
    there now (all if None), then with follow, new lines until the job ends."""
    from azure.ai.ml._utils.utils import download_text_from_url

    done: dict[str, int] = {}
    first = True
    while True:
        batch: list[str] = []
        details = call(f"reading the logs of {name}", lambda: client.jobs._runs_operations.get_run_details(name))
        ended = str(getattr(details, "status", "") or "").lower() in AZURE_TERMINAL
        files = {k: v for k, v in (getattr(details, "log_files", None) or {}).items() if USER_LOG.match(k)}
        for file in sorted(files, key=_order):
            text = call(f"reading {file} of {name}",
                        lambda url=files[file]: download_text_from_url(url, client.jobs._requests_pipeline, timeout=60))
            start = done.get(file, 0)
            fresh = text[start:]
            if not ended:
                fresh = fresh[: fresh.rfind("\n") + 1]  # a line still being written waits
            if not fresh:
                continue
            done[file] = start + len(fresh)
            prefix = prefix_for(file, nodes, per_node)
            batch.extend(prefix + (line if line.endswith("\n") else line + "\n") for line in fresh.splitlines(keepends=True))
        if first and tail is not None:
            batch = batch[-tail:] if tail else []
        first = False
        yield from batch
        if not follow or ended:
            return
        sleep(poll)
