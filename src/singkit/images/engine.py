"""The Docker Engine connection, and making sure the images a build starts FROM are there.

Everything here imports the docker SDK inside functions: `invoke --list` must not pay for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from singkit.exceptions import ServiceError, SingkitError
from singkit.images.progress import LayerProgress
from singkit.imageref import DOCKER_HUB, Reference
from singkit.images.registry import auth_config, credentials_for

if TYPE_CHECKING:
    from singkit.config.model import Config
    from singkit.environment import Environment

DEFAULT_HOST = "unix:///var/run/docker.sock"
STREAM_TIMEOUT = 3600  # seconds one read of a stream may wait: a RUN step can be silent for a long time
TIMEOUT = STREAM_TIMEOUT  # what connect() leaves a client with unless told otherwise


def engine_url(env: Environment) -> str:
    return env.environ.get("DOCKER_HOST") or DEFAULT_HOST


def connect(env: Environment, read_timeout: float | None = TIMEOUT) -> Any:
    """A docker.DockerClient for the engine named by the environment (DOCKER_HOST, TLS vars).

    The version negotiation (a ping) waits SINGKIT_HTTP_TIMEOUT at most, so an engine that
    accepts and never answers is an outage in bounded time; afterwards each call waits up to
    `read_timeout` (None: SINGKIT_HTTP_TIMEOUT; wrap a stream in `long_reads`). docker-py has
    one timeout for connect and read (APIClient `timeout`, passed to every requests call).
    Raises ServiceError (exit 4) when the engine is absent, refuses us or does not answer."""
    import docker

    from singkit.timeouts import http_timeouts

    quick = http_timeouts(env.environ).read
    try:
        # version negotiation pings the engine, so an absent engine fails here, in one place
        client = docker.from_env(environment=dict(env.environ), timeout=quick)
    except (docker.errors.DockerException, *connection_faults()) as error:
        raise ServiceError(f"Docker Engine not reachable at {engine_url(env)} ({_reason(error)}); "
                           f"start dockerd or set DOCKER_HOST") from None
    client.api.timeout = quick if read_timeout is None else read_timeout
    return client


def connection_faults() -> tuple[type[BaseException], ...]:
    """Every exception type that means the connection to a service failed, not its answer:
    requests' (ConnectionError, Timeout, ChunkedEncodingError, ...), urllib3's (ProtocolError,
    ReadTimeoutError, ... — docker-py reads build and pull streams from urllib3 directly, so
    those reach us unwrapped) and the socket's own. docker.errors.APIError is a requests
    HTTPError: catch it first, it is the engine's answer."""
    import requests
    import urllib3

    return (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)


@contextlib.contextmanager
def engine_calls(env: Environment) -> Iterator[None]:
    """Calls to the engine inside: a lost or hung connection becomes the one-line ServiceError
    naming the engine (exit 4); the engine's own answers (docker.errors.APIError) pass through."""
    import docker

    try:
        yield
    except docker.errors.APIError:
        raise
    except connection_faults() as error:
        raise engine_error(env, error) from None


@contextlib.contextmanager
def long_reads(client: Any) -> Iterator[None]:
    """A stream inside may be silent for long (a RUN step, a layer upload): STREAM_TIMEOUT per read."""
    saved = client.api.timeout
    client.api.timeout = STREAM_TIMEOUT
    try:
        yield
    finally:
        client.api.timeout = saved


def _reason(error: BaseException) -> str:
    text = str(error)
    for marker in ("Connection refused", "No such file or directory", "Permission denied", "timed out",
                   "Connection reset by peer", "Connection broken", "Connection aborted"):
        if marker in text:
            return marker.lower()
    return text.splitlines()[0][:160] if text else type(error).__name__


def engine_error(env: Environment, error: BaseException) -> ServiceError:
    """The engine went away mid-call, or stopped answering (see connection_faults)."""
    return ServiceError(f"lost the Docker Engine at {engine_url(env)} ({_reason(error)}); is dockerd still running?")


def has_image(client: Any, ref: str, env: Any = None) -> bool:
    import docker

    try:
        with engine_calls(env) if env is not None else contextlib.nullcontext():
            client.api.inspect_image(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def ensure_image(env: Environment, cfg: Config, client: Any, ref: str, role: str) -> None:
    """Pull `ref` unless the engine has it, with the config's credentials for its registry.

    Done before the build so pulls show per-layer progress and use the registry records'
    credentials (a build would only know ~/.docker/config.json's).
    """
    import docker

    if has_image(client, ref, env):
        return
    parsed = Reference.parse(ref)
    creds = credentials_for(cfg, parsed.registry_host)
    env.err(f"pull {ref} ({role})")
    progress = LayerProgress(env, "pull")
    repo, tag = (parsed.name, parsed.digest) if parsed.digest else (parsed.name, parsed.tag or "latest")
    try:
        with engine_calls(env), long_reads(client):
            for event in client.api.pull(repo, tag=tag, stream=True, decode=True, auth_config=auth_config(env, creds)):
                if "error" in event:
                    raise pull_error(parsed, role, creds, str(event.get("error")))
                progress.update(event)
    except docker.errors.APIError as error:
        raise pull_error(parsed, role, creds, str(error.explanation or error)) from None


def pull_error(ref: Reference, role: str, creds: Any, message: str) -> SingkitError:
    lowered = message.lower()
    if any(m in lowered for m in ("unauthorized", "authentication required", "denied", "forbidden")):
        if "not found" not in lowered and "does not exist" not in lowered:
            return ServiceError(f"registry {ref.registry_host} refused {creds.describe()} pulling the {role} image {ref}; check them")
    if any(m in lowered for m in ("connection refused", "no such host", "i/o timeout", "dial tcp", "network is unreachable")):
        if ref.registry_host in (DOCKER_HUB, "index.docker.io"):
            return ServiceError(f"Docker Hub is unreachable pulling the {role} image {ref}; this machine cannot pull it — "
                                "set the docker record's `image:` to one your engine or your own registry has")
        return ServiceError(f"registry {ref.registry_host} is unreachable pulling the {role} image {ref}; check that it runs")
    from singkit.images.push import registry_busy

    busy = registry_busy(message)
    if busy:
        return ServiceError(f"registry {ref.registry_host} {busy} pulling the {role} image {ref}; try again later")
    if any(m in lowered for m in ("not found", "manifest unknown", "does not exist", "pull access denied")):
        return SingkitError(f"{role} image {ref} is not in registry {ref.registry_host}; push it there or fix the reference")
    return SingkitError(f"pulling the {role} image {ref} failed: {' '.join(message.split())[:300]}")
