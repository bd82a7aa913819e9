"""The command-line surface every singkit task shares: short flags, value kinds, placeholders.

One table gives short flags (`-j` is `--job` in every task that has a job; a task without that
option has no `-j`); no task gets a short flag outside it, so `-h` is help everywhere and a short
flag never means one thing here and another there (invoke's own `auto_shortflags` gave each task
the first free letter: `-h` was `--hp` in job.submit). Integer options are parsed as integers
and shown as `=INT`; options with a value show a placeholder (`--dest=DIR`); enumerated
options list their choices (`--what=code|logs|outputs|all`), checked at the task edge.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import invoke
from invoke.parser import Argument, ParserContext

from singkit.exceptions import UsageError

# The only short flags a task may have, each always the same long option. `--json` has none:
# it was `-j` in job.submit and `-s` in job.status, while `-j` is `--job` elsewhere.
SHORT_FLAGS: dict[str, str] = {
    "job": "j",
    "target": "t",
    "docker": "d",
    "run": "r",
    "follow": "f",
    "verbose": "v",
}
# Short flags of singkit's own (core) options; no task may take them.
CORE_SHORT_FLAGS = frozenset({"h", "V", "l"})

# Words a task also takes as `NAME=VALUE` (Make style, upper or lower case): `JOB=job3` is
# `--job=job3` in every task that has a --job (DESIGN.md), and so for these.
ASSIGNABLE = ("job", "run", "target", "docker")

# Placeholders where the option's own name (upper-cased) would say less.
PLACEHOLDERS: dict[str, str] = {
    "hp": "NAME=V1,V2",
    "input": "NAME=URI",
    "output": "NAME=URI",
    "dest": "DIR",
    "out": "FILE",
    "from": "FILE",
    "sort": "COLUMN",
    "event": "KIND,...",
    "export": "FILE",
    "filter": "EXPR",
    "columns": "COL,...",
    "metrics": "M1,M2",
    "mean": "COL,...",
    "cmd": "COMMAND",
    "layout": "RxC",
    "smooth": "W",
    "x": "AXIS",
    "break-on": "run|HPARAM",
    "group-by": "H1,H2",
    "group": "hparams|COL,...",
    "help": "TASK",
    "list": "GROUP",
    "list-format": "flat|nested|json",
    "print-completion-script": "bash|zsh|fish",
}


class Choices(tuple):
    """The values an option takes (first spelling wins for any case); `comma`: a comma list of them."""

    comma: bool = False

    def __new__(cls, values: Iterable[str], comma: bool = False) -> "Choices":
        made = super().__new__(cls, tuple(values))
        made.comma = comma
        return made


class SingkitTask(invoke.Task):
    """An invoke Task that takes its short flags from SHORT_FLAGS only, parses `ints` as int,
    and keeps its `help` texts for every parser built from it (invoke's consumes them once)."""

    ints: frozenset[str] = frozenset()
    choices: dict[str, Choices] = {}
    several: str | None = None  # the positional that takes several words (cli joins them with commas)

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts = super().arg_opts(name, default, taken_names)
        dashed = opts["names"][0]
        short = SHORT_FLAGS.get(dashed)
        if short and short not in taken_names:
            opts["names"].append(short)
        if name in self.ints and not opts.get("positional"):
            opts["kind"] = int
        return opts

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        kept = dict(self.help)
        try:
            return super().get_arguments(ignore_unknown_help)
        finally:
            self.help = kept  # invoke pops each text as it uses it; a second parser would show none


def int_params(params: Iterable[Any]) -> frozenset[str]:
    """Names of the parameters annotated `int` or `int | None` (annotations may be strings)."""
    found = set()
    for param in params:
        ann = param.annotation
        if ann is int:
            found.add(param.name)
        elif isinstance(ann, str) and set(re.findall(r"\w+", ann)) in ({"int"}, {"int", "None"}, {"Optional", "int"}):
            found.add(param.name)
    return frozenset(found)


def placeholder(arg: Argument, choices: Sequence[str] | None) -> str:
    """What a value of `arg` looks like in help: INT, a|b|c, or a word."""
    if choices:
        return "|".join(choices) + (",..." if getattr(choices, "comma", False) else "")
    if arg.kind is int:
        return "INT"
    return PLACEHOLDERS.get(arg.names[0], arg.names[0].upper())


def help_rows(ctx: ParserContext, task: invoke.Task | None = None,
              hidden: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """(flags, help) per option of a parser context: `-j JOB, --job=JOB`, `--what=code|logs|...`,
    `--hp=NAME=V1,V2` (repeatable), `--[no-]x` for a flag that defaults to true. Long-only first,
    then by name, as invoke sorts them."""
    choices = getattr(task, "choices", {}) if task is not None else {}
    rows = []
    for arg in ctx.args.values():
        if arg.name in hidden:
            continue
        value = placeholder(arg, choices.get(arg.name)) if arg.takes_value else ""
        names = []
        for name in sorted(arg.names, key=len):
            if len(name) == 1 and arg.optional:
                names.append(f"-{name} [{value}]")
            elif len(name) == 1:
                names.append(f"-{name}" + (f" {value}" if value else ""))
            elif arg.optional:
                names.append(f"--{name}[={value}]")
            elif not value and arg.kind is bool and arg.default is True:
                names.append(f"--[no-]{name}")
            else:
                names.append(f"--{name}" + (f"={value}" if value else ""))
        text = arg.help or ""
        if arg.kind is list and "repeatable" not in text:
            text = f"{text} (repeatable)" if text else "repeatable"
        rows.append((", ".join(names), text, arg))
    rows.sort(key=lambda row: (any(len(n) == 1 for n in row[2].names), row[2].name))
    return [(flags, text) for flags, text, _ in rows]


def usage(binary: str, name: str, ctx: ParserContext) -> str:
    """`singkit job.status JOB [--options]`: the one way usage lines name a task."""
    words = [binary, name, *(arg.name.upper() for arg in ctx.positional_args)]
    return " ".join(words) + (" [--options]" if ctx.args else "")


def task_help(binary: str, name: str, ctx: ParserContext, task: invoke.Task | None) -> str:
    """The text `singkit TASK --help` prints: usage, the docstring, the options with placeholders."""
    import inspect

    lines = [f"Usage: {usage(binary, name, ctx)}", ""]
    doc = inspect.getdoc(task) if task is not None else None
    lines += [f"  {line}" if line.strip() else "" for line in (doc or "").splitlines()]
    lines += ["", "Options:"] if doc else ["Options:"]
    lines += columns(help_rows(ctx, task)) or ["  none"]
    return "\n".join(lines) + "\n"


def columns(rows: Sequence[tuple[str, str | None]], width: int | None = None) -> list[str]:
    """Two columns, the second wrapped to the terminal (`COLUMNS`, else 80) as invoke wraps it."""
    import shutil
    import textwrap

    width = width or shutil.get_terminal_size((80, 24)).columns
    left = min(max((len(flags) for flags, _ in rows), default=0), 40) + 2 + 3
    out = []
    for flags, text in rows:
        wrapped = textwrap.wrap(text or "", max(width - left - 1, 20)) or [""]
        first = f"  {flags}".ljust(left) if len(flags) + 5 <= left else f"  {flags}\n" + " " * left
        out.append((first + wrapped[0]).rstrip())
        out += [(" " * left + more).rstrip() for more in wrapped[1:]]
    return out


def task_flag(token: str, ctx: ParserContext) -> Argument | None:
    """The task's option a `-x`/`--name[=v]` word names (inverse `--no-x` and clustered
    `-fv`/`-jjob3` too, as invoke's parser reads them); None when the task has no such option."""
    flag = token.partition("=")[0]
    if flag in ctx.flags:
        return ctx.flags[flag]
    if flag in ctx.inverse_flags:
        return ctx.flags[ctx.inverse_flags[flag]]
    if flag.startswith("--") or len(flag) <= 2 or flag[:2] not in ctx.flags:
        return None
    if ctx.flags[flag[:2]].takes_value:  # `-jjob3`
        return ctx.flags[flag[:2]]
    cluster = [ctx.flags.get(f"-{c}") for c in flag[1:]]  # `-fv`; the last may take the next word
    if all(cluster) and not any(a.takes_value for a in cluster[:-1]):  # type: ignore[union-attr]
        return cluster[-1]
    return None


def once(ctx: ParserContext, arg: Argument, given: str, filled: dict[str, str]) -> None:
    """Record that `arg` was given (as `given`); UsageError if a single-valued option already was:
    invoke would take the second value for a task name (`job.status JOB=job1 --job job2`)."""
    if arg.takes_value and arg.kind is not list and arg.name in filled:
        what = "job" if arg.name == "job" else f"--{arg.names[0]}"
        raise UsageError(f"{ctx.name}: the {what} was given twice (`{filled[arg.name]}`, then `{given}`); give it once")
    filled[arg.name] = given


def run_for_job(task: str, job: str, run: str, binary: str) -> str:
    """The one line for a run word given to a task that takes a whole job (`job.status RUN=job3.2`)."""
    return (f"{task} takes a whole job, not one run: `{binary} {task} {job}` ({run} is one of its runs; "
            f"`{binary} job.logs RUN={run}` prints that run's output)")
