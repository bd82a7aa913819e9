"""Shared pieces of the image tests: stand-in Singularity images and throwaway projects.

The stand-ins are laid out like the real installer/validator images:
/installer/singularity/installer.sh and /validations/validator.sh.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker_services
import services

MARKER = "/opt/microsoft/_singularity/installed"

INSTALLER = f"""#!/bin/sh
echo "installing Singularity components for $SINGULARITY_IMAGE_ACCELERATOR"
echo "$SINGULARITY_IMAGE_ACCELERATOR" > {MARKER}
"""
# Installs nothing: the validator run in the same RUN step then fails the build.
BROKEN_INSTALLER = """#!/bin/sh
echo "installer stand-in that forgets to install"
"""
VALIDATOR = f"""#!/bin/sh
echo "validating (accelerator $SINGULARITY_IMAGE_ACCELERATOR)"
test -f {MARKER} || {{ echo "FAIL: Singularity components are not installed"; exit 3; }}
test ! -e /etc/fail-validation || {{ echo "FAIL: /etc/fail-validation is present"; exit 4; }}
echo "validations passed"
"""


@dataclass
class StandIns:
    installer: str
    broken_installer: str
    validator: str


def _context(dockerfile: str, files: dict[str, str]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in {"Dockerfile": dockerfile, **files}.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def make_standin(client: Any, base: str, registry: services.Registry, repo: str, path: str, script: str) -> str:
    """An image FROM busybox holding `script` at `path`, pushed as registry/repo:1; returns the ref."""
    dockerfile = f"FROM {base}\nCOPY script.sh {path}\n"
    tag = f"{registry.host}/{repo}:1"
    client.images.build(fileobj=_context(dockerfile, {"script.sh": script}), custom_context=True,
                        tag=tag, rm=True, forcerm=True, labels=services.TEST_LABELS)
    docker_services.push_image(client, tag, registry, repo, "1")
    return tag


def make_standins(client: Any, base: str, registry: services.Registry) -> StandIns:
    return StandIns(
        installer=make_standin(client, base, registry, "stand-in/installer", "/installer/singularity/installer.sh", INSTALLER),
        broken_installer=make_standin(client, base, registry, "stand-in/broken-installer",
                                      "/installer/singularity/installer.sh", BROKEN_INSTALLER),
        validator=make_standin(client, base, registry, "stand-in/validator", "/validations/validator.sh", VALIDATOR),
    )


def project_yaml(*, registry_host: str, standins: StandIns, wrapped: str, username: str | None = None,
                 post_steps: list[str] | None = None, installer: str | None = None,
                 base_image: str = "singkit-test/busybox:1", extra: str = "") -> str:
    """A commented project config with one wrapped docker record `tiny` (and whatever `extra` adds)."""
    steps = post_steps if post_steps is not None else ["RUN echo post-step-ran > /post.txt"]
    creds = f"\n    username: {username}\n    password: $env:TEST_REGISTRY_PASSWORD   # never literal" if username else ""
    step_lines = "".join(f"\n      - {s}" for s in steps) or " []"
    return textwrap.dedent("""\
        # Project config for an image test.   (top comment)
        general:
          experiment: images-test   # experiment comment
          installer-image: {installer}
          validator-image: {validator}

        external-services:
          # the loopback registry
          loop:
            type: registry
            login-server: {host}{creds}

        dockers:
          # the record under test
          tiny:
            image: {base}      # the base image
            registry: loop
            sing-wrap: true    # wrap it
            accelerator: CPU
            wrapped-image: {wrapped}
            post-sing-steps:{steps}
        {extra}""").format(installer=installer or standins.installer, validator=standins.validator,
                           host=registry_host, creds=creds, base=base_image, wrapped=wrapped,
                           steps=step_lines, extra=extra)


def own_cache(text: str) -> str:
    """project_yaml's text wrapped for NVIDIA: a build cache of its own, so test_images_wrap's CPU
    build still runs the installer whichever test runs first (the engine caches by the base's
    image id, not by the name FROM uses)."""
    return text.replace("accelerator: CPU", "accelerator: NVIDIA")


def write_project(root: Path, text: str) -> Path:
    config = root / "configs" / "singkit.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)
    return config


def environ(root: Path, docker_host: str, **extra: str) -> dict[str, str]:
    return {"DOCKER_HOST": docker_host, "HOME": str(root / "home"), "SINGKIT_HOME": str(root / ".singkit"),
            "PATH": os.environ.get("PATH", ""), **extra}


def images_env(root: Path, docker_host: str, **extra: str):
    """A test Environment (jobtools.make_env) over project `root` with exactly `environ(...)`:
    the engine at `docker_host`, PATH, HOME root/home, the store in root/.singkit."""
    from jobtools import make_env

    return make_env(root, home=root / "home", inherit=False, **environ(root, docker_host, **extra))


def run_cli(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`singkit …` typed in the project with environment `env`, run in this process (clirunner.cli)."""
    from clirunner import cli

    return cli(list(args), root, environ=env)
