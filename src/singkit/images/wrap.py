"""image.wrap: render → build → validate → push → pin, or nothing at all when nothing changed.

The registry is the memory: the wrapped image carries a label with the hash of every input,
so "is it up to date?" is two small registry requests, no engine, no build context.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from singkit.exceptions import UsageError
from singkit.images.pin import pin
from singkit.images.registry import RemoteImage, client_for
from singkit.images.render import INPUTS_LABEL, dockerfile_current, plan, registry_record, write_dockerfile
from singkit.imageref import base_reference

if TYPE_CHECKING:
    from singkit.config.model import Config
    from singkit.environment import Environment

UP_TO_DATE = "up to date"  # nothing to do; the YAML already pinned the registry's image
PINNED = "pinned"  # the registry's image was current; only the YAML's pin changed
WRAPPED = "wrapped"  # built, validated, pushed and pinned


@dataclass(frozen=True)
class WrapResult:
    docker: str
    status: str
    reference: str  # name@sha256:… a job pulls
    digest: str
    inputs_hash: str | None = None
    dockerfile: Path | None = None

    def as_json(self) -> dict[str, Any]:
        return {"docker": self.docker, "status": self.status, "reference": self.reference, "digest": self.digest,
                "inputs-hash": self.inputs_hash, "dockerfile": str(self.dockerfile) if self.dockerfile else None}


def wrap(env: Environment, cfg: Config, name: str, *, force: bool = False, no_cache: bool = False) -> WrapResult:
    """Make dockers.<name>'s image Singularity-ready in its registry and pin it; skip if it already is.

    The YAML changes only after a successful push (or to pin an up-to-date registry image).
    """
    record = cfg.docker(name)
    if not record.get("sing-wrap"):
        # Used as it is: resolve the tag in its registry and pin that digest.
        ref = base_reference(record, registry_record(cfg, record))
        result = pin(env, cfg, name)
        if not result.file:
            env.err(f"{ref.tagged} is up to date ({result.digest}; sing-wrap: false, used as it is)")
        return WrapResult(name, PINNED if result.file else UP_TO_DATE, result.reference, result.digest)
    if not record.get("registry"):
        raise UsageError(f"dockers.{name} names no registry to push the wrapped image to; "
                         f"add `registry: <a type: registry record>`")

    # The check needs the inputs hash only: no Dockerfile text, no jinja2, no engine.
    rendered = plan(env, cfg, name, text=False)
    image = rendered.image
    if not force:
        remote = client_for(env, cfg, image).inspect(image)
        if remote is not None and remote.labels.get(INPUTS_LABEL) == rendered.inputs_hash:
            if not dockerfile_current(rendered):  # e.g. a fresh clone: dockerfiles/ is generated
                write_dockerfile(plan(env, cfg, name, base_digest=rendered.base.digest, stages=rendered.stages))
            result = pin(env, cfg, name, remote)
            if not result.file:
                env.err(f"{image.tagged} is up to date ({remote.digest})")
            return WrapResult(name, PINNED if result.file else UP_TO_DATE, result.reference, result.digest,
                              rendered.inputs_hash, rendered.path)
        env.err(f"{image.tagged}: inputs changed since it was built; rebuilding" if remote
                else f"{image.tagged} is not in the registry yet; building")
    if rendered.text is None:
        rendered = plan(env, cfg, name, base_digest=rendered.base.digest, stages=rendered.stages)
    write_dockerfile(rendered)
    # only now: an up-to-date image never loads the build, validate and push code (issue 14)
    from singkit.images.build import build
    from singkit.images.engine import connect
    from singkit.images.push import push
    from singkit.images.validate import validate

    client = connect(env, read_timeout=None)
    try:
        build(env, cfg, name, rendered=rendered, client=client, no_cache=no_cache)
        validate(env, cfg, name, rendered=rendered, client=client)
        digest = push(env, cfg, name, rendered=rendered, client=client)
    finally:
        client.close()
    result = pin(env, cfg, name, RemoteImage(digest, rendered.labels))
    return WrapResult(name, WRAPPED, result.reference, result.digest, rendered.inputs_hash, rendered.path)
