"""Writing a digest into the YAML that defines the docker record (comments and order kept)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from singkit.exceptions import ConfigError, Hint, SingkitError
from singkit.images.audit import audit
from singkit.imageref import Reference, normalize_digest, target_reference
from singkit.images.registry import RemoteImage, client_for
from singkit.images.render import BASE_LABEL, INPUTS_LABEL, origin_problem, registry_record, relative_to_project

if TYPE_CHECKING:
    from singkit.config.model import Config
    from singkit.environment import Environment


@dataclass(frozen=True)
class Pin:
    docker: str
    reference: str  # name@sha256:… a job pulls
    digest: str
    file: Path | None  # the file written, None when it already said so


def pin(env: Environment, cfg: Config, name: str, remote: RemoteImage | None = None, *,
        expect_inputs: str | None = None) -> Pin:
    """Set `sha256:` (and `base-sha256:` for a wrapped image) of dockers.<name>.

    `remote` is the pushed image (digest from the registry, labels); without it the registry
    is asked. wrap calls this only after a successful push, so a failed wrap never touches
    the YAML.
    """
    record = cfg.docker(name)
    ref = target_reference(record, registry_record(cfg, record))
    if remote is None:
        remote = client_for(env, cfg, ref).inspect(ref)
        if remote is None and record.get("sing-wrap"):
            raise SingkitError(f"{ref.tagged} is not in registry {ref.registry_host}",
                              hint=Hint.command("image.wrap", docker=name, say="; run {}"))
        if remote is None:  # the record names an image that does not exist: a config mistake
            raise ConfigError(origin_problem(cfg, name, "image", f"image {ref.tagged} is not in registry "
                                                                 f"{ref.registry_host}; push it there or fix `image:`"))
        if expect_inputs and remote.labels.get(INPUTS_LABEL) != expect_inputs:
            env.err(f"note: {ref.tagged} in the registry was built from other inputs than the config's now; "
                    f"`invoke image.wrap --docker={name}` rebuilds it")
    digest = normalize_digest(remote.digest) or ""
    updates = {"sha256": digest}
    if record.get("sing-wrap") and remote.labels.get(BASE_LABEL):
        try:
            updates["base-sha256"] = normalize_digest(Reference.parse(remote.labels[BASE_LABEL]).digest) or ""
        except ValueError:
            pass  # a label we did not write; the base pin is informational
    written = None
    for key, value in updates.items():
        if value and _same(record.get(key)) != value:
            written = cfg.write_back("dockers", name, key, value)
    if written:
        env.err(f"pinned dockers.{name} to {digest} in {relative_to_project(env, written)}")
        audit(env, "pin", docker=name, image=ref.tagged, digest=digest, file=str(written))
    return Pin(name, ref.pinned(digest), digest, written)


def _same(value: Any) -> str | None:
    try:
        return normalize_digest(value)
    except ValueError:  # a hand-edited malformed pin gets overwritten
        return None
