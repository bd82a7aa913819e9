"""Talking to a registry through its v2 HTTP API: digests and labels of remote images.

Stdlib only (urllib), so render and the up-to-date check need no Docker Engine and cost a
few loopback requests. Credentials come from a `type: registry` record whose login-server
matches the host; a `$env:` password is resolved at the moment of the request and never
appears in a message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from singkit.exceptions import ServiceError, SingkitError
from singkit.imageref import Reference, login_server

MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
)
_LIST_TYPES = MANIFEST_TYPES[1::2]
_LOOPBACK = re.compile(r"^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$")
TIMEOUT = 15.0
RETRIES = 2


@dataclass(frozen=True)
class RemoteImage:
    digest: str  # manifest digest, as the registry names it
    labels: dict[str, str]


@dataclass
class Credentials:
    """Who we are at one registry. `password` is the config value (`$env:NAME`), not the secret."""

    username: str | None = None
    password: Any = None
    record: str | None = None  # external-services record they come from

    def describe(self) -> str:
        if not self.username:
            return "anonymous access"
        source = f"external-services.{self.record}" if self.record else "the registry record"
        secret = str(self.password or "")
        hint = f", password from ${secret[5:]}" if secret.startswith("$env:") else ""
        return f"the credentials of {source} (username {self.username}{hint})"


def credentials_for(cfg: Any, host: str) -> Credentials:
    """The registry record whose login-server is `host` (anonymous if none is)."""
    if cfg is None:
        return Credentials()
    for name, record in cfg.services.items():
        if record.get("type") == "registry" and login_server(record) == host:
            return Credentials(record.get("username"), record.get("password"), name)
    return Credentials()


def auth_config(env: Any, creds: Credentials) -> dict[str, str] | None:
    """For the docker SDK (push/pull `auth_config=`): resolved now, used once."""
    if not creds.username:
        return None
    from singkit.config import resolve_secret

    return {"username": creds.username, "password": resolve_secret(creds.password, env) or ""}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # Blob GETs may redirect to storage that rejects our Authorization header: follow by hand.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


@dataclass
class _Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), "")


@dataclass
class RegistryClient:
    """A v2 API client for one registry host (Basic or Bearer-token auth)."""

    host: str
    creds: Credentials = field(default_factory=Credentials)
    env: Any = None
    timeout: float = TIMEOUT
    _auth: dict[str, str] = field(default_factory=dict, repr=False)  # repository -> Authorization

    @property
    def base_url(self) -> str:
        # Like the engine: plain http only for loopback registries.
        scheme = "http" if _LOOPBACK.match(self.host) else "https"
        return f"{scheme}://{self.host}"

    # -- public --------------------------------------------------------------------------
    def inspect(self, ref: Reference) -> RemoteImage | None:
        """Digest and labels of `ref` in this registry, or None if the registry has no such image."""
        repo = ref.api_repository
        found = self._manifest(repo, ref.digest or ref.tag or "latest")
        if found is None:
            return None
        digest, manifest = found
        if manifest.get("mediaType") in _LIST_TYPES or "manifests" in manifest:
            entry = _pick_platform(manifest.get("manifests") or [])
            if entry is None:
                return RemoteImage(digest, {})
            inner = self._manifest(repo, entry["digest"])
            if inner is None:
                return RemoteImage(digest, {})
            manifest = inner[1]
        config_digest = (manifest.get("config") or {}).get("digest")
        if not config_digest:
            return RemoteImage(digest, {})
        blob = self._request("GET", repo, f"/v2/{repo}/blobs/{config_digest}")
        if blob.status != 200:
            raise self._unexpected(blob, f"config blob of {ref}")
        config = self._json(blob, f"the config blob of {ref}")
        labels = (config.get("config") or {}).get("Labels") or {}
        return RemoteImage(digest, {str(k): str(v) for k, v in labels.items()})

    def digest(self, ref: Reference) -> str | None:
        """The registry's digest for `ref` (a HEAD request when the registry says it), or None."""
        repo = ref.api_repository
        reference = ref.digest or ref.tag or "latest"
        head = self._request("HEAD", repo, f"/v2/{repo}/manifests/{reference}", accept=", ".join(MANIFEST_TYPES))
        if head.status == 404:
            return None
        if head.status == 200 and head.header("Docker-Content-Digest"):
            return head.header("Docker-Content-Digest")
        found = self._manifest(repo, reference)
        return found[0] if found else None

    def tags(self, ref: Reference, page: int = 1000) -> list[str]:
        """Every tag of `ref`'s repository, through the v2 tags list (`GET /v2/<name>/tags/list`),
        following `Link: <...>; rel="next"` pages (distribution spec, "Listing Tags"; ACR pages
        the same way). [] when the registry has no such repository."""
        repo = ref.api_repository
        path = f"/v2/{repo}/tags/list?n={page}"
        found: list[str] = []
        for _ in range(100):  # a registry that keeps linking to itself must not hang a wrap
            resp = self._request("GET", repo, path)
            if resp.status == 404:
                return found
            if resp.status != 200:
                raise self._unexpected(resp, f"the tags of {repo}")
            found.extend(str(t) for t in (self._json(resp, f"the tags of {repo}").get("tags") or []))
            link = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', resp.header("Link"))
            if not link:
                return found
            path = urllib.parse.urljoin(f"/v2/{repo}/tags/list", link.group(1))
            path = path[len(self.base_url):] if path.startswith(self.base_url) else path
        return found

    # -- plumbing ------------------------------------------------------------------------
    def _manifest(self, repo: str, reference: str) -> tuple[str, dict[str, Any]] | None:
        resp = self._request("GET", repo, f"/v2/{repo}/manifests/{reference}", accept=", ".join(MANIFEST_TYPES))
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise self._unexpected(resp, f"manifest {repo}:{reference}")
        digest = resp.header("Docker-Content-Digest") or "sha256:" + hashlib.sha256(resp.body).hexdigest()
        try:
            return digest, json.loads(resp.body)
        except ValueError:
            raise SingkitError(f"registry {self.host} sent a manifest for {repo}:{reference} that is not JSON") from None

    def _request(self, method: str, repo: str, path: str, accept: str | None = None) -> _Response:
        headers = {"Accept": accept} if accept else {}
        if repo in self._auth or "*" in self._auth:
            headers["Authorization"] = self._auth.get(repo) or self._auth["*"]
        resp = self._send(method, self.base_url + path, headers)
        if resp.status == 401:
            self._authenticate(repo, resp.header("WWW-Authenticate"))
            headers["Authorization"] = self._auth.get(repo) or self._auth["*"]
            resp = self._send(method, self.base_url + path, headers)
            if resp.status == 401:
                raise self._refused(repo)
        if resp.status == 403:
            raise self._refused(repo)
        if resp.status in (301, 302, 303, 307, 308) and resp.header("Location"):
            # Redirected blob (e.g. to object storage): the signed URL carries its own auth.
            target = urllib.parse.urljoin(self.base_url + path, resp.header("Location"))
            resp = self._send(method, target, {"Accept": accept} if accept else {})
        return resp

    def _send(self, method: str, url: str, headers: dict[str, str]) -> _Response:
        request = urllib.request.Request(url, headers=headers, method=method)
        for attempt in range(RETRIES + 1):
            try:
                with _OPENER.open(request, timeout=self.timeout) as resp:
                    return _Response(resp.status, dict(resp.headers), resp.read())
            except urllib.error.HTTPError as error:
                resp = _Response(error.code, dict(error.headers or {}), error.read() if error.fp else b"")
                if error.code < 500 or attempt == RETRIES:
                    if error.code >= 500:
                        raise ServiceError(f"registry {self.host} answered {error.code} to {method} {_path(url)} {RETRIES + 1} times; try again later") from None
                    return resp
            except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as error:
                reason = getattr(error, "reason", error)
                # Nothing listening is not transient: say so at once rather than after retries.
                if attempt == RETRIES or isinstance(reason, ConnectionRefusedError):
                    raise ServiceError(f"registry {self.host} is unreachable ({getattr(reason, 'strerror', None) or reason}); check that it runs and that login-server is right") from None
            time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def _authenticate(self, repo: str, challenge: str) -> None:
        scheme, params = _parse_challenge(challenge)
        user, secret = self._basic()
        if scheme == "basic":
            if not user:
                raise self._refused(repo)
            self._auth["*"] = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
            return
        if scheme != "bearer" or "realm" not in params:
            raise SingkitError(f"registry {self.host} asks for `{scheme}` authentication, which singkit does not speak")
        query = {"service": params.get("service", ""), "scope": params.get("scope") or f"repository:{repo}:pull"}
        url = params["realm"] + ("&" if "?" in params["realm"] else "?") + urllib.parse.urlencode(query)
        headers = {}
        if user:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
        resp = self._send("GET", url, headers)
        if resp.status in (401, 403):
            raise self._refused(repo)
        if resp.status != 200:
            raise self._unexpected(resp, "token")
        body = self._json(resp, f"a token for {repo}")
        token = body.get("token") or body.get("access_token")
        if not token:
            raise SingkitError(f"registry {self.host} gave no token for {repo}")
        self._auth[repo] = f"Bearer {token}"

    def _basic(self) -> tuple[str | None, str]:
        if not self.creds.username:
            return None, ""
        from singkit.config import resolve_secret

        return self.creds.username, resolve_secret(self.creds.password, self.env if self.env is not None else {}) or ""

    def _refused(self, repo: str) -> ServiceError:
        if not self.creds.username:
            return ServiceError(f"registry {self.host} refused anonymous access to {repo}; add a `type: registry` record with login-server: {self.host}, username and password")
        return ServiceError(f"registry {self.host} refused {self.creds.describe()} for {repo}; check the username and password")

    def _json(self, resp: _Response, what: str) -> dict[str, Any]:
        """A 200's JSON object body; a proxy's or portal's HTML page there is a one-line ServiceError."""
        try:
            body = json.loads(resp.body or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            kind = resp.header("Content-Type").split(";")[0].strip() or "no content type"
            raise ServiceError(f"registry {self.host} answered {what} with something that is not a JSON object ({kind}); "
                               "check login-server (a proxy or login page may be answering)")
        return body

    def _unexpected(self, resp: _Response, what: str) -> SingkitError:
        text = resp.body[:200].decode("utf-8", "replace").strip().replace("\n", " ")
        return SingkitError(f"registry {self.host} answered {resp.status} for {what}: {text}")


# Singularity's installer and validator images are tagged with their build time,
# `YYYYMMDDTHHMMSSmmm` (e.g. 20220218T112740648 in the published wrap recipe).
DATED_TAG = re.compile(r"^(\d{8})T(\d{6})(\d{0,3})$")


def newest_dated(tags: list[str]) -> str | None:
    """The greatest build-time tag among `tags` (by date, time, then milliseconds; other tags
    such as `latest` are ignored), or None when there is none."""
    dated = [(m.group(1), m.group(2), m.group(3).ljust(3, "0"), t) for t in tags if (m := DATED_TAG.match(t))]
    return max(dated)[3] if dated else None


def _path(url: str) -> str:
    return urllib.parse.urlsplit(url).path


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', rest)}
    return scheme.lower(), params


def _pick_platform(manifests: list[dict[str, Any]]) -> dict[str, Any] | None:
    """linux/amd64 (what Singularity runs), else the first entry."""
    for entry in manifests:
        platform = entry.get("platform") or {}
        if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
            return entry
    return manifests[0] if manifests else None


def client_for(env: Any, cfg: Any, ref: Reference) -> RegistryClient:
    """A client for the registry holding `ref`, with the credentials the config has for it."""
    host = ref.api_host
    return RegistryClient(host, credentials_for(cfg, ref.registry_host), env)
