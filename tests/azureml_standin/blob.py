"""Blob storage for the stand-in: Azurite, reached the way the SDK reaches Azure.

azure-ai-ml builds storage URLs itself as ``https://<account>.blob.<suffix>``
(the suffix comes from the cloud metadata), so a loopback Azurite at
``http://127.0.0.1:<port>/<account>`` is not reachable by configuration alone.
The stand-in therefore runs a small HTTP CONNECT proxy (clients use it through
HTTPS_PROXY, with NO_PROXY covering 127.0.0.1): tunnels to
``<account>.blob.core.standin.test`` are TLS-terminated with the stand-in's
certificate and relayed in plain HTTP to Azurite, which accepts such
"production-style" host names. Tunnels to management.azure.com are relayed to
the stand-in itself (a few SDK paths hard-code that host).
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import urlsplit

log = logging.getLogger("azureml_standin")

AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's documented well-known development key (public, not a secret).
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
APPEND_BLOCK = 4 * 1024 * 1024  # the Append Block size limit of older service versions (and Azurite's)
STORAGE_SUFFIX = "core.standin.test"  # must contain "core." for azure-storage-blob to find the account


class Azurite:
    """The stand-in's storage account: containers, blob writes, SAS, public URLs."""

    def __init__(self, endpoint: str, account: str = AZURITE_ACCOUNT, key: str = AZURITE_KEY) -> None:
        self.endpoint = endpoint.rstrip("/")  # http://127.0.0.1:10000/devstoreaccount1
        self.account, self.key = account, key
        parts = urlsplit(self.endpoint)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.public_host = f"{account}.blob.{STORAGE_SUFFIX}"
        self._service = None

    @property
    def service(self):
        if self._service is None:
            from azure.storage.blob import BlobServiceClient

            self._service = BlobServiceClient(
                self.endpoint, credential={"account_name": self.account, "account_key": self.key}
            )
        return self._service

    def ensure_container(self, name: str) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            self.service.create_container(name)
        except ResourceExistsError:
            pass

    def put(self, container: str, blob: str, data: bytes | str) -> None:
        self.service.get_blob_client(container, blob).upload_blob(data, overwrite=True)

    def append(self, container: str, blob: str, data: bytes | str, fresh: bool = False) -> None:
        """Append to an append blob; `fresh` first replaces it (delete, create: a new creation time)."""
        from azure.core.exceptions import ResourceNotFoundError

        client = self.service.get_blob_client(container, blob)
        if fresh:
            try:
                client.delete_blob()
            except ResourceNotFoundError:
                pass
            client.create_append_blob()
        data = data.encode() if isinstance(data, str) else data
        for start in range(0, len(data), APPEND_BLOCK):
            client.append_block(data[start:start + APPEND_BLOCK])

    def get(self, container: str, blob: str) -> bytes:
        return self.service.get_blob_client(container, blob).download_blob().readall()

    def names(self, container: str, prefix: str = "") -> list[str]:
        return sorted(b.name for b in self.service.get_container_client(container).list_blobs(prefix))

    def container_sas(self, container: str, write: bool = False) -> str:
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        perms = ContainerSasPermissions(read=True, list=True, write=write, create=write, add=write)
        return generate_container_sas(
            self.account, container, account_key=self.key, permission=perms,
            expiry=datetime.now(timezone.utc) + timedelta(hours=2),
        )

    def blob_sas(self, container: str, blob: str) -> str:
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        return generate_blob_sas(
            self.account, container, blob, account_key=self.key, permission=BlobSasPermissions(read=True),
            expiry=datetime.now(timezone.utc) + timedelta(hours=2),
        )

    def public_url(self, container: str, blob: str = "") -> str:
        """The URL as Azure would spell it (reached through the proxy)."""
        return f"https://{self.public_host}/{container}" + (f"/{blob}" if blob else "")


class RequestTap:
    """Reads the HTTP/1.1 requests in a client's byte stream to the blob host (the tunnel is
    TLS-terminated here, so they are plain text): method, path and Range header of each, to
    `on_request`. Bodies are skipped by Content-Length; a chunked body ends the tap (the
    storage SDK sends Content-Length; nothing the tests read uses chunked uploads)."""

    def __init__(self, on_request: Callable[[str, str, "str | None"], None]) -> None:
        self.on_request = on_request
        self.buffer = b""
        self.skip = 0  # body bytes of the current request still to come
        self.off = False

    def feed(self, data: bytes) -> None:
        if self.off:
            return
        self.buffer += data
        while True:
            if self.skip:
                taken = min(self.skip, len(self.buffer))
                self.skip -= taken
                self.buffer = self.buffer[taken:]
                if self.skip:
                    return
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[:end].decode("latin-1"), self.buffer[end + 4:]
            line, *fields = head.split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
            method, _, rest = line.partition(" ")
            path = rest.rsplit(" ", 1)[0].split("?", 1)[0]
            self.on_request(method, path, headers.get("x-ms-range") or headers.get("range"))
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self.off = True
                return
            self.skip = int(headers.get("content-length") or 0)


def _relay(a: socket.socket, b: socket.socket, tap: "RequestTap | None" = None,
           count_down: "Callable[[int], None] | None" = None) -> None:
    """Copy bytes both ways until either side closes (single thread: safe for SSL sockets).
    `tap` sees what `a` (the client) sends; `count_down` counts what `b` sends back."""
    socks = [a, b]
    try:
        while True:
            ready = [s for s in socks if isinstance(s, ssl.SSLSocket) and s.pending()]
            if not ready:
                ready, _, _ = select.select(socks, [], [], 60)
                if not ready:
                    return
            for src in ready:
                data = src.recv(65536)
                if not data:
                    return
                if src is a and tap is not None:
                    tap.feed(data)
                elif src is b and count_down is not None:
                    count_down(len(data))
                (b if src is a else a).sendall(data)
    except (OSError, ssl.SSLError):
        return


class ConnectProxy(ThreadingHTTPServer):
    """Plain-HTTP CONNECT proxy on 127.0.0.1 (see module docstring)."""

    daemon_threads = True

    def __init__(self, blob_suffix: str, blob_upstream: tuple[str, int], tls: ssl.SSLContext,
                 self_upstream: Callable[[], tuple[str, int]], self_hosts: set[str],
                 on_refused: Callable[[str], None],
                 on_blob_request: "Callable[[str, str, str | None], None] | None" = None,
                 on_blob_bytes: "Callable[[int], None] | None" = None) -> None:
        self.on_blob_request, self.on_blob_bytes = on_blob_request, on_blob_bytes
        self.blob_suffix = "." + blob_suffix.lower()
        self.blob_upstream = blob_upstream
        self.tls = tls
        self.self_upstream = self_upstream
        self.self_hosts = self_hosts
        self.on_refused = on_refused
        super().__init__(("127.0.0.1", 0), _ProxyHandler)


class _ProxyHandler(BaseHTTPRequestHandler):
    server: ConnectProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args) -> None:
        log.debug("proxy: " + fmt, *args)

    def do_CONNECT(self) -> None:
        host = self.path.rsplit(":", 1)[0].lower()
        srv = self.server
        if host.endswith(srv.blob_suffix):
            upstream, terminate = srv.blob_upstream, True
        elif host in srv.self_hosts:
            upstream, terminate = srv.self_upstream(), False
        else:
            srv.on_refused(f"CONNECT {self.path}")
            self.send_error(502, f"azureml-standin proxy does not reach {host}")
            return
        try:
            up = socket.create_connection(upstream, timeout=30)
        except OSError as exc:
            self.send_error(502, f"upstream {upstream} unreachable: {exc}")
            return
        self.send_response(200, "Connection Established")
        self.end_headers()
        self.close_connection = True
        client: socket.socket = self.connection
        try:
            if terminate:
                client = srv.tls.wrap_socket(self.connection, server_side=True)
                tap = RequestTap(srv.on_blob_request) if srv.on_blob_request else None
                _relay(client, up, tap, srv.on_blob_bytes)
            else:
                _relay(client, up)
        except (OSError, ssl.SSLError) as exc:
            log.debug("proxy tunnel to %s ended: %s", host, exc)
        finally:
            up.close()

    def _refuse(self) -> None:
        self.server.on_refused(f"{self.command} {self.path}")
        self.send_error(502, "azureml-standin proxy only tunnels (CONNECT)")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _refuse


def start_proxy(proxy: ConnectProxy) -> threading.Thread:
    thread = threading.Thread(target=proxy.serve_forever, args=(0.05,), name="azureml-standin-proxy", daemon=True)
    thread.start()
    return thread
