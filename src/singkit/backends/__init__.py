"""Where runs execute: local processes, the local Docker Engine, Singularity. See base.py."""

from singkit.backends.base import Backend, backend_for, backend_for_job

__all__ = ["Backend", "backend_for", "backend_for_job"]
