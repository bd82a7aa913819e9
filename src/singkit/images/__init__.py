"""Singularity-ready images: render the wrap Dockerfile, build, validate, push, pin — or skip.

Public API (each takes the Environment, the loaded Config and a docker record's name):
  render(env, cfg, name) -> Rendered          plan(...) is the same without writing the file
  build(env, cfg, name) -> BuildResult        validate(env, cfg, name) -> Validation
  push(env, cfg, name) -> str (the digest)    pin(env, cfg, name) -> Pin
  wrap(env, cfg, name, force=False, no_cache=False) -> WrapResult
  pinned_reference(cfg, name) -> "host/repo@sha256:…" (the image a job should run)

The functions shadow their modules' names here (`singkit.images.render` is the function);
import helpers from the modules themselves: `from singkit.images.render import plan`.
Nothing here imports the docker SDK or jinja2 until a function runs.
"""

from __future__ import annotations

from singkit.images.build import BuildResult, build
from singkit.images.pin import Pin, pin
from singkit.images.push import push
from singkit.imageref import Reference, pinned_reference, target_reference
from singkit.images.registry import RegistryClient, RemoteImage
from singkit.images.render import INPUTS_LABEL, Rendered, inputs_hash, plan, render, render_dockerfile
from singkit.images.validate import Validation, validate
from singkit.images.wrap import WrapResult, wrap

__all__ = [
    "BuildResult", "INPUTS_LABEL", "Pin", "Reference", "RegistryClient", "RemoteImage", "Rendered",
    "Validation", "WrapResult", "build", "inputs_hash", "pin", "pinned_reference", "plan", "push",
    "render", "render_dockerfile", "target_reference", "validate", "wrap",
]
