"""Entry point for `invoke` in the repo root: singkit's task namespace, nothing else."""

from singkit.tasks import ns  # noqa: F401
