"""The loopback HTTPS stand-in for the Azure ML REST API (see package docstring)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import ssl
import tempfile
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional
from urllib.parse import parse_qsl, unquote, urlsplit

from . import routes_arm, routes_compute, routes_connections, routes_data, routes_vc  # noqa: F401  (registers the routes)
from .blob import AZURITE_ACCOUNT, AZURITE_KEY, STORAGE_SUFFIX, Azurite, ConnectProxy, start_proxy
from .certs import make_tls_files
from .credential import TENANT_ID, StandinCredential
from .routing import Reply, Req, find
from .state import State

log = logging.getLogger("azureml_standin")

# Hosts some SDK code paths hard-code (e.g. the vendored ResourceManagementClient
# used for virtual-cluster lookups); the proxy relays them to the stand-in.
HARDCODED_ARM_HOSTS = {"management.azure.com"}


class _TlsServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, standin: "StandIn", tls: ssl.SSLContext) -> None:
        self.standin, self.tls = standin, tls
        super().__init__(("127.0.0.1", 0), _Handler)

    def finish_request(self, request, client_address) -> None:
        # Handshake here, on the connection's own thread, not in the accept loop.
        try:
            request = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake from %s failed: %s", client_address, exc)
            return
        super().finish_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _TlsServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: avoid a 40 ms stall

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug(fmt, *args)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while (size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)) > 0:
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        si = self.server.standin
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        raw = self._body()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        headers = {k.lower(): v for k, v in self.headers.items()}
        entry = si.state.record(self.command, path, query, body, headers)
        hold = si.state.take_hold(self.command, path)
        if hold is not None and not hold.handled:
            hold.arrived.set()
            hold.released.wait()
            entry.route, self.close_connection = "held-and-dropped", True
            return  # no answer, nothing done: the client (if still there) sees the connection close
        fault = si.state.take_fault(self.command, path)
        if fault is not None and fault.handled:
            found = find(self.command, path)
            if found is not None:
                found[1](si, Req(self.command, path, query, body, headers), found[2])
        if fault is not None and fault.status == 0:  # a connection reset: no answer at all
            entry.route, self.close_connection = "fault-dropped", True
            return
        if fault is not None:
            reply = Reply(fault.status, fault.body or {"error": {
                "code": {401: "AuthenticationFailed", 403: "AuthorizationFailed", 404: "ResourceNotFound",
                         409: "Conflict", 429: "TooManyRequests", 503: "ServiceUnavailable"}.get(
                    fault.status, "InternalServerError"),
                "message": f"Injected by azureml-standin: HTTP {fault.status}."}})
            if fault.retry_after is not None:
                reply.headers["Retry-After"] = fault.retry_after
            entry.route = "fault"
        else:
            found = find(self.command, path)
            if found is None:
                line = f"{self.command} {self.path}"
                si.state.unhandled.append(line)
                log.warning("azureml-standin: no route for %s -> 404 (add one in tests/azureml_standin/routes_*.py)",
                            line)
                reply = Reply(404, {"error": {"code": "NoRoute", "message": f"azureml-standin has no route for {line}"}})
            else:
                entry.route, handler, match = found
                try:
                    reply = handler(si, Req(self.command, path, query, body, headers), match)
                except Exception:  # a stand-in bug must show up in the test, not hang it
                    log.error("azureml-standin route %s crashed:\n%s", entry.route, traceback.format_exc())
                    si.state.unhandled.append(f"crash in {entry.route}: {self.command} {self.path}")
                    reply = Reply(500, {"error": {"code": "StandinCrash", "message": traceback.format_exc()}})
        entry.status = reply.status
        if hold is not None:  # carried out; the answer waits
            hold.arrived.set()
            hold.released.wait()
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        if isinstance(reply.body, (dict, list)):
            data, ctype = json.dumps(reply.body).encode(), "application/json; charset=utf-8"
        elif isinstance(reply.body, str):
            data, ctype = reply.body.encode(), "text/plain; charset=utf-8"
        else:
            data, ctype = reply.body or b"", "application/octet-stream"
        self.send_response(reply.status)
        if data:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = _handle


class StandIn:
    """An Azure ML workspace on loopback. ``start()``, point the SDK at it, ``stop()``.

    ``blob_endpoint`` is an Azurite blob endpoint, e.g. ``http://127.0.0.1:10000/devstoreaccount1``.
    """

    def __init__(self, blob_endpoint: str, account_name: str = AZURITE_ACCOUNT, account_key: str = AZURITE_KEY,
                 *, subscription_id: str = "00000000-0000-4000-8000-000000005ab5",
                 resource_group: str = "singkit-rg", workspace: str = "singkit-ws", location: str = "eastus",
                 workdir: Optional[Path] = None) -> None:
        self.subscription_id, self.resource_group, self.workspace = subscription_id, resource_group, workspace
        self.location = location
        self.tenant_id = TENANT_ID
        self.workspace_guid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{subscription_id}/{resource_group}/{workspace}"))
        self.workspace_id = (f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
                             f"/providers/Microsoft.MachineLearningServices/workspaces/{workspace}")
        self.blobstore_container = f"azureml-blobstore-{self.workspace_guid}"
        self.storage_suffix = STORAGE_SUFFIX
        self.azurite = Azurite(blob_endpoint, account_name, account_key)
        self.state = State()
        self.state.on_log = self._mirror_log
        self.virtual_clusters: dict[tuple[str, str, str], Any] = {}
        self.user_identities: dict[str, str] = {}  # user-assigned identity ARM id -> client id (workspace GET)
        self.datastores: dict[str, str] = {}  # datastores added by tests (add_datastore): name -> blob container
        self.container_registry: Optional[str] = None  # the workspace's ACR, an ARM id (workspace GET)
        self.connections: dict[str, dict] = {}  # workspace connections by name, secrets kept (routes_connections)
        self.computes: dict[str, routes_compute.ComputeCluster] = {}  # AmlCompute clusters by lower-case name
        # the default cluster holds quota in every series the stand-in's catalog has
        self.add_virtual_cluster("singkit-vc", {series: {"Premium": 64, "Standard": 64, "Basic": 64}
                                               for series in dict.fromkeys(row[1] for row in routes_vc.INSTANCE_TYPES)})
        self.set_container_registry("singkit")  # singkit.azurecr.io: the registry the tests' projects use
        self.started_at = time.time()
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="azureml-standin-"))
        self._server: Optional[_TlsServer] = None
        self._proxy: Optional[ConnectProxy] = None
        self.url = self.proxy_url = self.cloud_name = ""

    # --- lifecycle -------------------------------------------------------------
    def start(self) -> "StandIn":
        tls_files = make_tls_files(self.workdir / "tls", [
            "localhost", f"*.blob.{STORAGE_SUFFIX}", *HARDCODED_ARM_HOSTS], ["127.0.0.1"])
        self.ca_bundle = tls_files.ca_cert
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(tls_files.cert, tls_files.key)
        self._server = _TlsServer(self, tls)
        port = self._server.server_address[1]
        self.url = f"https://127.0.0.1:{port}"
        # A per-server cloud name: the SDK caches clouds by name in a module global.
        self.cloud_name = f"AzureMLStandin{port}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="azureml-standin", daemon=True).start()
        self._proxy = ConnectProxy(STORAGE_SUFFIX, self.azurite.address, tls,
                                   lambda: ("127.0.0.1", port), HARDCODED_ARM_HOSTS, self._refused,
                                   self.state.record_blob, self.state.count_blob_bytes)
        start_proxy(self._proxy)
        self.proxy_url = f"http://127.0.0.1:{self._proxy.server_address[1]}"
        for container in (self.blobstore_container, routes_arm.ARTIFACT_CONTAINER):
            self.azurite.ensure_container(container)
        log.info("azureml-standin listening on %s (proxy %s)", self.url, self.proxy_url)
        return self

    def stop(self) -> None:
        with self.state.lock:  # let held requests go, or shutdown waits on them
            for hold in self.state.holds:
                hold.release()
        for srv in (self._proxy, self._server):
            if srv is not None:
                srv.shutdown()
                srv.server_close()
        self._proxy = self._server = None
        try:  # forget the cloud MLClient(cloud=..., cloud_metadata=...) registered
            from azure.ai.ml import _azure_environments

            _azure_environments._environments.pop(self.cloud_name, None)
        except ImportError:
            pass
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "StandIn":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _refused(self, what: str) -> None:
        self.state.unhandled.append(f"proxy: {what}")
        log.warning("azureml-standin proxy refused %s (only the blob host and %s are reachable)",
                    what, ", ".join(sorted(HARDCODED_ARM_HOSTS)))

    # --- how clients connect -------------------------------------------------
    @property
    def metadata_url(self) -> str:
        return f"{self.url}/metadata/endpoints?api-version=2019-05-01"

    @property
    def cloud_metadata(self) -> dict[str, str]:
        """For ``MLClient(..., cloud=si.cloud_name, cloud_metadata=si.cloud_metadata)``."""
        return {"azure_portal": self.url + "/", "resource_manager": self.url + "/",
                "active_directory": self.url + "/", "aml_resource_id": self.url + "/",
                "storage_endpoint": self.storage_suffix, "registry_discovery_endpoint": self.url + "/"}

    def environ(self) -> dict[str, str]:
        """Environment variables a process needs to reach the stand-in with stock SDK code."""
        no_proxy = ",".join(x for x in ("127.0.0.1", "localhost", os.environ.get("NO_PROXY", "")) if x)
        return {"ARM_CLOUD_METADATA_URL": self.metadata_url, "REQUESTS_CA_BUNDLE": str(self.ca_bundle),
                "SSL_CERT_FILE": str(self.ca_bundle), "HTTPS_PROXY": self.proxy_url,
                "https_proxy": self.proxy_url, "NO_PROXY": no_proxy, "no_proxy": no_proxy,
                "AZUREML_LOG_LEVEL": "WARNING"}

    def credential(self) -> StandinCredential:
        return StandinCredential(tenant_id=self.tenant_id)

    def ml_client(self, credential: Any = None, **kwargs: Any):
        """A stock ``MLClient`` for the stand-in's workspace (needs ``environ()`` applied)."""
        from azure.ai.ml import MLClient

        kwargs.setdefault("show_progress", False)
        kwargs.setdefault("enable_telemetry", False)
        return MLClient(credential or self.credential(), self.subscription_id, self.resource_group,
                        self.workspace, **kwargs)

    def virtual_cluster_id(self, name: str = "singkit-vc", subscription_id: str = "", resource_group: str = "") -> str:
        return (f"/subscriptions/{subscription_id or self.subscription_id}/resourceGroups/{resource_group or self.resource_group}"
                f"/providers/Microsoft.MachineLearningServices/virtualclusters/{name}")

    def add_virtual_cluster(self, name: str, quota: dict[str, dict[str, int]], locations: Optional[list[str]] = None,
                            subscription_id: str = "", resource_group: str = "", user_cap: Optional[dict[str, int]] = None):
        """A virtual cluster holding `quota` ({series: {"Premium": n, ...}}) in `locations`
        (default: the stand-in's location); it offers the instance types of those series."""
        vc = routes_vc.VirtualCluster(name, list(locations or [self.location]), quota,
                                      subscription_id or self.subscription_id, resource_group or self.resource_group,
                                      dict(user_cap or {}))
        with self.state.lock:
            self.virtual_clusters[(vc.subscription_id.lower(), vc.resource_group.lower(), name.lower())] = vc
        return vc

    def add_user_identity(self, name: str, client_id: str) -> str:
        """Attach a user-assigned identity to the workspace; returns its ARM id."""
        arm = (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
               f"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}")
        self.user_identities[arm] = client_id
        return arm

    def add_datastore(self, name: str, container: str = "") -> str:
        """A blob datastore in the workspace (beside workspaceblobstore/workspaceartifactstore), on
        an Azurite container of its own; a job whose input/output names another is refused."""
        container = container or f"ds-{name.lower().replace('_', '-')}"[:63]
        self.azurite.ensure_container(container)
        with self.state.lock:
            self.datastores[name] = container
        return container

    def set_container_registry(self, name: str) -> str:
        """Give the workspace the ACR `name` (its `containerRegistry`); returns the ACR's ARM id."""
        self.container_registry = (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
                                   f"/providers/Microsoft.ContainerRegistry/registries/{name}")
        return self.container_registry

    def add_compute(self, name: str, vm_size: str = "Standard_NC6s_v3", max_nodes: int = 4, tier: str = "dedicated",
                    min_nodes: int = 0):
        """An Azure ML compute cluster (AmlCompute) in the workspace; tier dedicated | low_priority."""
        if tier not in routes_compute.TIERS:
            raise ValueError(f"tier {tier!r}: expected one of {', '.join(routes_compute.TIERS)}")
        cluster = routes_compute.ComputeCluster(name, vm_size, max_nodes, min_nodes, tier)
        with self.state.lock:
            self.computes[name.lower()] = cluster
        return cluster

    def find_compute(self, name: str):
        with self.state.lock:
            return self.computes.get(name.lower())

    def find_virtual_cluster(self, subscription_id: str, resource_group: str, name: str):
        with self.state.lock:
            return self.virtual_clusters.get((subscription_id.lower(), resource_group.lower(), name.lower()))

    # --- state, for tests --------------------------------------------------------
    @property
    def requests(self):
        return self.state.requests

    @property
    def jobs(self):
        return self.state.jobs

    def set_status(self, name: str, status: str, error: Optional[str] = None) -> None:
        self.state.set_status(name, status, error)

    def append_log(self, name: str, text: str, file: str = "user_logs/std_log.txt") -> None:
        self.state.append_log(name, text, file)

    def fail_next(self, route_pattern: str, status: int, times: Optional[int] = 1,
                  retry_after: Optional[float] = None, body: Optional[dict] = None,
                  handled: bool = False) -> None:
        self.state.fail_next(route_pattern, status, times, retry_after, body, handled)

    def hold(self, route_pattern: str, handled: bool = True):
        """Hold the next matching request until ``.release()`` (see state.Hold)."""
        return self.state.hold(route_pattern, handled)

    def script(self, name: str, steps: list) -> None:
        self.state.script(name, steps)

    def storage_down(self, down: bool = True) -> None:
        """The workspace's Blob storage is down (True) or back (False): every tunnel to
        ``*.blob.<suffix>`` is then refused with 502, as a proxy says of an upstream it cannot reach."""
        assert self._proxy is not None, "start() first"
        if down:
            with socket.socket() as closed:  # a port nothing listens on
                closed.bind(("127.0.0.1", 0))
                self._proxy.blob_upstream = closed.getsockname()
        else:
            self._proxy.blob_upstream = self.azurite.address

    def slow_cancel(self, name: str, seconds: float) -> None:
        """The job stays CancelRequested `seconds` after its first cancel request (state.slow_cancel)."""
        self.state.slow_cancel(name, seconds)

    def put_output(self, name: str, path: str, data: bytes | str) -> None:
        """Write a file into the job's run folder (what jobs.download fetches as artifacts)."""
        self.state.job(name)
        self.azurite.put(routes_arm.ARTIFACT_CONTAINER, routes_data.log_blob(name, path), data)

    def job_body(self, name: str) -> dict:
        """The job PUT body exactly as the SDK sent it."""
        return self.state.job(name).body

    def preempt(self, name: str, status: str = "Queued") -> None:
        """A running job is preempted: back to Queued (requeued) or Paused (see state.preempt)."""
        self.state.preempt(name, status)

    def requeue(self, name: str, text: str = "", file: str = "user_logs/std_log.txt") -> None:
        """The preempted job runs again, every log file started afresh (see state.requeue)."""
        self.state.requeue(name, text, file)

    @property
    def blob_requests(self):
        """Requests that reached the blob host (Azurite) through the proxy: (method, path, range)."""
        return self.state.blob_requests

    @property
    def blob_bytes_down(self) -> int:
        """Bytes the blob host has sent to clients through the proxy (headers and bodies)."""
        return self.state.blob_bytes_down

    def _mirror_log(self, name: str, file: str, text: str, fresh: bool) -> None:
        # Log files are append blobs growing by appends (a log of 100 MB costs its bytes once,
        # not once per append); a fresh log replaces the blob: deleted, then created anew.
        self.azurite.append(routes_arm.ARTIFACT_CONTAINER, routes_data.log_blob(name, file), text, fresh)
