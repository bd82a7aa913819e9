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

import importlib
import sys
import types
from typing import Any

# Loaded on first use (PEP 562), so a no-op wrap, a pin or a render loads only the modules its
# check needs: not build, push, validate and the engine code (issue 14, item 5).
_HOME = {
    "BuildResult": "build", "build": "build", "Pin": "pin", "pin": "pin", "push": "push",
    "Reference": None, "pinned_reference": None, "target_reference": None,
    "RegistryClient": "registry", "RemoteImage": "registry",
    "INPUTS_LABEL": "render", "Rendered": "render", "inputs_hash": "render", "plan": "render", "render": "render",
    "render_dockerfile": "render", "Validation": "validate", "validate": "validate", "WrapResult": "wrap", "wrap": "wrap",
}
__all__ = sorted(_HOME)  # noqa: PLE0605  (the lazy table above is the one list of names)


def _load(name: str) -> Any:
    module = importlib.import_module(f"singkit.images.{_HOME[name]}" if _HOME[name] else "singkit.imageref")
    return getattr(module, name)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = _load(name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """The functions keep their modules' names: importing `singkit.images.build` sets the package's
    `build` to the module (the import system does that on a first import), which must not replace
    the function, as it did not when this package imported everything at once."""


def _function_of(name: str) -> property:
    def get(_self: types.ModuleType) -> Any:
        return _load(name)

    def ignore(_self: types.ModuleType, _value: Any) -> None:
        return None

    return property(get, ignore)


for _name in ("build", "pin", "push", "render", "validate", "wrap"):
    setattr(_Package, _name, _function_of(_name))
sys.modules[__name__].__class__ = _Package
