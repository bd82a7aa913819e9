"""The Docker Engine connection, and making sure the images a build starts FROM are there.

Everything here imports the docker SDK inside functions: `invoke --list` must not pay for it.
"""

from __future__ import annotations

from typing import Any

from singkit.exceptions import ServiceError, SingkitError
from singkit.images.progress import LayerProgress
from singkit.imageref import DOCKER_HUB, Reference
from singkit.images.registry import auth_config, credentials_for

DEFAULT_HOST = "unix:///var/run/docker.sock"
TIMEOUT = 3600  # seconds one read may wait: a RUN step can be silent for a long time


def engine_url(env: Any) -> str:
    return env.environ.get("DOCKER_HOST") or DEFAULT_HOST


def connect(env: Any) -> Any:
    """A docker.DockerClient for the engine named by the environment (DOCKER_HOST, TLS vars)."""
    import docker

    try:
        # version negotiation pings the engine, so an absent engine fails here, in one place
        return docker.from_env(environment=dict(env.environ), timeout=TIMEOUT)
    except docker.errors.DockerException as error:
        raise ServiceError(f"Docker Engine not reachable at {engine_url(env)} ({_reason(error)}); "
                           f"start dockerd or set DOCKER_HOST") from None


def _reason(error: BaseException) -> str:
    text = str(error)
    for marker in ("Connection refused", "No such file or directory", "Permission denied", "timed out"):
        if marker in text:
            return marker.lower()
    return text.splitlines()[0][:160] if text else type(error).__name__


def engine_error(env: Any, error: BaseException) -> ServiceError:
    """The engine went away mid-call (requests' connection errors)."""
    return ServiceError(f"lost the Docker Engine at {engine_url(env)} ({_reason(error)}); is dockerd still running?")


def has_image(client: Any, ref: str) -> bool:
    import docker

    try:
        client.api.inspect_image(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def ensure_image(env: Any, cfg: Any, client: Any, ref: str, role: str) -> None:
    """Pull `ref` unless the engine has it, with the config's credentials for its registry.

    Done before the build so pulls show per-layer progress and use the registry records'
    credentials (a build would only know ~/.docker/config.json's).
    """
    import docker
    import requests

    if has_image(client, ref):
        return
    parsed = Reference.parse(ref)
    creds = credentials_for(cfg, parsed.registry_host)
    env.err(f"pull {ref} ({role})")
    progress = LayerProgress(env, "pull")
    repo, tag = (parsed.name, parsed.digest) if parsed.digest else (parsed.name, parsed.tag or "latest")
    try:
        for event in client.api.pull(repo, tag=tag, stream=True, decode=True, auth_config=auth_config(env, creds)):
            if "error" in event:
                raise pull_error(parsed, role, creds, str(event.get("error")))
            progress.update(event)
    except docker.errors.APIError as error:
        raise pull_error(parsed, role, creds, str(error.explanation or error)) from None
    except requests.exceptions.ConnectionError as error:
        raise engine_error(env, error) from None


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
    if any(m in lowered for m in ("not found", "manifest unknown", "does not exist", "pull access denied")):
        return SingkitError(f"{role} image {ref} is not in registry {ref.registry_host}; push it there or fix the reference")
    return SingkitError(f"pulling the {role} image {ref} failed: {' '.join(message.split())[:300]}")
