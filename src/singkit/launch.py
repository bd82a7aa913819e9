"""The `singkit` console script: a no-op `image.wrap` answered before invoke loads; all else is cli.main.

Python with invoke takes longer to start (~0.25 s) than a cached `docker build` takes in all, so
a no-op wrap could never be as quick as one through invoke (issue 14, item 5). This start path
recognises ONE command line, exactly:

    singkit image.wrap --docker=NAME | --docker NAME | DOCKER=NAME | -d NAME  [--json]

(the two words in either order). When anything is recorded at all, it loads the config the cheap
way (the parsed-config cache, no ruamel, no jsonschema), asks the local wrap record
(images/wrapmemo.py) through the same function the full path asks first
(images.wrap.known_up_to_date), then runs the record's config checks as the full path does
(configcheck.require). Only when that says "up to date", with no config warning to show, does it print what the full path prints (the same
functions make the stderr line and stdout) and end with 0. In every other case — another task or
option, `--help`, `--verbose`, a record miss, a config problem, ANY exception in the check — it
hands the untouched command line to `singkit.cli.main`, so every error is reported by the one
edge, and nothing was printed here. It never imports invoke, singkit.cli, an HTTP library, jinja2
or the docker SDK (tests/test_launch.py checks it).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from singkit.environment import Environment
    from singkit.images.wrap import WrapResult

TASK = "image.wrap"


def recognised(words: list[str]) -> tuple[str, bool] | None:
    """(the --docker value, --json given) for the one command line this path answers, else None."""
    if not words or words[0] != TASK:
        return None
    docker: str | None = None
    as_json = False
    rest = words[1:]
    i = 0
    while i < len(rest):
        word = rest[i]
        if word == "--json" and not as_json:
            as_json = True
        elif docker is None and word.startswith("--docker="):
            docker = word[len("--docker="):]
        elif docker is None and word.startswith("DOCKER="):
            docker = word[len("DOCKER="):]
        elif docker is None and word in ("--docker", "-d") and i + 1 < len(rest) and not rest[i + 1].startswith("-"):
            docker = rest[i + 1]
            i += 1
        else:
            return None  # anything else — a second --docker, --force, -h, a task word — is the parser's
        i += 1
    # a name with `=` (`--docker=DOCKER=x`, a Make slip the loader mends) is the full path's to read
    return (docker, as_json) if docker and "=" not in docker else None


def answer(env: Environment, docker: str) -> WrapResult | None:
    """The up-to-date result for dockers.<docker> from the local record alone, or None: let the
    full path run. Raises whatever loading the config or the check raises (main falls through)."""
    from singkit.images import wrapmemo

    if not wrapmemo.has_records(env):  # nothing ever recorded here: no config to load for nothing
        return None
    from singkit.configcheck import require
    from singkit.images.wrap import find_docker, known_up_to_date

    cfg, name = find_docker(env, docker)
    result = known_up_to_date(env, cfg, name)
    if result is None:
        return None
    warnings: list[str] = []
    require(cfg, warnings.append, "dockers", name)  # as images.wrap.load_docker, after the cheaper check
    return None if warnings else result  # the full path shows them


def main() -> None:
    """Entry point of the `singkit` console script (and of `python -m singkit`)."""
    given = recognised(sys.argv[1:])
    result = None
    if given is not None:
        try:
            from singkit.environment import Environment

            env = Environment.from_os()
            result = answer(env, given[0])
        except Exception:  # noqa: BLE001 - any doubt is the full path's to report, in its one line
            result = None
    if result is None or given is None:
        from singkit.cli import main as full

        full()  # reads sys.argv, untouched
        return
    from singkit.images.wrap import output, up_to_date_line

    try:
        env.err(up_to_date_line(result.image or result.reference, result.digest))
        env.out(output(result, given[1]))
    except BrokenPipeError:  # the reader went away (`| head -0`): end as the edge ends then
        from singkit.tasks._edge import pipe_closed

        raise SystemExit(pipe_closed(env)) from None
