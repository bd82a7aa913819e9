"""Pushing the wrapped image to the record's registry; the digest is the registry's own."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from singkit.exceptions import Hint, ServiceError, SingkitError, UsageError
from singkit.images.audit import audit
from singkit.images.engine import connect, engine_calls, has_image, long_reads
from singkit.images.progress import LayerProgress
from singkit.imageref import Reference
from singkit.images.registry import Credentials, auth_config, client_for, credentials_for
from singkit.images.render import Rendered, wrapped_image

if TYPE_CHECKING:
    from singkit.config.model import Config
    from singkit.environment import Environment


def push(env: Environment, cfg: Config, name: str, *, rendered: Rendered | None = None, client: Any = None) -> str:
    """Push the built image with the registry record's credentials; return the registry's digest."""
    import docker

    ref = rendered.image if rendered else wrapped_image(cfg, name)
    if not cfg.docker(name).get("registry"):
        raise UsageError(f"dockers.{name} names no registry to push to; add `registry: <a type: registry record>`")
    client = client or connect(env, read_timeout=None)
    if not has_image(client, ref.tagged, env):
        raise UsageError(f"no local image {ref.tagged}", hint=Hint.command("image.build", docker=name, say="; run {} first"))
    creds = credentials_for(cfg, ref.registry_host)
    registry = client_for(env, cfg, ref)
    registry.probe()  # a login page or an outage at login-server: said plainly, before the engine tries
    env.err(f"push {ref.tagged}")
    progress = LayerProgress(env, "push")
    stream_digest = None
    try:
        with engine_calls(env), long_reads(client):
            for event in client.api.push(ref.name, tag=ref.tag, stream=True, decode=True,
                                         auth_config=auth_config(env, creds)):
                if "error" in event or "errorDetail" in event:
                    message = str(event.get("error") or (event.get("errorDetail") or {}).get("message"))
                    raise push_error(ref, creds, message)
                progress.update(event)
                stream_digest = (event.get("aux") or {}).get("Digest") or stream_digest
    except docker.errors.APIError as error:
        raise push_error(ref, creds, str(error.explanation or error)) from None
    # Trust the registry, not the stream: what it serves under the tag is what jobs will pull.
    digest = registry.digest(ref)
    if digest is None:
        raise SingkitError(f"registry {ref.registry_host} does not list {ref.tagged} after the push; push again")
    if stream_digest and stream_digest != digest:
        env.err(f"note: the push reported {stream_digest}, the registry serves {digest}; pinning the registry's")
    env.err(f"pushed {ref.tagged} ({digest})")
    audit(env, "push", docker=name, image=ref.tagged, digest=digest)
    return digest


def push_error(ref: Reference, creds: Credentials, message: str) -> SingkitError:
    lowered = message.lower()
    if any(m in lowered for m in ("unauthorized", "authentication required", "denied", "forbidden", "no basic auth")):
        return ServiceError(f"registry {ref.registry_host} refused {creds.describe()} pushing {ref.tagged}; check them")
    if any(m in lowered for m in ("connection refused", "no such host", "i/o timeout", "dial tcp", "network is unreachable")):
        return ServiceError(f"registry {ref.registry_host} is unreachable pushing {ref.tagged}; check that it runs and that login-server is right")
    busy = registry_busy(message)
    if busy:
        return ServiceError(f"registry {ref.registry_host} {busy} pushing {ref.tagged}; try again later")
    if "invalid character '<'" in lowered:  # the engine read an HTML page where the v2 API's JSON belongs
        return ServiceError(f"not a registry v2 API at {ref.registry_host}: it answered the push with a web page; check login-server")
    return SingkitError(f"push of {ref.tagged} failed: {' '.join(message.split())[:300]}")


def registry_busy(message: str) -> str | None:
    """`kept answering …` when the engine's push or pull error says the registry was throttling
    or overloaded (the engine retried already: an outage, exit 4), else None."""
    lowered = message.lower()
    for marker, said in (("toomanyrequests", "429 too many requests"), ("too many requests", "429 too many requests"),
                         ("503 service unavailable", "503 service unavailable"), ("502 bad gateway", "502 bad gateway"),
                         ("504 gateway timeout", "504 gateway timeout")):
        if marker in lowered:
            return f"kept answering {said}"
    return None
