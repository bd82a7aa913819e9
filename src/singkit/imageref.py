"""Image references (`host/repo:tag@sha256:…`) and the ones a docker record stands for.

Pure string work, no I/O: render, build, push, the job backends and the config check all agree
on what `image:` plus `registry:` mean through this module. It lives outside singkit.images so a
config check does not load the image pipeline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
WRAPPED_SUFFIX = "-sing"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")
# The grammar of distribution/reference (github.com/distribution/reference, regexp.go), which the
# Docker Engine and every Registry v2 apply: lower-case path components joined by `.`, `_`, `__`
# or dashes; a tag of up to 128 word characters, dots and dashes, not starting with either.
_PATH = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^\w[\w.-]{0,127}$", re.ASCII)
_HOST = re.compile(r"^(?:\[[0-9a-fA-F:]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]+)?$")


@dataclass(frozen=True)
class Reference:
    """A parsed image reference. `host` is "" for Docker Hub, as people write it."""

    host: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> "Reference":
        text = text.strip()
        if not text or any(c.isspace() for c in text):
            raise ValueError(f"`{text}` is not an image reference (host/name:tag)")
        name, _, digest = text.partition("@")
        host, slash, rest = name.partition("/")
        # Docker's rule: the first component is a registry host only if it looks like one.
        if not slash or not ("." in host or ":" in host or host == "localhost" or host != host.lower()):
            host, rest = "", name
        tag = None
        last = rest.rsplit("/", 1)[-1]
        if ":" in last:
            rest, tag = rest.rsplit(":", 1)
            if not tag:
                rest = ""
        if not rest or (digest and not _DIGEST.match(digest)):
            raise ValueError(f"`{text}` is not an image reference (host/name:tag or name@sha256:<64 hex>)")
        if not _PATH.match(rest):
            lower = " (repository names are lower case)" if _PATH.match(rest.lower()) else ""
            raise ValueError(f"`{text}` is not an image reference: `{rest}` is not a repository name{lower}")
        if tag and not _TAG.match(tag):
            raise ValueError(f"`{text}` is not an image reference: `{tag}` is not a tag (letters, digits, `_.-`, "
                             "at most 128, not starting with `.` or `-`)")
        if host and not _HOST.match(host):
            raise ValueError(f"`{text}` is not an image reference: `{host}` is not a registry host")
        return cls(host, rest, tag or None, digest or None)

    @property
    def name(self) -> str:
        """host/repository, without tag or digest."""
        return f"{self.host}/{self.repository}" if self.host else self.repository

    @property
    def registry_host(self) -> str:
        return self.host or DOCKER_HUB

    @property
    def api_host(self) -> str:
        """Where the registry v2 API answers (Docker Hub's differs from its name)."""
        return DOCKER_HUB_API if self.registry_host in (DOCKER_HUB, "index.docker.io") else self.registry_host

    @property
    def api_repository(self) -> str:
        if self.registry_host in (DOCKER_HUB, "index.docker.io") and "/" not in self.repository:
            return f"library/{self.repository}"
        return self.repository

    @property
    def tagged(self) -> str:
        return f"{self.name}:{self.tag or 'latest'}"

    def pinned(self, digest: str | None = None) -> str:
        """`name@sha256:…` with the given digest (or this reference's own)."""
        digest = normalize_digest(digest or self.digest)
        if not digest:
            raise ValueError(f"{self} carries no digest")
        return f"{self.name}@{digest}"

    def with_digest(self, digest: str | None) -> "Reference":
        return replace(self, digest=normalize_digest(digest))

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def normalize_digest(value: Any) -> str | None:
    """`sha256:<hex>` for either spelling a config may hold (`<hex>` or `sha256:<hex>`)."""
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    if _HEX.match(text):
        return f"sha256:{text}"
    if _DIGEST.match(text):
        return text
    raise ValueError(f"`{value}` is not a sha256 digest (sha256:<64 hex digits>)")


def login_server(service: dict[str, Any] | None) -> str:
    """host[:port] of a registry record, however its login-server was written."""
    if not service:
        return ""
    server = str(service.get("login-server") or "").strip()
    for scheme in ("https://", "http://"):
        if server.startswith(scheme):
            server = server[len(scheme):]
    return server.rstrip("/")


def _in_registry(image: str, server: str) -> Reference:
    if server and not image.startswith(server + "/"):
        image = f"{server}/{image}"
    return Reference.parse(image)


def base_reference(record: dict[str, Any], registry: dict[str, Any] | None) -> Reference:
    """The record's own image (`image:` in `registry:`), as the record names it."""
    return _in_registry(str(record["image"]), login_server(registry))


def wrapped_reference(record: dict[str, Any], registry: dict[str, Any] | None) -> Reference:
    """Where the wrapped image goes: `wrapped-image:` or `<image>` with `-sing` added to its tag."""
    if record.get("wrapped-image"):
        ref = _in_registry(str(record["wrapped-image"]), login_server(registry))
    else:
        base = base_reference(record, registry)
        ref = replace(base, tag=f"{base.tag or 'latest'}{WRAPPED_SUFFIX}", digest=None)
    return replace(ref, tag=ref.tag or "latest", digest=None)


def target_reference(record: dict[str, Any], registry: dict[str, Any] | None) -> Reference:
    """The image a job runs: the wrapped one when `sing-wrap: true`, else the record's own."""
    return wrapped_reference(record, registry) if record.get("sing-wrap") else base_reference(record, registry)


def run_digest(record: dict[str, Any], registry: dict[str, Any] | None, *,
               wrapped: bool = True) -> tuple[Reference, str | None]:
    """(the image a job runs, the digest pinning it or None). `wrapped=False` is for a job that
    runs the record's BASE image even when `sing-wrap: true` (an Azure ML compute cluster: XT's aml
    backend ignores sing_wrap, xtlib 0.0.342 backends/backend_aml.py). A wrapped image is new bytes:
    only `sha256:` pins it. The base is pinned by a digest in `image:` (or `base-sha256:`, which
    image.pin writes); `sha256:` pins it only when the record is not wrapped (then it is the
    image's own digest). ValueError when the record cannot be read."""
    if wrapped and record.get("sing-wrap"):
        return wrapped_reference(record, registry), normalize_digest(record.get("sha256"))
    ref = base_reference(record, registry)
    own = None if record.get("sing-wrap") else normalize_digest(record.get("sha256"))
    return ref, own or ref.digest or normalize_digest(record.get("base-sha256"))


def unpinned_text(name: str, record: dict[str, Any], *, wrapped: bool = True) -> str:
    """Why docker record `name` is not pinned for a job, in words true of the record (never "no
    sha256" for an image that carries a digest), and what would pin it."""
    if wrapped and record.get("sing-wrap"):
        base = "; the digest in `image:` pins the base it wraps" if "@" in str(record.get("image") or "") else ""
        return (f"docker record `{name}`: the wrapped image is not pinned by digest yet (`sha256:` is unset{base}); "
                f"run `invoke image.wrap --docker={name}` to build, push and pin it")
    if record.get("sing-wrap"):
        return (f"docker record `{name}`: the base image a compute cluster runs is not pinned by digest (`image:` carries "
                "none; `sha256:` would pin the wrapped image, which a compute cluster does not run); write "
                "`image: <name>:<tag>@sha256:<digest>`")
    return (f"docker record `{name}` is not pinned by digest (neither `image:` nor `sha256:` carries one); run "
            f"`invoke image.wrap --docker={name}` to build, push and pin it, or write `image: <name>:<tag>@sha256:<digest>`")


def run_reference(record: dict[str, Any], registry: dict[str, Any] | None, *, wrapped: bool = True) -> str:
    """The one reference a job's runs use: `host/repo@sha256:…` once pinned (the tag may name other
    bytes by now), else `host/repo:tag` (never with `@`). run_digest's rule, the one every backend
    follows through the submit pipeline's resolve_image step. ValueError when the record cannot be read."""
    ref, digest = run_digest(record, registry, wrapped=wrapped)
    return ref.pinned(digest) if digest else ref.tagged


def pinned_reference(cfg: Any, name: str) -> str:
    """What a job should pull for docker record `name` (run_reference of the config's record)."""
    record = cfg.docker(name)
    registry = cfg.service(record["registry"]) if record.get("registry") else None
    return run_reference(record, registry)


def record_problem_text(name: str, error: ValueError) -> str:
    """One line for a docker record whose `image:` or `sha256:` cannot be read."""
    return (f"dockers.{name}: {error}; write `image: host/name:tag` (e.g. `image: python:3.11-slim`) "
            "and `sha256: sha256:<64 hex>` if pinned")


def record_problem_key(error: ValueError) -> str:
    """Which key of the record `error` is about: `sha256` or `image`."""
    return "sha256" if "digest" in str(error) else "image"


def check_record(record: dict[str, Any], registry: dict[str, Any] | None) -> ValueError | None:
    """The error reading a docker record's image and pin would raise, or None. A registered
    Azure ML environment (`azureml:NAME:VERSION`) is not an image reference and is not checked."""
    image = str(record.get("image") or "")
    if image.startswith("azureml:") or not image:
        return None
    if image.lower().startswith("azureml:"):
        return ValueError(f"`{image}`: a registered Azure ML environment is written with `azureml:` in lower case")
    try:
        target_reference(record, registry)
        normalize_digest(record.get("sha256"))
    except ValueError as error:
        return error
    return None
