"""singkit: build Singularity-ready images, submit and follow training jobs, report their metrics."""

__version__ = "0.1.0"
