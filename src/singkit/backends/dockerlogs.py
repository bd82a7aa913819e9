"""Saving a docker run's output, and following it again after the engine connection was lost.

The runner attaches to a container before starting it and appends what comes to stdout.log and
stderr.log, counting the bytes of each. When the connection goes (a restarted proxy or engine,
a flaky network) the container runs on; once the engine answers again `catch_up` follows its
logs from their start, skipping the bytes already saved, so nothing is written twice or lost.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from singkit.store import Run


def copy_stream(run: Run, stream: Any, written: list[int]) -> None:
    """Append a demuxed attach stream of (stdout, stderr) chunks to stdout.log/stderr.log;
    `written` counts the bytes saved of each."""
    with open(run.stdout_path, "ab", buffering=0) as out, open(run.stderr_path, "ab", buffering=0) as err:
        for chunks in stream:
            for k, (chunk, sink) in enumerate(zip(chunks, (out, err))):
                if chunk:
                    sink.write(chunk)
                    written[k] += len(chunk)


def catch_up(client: Any, run: Run, container_id: str, written: list[int]) -> None:
    """Follow the container's logs to its end, appending to stdout.log/stderr.log what
    lies past the `written` bytes already saved (the engine replays each stream from its
    start). `logs(follow=True)`, one stream per thread, not attach: an attach with logs=True
    to a container that has exited never returns. Raises what the connection raises."""
    failures: list[BaseException] = []

    def pump(k: int) -> None:
        path = (run.stdout_path, run.stderr_path)[k]
        try:
            seen = 0
            with open(path, "ab", buffering=0) as sink:
                for chunk in client.api.logs(container_id, stdout=k == 0, stderr=k == 1, stream=True, follow=True):
                    skip = max(0, min(len(chunk), written[k] - seen))
                    seen += len(chunk)
                    if skip < len(chunk):
                        sink.write(chunk[skip:])
                        written[k] += len(chunk) - skip
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            failures.append(error)

    threads = [threading.Thread(target=pump, args=(k,), daemon=True) for k in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def lost_connection() -> tuple[type[BaseException], ...]:
    """What a connection to the engine that went away raises, mid-call or mid-stream (requests'
    and urllib3's errors, a reset socket): never the run's outcome. A full disk or a refusal by
    the engine (docker.errors.APIError) is not among them."""
    import requests
    import urllib3

    return (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
            urllib3.exceptions.ProtocolError, ConnectionError)
