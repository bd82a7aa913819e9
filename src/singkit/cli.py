"""The `singkit` console script: the same tasks as `invoke` in the repo, from anywhere.

Its command-line mistakes are usage errors like any other: one line on stderr, exit 2, with a
hint (the closest task or option names). The `invoke` binary keeps invoke's own wording, exit 1.
"""

from __future__ import annotations

import contextlib
import difflib
import re
from collections.abc import Iterator
from typing import Any

from invoke import Program
from invoke.exceptions import Exit, ParseError

from singkit import __version__
from singkit.exceptions import UsageError
from singkit.tasks import ns

_UNKNOWN = re.compile(r"^No idea what '(.*)' is!$")
_MISSING = re.compile(r"^'(.*)' did not receive required positional arguments: (.*)$")
_NO_VALUE = re.compile(r"^Flag <Argument: ([^\s>]+).*> needed value and was not given one!$")


class SingkitProgram(Program):
    """invoke's Program whose parse errors end as singkit usage errors (exit 2)."""

    def parse_core(self, argv: Any) -> None:
        with self._usage():
            super().parse_core(argv)

    def parse_tasks(self) -> None:
        with self._usage():
            super().parse_tasks()

    def parse_cleanup(self) -> None:
        with self._usage():
            super().parse_cleanup()

    @contextlib.contextmanager
    def _usage(self) -> Iterator[None]:
        try:
            yield
        except ParseError as error:
            raise Exit(f"error: {usage_message(error, self)}", code=UsageError.exit_code) from None

    def task_names(self) -> list[str]:
        collection = getattr(self, "collection", None) or self.namespace
        return sorted(collection.task_names) if collection is not None else []


def usage_message(error: ParseError, program: SingkitProgram) -> str:
    """invoke's parse error as one line that says what would be right."""
    text = str(error)
    context = getattr(error, "context", None)
    task = getattr(context, "name", None)
    binary = program.binary or "singkit"
    if match := _UNKNOWN.match(text):
        token = match[1]
        if token.startswith("-"):
            return unknown_option(token, task, context, binary)
        if task and _positional_flag(context):  # `job.status --bogus=1`: invoke took --bogus for the job
            return unknown_option(_positional_flag(context), task, context, binary)
        if task == "config.import-xt" and token.endswith((".yaml", ".yml")):  # invoke takes one positional word
            first = next((a.value for a in getattr(context, "positional_args", None) or [] if a.value), "FIRST.yaml")
            return f"config.import-xt takes several XT files as one word, comma-separated: `{binary} config.import-xt {first},{token}`"
        close = closest(token, program.task_names(), short=True)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        where = f" (nor an argument of {task})" if task else ""
        return f"no task `{token}`{where}; {hint}(`{binary} --list` lists the tasks)"
    if match := _MISSING.match(text):
        args = " ".join(name.strip("'").upper() for name in match[2].split(", "))
        noun = "its job" if args == "JOB" else f"its {args.lower()}"
        return f"{match[1]} needs {noun}: `{binary} {match[1]} {args}` (see `{binary} --help {match[1]}`)"
    if match := _NO_VALUE.match(text):
        flag = "--" + match[1].replace("_", "-")
        return f"{flag} needs a value: {flag}=VALUE" + (f" (see `{binary} --help {task}`)" if task else "")
    return " ".join(text.split()) + (f" (see `{binary} --help {task}`)" if task else f" (see `{binary} --help`)")


def unknown_option(token: str, task: str | None, context: Any, binary: str) -> str:
    flag = token.partition("=")[0]
    if not task:
        return f"unknown option {flag} (`{binary} --help` lists singkit's own options; task options go after the task)"
    flags = sorted(name for name in getattr(context, "flags", {}) if name.startswith("--"))
    close = closest(flag, flags)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"unknown option {flag} for {task}{hint} (see `{binary} --help {task}`)"


def closest(word: str, names: list[str], short: bool = False) -> list[str]:
    """The names nearest to `word` (difflib), only those about as near as the nearest; with
    `short`, a word without a dot is also compared with each name's part after the dot
    (`list` → job.list, report.list)."""
    def score(name: str) -> float:
        ratio = difflib.SequenceMatcher(None, word, name).ratio()
        if short and "." not in word:
            ratio = max(ratio, difflib.SequenceMatcher(None, word, name.rsplit(".", 1)[-1]).ratio())
        return ratio

    scored = sorted(((score(n), n) for n in names), key=lambda item: -item[0])
    best = scored[0][0] if scored else 0.0
    return [n for ratio, n in scored[:3] if ratio >= 0.7 and ratio >= best - 0.08]


def _positional_flag(context: Any) -> str | None:
    for arg in getattr(context, "positional_args", None) or []:
        if isinstance(arg.value, str) and arg.value.startswith("-"):
            return arg.value
    return None


program = SingkitProgram(name="singkit", binary="singkit", version=__version__, namespace=ns)


def main() -> None:
    try:
        program.run()
    except BrokenPipeError:  # invoke's own output (help, --list) to a reader that went away
        from singkit.environment import Environment
        from singkit.tasks._edge import pipe_closed

        raise SystemExit(pipe_closed(Environment.from_os())) from None
