"""image.wrap: render → build → validate → push → pin, or nothing at all when nothing changed.

"Is it up to date?" is asked first of the local wrap record (images/wrapmemo.py: what the last
wrap or registry check of these exact inputs found, and the config still pins), which asks no
registry, as a cached `docker build` asks none. When that cannot answer, the registry is the
memory: the wrapped image carries a label with the hash of every input, so the check is two small
registry requests, no engine, no build context; its answer is recorded for the next no-op.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from singkit.exceptions import UsageError
from singkit.images import wrapmemo
from singkit.images.render import INPUTS_LABEL, Rendered, dockerfile_current, plan, registry_record, write_dockerfile
from singkit.imageref import base_reference, normalize_digest

if TYPE_CHECKING:
    from collections.abc import Callable

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
    image: str | None = None  # the wrapped image's tag (host/repo:tag), for messages; not in as_json

    def as_json(self) -> dict[str, Any]:
        return {"docker": self.docker, "status": self.status, "reference": self.reference, "digest": self.digest,
                "inputs-hash": self.inputs_hash, "dockerfile": str(self.dockerfile) if self.dockerfile else None}


def up_to_date_line(image: str, digest: str) -> str:
    """What a wrap that had nothing to do says on stderr (the one wording, whichever memory answered)."""
    return f"{image} is up to date ({digest})"


def output(result: WrapResult, as_json: bool = False) -> str:
    """What image.wrap prints on stdout: the pinned reference, or the result as JSON."""
    return json.dumps(result.as_json()) if as_json else result.reference


def load_docker(env: Environment, docker: str | None, warn: Callable[[str], None]) -> tuple[Config, str]:
    """(the loaded config, the record name) for an image command's `--docker` value.

    Raises UsageError for no name, an unknown record (with the closest names) or a registered
    Azure ML environment, ConfigError for problems in the record's closure; the warnings of
    configcheck.require go to `warn`."""
    from singkit.configcheck import require

    cfg, name = find_docker(env, docker)
    require(cfg, warn, "dockers", name)
    return cfg, name


def find_docker(env: Environment, docker: str | None) -> tuple[Config, str]:
    """load_docker without configcheck.require: the record is named and exists, nothing more."""
    from singkit.config import load_config

    cfg = load_config(env)
    name = (docker or "").strip()
    if name.lower().startswith("docker="):  # `invoke image.wrap --docker=DOCKER=x` from a Make slip
        name = name.split("=", 1)[1]
    if not name:
        known = ", ".join(sorted(cfg.dockers)) or "none defined yet"
        raise UsageError(f"no docker record given: pass --docker=NAME (records: {known})")
    record = cfg.docker(name)  # unknown names fail here, with the closest match
    if str(record.get("image") or "").startswith("azureml:"):
        raise UsageError(f"docker record `{name}` names a registered Azure ML environment ({record['image']}): "
                         "Azure ML versions it, so there is nothing to render, build, push or pin")
    return cfg, name


def known_up_to_date(env: Environment, cfg: Config, name: str, rendered: Rendered | None = None) -> WrapResult | None:
    """The "up to date" answer for dockers.<name> from the local wrap record alone, or None (then
    the registry decides). Asks no registry and no engine: None whenever the inputs hash would
    need one (a base named by tag, an installer or validator named without a tag).

    `rendered`: a plan(..., text=False, offline=True) of the record already made."""
    record = cfg.docker(name)
    if not record.get("sing-wrap") or not record.get("registry"):
        return None
    rendered = rendered or plan(env, cfg, name, text=False, offline=True)
    if rendered.placeholder:
        return None
    digest = wrapmemo.recorded(env, rendered.image.tagged, rendered.inputs_hash)
    if digest is None or _digest(record.get("sha256")) != digest:
        return None  # never wrapped here, other inputs, or a pin edited since: ask the registry
    if _digest(record.get("base-sha256")) != normalize_digest(rendered.base.digest):
        return None  # image.pin would write base-sha256 again
    if not dockerfile_current(rendered):
        return None  # the registry path writes it (a fresh clone: dockerfiles/ is generated)
    return WrapResult(name, UP_TO_DATE, rendered.image.pinned(digest), digest, rendered.inputs_hash, rendered.path,
                      rendered.image.tagged)


def _digest(value: Any) -> str | None:
    try:
        return normalize_digest(value)
    except ValueError:  # a hand-edited malformed pin: not the recorded one
        return None


def wrap(env: Environment, cfg: Config, name: str, *, force: bool = False, no_cache: bool = False) -> WrapResult:
    """Make dockers.<name>'s image Singularity-ready in its registry and pin it; skip if it already is.

    The YAML changes only after a successful push (or to pin an up-to-date registry image).
    """
    # not at the module top: the console script's no-op check (singkit.launch) imports this module without them
    from singkit.images.pin import pin
    from singkit.images.registry import RemoteImage, client_for

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

    # The check needs the inputs hash only: no Dockerfile text, no jinja2, no engine; first
    # without any registry, for the local record.
    rendered = plan(env, cfg, name, text=False, offline=True)
    if not force and (known := known_up_to_date(env, cfg, name, rendered)) is not None:
        env.err(up_to_date_line(rendered.image.tagged, known.digest))
        return known
    local = not rendered.placeholder  # a record is kept only where the local check can use it (not a base by tag)
    if rendered.placeholder:  # the base's digest or a stage's tag is the registry's to say
        rendered = plan(env, cfg, name, text=False)
    image = rendered.image
    if not force:
        remote = client_for(env, cfg, image).inspect(image)
        if remote is not None and remote.labels.get(INPUTS_LABEL) == rendered.inputs_hash:
            if not dockerfile_current(rendered):  # e.g. a fresh clone: dockerfiles/ is generated
                write_dockerfile(plan(env, cfg, name, base_digest=rendered.base.digest, stages=rendered.stages))
            result = pin(env, cfg, name, remote)
            if not result.file:
                env.err(up_to_date_line(image.tagged, remote.digest))
            if local:
                wrapmemo.remember(env, image.tagged, rendered.inputs_hash, result.digest)
            return WrapResult(name, PINNED if result.file else UP_TO_DATE, result.reference, result.digest,
                              rendered.inputs_hash, rendered.path, image.tagged)
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
    if local:
        wrapmemo.remember(env, image.tagged, rendered.inputs_hash, result.digest)
    return WrapResult(name, WRAPPED, result.reference, result.digest, rendered.inputs_hash, rendered.path, image.tagged)
