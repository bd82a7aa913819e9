"""Real local services for singkit's tests: Docker Engine, registry v2, Azurite, Chromium.

Nothing here is mocked: each helper starts (or connects to) the real program on loopback.
`bash .ci/services.sh` installs the programs and starts dockerd; registries and Azurite are
started here, once per test session, on free 127.0.0.1 ports in temporary directories.

A missing service SKIPS the test, or FAILS it when SINGKIT_REQUIRE_SERVICES=1 (CI).
The fixtures themselves are defined in tests/conftest.py.

Heavy imports (docker, azure) stay inside functions so importing this module is cheap.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NoReturn

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVICES_SCRIPT = ".ci/services.sh"
ENABLE_HINT = f"run `bash {SERVICES_SCRIPT}` (as root) to install and start the test services"

# Every container/image a test creates carries these labels (pass labels=TEST_LABELS); the
# session removes its own at the end. Images built FROM the busybox base inherit them.
# The session label (pid + random) keeps concurrent pytest runs sharing one engine from
# deleting each other's images; a later session removes leftovers of dead ones.
TEST_LABEL = "singkit.test"
SESSION_LABEL = "singkit.test.session"
SESSION_ID = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
TEST_LABELS = {TEST_LABEL: "1", SESSION_LABEL: SESSION_ID}


# Azurite's fixed, public development account (documented by Microsoft; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

MANIFEST_ACCEPT = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])


def services_required() -> bool:
    return os.environ.get("SINGKIT_REQUIRE_SERVICES") == "1"


def require_service(name: str, reason: str) -> NoReturn:
    """Service `name` is unavailable: fail under SINGKIT_REQUIRE_SERVICES=1, else skip."""
    message = f"{name} unavailable: {reason}"
    if services_required():
        pytest.fail(f"{message} (SINGKIT_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(f"{message}; {ENABLE_HINT}")


def find_tool(env_var: str, *candidates: str) -> str | None:
    """The program named by $env_var, else the first candidate that exists or is on PATH."""
    for cand in (os.environ.get(env_var, ""), *candidates):
        if not cand:
            continue
        path = cand if os.sep in cand else shutil.which(cand)
        if path and os.access(path, os.X_OK):
            return path
    return None


def free_port() -> int:
    # Racy by nature (the port is free *now*); callers retry if the server fails to bind.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def http_status(url: str, headers: dict[str, str] | None = None, timeout: float = 2.0) -> int | None:
    """HTTP status of a GET, or None if nothing answered."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}),
                                    timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError):
        return None


@dataclass
class ServiceProcess:
    """A server we started, in its own session so stop() can end it and its children."""
    name: str
    popen: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.popen.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue


def _die_with_parent() -> None:
    """In the child: get SIGTERM when pytest dies, even by SIGKILL, so no server is orphaned."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux/glibc: stop() at teardown still ends it


def start_process(name: str, argv: list[str], log_path: Path, ready: Callable[[], bool],
                  cwd: Path, timeout: float = 30.0) -> ServiceProcess:
    """Start argv and wait until ready(); raise RuntimeError (with the log tail) otherwise."""
    log = open(log_path, "wb")  # a retry on another port starts a fresh log
    try:
        popen = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True,
                                 preexec_fn=_die_with_parent)
    finally:
        log.close()
    proc = ServiceProcess(name, popen, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"{name} exited with {popen.returncode}: {_tail(log_path)}")
        if ready():
            return proc
        time.sleep(0.1)
    proc.stop()
    raise RuntimeError(f"{name} not ready after {timeout:.0f} s: {_tail(log_path)}")


def start_with_free_port(start: Callable[[int], Any], attempts: int = 3) -> Any:
    """Call start(port) on fresh free ports until one binds (another process may win a race)."""
    for attempt in range(attempts):
        try:
            return start(free_port())
        except RuntimeError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


# --- registry v2 ----------------------------------------------------------------------------

@dataclass
class Registry:
    """A running `docker-registry serve` on loopback.

    host: "127.0.0.1:PORT" (the login-server / image-reference prefix); url: "http://" + host.
    username/password are None for the open registry.
    """
    host: str
    root_dir: Path
    log_path: Path
    username: str | None = None
    password: str | None = None
    process: ServiceProcess | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def auth_config(self) -> dict[str, str] | None:
        """For docker SDK push/pull: client.images.push(ref, auth_config=registry.auth_config)."""
        if self.username is None:
            return None
        return {"username": self.username, "password": self.password or ""}

    def ref(self, repo: str, tag: str = "latest") -> str:
        return f"{self.host}/{repo}:{tag}"

    def _headers(self, accept: str | None = None) -> dict[str, str]:
        headers = {"Accept": accept} if accept else {}
        if self.username is not None:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return headers

    def get(self, path: str, accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
        """GET /v2/... with our credentials; returns (status, headers, body), never raises on 4xx."""
        req = urllib.request.Request(self.url + path, headers=self._headers(accept))
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def manifest_digest(self, repo: str, reference: str = "latest") -> str | None:
        """The registry's own digest ("sha256:...") for repo:reference, or None if absent."""
        status, headers, _ = self.get(f"/v2/{repo}/manifests/{reference}", MANIFEST_ACCEPT)
        if status == 404:
            return None
        if status != 200:
            raise RuntimeError(f"registry {self.host}: manifest GET {repo}:{reference} -> {status}")
        return headers.get("Docker-Content-Digest")

    def tags(self, repo: str) -> list[str]:
        status, _, body = self.get(f"/v2/{repo}/tags/list")
        if status == 404:
            return []
        return sorted(json.loads(body).get("tags") or [])

    def stop(self) -> None:
        if self.process:
            self.process.stop()


def start_registry(workdir: Path, credentials: tuple[str, str] | None = None) -> Registry:
    """Start a registry serving from workdir/data; with credentials, behind htpasswd auth."""
    binary = find_tool("SINGKIT_TEST_REGISTRY_CMD", "docker-registry", "registry")
    if binary is None:
        require_service("registry", "`docker-registry` not found (Debian package docker-registry)")
    workdir.mkdir(parents=True, exist_ok=True)
    auth = ""
    if credentials:
        htpasswd = find_tool("SINGKIT_TEST_HTPASSWD_CMD", "htpasswd")
        if htpasswd is None:
            require_service("registry auth", "`htpasswd` not found (Debian package apache2-utils)")
        user, password = credentials
        # The registry accepts bcrypt entries only (-B).
        out = subprocess.run([htpasswd, "-Bbn", user, password], check=True,
                             capture_output=True, text=True).stdout
        (workdir / "htpasswd").write_text(out.strip() + "\n")
        auth = (f"auth:\n  htpasswd:\n    realm: singkit-test\n"
                f"    path: {workdir / 'htpasswd'}\n")

    def start(port: int) -> Registry:
        host = f"127.0.0.1:{port}"
        config = workdir / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {host}\n  secret: singkit-test-only\n" + auth)
        log_path = workdir / "registry.log"
        proc = start_process(
            "registry", [binary, "serve", str(config)], log_path, cwd=workdir,
            ready=lambda: http_status(f"http://{host}/v2/") in (200, 401))
        user, password = credentials or (None, None)
        return Registry(host, workdir / "data", log_path, user, password, proc)

    try:
        return start_with_free_port(start)
    except RuntimeError as e:
        error = str(e)
    require_service("registry", error)  # outside `except`: no chained traceback in the report


# --- Azurite ----------------------------------------------------------------------------------

@dataclass
class Azurite:
    """A running azurite-blob on loopback with the well-known development account."""
    host: str                     # "127.0.0.1:PORT"
    process: ServiceProcess | None = field(default=None, repr=False)
    account_name: str = AZURITE_ACCOUNT
    account_key: str = AZURITE_KEY

    @property
    def account_url(self) -> str:
        """Blob endpoint, e.g. http://127.0.0.1:PORT/devstoreaccount1 (path-style account)."""
        return f"http://{self.host}/{self.account_name}"

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={self.account_name};"
                f"AccountKey={self.account_key};BlobEndpoint={self.account_url};")

    def service_client(self) -> Any:
        """An azure.storage.blob.BlobServiceClient for the account."""
        from azure.storage.blob import BlobServiceClient
        return BlobServiceClient.from_connection_string(self.connection_string)

    def container_sas_url(self, container: str, permission: str = "racwdl",
                          hours: float = 1.0) -> str:
        """A container URL with a SAS token (what Azure ML's startPendingUpload hands out)."""
        from datetime import datetime, timedelta, timezone

        from azure.storage.blob import ContainerSasPermissions, generate_container_sas
        sas = generate_container_sas(
            self.account_name, container, account_key=self.account_key,
            permission=ContainerSasPermissions.from_string(permission),
            expiry=datetime.now(timezone.utc) + timedelta(hours=hours))
        return f"{self.account_url}/{container}?{sas}"

    def stop(self) -> None:
        if self.process:
            self.process.stop()


def start_azurite(workdir: Path) -> Azurite:
    default = REPO_ROOT / ".ci/.cache/azurite/node_modules/.bin/azurite-blob"
    binary = find_tool("SINGKIT_TEST_AZURITE_CMD", str(default), "azurite-blob")
    if binary is None:
        require_service("azurite", "azurite-blob not found (npm azurite@3.35.0)")
    workdir.mkdir(parents=True, exist_ok=True)

    def start(port: int) -> Azurite:
        # --disableTelemetry: otherwise it tries to reach the internet.
        # --skipApiVersionCheck: azure-storage-blob sends a newer API version than 3.35 knows.
        argv = [binary, "--blobHost", "127.0.0.1", "--blobPort", str(port),
                "--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck",
                "--silent"]
        host = f"127.0.0.1:{port}"
        proc = start_process("azurite", argv, workdir / "azurite.log", cwd=workdir,
                             ready=lambda: http_status(f"http://{host}/") is not None)
        return Azurite(host, proc)

    try:
        return start_with_free_port(start)
    except RuntimeError as e:
        error = str(e)
    require_service("azurite", error)


# --- Chromium ---------------------------------------------------------------------------------

@dataclass
class Chromium:
    """Headless Chromium. `path` is the binary; the helpers add the flags this machine needs and
    give it a HOME and XDG folders under `workdir`: nothing it writes lands in the real home."""
    path: str
    workdir: Path

    def args(self, user_data_dir: Path | None = None) -> list[str]:
        """argv prefix: headless, no sandbox as root, and no background network (there is none)."""
        udd = user_data_dir or self.workdir / "profile"
        flags = [self.path, "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage", "--disable-crash-reporter",
                 "--disable-breakpad", f"--user-data-dir={udd}"]
        if os.geteuid() == 0:
            flags.append("--no-sandbox")
        return flags

    def environ(self) -> dict[str, str]:
        """The environment to run it in: ours, with HOME and the XDG folders under workdir."""
        home = self.workdir / "home"
        dirs = {"HOME": home, "XDG_CONFIG_HOME": home / ".config", "XDG_CACHE_HOME": home / ".cache",
                "XDG_DATA_HOME": home / ".local/share", "XDG_STATE_HOME": home / ".local/state"}
        for folder in dirs.values():
            folder.mkdir(parents=True, exist_ok=True)
        return {**os.environ, **{k: str(v) for k, v in dirs.items()}}

    def run(self, *extra: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([*self.args(), *extra], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, env=self.environ())

    def screenshot(self, url: str, png: Path, width: int = 1280, height: int = 800) -> Path:
        """Render url (e.g. Path(...).as_uri()) to a PNG file."""
        result = self.run(f"--screenshot={png}", f"--window-size={width},{height}",
                          "--hide-scrollbars", url)
        if not png.exists():
            raise RuntimeError(f"chromium made no screenshot: {result.stderr[-2000:]}")
        return png

    def dump_dom(self, url: str) -> str:
        """The DOM after scripts ran, serialised as HTML."""
        result = self.run("--dump-dom", url)
        if result.returncode != 0:
            raise RuntimeError(f"chromium --dump-dom failed: {result.stderr[-2000:]}")
        return result.stdout


def find_chromium(workdir: Path) -> Chromium:
    path = find_tool("SINGKIT_TEST_CHROMIUM", "chromium", "chromium-browser", "google-chrome")
    if path is None:
        require_service("chromium", "no chromium binary (Debian package chromium)")
    workdir.mkdir(parents=True, exist_ok=True)
    chromium = Chromium(path, workdir)
    try:
        subprocess.run([path, "--version"], check=True, capture_output=True, timeout=30, env=chromium.environ())
    except (subprocess.SubprocessError, OSError) as e:
        require_service("chromium", f"{path} --version failed: {e}")
    return chromium
