"""`python -m singkit …` — the same as the `singkit` console script."""

from singkit.cli import main

main()
