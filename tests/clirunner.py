"""Running singkit as a user does: `run_singkit` in a subprocess, `cli` in this process.

Both take the command line, the folder it is typed in and extra environment variables, and give
back a `subprocess.CompletedProcess` (returncode, stdout, stderr), so a test reads the same
either way. `cli` is the default (no interpreter start, no re-import of singkit: ~1 s a call
saved); `run_singkit` stays for what needs a process of its own: signals, detached runners,
start-up imports, bytecode, a real terminal or pipe.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from singkit import cli as _cli
from singkit.environment import Environment


def user_environ(cwd: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a user's shell in `cwd` would give singkit: ours, with HOME there and no
    singkit or XDG settings leaking in from the machine running the tests."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SINGKIT_CONFIG")}
    environ.update({"HOME": str(cwd)})
    for isolated in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "SINGKIT_HOME"):
        environ.pop(isolated, None)
    environ.update(env or {})
    return environ


def run_singkit(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "singkit", *args], cwd=cwd, env=user_environ(cwd, env),
                          capture_output=True, text=True, timeout=timeout)


def cli(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120,
        environ: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`singkit ARGS` typed in `cwd`, run in this process (invoke's tests/_util.py `run()`, httpie's
    `http()`): the command's Environment is injected, with its own streams.

    `environ` is the whole environment (as given to a subprocess's env=); else `user_environ`.
    `timeout` is accepted for the same call shape as run_singkit; an in-process call cannot be
    stopped from outside, so the test's own timeout guards it."""
    environ = dict(environ) if environ is not None else user_environ(cwd, env)
    out, err = io.StringIO(), io.StringIO()
    with isolated_process(cwd, environ, ["singkit", *args]):
        found = Environment.from_os(environ=environ, stdout=out, stderr=err, stdin=io.StringIO())
        code = _cli.run(list(args), found)
    return subprocess.CompletedProcess(["singkit", *args], int(code), out.getvalue(), err.getvalue())


@contextlib.contextmanager
def isolated_process(cwd: Path, environ: dict[str, str], argv: list[str]) -> Iterator[None]:
    """What a separate process would not share with the next command, put back afterwards: cwd,
    os.environ (the SDKs read it), sys.argv, sys.dont_write_bytecode (singkit's program sets it),
    signal handlers, logging's handlers and levels (azure-ai-ml sets its own), matplotlib's
    rcParams and figures, and singkit's memoized functions."""
    saved_cwd, saved_environ, saved_argv = os.getcwd(), dict(os.environ), sys.argv
    saved_bytecode = sys.dont_write_bytecode
    signals = [s for s in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGHUP, signal.SIGCHLD)]
    saved_signals = {s: signal.getsignal(s) for s in signals}
    saved_logging = _logging_state()
    plotting = _matplotlib_state()
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(environ)
    sys.argv = list(argv)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_environ)
        sys.argv = saved_argv
        sys.dont_write_bytecode = saved_bytecode
        for number, handler in saved_signals.items():
            if handler is not None:
                signal.signal(number, handler)
        _restore_logging(saved_logging)
        _restore_matplotlib(plotting)
        _clear_singkit_caches()


def _logging_state() -> dict[str, tuple[int, list[logging.Handler], bool, bool]]:
    loggers = {"": logging.getLogger()}
    loggers.update({name: lg for name, lg in logging.Logger.manager.loggerDict.items() if isinstance(lg, logging.Logger)})
    return {name: (lg.level, list(lg.handlers), lg.propagate, lg.disabled) for name, lg in loggers.items()}


def _restore_logging(saved: dict[str, tuple[int, list[logging.Handler], bool, bool]]) -> None:
    current = {name: lg for name, lg in logging.Logger.manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    current[""] = logging.getLogger()
    for name, lg in current.items():
        level, handlers, propagate, disabled = saved.get(name, (logging.NOTSET, [], True, False))
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.propagate, lg.disabled = propagate, disabled
    logging.disable(logging.NOTSET)


def _matplotlib_state() -> dict | None:
    """matplotlib's rcParams (seaborn's theme changes them) when it is loaded already."""
    matplotlib = sys.modules.get("matplotlib")
    return dict(matplotlib.rcParams) if matplotlib is not None else None


def _restore_matplotlib(saved: dict | None) -> None:
    matplotlib = sys.modules.get("matplotlib")
    if matplotlib is None:
        return
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
    import warnings

    with warnings.catch_warnings():  # deprecated keys come back as they were
        warnings.simplefilter("ignore")
        if saved is None:
            matplotlib.rcdefaults()
        else:
            matplotlib.rcParams.update(saved)


def _clear_singkit_caches() -> None:
    """functools caches in loaded singkit modules: a value memoized for one command's
    environment (a cache folder under its HOME) must not serve the next."""
    for name, module in list(sys.modules.items()):
        if name == "singkit" or name.startswith("singkit."):
            for value in list(vars(module).values()):
                clear = getattr(value, "cache_clear", None)
                if callable(clear) and getattr(value, "__module__", None) == name:
                    clear()
