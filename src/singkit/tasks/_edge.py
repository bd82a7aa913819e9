"""The one place where errors meet the user: every singkit task is declared through `task` here.

A task body receives the invoke Context and an Environment, raises singkit exceptions, and
returns nothing. The edge prints the exception as one line on stderr and ends with its exit
code; with --verbose it shows the traceback too. What was not raised on purpose still ends
as one line: an OSError names the file, an SQLite error says so, anything else is an
`internal error` (exit 1) that points at --verbose.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import invoke
from invoke.exceptions import Exit, Failure, ParseError

from singkit.environment import Environment
from singkit.exceptions import ConfigError, ExitStatus, SingkitError, UsageError
from singkit.refs import check_word
from singkit.suggest import choice
from singkit.tasks._surface import Choices, SingkitTask, int_params

VERBOSE_HELP = "show the traceback of an error"
# The Environment a command runs against when the caller gave one (cli.run: a test, an embedding
# program); otherwise each task builds it from the process (os.environ, cwd, sys streams).
_INJECTED: ContextVar[Environment | None] = ContextVar("singkit_environment", default=None)


@contextlib.contextmanager
def _holding(var: ContextVar[Any], value: Any) -> Iterator[None]:
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def injected(env: Environment) -> contextlib.AbstractContextManager[None]:
    """Tasks called inside run against `env` (its environ, project root and streams)."""
    return _holding(_INJECTED, env)


def current_environment(verbose: bool = False) -> Environment:
    """The injected Environment (with this call's --verbose), else one built from the OS."""
    env = _INJECTED.get()
    return Environment.from_os(verbose=verbose) if env is None else dataclasses.replace(env, verbose=verbose)


def task(*args: Any, **kwargs: Any) -> Any:
    """`invoke.task`, for bodies shaped `body(c, env, ...)`; adds `--verbose` and the error edge.

    Options follow singkit's surface (tasks/_surface.py): short flags only from its table,
    parameters annotated `int` (or `int | None`) parse as integers, and `choices={"what":
    ("code", "logs")}` (or `Choices(..., comma=True)` for a comma list) is checked before the
    body runs: a value that is none of them is a usage error naming the closest (exit 2).
    `several="path"`: that positional takes several words (`import-xt a.yaml b.yaml`), which
    reach the body comma-joined (invoke itself reads a second word as the next task's name)."""
    if args and callable(args[0]) and not kwargs:
        return _make(args[0], {})
    return lambda body: _make(body, kwargs)


def _make(body: Callable[..., Any], options: dict[str, Any]) -> invoke.Task:
    params = list(inspect.signature(body).parameters.values())
    context, _env, *rest = params  # body(c, env, ...)
    verbose = inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY, default=False)

    made: list[SingkitTask] = []
    options = dict(options)
    choices = {name: value if isinstance(value, Choices) else Choices(value)
               for name, value in options.pop("choices", {}).items()}
    several = options.pop("several", None)
    unknown = set(choices) - {p.name for p in rest}
    if unknown:  # a typo in a decorator is the programmer's, found at import
        raise TypeError(f"choices for parameters {body.__name__} does not have: {sorted(unknown)}")

    @functools.wraps(body)
    def run(c: invoke.Context, *a: Any, verbose: bool = False, **kw: Any) -> None:
        if any(v in HELP_WORDS for v in (*a, *kw.values()) if isinstance(v, str)):
            return _print_help(made[0])  # invoke fed `--help` to a missing positional argument
        env = current_environment(verbose)
        try:
            _run_body(body, c, env, verbose, a, kw, choices)
        except BrokenPipeError:  # telling the user failed too: stderr is the closed pipe (2>&1 | head)
            raise Exit(code=pipe_closed(env)) from None

    run.__signature__ = inspect.Signature([context, *rest, verbose])  # type: ignore[attr-defined]
    options.setdefault("help", {})
    options["help"] = {"verbose": VERBOSE_HELP, **options["help"]}
    made.append(invoke.task(klass=SingkitTask, auto_shortflags=False, **options)(run))
    made[0].ints = int_params(rest)
    made[0].choices = choices
    made[0].several = several
    return made[0]


def _checked(body: Callable[..., Any], a: tuple[Any, ...], kw: dict[str, Any],
             choices: dict[str, Choices]) -> dict[str, Any]:
    """The call's arguments by name, enumerated ones as their choice's own spelling; UsageError
    (with the closest choice) for a value that is none of them."""
    bound = inspect.signature(body).bind_partial(None, None, *a, **kw).arguments
    named = {k: v for k, v in list(bound.items())[2:]}
    for name, allowed in choices.items():
        value = named.get(name)
        if value is not None and value != "":
            named[name] = choice(str(value), allowed, name.replace("_", "-"), comma=allowed.comma)
    return named


def _run_body(body: Callable[..., Any], c: invoke.Context, env: Environment, verbose: bool,
              a: tuple[Any, ...], kw: dict[str, Any], choices: dict[str, Choices] | None = None) -> None:
    try:
        if choices:
            body(c, env, **_checked(body, a, kw, choices))
        else:
            body(c, env, *a, **kw)
        env.stdout.flush()  # a reader gone away shows here, not as a traceback at exit
    except (Exit, Failure, ParseError):
        raise  # invoke's own: it reports them
    except BrokenPipeError as error:
        if reader_gone(env.stdout):
            raise Exit(code=pipe_closed(env)) from None
        raise Exit(code=_report(error, env, verbose)) from None  # some other pipe: a real error
    except KeyboardInterrupt:
        env.err("interrupted")
        raise Exit(code=ExitStatus.INTERRUPTED) from None
    except Exception as error:  # noqa: BLE001 - the edge: nothing leaves as a traceback
        raise Exit(code=_report(error, env, verbose)) from None


def _report(error: Exception, env: Environment, verbose: bool) -> ExitStatus:
    """Tell the user in one line (after the traceback with --verbose); the exit code."""
    if verbose:
        traceback.print_exc(file=env.stderr)
    message, code = describe(error, env, verbose)
    env.err(message)
    return code


HELP_WORDS = {"-h", "--help"}
VERBOSE_HINT = "(run again with --verbose for the traceback)"
# What a command killed by SIGPIPE ends with (128 + 13): `singkit job.list | head -1` ends as
# `git log | head -1` does, and `set -o pipefail` scripts can tell it from a real failure.
SIGPIPE_EXIT = ExitStatus.SIGPIPE


def reader_gone(stream: Any) -> bool:
    """Is `stream` a pipe (or socket) whose reading end is closed? poll() says POLLERR then."""
    fd = _fd(stream)
    if fd is None:
        return False
    try:
        import select

        poller = select.poll()
    except (ImportError, AttributeError):
        return True  # no poll() here (Windows): a broken pipe while we ran is most likely stdout
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _fd, events in poller.poll(0))


def pipe_closed(env: Environment) -> ExitStatus:
    """The reader of stdout went away (`| head -1`): say nothing and end with SIGPIPE's code.

    stdout (and stderr when it is that same pipe: `2>&1 | head`) is pointed at /dev/null
    first, as the Python docs recommend, so the interpreter's final flush cannot fail."""
    out = _fd(env.stdout)
    if out is None:
        return SIGPIPE_EXIT
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        err = _fd(env.stderr)
        if err is not None and _same_file(out, err):
            os.dup2(devnull, err)
        os.dup2(devnull, out)
    finally:
        os.close(devnull)
    return SIGPIPE_EXIT


def _fd(stream: Any) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, ValueError, OSError):
        return None  # not a real file (a test's StringIO)


def _same_file(a: int, b: int) -> bool:
    try:
        sa, sb = os.fstat(a), os.fstat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def describe(error: Exception, env: Environment, verbose: bool = False) -> tuple[str, ExitStatus]:
    """The one line (and exit code) an error that reached the edge is shown as."""
    if isinstance(error, SingkitError):
        # config problems already read `file:line:col: message`; anything else gets a prefix
        return (str(error) if isinstance(error, ConfigError) else f"error: {shown(error)}"), error.exit_code
    lost = lost_connection(error)
    if lost:  # a service call the library did not wrap: still an outage (exit 4), not our bug
        return f"error: {lost}", ExitStatus.SERVICE
    if isinstance(error, OSError):
        return f"error: {os_error_text(error)}{_store_hint(error, env)}", ExitStatus.ERROR
    hint = "" if verbose else f" {VERBOSE_HINT}"
    sqlite3 = sys.modules.get("sqlite3")  # only loaded when something used SQLite
    if sqlite3 is not None and isinstance(error, sqlite3.Error):
        return f"error: SQLite: {one_line(error)}{hint}", ExitStatus.ERROR
    return f"internal error: {type(error).__name__}: {one_line(error)}{hint}", ExitStatus.ERROR


# How the edge spells a command it suggests: as the user started this one (`singkit TASK` under
# the console script, `invoke TASK` under the invoke binary, which the README and Makefile use);
# `invoke` when no program said (a library caller).
_PROGRAM: ContextVar[str] = ContextVar("singkit_program", default="invoke")


def spelled_as(program: str) -> contextlib.AbstractContextManager[None]:
    """Hints name `program` while a command runs (cli.main: the program's binary)."""
    return _holding(_PROGRAM, program)


def shown(error: SingkitError) -> str:
    """The error's message, with its hint (if any) spelled as a command."""
    return error.message + (error.hint.render(_PROGRAM.get()) if error.hint else "")


def lost_connection(error: BaseException) -> str | None:
    """`connection to <where> failed: <why>` when `error` is a network client's connection-level
    fault (requests, urllib3, azure-core; looked up only if loaded: the edge imports none), else None."""
    kinds = []
    requests, urllib3, azure = (sys.modules.get(m) for m in ("requests", "urllib3", "azure.core.exceptions"))
    if requests is not None:
        kinds += [requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                  requests.exceptions.ChunkedEncodingError]
    if urllib3 is not None:
        kinds += [urllib3.exceptions.ProtocolError, urllib3.exceptions.TimeoutError, urllib3.exceptions.MaxRetryError,
                  urllib3.exceptions.NewConnectionError]
    if azure is not None:
        kinds += [azure.ServiceRequestError, azure.ServiceResponseError]
    if not kinds or not isinstance(error, tuple(kinds)):
        return None
    request, pool = getattr(error, "request", None), getattr(error, "pool", None)
    where = (getattr(request, "url", None) or getattr(error, "url", None)
             or (f"{pool.host}:{pool.port}" if pool is not None and getattr(pool, "host", None) else "a service"))
    # a query string may hold a SAS signature: never shown
    why = re.sub(r"\?[^\s)'\"]*", "?…", one_line(error))
    return f"connection to {str(where).split('?')[0]} failed: {why}"


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:500] + ("…" if len(text) > 500 else "")


def os_error_text(error: OSError) -> str:
    """`<strerror>: <filename>` (and ` -> <filename2>` for a rename), as a user reads it."""
    text = error.strerror or one_line(error) or type(error).__name__
    if error.filename is not None:
        text += f": {os.fsdecode(error.filename)}"
        if getattr(error, "filename2", None) is not None:
            text += f" -> {os.fsdecode(error.filename2)}"
    return text


def _store_hint(error: OSError, env: Environment) -> str:
    """Say so when the file is the job store itself (or on the way to it): SINGKIT_HOME is wrong."""
    if error.filename is None:
        return ""
    try:
        path, home = Path(os.fsdecode(error.filename)).absolute(), env.home.absolute()
    except (OSError, ValueError):
        return ""
    if path == home or home in path.parents or path in home.parents:
        return f" (the job store {home} must be a folder you can write; set SINGKIT_HOME to one)"
    return ""


def int_arg(value: str | int | None, flag: str, minimum: int | None = None) -> int | None:
    """A whole-number option (`--last=5`); None when not given; UsageError for anything else."""
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"--{flag} takes a whole number, not `{value}`") from None
    if minimum is not None and number < minimum:
        raise UsageError(f"--{flag}={number}: give {minimum} or more")
    return number


def _print_help(made: invoke.Task) -> None:
    """A task's help, for a positional argument that took `--help`: singkit's Program asks for
    help before that can happen (singkit.cli), plain invoke (`invoke -c ...`) does not."""
    from invoke.parser import ParserContext

    from singkit.tasks._surface import task_help

    ctx = ParserContext(name=made.name, args=made.get_arguments())
    sys.stdout.write(task_help(Path(sys.argv[0]).name or "invoke", made.name, ctx, made))


def job_arg(value: str | None, *, required: bool = True) -> str | None:
    """Accept `jobN`, `JOB=jobN` (Make style) or `job=jobN`; refuse nothing else silently."""
    if value is None or value == "":
        if required:
            raise UsageError("no job given: pass JOB=jobN or --job=jobN")
        return None
    head, sep, tail = value.partition("=")
    if sep and head.lower() in {"job", "run"}:
        value = tail
    check_word(value)  # `'job1\n'`: refused as such, shown escaped (never a second line)
    if value.startswith("-"):  # invoke hands an unknown flag to a missing positional argument
        raise UsageError(f"unknown option {value.partition('=')[0]}; `--help` after the task lists its options")
    if not value:
        raise UsageError("no job given: pass JOB=jobN or --job=jobN")
    return value
