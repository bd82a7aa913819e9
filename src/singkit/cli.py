"""The `singkit` console script: the same tasks as `invoke` in the repo, from anywhere."""

from __future__ import annotations

from invoke import Program

from singkit import __version__
from singkit.tasks import ns

program = Program(name="singkit", binary="singkit", version=__version__, namespace=ns)


def main() -> None:
    program.run()
