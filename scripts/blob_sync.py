#!/usr/bin/env python3
"""Inside a Singularity job: mirror the run's log files to Azure Blob append blobs as they grow.

Standard library only — it runs in the user's image, whatever Python packages that has.

    python blob_sync.py [--dir DIR] [--interval SECONDS] -- COMMAND...

runs COMMAND (singkit's entry wrapper, scripts/singkit_entry.py, around the user's command)
with SINGKIT_RUN_DIR=DIR (default .singkit-run/rank<RANK>), so the wrapper writes the run's
run.log, stdout.log and stderr.log there while keeping the console for Azure ML's own logs,
and every few seconds appends what is new in those files to blobs named
    <SINGKIT_BLOB_PREFIX>/<file>              on rank 0 (or a single process)
    <SINGKIT_BLOB_PREFIX>/ranks/<R>/<file>    on other ranks of a distributed run
in the container at SINGKIT_BLOB_URL (`https://<account>.blob.../<container>`). run.log is
only ever appended in whole lines, so concurrent writers never tear each other's lines.

Credential: SINGKIT_BLOB_SAS (a SAS token passed to the job as a secret; never printed), else
the job's managed identity (IDENTITY_ENDPOINT, MSI_ENDPOINT, or the instance metadata service;
client id from SINGKIT_BLOB_CLIENT_ID or DEFAULT_IDENTITY_CLIENT_ID). Without
SINGKIT_BLOB_URL it only runs COMMAND. Syncing problems are reported on stderr once and never
fail the job: the training run matters more than its mirror.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

API_VERSION = "2021-12-02"
MAX_BLOCK = 4 * 1024 * 1024  # an append block holds at most 4 MiB
# run.log last: once the local store sees a rank's `exit` line, that rank's output is complete
FILES = ("stdout.log", "stderr.log", "run.log")


class AppendBlobs:
    """The few Blob REST calls we need, over urllib: create an append blob, append a block."""

    def __init__(self, container_url: str, sas: str | None = None, client_id: str | None = None):
        self.container_url = container_url.rstrip("/")
        self.sas = (sas or "").lstrip("?")
        self.client_id = client_id
        self._token: tuple[str, float] | None = None

    def _url(self, blob: str, query: str = "") -> str:
        parts = [p for p in (query, self.sas) if p]
        return f"{self.container_url}/{urllib.parse.quote(blob)}" + ("?" + "&".join(parts) if parts else "")

    def _headers(self, extra: dict[str, str]) -> dict[str, str]:
        headers = {"x-ms-version": API_VERSION, "x-ms-date": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()), **extra}
        if not self.sas:
            headers["Authorization"] = "Bearer " + self._bearer()
        return headers

    def _bearer(self) -> str:
        if self._token and self._token[1] > time.time() + 300:
            return self._token[0]
        token, expires = managed_identity_token("https://storage.azure.com/", self.client_id)
        self._token = (token, expires)
        return token

    def _send(self, method: str, url: str, data: bytes, headers: dict[str, str]) -> int:
        request = urllib.request.Request(url, data=data, method=method, headers=self._headers(headers))
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def create(self, blob: str) -> None:
        """Create the append blob unless it exists (a restarted job keeps appending)."""
        status = self._send("PUT", self._url(blob), b"", {"x-ms-blob-type": "AppendBlob", "If-None-Match": "*", "Content-Length": "0"})
        if status == 403 and self.sas:
            # singkit's SAS may create but not write: for a blob that exists already (a requeued
            # job starting again) that is a 403, not a 409. The append that follows tells.
            return
        if status not in (201, 409, 412):
            raise OSError(f"creating blob {blob}: HTTP {status}")

    def append(self, blob: str, data: bytes) -> None:
        for start in range(0, len(data), MAX_BLOCK):
            chunk = data[start:start + MAX_BLOCK]
            status = self._send("PUT", self._url(blob, "comp=appendblock"), chunk, {"Content-Length": str(len(chunk))})
            if status != 201:
                raise OSError(f"appending to blob {blob}: HTTP {status}")


def managed_identity_token(resource: str, client_id: str | None = None) -> tuple[str, float]:
    """A token for `resource` from whichever managed-identity endpoint this machine offers."""
    query = {"resource": resource}
    if client_id:
        query["client_id"] = client_id
    if os.environ.get("IDENTITY_ENDPOINT") and os.environ.get("IDENTITY_HEADER"):
        url = os.environ["IDENTITY_ENDPOINT"] + "?" + urllib.parse.urlencode({**query, "api-version": "2019-08-01"})
        headers = {"X-IDENTITY-HEADER": os.environ["IDENTITY_HEADER"]}
    elif os.environ.get("MSI_ENDPOINT"):
        url = os.environ["MSI_ENDPOINT"] + "?" + urllib.parse.urlencode({**query, "api-version": "2017-09-01"})
        headers = {"secret": os.environ.get("MSI_SECRET", "")}
    else:
        url = "http://169.254.169.254/metadata/identity/oauth2/token?" + urllib.parse.urlencode({**query, "api-version": "2018-02-01"})
        headers = {"Metadata": "true"}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
        body = json.loads(response.read())
    return body["access_token"], float(body.get("expires_on") or time.time() + 3600)


class Mirror:
    """Follows files in a folder and appends their new bytes to blobs."""

    def __init__(self, blobs: AppendBlobs, folder: str, prefix: str, whole_lines: tuple[str, ...] = ("run.log",)):
        self.blobs, self.folder, self.prefix = blobs, folder, prefix.strip("/")
        self.whole_lines = whole_lines
        self.offsets: dict[str, int] = {}
        self.created: set[str] = set()
        self.warned = False
        self.lock = threading.Lock()  # the background round and the final one never overlap

    def sync_once(self, final: bool = False) -> None:
        with self.lock:
            self._sync_all(final)

    def _sync_all(self, final: bool) -> None:
        for name in FILES:
            path = os.path.join(self.folder, name)
            if not os.path.exists(path):
                continue
            try:
                self._sync_file(name, path, final)
            except Exception as error:  # noqa: BLE001 - never let the mirror take the job down
                # OSError/URLError, http.client.HTTPException (a garbled answer), KeyError or
                # ValueError from a managed-identity endpoint's reply...: one line, then go on
                if not self.warned:
                    why = str(error) if isinstance(error, OSError) else f"{type(error).__name__}: {error}"
                    print(f"singkit blob_sync: cannot mirror logs to blob storage: {' '.join(why.split())[:300]}",
                          file=sys.stderr, flush=True)
                    self.warned = True

    def _sync_file(self, name: str, path: str, final: bool) -> None:
        start = self.offsets.get(name, 0)
        with open(path, "rb") as handle:
            handle.seek(start)
            data = handle.read()
        if name in self.whole_lines and not final:
            data = data[: data.rfind(b"\n") + 1]  # a line still being written waits for the next round
        blob = f"{self.prefix}/{name}"
        if blob not in self.created:
            self.blobs.create(blob)
            self.created.add(blob)
        if data:
            if name in self.whole_lines and not data.endswith(b"\n"):
                data += b"\n"
            self.blobs.append(blob, data)
            self.offsets[name] = start + len(data)

    def run_in_background(self, interval: float) -> tuple[threading.Event, threading.Thread]:
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(interval):
                self.sync_once()

        thread = threading.Thread(target=loop, name="singkit-blob-sync", daemon=True)
        thread.start()
        return stop, thread


def rank_prefix(prefix: str, environ: dict[str, str]) -> str:
    rank = environ.get("RANK") or environ.get("OMPI_COMM_WORLD_RANK") or "0"
    return prefix if rank in ("", "0") else f"{prefix.rstrip('/')}/ranks/{rank}"


def child_environ(folder: str, environ: dict[str, str]) -> dict[str, str]:
    """What COMMAND sees: the run folder, the node number on multi-node runs, never the SAS."""
    env = {k: v for k, v in environ.items() if k != "SINGKIT_BLOB_SAS"}
    env.setdefault("SINGKIT_RUN_DIR", os.path.abspath(folder))
    env.setdefault("SINGKIT_RUN_LOG", os.path.join(os.path.abspath(folder), "run.log"))
    nodes = environ.get("AZUREML_NODE_COUNT") or environ.get("SINGKIT_NODES") or "1"
    if nodes.isdigit() and int(nodes) > 1 and environ.get("NODE_RANK", "").isdigit():
        env.setdefault("SINGKIT_NODE", environ["NODE_RANK"])
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=None, help="folder the run's log files are written in")
    parser.add_argument("--interval", type=float, default=float(os.environ.get("SINGKIT_SYNC_INTERVAL", "10")))
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given after --")
    rank = os.environ.get("RANK", "0") or "0"
    folder = args.dir or os.path.join(os.environ.get("SINGKIT_SYNC_DIR", ".singkit-run"), f"rank{rank}")
    os.makedirs(folder, exist_ok=True)

    mirror = None
    url = os.environ.get("SINGKIT_BLOB_URL")
    if url:
        blobs = AppendBlobs(url, os.environ.get("SINGKIT_BLOB_SAS"),
                            os.environ.get("SINGKIT_BLOB_CLIENT_ID") or os.environ.get("DEFAULT_IDENTITY_CLIENT_ID"))
        mirror = Mirror(blobs, folder, rank_prefix(os.environ.get("SINGKIT_BLOB_PREFIX", "runs/unknown"), dict(os.environ)))
        mirror.sync_once()
        stop, thread = mirror.run_in_background(args.interval)

    # COMMAND (singkit's entry wrapper) writes the run's files itself and keeps the console.
    child = subprocess.Popen(command, env=child_environ(folder, dict(os.environ)))

    def forward(signum: int, _frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    code = child.wait()
    if mirror:
        stop.set()
        thread.join(timeout=60)
        mirror.sync_once(final=True)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
