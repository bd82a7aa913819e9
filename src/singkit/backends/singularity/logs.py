"""Following an Azure ML job's user logs, with a node/rank prefix when there are several.

Azure ML lists a run's log files with their (SAS) URLs in its run-history details; user output
is `user_logs/std_log.txt` for one process and `user_logs/std_log_process_<R>.txt` (or with a
`node_<N>` part) for distributed runs. Each URL is a read SAS on one blob of the workspace's
artifact store (azure-ai-ml's `jobs.stream`, `operations/_job_ops_helper.py`, downloads the
same URLs, in full, every poll).

singkit reads each file from where it stopped: one Get Blob with a Range from the last offset
(azure-storage-blob `download_blob(offset=...)`, which sends `x-ms-range: bytes=<offset>-`;
"Specify the range header for Get Blob operations", Microsoft Learn), so a poll costs the new
bytes, not the size of the log: the same on day 7 of an 8-rank run as on day 1.

A preempted and requeued run may start a fresh log under the same name. The follower notices
and starts that file again from its first byte, when
- the blob is now shorter than what was read (the Range is unsatisfiable: 416), or
- its creation time (`x-ms-creation-time`) changed, or
- the OVERLAP bytes just before the offset, re-read with each poll, are not the bytes read there
  last time (a rewrite within the creation time's one-second resolution).
The ETag alone cannot tell: it changes with every append to a growing log.
A paused or preempted job is followed on: only Completed, Failed, Canceled and NotResponding end it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from singkit.backends.singularity.status import AZURE_FINAL

USER_LOG = re.compile(r"^user_logs/std_log.*\.txt$")
# the job has stopped for good: read the logs one last time, then stop following
AZURE_TERMINAL = AZURE_FINAL
OVERLAP = 64  # bytes re-read before the offset each poll, to notice a replaced log (see above)
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


@dataclass
class LogCursor:
    """Where the follower is in one log blob."""

    offset: int = 0  # bytes of the blob read so far
    created: Any = None  # the blob's creation time (datetime) when last read
    tail: bytes = b""  # the last OVERLAP (or fewer) bytes read, ending at `offset`
    pending: bytes = b""  # read bytes after the last newline: a line still being written
    restarts: int = 0  # times the service started this log afresh


class RangeReader:
    """New bytes of log blobs, by Range GETs on their SAS URLs over one shared connection pool.

    read(url, cursor) -> bytes appended since the cursor (the whole blob when it was replaced,
    with cursor.restarts counted up and the old pending bytes returned first).
    Raises azure.core.exceptions.HttpResponseError for service failures other than a missing
    blob (listed but not written yet: no bytes) or an unsatisfiable Range (the log shrank)."""

    def __init__(self, environ: Any = None):
        from azure.core.pipeline.transport import RequestsTransport

        from singkit.timeouts import blob_client_options

        # timeouts from SINGKIT_HTTP_TIMEOUT; no storage retries of its own: follow_logs' `call`
        # retries each read (the SDK's 15/18/24 s back-offs under it made an outage take minutes)
        options = blob_client_options(environ if environ is not None else {}, retries=0)
        self.options = {k: v for k, v in options.items() if not k.endswith("_timeout")}
        self.transport = RequestsTransport(connection_timeout=options["connection_timeout"],
                                           read_timeout=options["read_timeout"])

    def close(self) -> None:
        self.transport.close()

    def _get(self, url: str, start: int) -> tuple[bytes, Any] | None:
        """(bytes from `start` to the end, creation time), or None when the blob is shorter
        than `start`. A missing blob reads as empty."""
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
        from azure.storage.blob import BlobClient

        client = BlobClient.from_blob_url(url, transport=self.transport, **self.options)
        try:
            # offset=None on a fresh file: the SDK then reads an empty blob too (a 416 on
            # bytes=0- is its signal to ask without a Range); the Range is still 0-<32 MiB>
            stream = client.download_blob(offset=start or None)
        except ResourceNotFoundError:
            return b"", None
        except HttpResponseError as error:
            if error.status_code == 416:
                return None
            raise
        return stream.readall(), stream.properties.creation_time

    def read(self, url: str, cursor: LogCursor) -> bytes:
        keep = min(cursor.offset, OVERLAP)
        got = self._get(url, cursor.offset - keep)
        if got is not None:
            data, created = got
            same = data[:keep] == cursor.tail[-keep:] if keep else True
            if same and (cursor.created is None or created is None or created == cursor.created):
                fresh = data[keep:]
                cursor.created = created or cursor.created
                self._advance(cursor, fresh)
                return fresh
        if cursor.offset == 0:  # nothing read yet: nothing to start again
            return b""
        # a fresh log: start it from its first byte; an old unfinished line ends here. Read
        # before the cursor changes, so a failed read (retried by the caller) starts over whole.
        got = self._get(url, 0)
        data, created = got if got is not None else (b"", None)
        flushed = cursor.pending + b"\n" if cursor.pending else b""
        cursor.offset, cursor.tail, cursor.pending, cursor.created = 0, b"", b"", created
        cursor.restarts += 1
        self._advance(cursor, data)
        return flushed + data

    @staticmethod
    def _advance(cursor: LogCursor, data: bytes) -> None:
        cursor.offset += len(data)
        cursor.tail = (cursor.tail + data)[-OVERLAP:]


_SAS_QUERY = re.compile(r"\?[^\s'\"]*sig=[^\s'\")]*")


def sas_safe(what: str, fn: Callable[[], bytes]) -> bytes:
    """fn(), with any failure whose text holds a SAS query (a connection error quotes the URL it
    failed on) turned into a ServiceError saying `what`, the query replaced by `?<SAS>`: a
    SAS is a credential, never shown."""
    try:
        return fn()
    except Exception as error:
        text = " ".join(str(error).split())
        if "sig=" not in text:
            raise
        from singkit.exceptions import ServiceError

        raise ServiceError(f"{what}: {_SAS_QUERY.sub('?<SAS>', text)[:300]}") from None


def _lines(cursor: LogCursor, data: bytes, final: bool) -> list[str]:
    """Complete lines of `cursor.pending + data` (all of it when `final`); keeps the rest pending."""
    buffer = cursor.pending + data
    end = len(buffer) if final else buffer.rfind(b"\n") + 1
    cursor.pending = buffer[end:]
    # a newline never occurs inside a UTF-8 sequence: complete lines decode whole
    return buffer[:end].decode("utf-8", "replace").splitlines(keepends=True)


def follow_logs(client: Any, name: str, *, follow: bool, nodes: int = 1, per_node: int = 1,
                poll: float = 5.0, call: Callable[..., Any], sleep: Callable[[float], None] = time.sleep,
                tail: int | None = None, reader: RangeReader | None = None, environ: Any = None) -> Iterator[str]:
    """Lines of the job's user logs (each ending in a newline): the last `tail` of what is
    there now (all if None), then with follow, new lines until the job ends (through
    preemptions and requeues). `poll` is seconds between polls. `call(what, fn)` runs a
    service call and turns its failures into singkit's ServiceError. `environ` sets the Blob
    reads' timeouts (SINGKIT_HTTP_TIMEOUT)."""
    own = reader is None
    reader = reader or RangeReader(environ)
    cursors: dict[str, LogCursor] = {}
    first = True
    try:
        while True:
            batch: list[str] = []
            details = call(f"reading the logs of {name}", lambda: client.jobs._runs_operations.get_run_details(name))
            ended = str(getattr(details, "status", "") or "").lower() in AZURE_TERMINAL
            files = {k: v for k, v in (getattr(details, "log_files", None) or {}).items() if USER_LOG.match(k)}
            for file in sorted(files, key=_order):
                cursor = cursors.setdefault(file, LogCursor())
                what = f"reading {file} of {name}"
                data = call(what, lambda url=files[file], c=cursor, w=what: sas_safe(w, lambda: reader.read(url, c)))
                prefix = prefix_for(file, nodes, per_node)
                batch.extend(prefix + (line if line.endswith("\n") else line + "\n")
                             for line in _lines(cursor, data, ended))
            if first and tail is not None:
                batch = batch[-tail:] if tail else []
            first = False
            yield from batch
            if not follow or ended:
                return
            sleep(poll)
    finally:
        if own:
            reader.close()
