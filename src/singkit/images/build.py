"""Building the rendered Dockerfile through the Docker Engine API, with live progress on stderr."""

from __future__ import annotations

import io
import re
import tarfile
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from singkit.exceptions import SingkitError
from singkit.images.audit import audit
from singkit.images.engine import connect, engine_calls, ensure_image, long_reads
from singkit.images.progress import LayerProgress
from singkit.images.render import Rendered, refuse_placeholder, render, short_text

if TYPE_CHECKING:
    from singkit.config.model import Config
    from singkit.environment import Environment

TAIL_LINES = 5
_STEP = re.compile(r"^Step (\d+/\d+) : (.*)$")
_NONZERO = re.compile(r"returned a non-zero code: (\d+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the classic builder paints a step's stderr red
_QUIET = (" ---> ", "Removing intermediate container", "Successfully built", "Successfully tagged")


@dataclass(frozen=True)
class BuildResult:
    docker: str
    image_id: str
    tag: str
    inputs_hash: str


def context_tar(dockerfile: str) -> io.BytesIO:
    """A build context holding only the Dockerfile: the wrap needs no files from the project
    (a job's code travels in its snapshot, not in the image), and sending none keeps builds fast."""
    buf = io.BytesIO()
    data = dockerfile.encode()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


class BuildFollower:
    """Prints the classic builder's stream (steps, pulls, RUN output) and remembers enough of it
    to explain a failure in one line."""

    def __init__(self, env: Environment, docker: str):
        self.env, self.docker = env, docker
        self.step, self.instruction = "", ""
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.pulls = LayerProgress(env, "pull")
        self.image_id: str | None = None
        self._partial = ""

    def follow(self, events: Iterable[dict[str, Any]]) -> str:
        for event in events:
            if "error" in event or "errorDetail" in event:
                self._flush()
                detail = event.get("errorDetail") or {}
                raise self.failure(str(event.get("error") or detail.get("message") or "unknown error"), detail.get("code"))
            if "stream" in event:
                self._text(str(event["stream"]))
            elif "status" in event:
                self.pulls.update(event)
            aux = event.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                self.image_id = aux["ID"]
        self._flush()
        if not self.image_id:
            raise SingkitError(f"build of dockers.{self.docker} ended without an image; run again with --verbose")
        return self.image_id

    def _text(self, text: str) -> None:
        text = self._partial + _ANSI.sub("", text)
        *lines, self._partial = text.split("\n")
        for line in lines:
            self._line(line.rstrip("\r"))

    def _flush(self) -> None:
        if self._partial:
            self._line(self._partial)
            self._partial = ""

    def _line(self, line: str) -> None:
        match = _STEP.match(line)
        if match:
            self.step, self.instruction = match.groups()
            self.tail.clear()
            self.env.err(f"[{self.docker}] Step {self.step} : {short_text(self.instruction, 200)}")
        elif line.startswith(" ---> Using cache"):
            self.env.err("  (cached)")
        elif line.startswith(_QUIET) or not line.strip():
            return
        else:
            self.tail.append(line)
            self.env.err(f"  | {line}")

    def failure(self, message: str, code: Any = None) -> SingkitError:
        message = " ".join(message.split())
        nonzero = _NONZERO.search(message)
        where = f"step {self.step} `{short_text(self.instruction, 80)}`" if self.step else "the start"
        if nonzero:
            tail = " | ".join(short_text(line, 120) for line in self.tail) or "(no output)"
            what = "the Singularity installer or validator" if "_singularity/" in self.instruction else "the step"
            return SingkitError(f"build of dockers.{self.docker} failed at {where}: {what} exited {nonzero.group(1)}; "
                                f"last output: {tail}")
        return SingkitError(f"build of dockers.{self.docker} failed at {where}: {short_text(message, 300)}")


def build(env: Environment, cfg: Config, name: str, *, rendered: Rendered | None = None, client: Any = None,
          no_cache: bool = False) -> BuildResult:
    """Render (unless given), pull what the FROM lines need, build and tag the wrapped image."""
    import docker

    rendered = rendered or render(env, cfg, name)
    refuse_placeholder(rendered)  # a placeholder digest must never become an image, a push or a pin
    if rendered.text is None:
        raise ValueError("planned with text=False: plan again with text=True to build the image")
    client = client or connect(env, read_timeout=None)
    ensure_image(env, cfg, client, rendered.base.pinned(), "base")
    ensure_image(env, cfg, client, rendered.installer, "installer")
    ensure_image(env, cfg, client, rendered.validator, "validator")
    tag = rendered.image.tagged
    env.err(f"build {tag} from {rendered.path.name}")
    follower = BuildFollower(env, name)
    try:
        try:
            with engine_calls(env), long_reads(client):
                stream = client.api.build(
                    fileobj=context_tar(rendered.text), custom_context=True, tag=tag, labels=rendered.labels,
                    buildargs=rendered.build_args or None, rm=True, forcerm=True, nocache=no_cache, pull=False,
                    decode=True)
                image_id = follower.follow(stream)
        except docker.errors.APIError as error:
            raise follower.failure(str(error.explanation or error)) from None
    except SingkitError as error:
        # A failed build is as much a part of the image's history as a successful one.
        audit(env, "build-failed", docker=name, image=tag, inputs=rendered.inputs_hash, error=str(error))
        raise
    env.err(f"built {tag} ({image_id[:19]})")
    audit(env, "build", docker=name, image=tag, id=image_id, inputs=rendered.inputs_hash)
    return BuildResult(name, image_id, tag, rendered.inputs_hash)

