"""`image` tasks: render, build, validate, push, pin and wrap a docker record's image.

Thin: parse, call singkit.images, print. Data (paths, pinned references) goes to stdout,
progress to stderr. singkit.images is imported inside the tasks so `invoke --list` stays fast.
"""

from __future__ import annotations

from typing import Any

from singkit.tasks._edge import task

DOCKER_HELP = "name of a record under `dockers:` in configs/ (Make: DOCKER=name)"


def _load(env: Any, docker: str | None) -> tuple[Any, str]:
    from singkit.images.wrap import load_docker  # shared with the console script's no-op wrap (singkit.launch)

    return load_docker(env, docker, env.err)


@task(help={"docker": DOCKER_HELP,
            "offline": "ask no registry: placeholder digests, marked in the file (also used, with a warning, "
                       "when a registry cannot be reached)"})
def render(c, env, docker=None, offline=False):
    """Render dockerfiles/<docker>.Dockerfile from templates/wrap.Dockerfile.j2 (no engine needed)."""
    from singkit.images.render import render as render_image

    cfg, name = _load(env, docker)
    rendered = render_image(env, cfg, name, offline=offline, fallback=True)
    note = " with placeholder digests: not buildable" if rendered.placeholder else ""
    env.err(f"rendered {rendered.image.tagged} (inputs {rendered.inputs_hash}){note}")
    env.out(str(rendered.path))


@task(help={"docker": DOCKER_HELP, "no-cache": "build every step again instead of reusing cached layers"})
def build(c, env, docker=None, no_cache=False):
    """Render and build the wrapped image through the Docker Engine API; progress on stderr."""
    from singkit.images.build import build as build_image

    cfg, name = _load(env, docker)
    result = build_image(env, cfg, name, no_cache=no_cache)
    env.out(result.tag)


@task(help={"docker": DOCKER_HELP})
def validate(c, env, docker=None):
    """Run the Singularity validator in the built image, in a container with no network."""
    from singkit.images.validate import validate as validate_image

    cfg, name = _load(env, docker)
    validate_image(env, cfg, name)


@task(help={"docker": DOCKER_HELP})
def push(c, env, docker=None):
    """Push the built image with the registry record's credentials; prints name@sha256:…."""
    from singkit.images.push import push as push_image
    from singkit.images.render import wrapped_image

    cfg, name = _load(env, docker)
    digest = push_image(env, cfg, name)
    env.out(wrapped_image(cfg, name).pinned(digest))


@task(help={"docker": DOCKER_HELP})
def pin(c, env, docker=None):
    """Write the registry's digest into `sha256:` of the record, in the YAML file that defines it."""
    from singkit.images.pin import pin as pin_image
    from singkit.images.render import plan

    cfg, name = _load(env, docker)
    expect = plan(env, cfg, name).inputs_hash if cfg.docker(name).get("sing-wrap") else None
    result = pin_image(env, cfg, name, expect_inputs=expect)
    if not result.file:
        env.err(f"dockers.{name} already pinned to {result.digest}")
    env.out(result.reference)


@task(help={"docker": DOCKER_HELP,
            "force": "build and push even when up to date (e.g. the image was deleted from the registry, "
                     "which the local wrap record cannot see)",
            "no-cache": "with a build, build every step again", "json": "print the result as JSON on stdout"})
def wrap(c, env, docker=None, force=False, no_cache=False, json_=False):
    """Render, build, validate, push and pin — or say "up to date" when these inputs were pushed and pinned.

    "Up to date" is decided by the local wrap record (this machine pushed or checked these
    inputs, and the config pins that digest) or else by the registry (the image's inputs label)."""
    from singkit.images.wrap import output, wrap as wrap_image

    cfg, name = _load(env, docker)
    result = wrap_image(env, cfg, name, force=force, no_cache=no_cache)
    env.out(output(result, json_))
