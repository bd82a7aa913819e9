"""The kinds of backend, by the service type a target runs on: a table of names, not imports.

`singkit.backends.base.backend_for` imports the class a kind names only when a job needs it, so
CLI start-up loads no backend it does not use (no docker or azure for a local job). Config reads
the built-in kinds here (a target's `service: local|docker` needs no record in the config) and
never imports a backend. A new backend is one line in BACKENDS (ARCHITECTURE.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

# service type -> "module:Class" of the backend that runs its targets' jobs
BACKENDS: Final[Mapping[str, str]] = {
    "local": "singkit.backends.local:LocalBackend",
    "docker": "singkit.backends.docker:DockerBackend",
    "singularity": "singkit.backends.singularity:SingularityBackend",
    "aml": "singkit.backends.singularity:SingularityBackend",
}

# the kinds a target names as its service directly, with no record in the config: they run here
BUILTIN_SERVICES: Final = ("local", "docker")

# the service types a target runs on through a record in `external-services`
REMOTE_SERVICES: Final = tuple(kind for kind in BACKENDS if kind not in BUILTIN_SERVICES)
