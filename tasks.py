"""Entry point for `invoke` in the repo root: singkit's task namespace, run by singkit's program.

The `invoke` binary loads this file before it parses the task words; `take_over_invoke` then
runs the command line as `singkit` does (one-line usage errors with "did you mean", exit 2;
`JOB=jobN` words; singkit's help). Imported any other way, this file only provides `ns`.
"""

from singkit.cli import take_over_invoke
from singkit.tasks import ns  # noqa: F401

take_over_invoke(__name__)
