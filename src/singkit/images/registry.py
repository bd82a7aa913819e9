"""Talking to a registry through its v2 HTTP API: digests and labels of remote images.

Plain HTTP through requests (imported only when a request is made), so render and the
up-to-date check need no Docker Engine and cost a few requests. Each request has connect and
read timeouts (SINGKIT_HTTP_TIMEOUT) and bounded retries of dropped connections, timeouts and
429/5xx (urllib3's Retry, honouring Retry-After up to MAX_RETRY_AFTER); an answer that is not
the v2 API's (a web page at login-server) is an outage, not a missing image. Credentials come from a `type: registry` record whose login-server
matches the host; a `$env:` password is resolved at the moment of the request and never
appears in a message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import os
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from singkit.exceptions import ServiceError, SingkitError
from singkit.imageref import Reference, login_server

if TYPE_CHECKING:
    from singkit.config.model import Config
    from singkit.environment import Environment

MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
)
_LIST_TYPES = MANIFEST_TYPES[1::2]
_LOOPBACK = re.compile(r"^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$")
RETRIES = 2  # after the first try: 3 in all


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


def credentials_for(cfg: Config, host: str) -> Credentials:
    """The registry record whose login-server is `host` (anonymous if none is)."""
    if cfg is None:
        return Credentials()
    for name, record in cfg.services.items():
        if record.get("type") == "registry" and login_server(record) == host:
            return Credentials(record.get("username"), record.get("password"), name)
    return Credentials()


def auth_config(env: Environment, creds: Credentials) -> dict[str, str] | None:
    """For the docker SDK (push/pull `auth_config=`): resolved now, used once."""
    if not creds.username:
        return None
    from singkit.config import resolve_secret

    return {"username": creds.username, "password": resolve_secret(creds.password, env) or ""}


# Retries (urllib3.util.Retry, through a requests session): 429, 502, 503 and 504 and
# dropped or silent connections are transient; a Retry-After up to MAX_RETRY_AFTER seconds is
# honoured, a longer one ends the wait at once (the registry is telling us it is an outage).
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 30.0
_REASONS = {429: "too many requests", 500: "internal server error", 502: "bad gateway", 503: "service unavailable",
            504: "gateway timeout"}


def _session() -> Any:
    """A requests session that retries as above and never follows redirects by itself (a blob
    GET may redirect to storage that rejects our Authorization header: followed by hand)."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.exceptions import InvalidHeader, MaxRetryError
    from urllib3.util import Retry

    class BoundedRetry(Retry):
        def get_retry_after(self, response: Any) -> float | None:
            try:
                return super().get_retry_after(response)
            except InvalidHeader:  # a date or number we cannot read: plain backoff instead
                return None

        def increment(self, method: Any = None, url: Any = None, response: Any = None, *args: Any,
                      **kwargs: Any) -> BoundedRetry:
            wait = self.get_retry_after(response) if response is not None else None
            if wait is not None and wait > MAX_RETRY_AFTER:
                # raise_on_status=False: urllib3 then hands back this response, which says how long
                # urllib3 passes its own _pool (None outside a pool); a text reason prints as well
                raise MaxRetryError(kwargs.get("_pool"), url, "Retry-After beyond MAX_RETRY_AFTER")  # type: ignore[arg-type]
            return super().increment(method, url, response, *args, **kwargs)

    retry = BoundedRetry(total=RETRIES, connect=RETRIES, read=RETRIES, status=RETRIES, redirect=False,
                         status_forcelist=RETRY_STATUSES, allowed_methods=None, backoff_factor=0.2,
                         respect_retry_after_header=True, raise_on_status=False, raise_on_redirect=False)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


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
    _auth: dict[str, str] = field(default_factory=dict, repr=False)  # repository -> Authorization
    _session: Any = field(default=None, repr=False)

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

    def probe(self) -> None:
        """`GET /v2/` (the API's base endpoint; 200 or 401 from any registry): a ServiceError when
        what answers is a web page, an outage, or kept throttling — before the engine pushes
        there and reports it in its own words. Credentials are not checked here."""
        self._api(self._send("GET", self.base_url + "/v2/", {}), "/v2/")

    # -- plumbing ------------------------------------------------------------------------
    def _manifest(self, repo: str, reference: str) -> tuple[str, dict[str, Any]] | None:
        resp = self._request("GET", repo, f"/v2/{repo}/manifests/{reference}", accept=", ".join(MANIFEST_TYPES))
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise self._unexpected(resp, f"manifest {repo}:{reference}")
        digest = resp.header("Docker-Content-Digest") or "sha256:" + hashlib.sha256(resp.body).hexdigest()
        try:
            manifest = json.loads(resp.body)
        except ValueError:
            manifest = None
        if not isinstance(manifest, dict):
            raise self._not_registry(f"manifest {repo}:{reference} with something that is not a JSON object")
        return digest, manifest

    def _request(self, method: str, repo: str, path: str, accept: str | None = None) -> _Response:
        headers = {"Accept": accept} if accept else {}
        if repo in self._auth or "*" in self._auth:
            headers["Authorization"] = self._auth.get(repo) or self._auth["*"]
        resp = self._api(self._send(method, self.base_url + path, headers), path)
        if resp.status == 401:
            self._authenticate(repo, resp.header("WWW-Authenticate"))
            headers["Authorization"] = self._auth.get(repo) or self._auth["*"]
            resp = self._api(self._send(method, self.base_url + path, headers), path)
            if resp.status == 401:
                raise self._refused(repo)
        if resp.status == 403:
            raise self._refused(repo)
        if resp.status in (301, 302, 303, 307, 308) and resp.header("Location"):
            # Redirected blob (e.g. to object storage): the signed URL carries its own auth.
            target = urllib.parse.urljoin(self.base_url + path, resp.header("Location"))
            resp = self._send(method, target, {"Accept": accept} if accept else {})
        return resp

    def _api(self, resp: _Response, path: str) -> _Response:
        """`resp`, unless it shows that no registry answered: the v2 API never sends a web page
        (a portal, proxy or login page at login-server answers 200 or 404 with HTML)."""
        if resp.header("Content-Type").split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml"):
            raise self._not_registry(f"{_path(self.base_url + path)} with a web page (HTTP {resp.status}, text/html)")
        return resp

    def _not_registry(self, what: str) -> ServiceError:
        return ServiceError(f"not a registry v2 API at {self.base_url}: it answered {what}; "
                            "check login-server (a proxy or login page may be answering)")

    def _send(self, method: str, url: str, headers: dict[str, str]) -> _Response:
        """One request, retried as _session says; the answer, or a one-line ServiceError when
        the registry is unreachable, silent past the timeouts, or kept answering 429/5xx."""
        import requests

        from singkit.timeouts import http_timeouts

        if self._session is None:
            self._session = _session()
        timeouts = http_timeouts(getattr(self.env, "environ", None) or os.environ)
        try:
            with self._session.request(method, url, headers=headers, timeout=timeouts.pair,
                                       allow_redirects=False, stream=False) as got:
                resp = _Response(got.status_code, dict(got.headers), got.content)
        except requests.exceptions.RequestException as error:
            raise self._unreachable(method, url, error, timeouts.read) from None
        if resp.status in RETRY_STATUSES:
            said = _REASONS.get(resp.status, "")
            wait = resp.header("Retry-After")
            after = (f"; it asks to wait {_wait_text(wait)}" if wait and _seconds(wait) > MAX_RETRY_AFTER
                     else f" {RETRIES + 1} times")
            raise ServiceError(f"registry {self.host} answered {resp.status} ({said}) to {method} {_path(url)}{after}; "
                               "try again later")
        return resp

    def _unreachable(self, method: str, url: str, error: BaseException, timeout: float) -> ServiceError:
        """What a failed connection to the registry says: refused, timed out, or broken."""
        import requests

        text = str(error)
        if isinstance(error, requests.exceptions.Timeout) or "timed out" in text.lower():
            return ServiceError(f"registry {self.host} did not answer {method} {_path(url)} within {timeout:g} s "
                                f"({RETRIES + 1} tries); check that it runs (SINGKIT_HTTP_TIMEOUT sets the wait)")
        if "Connection refused" in text:
            why = "Connection refused"
        elif "Name or service not known" in text or "nodename nor servname" in text:
            why = "no such host"
        else:
            why = " ".join(re.sub(r"\?\S*", "", text).split())[:160]  # never a query (a token may be in it)
        return ServiceError(f"registry {self.host} is unreachable ({why}); check that it runs and that login-server is right")

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
            raise self._not_registry(f"{what} with something that is not a JSON object ({kind})")
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


def _seconds(retry_after: str) -> float:
    """A Retry-After header's delay in seconds (a number; an HTTP date counts as long)."""
    try:
        return float(retry_after)
    except ValueError:
        return float("inf")


def _wait_text(retry_after: str) -> str:
    seconds = _seconds(retry_after)
    return f"{seconds:g} s" if seconds != float("inf") else f"until {retry_after}"


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


def client_for(env: Environment, cfg: Config, ref: Reference) -> RegistryClient:
    """A client for the registry holding `ref`, with the credentials the config has for it."""
    host = ref.api_host
    return RegistryClient(host, credentials_for(cfg, ref.registry_host), env)
