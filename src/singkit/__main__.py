"""`python -m singkit …` — the same as the `singkit` console script."""

from singkit.launch import main

main()
