"""The one place where errors meet the user: every singkit task is declared through `task` here.

A task body receives the invoke Context and an Environment, raises singkit exceptions, and
returns nothing. The edge prints the exception as one line on stderr and ends with its exit
code; with --verbose it shows the traceback too.
"""

from __future__ import annotations

import functools
import inspect
import traceback
from collections.abc import Callable
from typing import Any

import invoke
from invoke.exceptions import Exit

from singkit.environment import Environment
from singkit.exceptions import ConfigError, SingkitError, UsageError

VERBOSE_HELP = "show the traceback of an error"


def task(*args: Any, **kwargs: Any) -> Any:
    """`invoke.task`, for bodies shaped `body(c, env, ...)`; adds `--verbose` and the error edge."""
    if args and callable(args[0]) and not kwargs:
        return _make(args[0], {})
    return lambda body: _make(body, kwargs)


def _make(body: Callable[..., Any], options: dict[str, Any]) -> invoke.Task:
    params = list(inspect.signature(body).parameters.values())
    context, _env, *rest = params  # body(c, env, ...)
    verbose = inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY, default=False)

    made: list[invoke.Task] = []

    @functools.wraps(body)
    def run(c: invoke.Context, *a: Any, verbose: bool = False, **kw: Any) -> None:
        if any(v in HELP_WORDS for v in (*a, *kw.values()) if isinstance(v, str)):
            return _print_help(made[0])  # invoke fed `--help` to a missing positional argument
        env = Environment.from_os(verbose=verbose)
        try:
            body(c, env, *a, **kw)
        except SingkitError as error:
            if verbose:
                traceback.print_exc(file=env.stderr)
            # config problems already read `file:line:col: message`; anything else gets a prefix
            env.err(str(error) if isinstance(error, ConfigError) else f"error: {error}")
            raise Exit(code=error.exit_code) from None
        except KeyboardInterrupt:
            env.err("interrupted")
            raise Exit(code=130) from None

    run.__signature__ = inspect.Signature([context, *rest, verbose])  # type: ignore[attr-defined]
    options = dict(options)
    options.setdefault("help", {})
    options["help"] = {"verbose": VERBOSE_HELP, **options["help"]}
    made.append(invoke.task(**options)(run))
    return made[0]


HELP_WORDS = {"-h", "--help"}


def _print_help(made: invoke.Task) -> None:
    """The help invoke prints for `invoke --help TASK`, for a task whose positional took `--help`."""
    from invoke import Collection, Program

    Program(namespace=Collection(made), binary="invoke").run(["invoke", "--help", made.name], exit=False)


def job_arg(value: str | None, *, required: bool = True) -> str | None:
    """Accept `jobN`, `JOB=jobN` (Make style) or `job=jobN`; refuse nothing else silently."""
    if value is None or value == "":
        if required:
            raise UsageError("no job given: pass JOB=jobN or --job=jobN")
        return None
    head, sep, tail = value.partition("=")
    if sep and head.lower() in {"job", "run"}:
        value = tail
    if not value:
        raise UsageError("no job given: pass JOB=jobN or --job=jobN")
    return value
