"""Running the Singularity validator of a built image, locally, in a container with no network."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from singkit.exceptions import Hint, SingkitError, UsageError
from singkit.images.engine import connect, engine_calls, has_image, long_reads
from singkit.images.render import DOCKER_LABEL, VALIDATOR_SCRIPT, Rendered, wrapped_image

if TYPE_CHECKING:
    from singkit.config.model import Config
    from singkit.environment import Environment

TAIL_LINES = 5
WAIT_SECONDS = 1800


@dataclass(frozen=True)
class Validation:
    docker: str
    image: str
    exit_code: int
    output: str

    @property
    def passed(self) -> bool:
        return self.exit_code == 0


def validate(env: Environment, cfg: Config, name: str, *, rendered: Rendered | None = None, client: Any = None) -> Validation:
    """Run validator.sh in the locally built image; its output streams to stderr.

    Raises SingkitError (exit 1) when the validator fails, naming its exit code and last lines.
    """
    import docker

    image = (rendered.image if rendered else wrapped_image(cfg, name)).tagged
    if rendered:
        accelerator = rendered.accelerator
    else:
        from singkit.singularity.accelerator import accelerator as accelerator_for

        accelerator = accelerator_for(cfg, name)
    client = client or connect(env, read_timeout=None)
    if not has_image(client, image, env):
        raise UsageError(f"no local image {image}", hint=Hint.command("image.build", docker=name, say="; run {} first"))
    env.err(f"validate {image} ({VALIDATOR_SCRIPT}, no network)")
    lines: list[str] = []
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    container = None
    try:
        with engine_calls(env):
            container = client.containers.create(
                image, entrypoint=[VALIDATOR_SCRIPT], command=[], network_mode="none",
                environment={"SINGULARITY_IMAGE_ACCELERATOR": accelerator},
                labels={DOCKER_LABEL: name}, detach=True)
            container.start()
            with long_reads(client):  # a validator may think silently for a while
                _follow(env, container, lines, tail)
            code = int(container.wait(timeout=WAIT_SECONDS).get("StatusCode", -1))
    except docker.errors.APIError as error:
        raise SingkitError(f"could not run the validator of {image}: {error.explanation or error}") from None
    finally:
        if container is not None:
            try:
                container.remove(force=True)
            except Exception:  # best effort: the result matters more than the cleanup
                pass
    result = Validation(name, image, code, "\n".join(lines))
    if not result.passed:
        shown = " | ".join(line.strip() for line in tail if line.strip()) or "(no output)"
        raise SingkitError(f"validator failed in {image} (exit {code}): {shown}")
    env.err(f"validator passed in {image}")
    return result


def _follow(env: Environment, container: Any, lines: list[str], tail: deque[str]) -> None:
    """The validator's output, line by line, onto stderr and into `lines` / `tail`."""
    partial = ""
    for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
        *done, partial = (partial + chunk.decode("utf-8", "replace")).split("\n")
        for line in done:
            lines.append(line)
            tail.append(line)
            env.err(f"  | {line}")
    if partial:
        lines.append(partial)
        tail.append(partial)
        env.err(f"  | {partial}")
