"""singkit's command line: the `singkit` console script, and the `invoke` binary in a singkit project.

Both run `SingkitProgram`, an invoke Program over singkit's tasks whose command-line mistakes
are usage errors like any other: one line on stderr, exit 2, with the closest task or option
names ("did you mean"). Before invoke parses the task words, the program
- reads `JOB=job3`, `RUN=`, `TARGET=`, `DOCKER=` words as `--job=job3`, … in every task that has
  that option (DESIGN.md: every task that takes a job accepts `JOB=jobN`);
- takes `-h`/`--help` after a task as that task's help, also where invoke would have given it
  to the task's positional job;
- refuses a non-integer value of an integer option in the same one line.
Its core options are the ones that mean something to a singkit user (help, version, list,
completion): invoke's shell-running options (`--pty`, `--echo`, `--prompt-for-sudo-password`, …)
drive `c.run()`, which no singkit task calls, and a task typo such as `job.submit --dry` must not
fall through to invoke's `--dry` and start a real job.

The `invoke` binary (invoke.main, which the README and Makefile use) loads `tasks.py`, which
hands the whole command line to this program (`take_over_invoke`): invoke offers tasks.py no
public way to change how it reports parse errors (its Program prints them and exits 1), but it
loads the collection before it parses the task words, so `invoke job.sumbit` answers as
`singkit job.sumbit` does.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from invoke import Program
from invoke.exceptions import Exit, ParseError
from invoke.parser import Argument, Parser, ParserContext

from singkit import __version__
from singkit.environment import Environment
from singkit.exceptions import ExitStatus, UsageError
from singkit.refs import parse_ref
from singkit.suggest import closest
from singkit.tasks import ns
from singkit.tasks._edge import spelled_as
from singkit.tasks._surface import ASSIGNABLE, columns, help_rows, once, run_for_job, task_flag, task_help, usage
from singkit.tasks._edge import injected, shown

_UNKNOWN = re.compile(r"^No idea what '(.*)' is!$")
_MISSING = re.compile(r"^'(.*)' did not receive required positional arguments: (.*)$")
_NO_VALUE = re.compile(r"^Flag <Argument: ([^\s>]+).*> needed value and was not given one!$")
_ASSIGN = re.compile(r"^([A-Za-z]+)=(.*)$", re.S)
HELP_WORDS = ("-h", "--help")
# Core options kept for invoke's own machinery (tab completion, its debug log, .pyc writing) but
# not listed: they mean nothing to someone running a training job.
HIDDEN_CORE = frozenset({"complete", "debug", "write-pyc", "list-depth"})
# invoke's task-runner options (which collection, where to look), invoke's only before the first
# task word (take_over_invoke).
INVOKE_ONLY = frozenset({"-c", "--collection", "-r", "--search-root", "--no-dedupe"})


class SingkitProgram(Program):
    """invoke's Program with singkit's core options, help and usage errors (exit 2)."""

    def core_args(self) -> list[Argument]:
        return [
            Argument(names=("help", "h"), optional=True,
                     help="show this help, or one task's (`--help TASK`, or `TASK --help`)"),
            Argument(names=("version", "V"), kind=bool, default=False, help="show singkit's version"),
            Argument(names=("list", "l"), optional=True, help="list the tasks (`--list=job`: the job tasks)"),
            Argument(names=("list-format",), default="flat", help="how --list prints: flat, nested or json"),
            Argument(names=("list-depth",), kind=int, default=0, help="with --list, only INT levels"),
            Argument(names=("print-completion-script",), kind=str, default="",
                     help="print the tab-completion script for bash, zsh or fish"),
            Argument(names=("complete",), kind=bool, default=False, help="tab-completion candidates"),
            Argument(names=("debug",), kind=bool, default=False, help="invoke's debug log"),
            Argument(names=("write-pyc",), kind=bool, default=False, help="write .pyc files"),
        ]

    def update_config(self, merge: bool = True) -> None:
        # invoke's version fills run()/sudo settings from the core options dropped above; singkit's
        # tasks run no shell commands through invoke, so there is nothing to fill in.
        if merge:
            self.config.merge()

    def print_help(self) -> None:
        out = [f"Usage: {self.binary} TASK [--options]   (`{self.binary} TASK --help` explains one)", "",
               "Options:"]
        out += columns(help_rows(self.initial_context, hidden=HIDDEN_CORE))
        print("\n".join(out) + "\n")
        self.list_tasks()

    def list_flat(self) -> None:
        # invoke shows each docstring's first line, which cuts a sentence that wraps in the source,
        # and names `--list=job`'s tasks `.cancel`, …: here they are named as they are typed
        scoped, prefix = self.scoped_collection, f"{self.list_root}." if self.list_root else ""
        pairs = [(prefix + name, first_sentence(scoped[name].__doc__)) for name in sorted(scoped.task_names)]
        self.display_with_columns(pairs=pairs)

    def task_list_opener(self, extra: str = "") -> str:
        return "Tasks" + (f" {extra}" if extra else "")

    def print_task_help(self, name: str) -> None:
        sys.stdout.write(task_help(self.binary, name, self.parser.contexts[name], self.collection[name]))

    def parse_core(self, argv: Any) -> None:
        with self._usage():
            super().parse_core(argv)
        # invoke turns bytecode writing off (no tasks.pyc in the user's folder) unless --write-pyc;
        # singkit has no tasks file to load, and its own modules would be compiled from source on
        # every call (~10 % of job.status, issue 14). Python's own switch (-B,
        # PYTHONDONTWRITEBYTECODE) still rules; `make setup` compiles the package either way.
        sys.dont_write_bytecode = bool(sys.flags.dont_write_bytecode) and not self.args["write-pyc"].value

    _words: frozenset[str] | None = None  # while parsing the task words: every word typed
    _built: Parser | None = None

    def parse_tasks(self) -> None:
        helped = self.args.help.value
        self._words = frozenset([*self.core.unparsed, *([helped] if isinstance(helped, str) else [])])
        try:
            with self._usage():
                asked = self._prepare()
                if asked is not None:  # `TASK -h`: help, and nothing of the task is parsed or run
                    self.parser = self._make_parser()
                    self.core[0].args.help.value = asked
                    self.tasks = []
                    return
                super().parse_tasks()
        finally:
            self._words = self._built = None

    def _make_parser(self) -> Parser:
        """invoke's parser over every task; while the task words are parsed, one parser (made
        once) over only the tasks those words name.

        A parser asks its contexts only about a word it reads (is it a task?), so the others
        change nothing, but invoke builds each task's arguments (an inspect.signature) and
        deep-copies and formats every context on each parse: ~30 tasks, about a third of
        `invoke --list` and of a task's start (issue 14). Tab completion still gets them all."""
        if self._words is None:
            return super()._make_parser()
        if self._built is None:
            names = self.collection.task_names  # primary → aliases
            unknown_help = self.config.tasks.ignore_unknown_help
            self._built = Parser(initial=self.initial_context, contexts=[
                ParserContext(name=name, aliases=aliases,
                              args=self.collection[name].get_arguments(ignore_unknown_help=unknown_help))
                for name, aliases in names.items() if not self._words.isdisjoint([name, *aliases])])
        return self._built

    def parse_cleanup(self) -> None:
        with self._usage():
            super().parse_cleanup()

    @contextlib.contextmanager
    def _usage(self) -> Iterator[None]:
        try:
            yield
        except ParseError as error:
            raise Exit(f"error: {usage_message(error, self)}", code=UsageError.exit_code) from None
        except UsageError as error:
            raise Exit(f"error: {shown(error)}", code=error.exit_code) from None

    def _prepare(self) -> str | None:
        """Rewrite the task words in place (`JOB=x` → `--job=x`) and check integer values; the
        name of the task whose help was asked for with `TASK -h`, else None.

        After a task word every option is that task's: one it lacks is an unknown option of the
        task (`job.list -l 2`, `job.list -c x`), never one of singkit's or invoke's core options.
        A job word (`job4`) is the job also where the job is optional (`report.errors job4`); a
        run word (`job3.2`) where a job is expected is `--job=job3 --run=job3.2` in a task with
        --run, and a one-line refusal in one without. An option given twice is refused."""
        contexts = self._make_parser().contexts  # the tasks these words name (_make_parser)
        tokens = self.core.unparsed
        out: list[str] = []
        ctx: ParserContext | None = None
        filled: dict[str, str] = {}  # option → how it was given (`JOB=job1`, `--job job2`)
        several: str | None = None  # this task's positional that takes several words
        joined: int | None = None  # where its value is in `out`
        waiting: tuple[Argument, str] | None = None
        derived: list[str] = []  # `job.logs RUN=job3.2` alone: its job, job3, unless one is given

        def derive(arg: Argument, value: str) -> None:
            if arg.name == "run" and ctx is not None and "--job" in ctx.flags and (ref := parse_ref(value)) and ref[1]:
                derived[:] = [ref[0]]

        def finish() -> None:
            if derived and "job" not in filled:
                out.append(f"--job={derived[0]}")
            derived.clear()

        for index, token in enumerate(tokens):
            if token == "--":
                finish()
                out += tokens[index:]
                break
            if waiting is not None:  # the value of the flag before (`--runs 3`)
                _check_int(*waiting, token)
                derive(waiting[0], token)
                out.append(token)
                waiting = None
                continue
            if ctx is None:
                if token in contexts:
                    ctx, filled, joined = contexts[token], {}, None
                    several = getattr(self._task(token), "several", None)
                out.append(token)
                continue
            given = f"{token} {tokens[index + 1]}" if index + 1 < len(tokens) and "=" not in token else token
            if token in HELP_WORDS:
                return ctx.name
            if token.startswith("-") and token != "-":
                arg = task_flag(token, ctx)
                if arg is None:  # also a core option's name: after a task word it is the task's
                    raise UsageError(unknown_option(token, ctx.name, ctx, self.binary))
                once(ctx, arg, given, filled)
                flag, eq, value = token.partition("=")
                inline = flag not in ctx.flags and ctx.flags.get(flag[:2]) is arg  # `-jjob3`
                if arg.kind is list and not eq and not inline:  # invoke gives a bare `--hp` its [] default
                    following = tokens[index + 1] if index + 1 < len(tokens) else None
                    if following is None or following in contexts or (following.startswith("-") and following != "-"):
                        raise UsageError(f"{flag} needs a value: {flag}=VALUE (see `{self.binary} {ctx.name} --help`)")
                if arg.takes_value and not arg.optional:
                    if eq:
                        _check_int(arg, flag, value)
                        derive(arg, value)
                    elif not inline:
                        waiting = (arg, flag)
                out.append(token)
                continue
            if (match := _ASSIGN.match(token)) and _assignable(match[1], ctx):
                name = match[1].lower()
                once(ctx, ctx.flags[f"--{name}"], token, filled)
                derive(ctx.flags[f"--{name}"], match[2])
                out += self._job_word(ctx, match[2], token, filled) if name == "job" else [f"--{name}={match[2]}"]
                continue
            if match and (match[1].isupper() or match[1].islower()) and match[1].lower() in ASSIGNABLE:
                word = match[1].lower()  # a Make word for an option this task lacks
                if word == "run" and (ref := parse_ref(match[2])) and ref[1] and "--job" in ctx.flags:
                    raise UsageError(run_for_job(ctx.name, ref[0], ref[1], self.binary))  # `job.status RUN=job3.2`
                raise UsageError(f"{ctx.name} takes no {word} (`{token}`); see `{self.binary} {ctx.name} --help`")
            pending = [a.name for a in ctx.positional_args if a.name not in filled]
            if pending and pending[0] == "job" and parse_ref(token) and token not in contexts:
                out += self._job_word(ctx, token, token, filled)
                continue
            if pending:
                filled[pending[0]] = token
                if pending[0] == several:
                    joined = len(out)
            elif several in filled and joined is not None and token not in contexts and not token.startswith("-"):
                out[joined] += "," + token  # `import-xt factory.yaml mine.yaml`: one comma-joined value
                continue
            elif token not in contexts and parse_ref(token):  # `report.errors job4`: the optional job
                if "--job" not in ctx.flags:
                    raise UsageError(f"{ctx.name} takes no job (`{token}`); see `{self.binary} {ctx.name} --help`")
                once(ctx, ctx.flags["--job"], token, filled)
                out += self._job_word(ctx, token, token, filled)
                continue
            elif token in contexts:
                finish()
                ctx, filled, joined = contexts[token], {}, None
                several = getattr(self._task(token), "several", None)
            out.append(token)
        else:
            finish()
        tokens[:] = out
        return None

    def _job_word(self, ctx: ParserContext, value: str, given: str, filled: dict[str, str]) -> list[str]:
        """`--job=job3`; for a run word `job3.2`, `--job=job3 --run=job3.2` where the task has a
        --run (given no other way), else UsageError: the task takes a whole job."""
        filled["job"] = given
        ref = parse_ref(value)
        if ref is None or ref[1] is None:
            return [f"--job={value}"]
        if "--run" not in ctx.flags:
            raise UsageError(run_for_job(ctx.name, ref[0], ref[1], self.binary))
        once(ctx, ctx.flags["--run"], given, filled)
        return [f"--job={ref[0]}", f"--run={ref[1]}"]

    def _task(self, name: str) -> Any:
        collection = getattr(self, "collection", None) or self.namespace
        try:
            return collection[name] if collection is not None else None
        except (KeyError, ValueError):
            return None

    def task_names(self) -> list[str]:
        collection = getattr(self, "collection", None) or self.namespace
        return sorted(collection.task_names) if collection is not None else []


def first_sentence(doc: str | None) -> str:
    """The docstring's first sentence, across the line breaks of its first paragraph."""
    paragraph = " ".join((doc or "").strip().split("\n\n", 1)[0].split())
    head, dot, _rest = paragraph.partition(". ")
    return head + "." if dot else paragraph


def _assignable(word: str, ctx: ParserContext) -> bool:
    """Is `WORD=` one of the Make-style words this task takes (`JOB=`, `job=`; not `Job=`)?"""
    return (word.isupper() or word.islower()) and word.lower() in ASSIGNABLE and f"--{word.lower()}" in ctx.flags


def _check_int(arg: Argument, flag: str, value: str) -> None:
    if arg.kind is int:
        try:
            int(value)
        except ValueError:
            raise UsageError(f"--{arg.names[0]} takes a whole number, not `{value}`") from None


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
        if task and (assign := _ASSIGN.match(token)) and assign[1].lower() in ASSIGNABLE:
            return f"{task} takes no {assign[1].lower()} (`{token}`); see `{binary} {task} --help`"
        close = closest(token, program.task_names(), short=True)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        where = f" (nor an argument of {task})" if task else ""
        return f"no task `{token}`{where}; {hint}(`{binary} --list` lists the tasks)"
    if match := _MISSING.match(text):
        ctx = program.parser.contexts.get(match[1]) if hasattr(program, "parser") else None
        args = " ".join(name.strip("'").upper() for name in match[2].split(", "))
        noun = "its job" if args == "JOB" else f"its {args.lower()}"
        shown = usage(binary, match[1], ctx).removesuffix(" [--options]") if ctx else f"{binary} {match[1]} {args}"
        return f"{match[1]} needs {noun}: `{shown}` (see `{binary} {match[1]} --help`)"
    if match := _NO_VALUE.match(text):
        flag = "--" + match[1].replace("_", "-")
        return f"{flag} needs a value: {flag}=VALUE" + (f" (see `{binary} {task} --help`)" if task else "")
    return " ".join(text.split()) + (f" (see `{binary} {task} --help`)" if task else f" (see `{binary} --help`)")


def unknown_option(token: str, task: str | None, context: Any, binary: str) -> str:
    flag = token.partition("=")[0]
    if not task:
        return f"unknown option {flag} (`{binary} --help` lists singkit's own options; task options go after the task)"
    flags = sorted(name for name in getattr(context, "flags", {}) if name.startswith("--"))
    close = closest(flag, flags)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"unknown option {flag} for {task}{hint} (see `{binary} {task} --help`)"


def _positional_flag(context: Any) -> str | None:
    for arg in getattr(context, "positional_args", None) or []:
        if isinstance(arg.value, str) and arg.value.startswith("-"):
            return arg.value
    return None


def make_program(binary: str = "singkit") -> SingkitProgram:
    return SingkitProgram(name="singkit", binary=binary, version=__version__, namespace=ns)


program = make_program()


def main(argv: list[str] | None = None, prog: SingkitProgram | None = None) -> None:
    chosen = prog or program
    try:
        with spelled_as(chosen.binary or "singkit"):
            chosen.run(argv)
    except BrokenPipeError:  # invoke's own output (help, --list) to a reader that went away
        from singkit.tasks._edge import current_environment, pipe_closed

        raise SystemExit(pipe_closed(current_environment())) from None


def run(args: list[str], env: Environment) -> int:
    """Run one singkit command line (`["job.status", "job1"]`) in this process against `env` —
    its environ, project root and streams — as `singkit ARGS` would in a process of its own;
    the exit code (ExitStatus, or a task's own code).

    The tasks write through `env`; invoke's own words (help, --list, its parse errors) go to
    sys.stdout/sys.stderr, which point at env's streams meanwhile. Process-wide state that a
    command may change (cwd, os.environ, signal handlers, logging) is the caller's to isolate:
    tests/clirunner.py does."""
    with injected(env), contextlib.redirect_stdout(env.stdout), contextlib.redirect_stderr(env.stderr):
        try:
            main(["singkit", *args], make_program())
        except SystemExit as ended:
            return _exit_code(ended.code)
    return ExitStatus.OK


def _exit_code(code: object) -> int:
    """SystemExit's code as the process would end with it: None is 0, a message is 1 (printed)."""
    if code is None:
        return ExitStatus.OK
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return ExitStatus.ERROR


def take_over_invoke(module: str) -> None:
    """Called by the project's tasks.py: when the `invoke` binary is loading it, run the whole
    command line as singkit's program instead and exit with its code (SystemExit).

    Anything else importing tasks.py (a test, `python -c 'import tasks'`, invoke used as a
    library) gets the namespace and nothing more. invoke's task-runner options (-c, -r,
    --no-dedupe) are invoke's only BEFORE the first task word (where invoke itself read them):
    with `-c other` there the user asked for another collection, and invoke stays plain invoke;
    `-c tasks` / `-r DIR` found this file, whose tasks singkit's program runs. After a task word
    they are that task's unknown options (`job.list -c x`), as with `singkit`. invoke has already
    handled its own `--version`, `--help` (bare) and `--print-completion-script`."""
    if module != "tasks" or "invoke.main" not in sys.modules:
        return
    argv = list(sys.argv)
    given, rest = invoke_core_options(argv[1:])
    collection = given.get("collection")
    if isinstance(collection, str) and Path(collection).stem != "tasks":
        return  # another collection (which imported this file): plain invoke
    called = Path(argv[0]).name if argv else "invoke"
    binary = called if called in ("invoke", "inv") else "invoke"  # `python -m invoke` shows __main__.py
    head = argv[1:len(argv) - len(rest)]  # the core words invoke read; -c/-r have done their part
    main([argv[0], *_without_invoke_only(head), *rest], make_program(binary))
    raise SystemExit(ExitStatus.OK)


def invoke_core_options(words: list[str]) -> tuple[dict[str, Any], list[str]]:
    """({name: value} of the task-runner options `-c/-r/--no-dedupe` among the words before the
    first task word, the words from that task word on), read by invoke's own core parser as the
    `invoke` binary read them before it loaded tasks.py."""
    from invoke.parser import Parser

    try:
        result = Parser(initial=Program().initial_context, ignore_unknown=True).parse_argv(list(words))
    except ParseError:
        return {}, list(words)
    args = result[0].args
    given = {name: args[name].value for name in ("collection", "search-root", "no-dedupe")
             if name in args and args[name].value not in (None, False, "")}
    return given, list(result.unparsed)


def _without_invoke_only(words: list[str]) -> list[str]:
    """The core words with invoke's task-runner options (and their values) taken out."""
    kept: list[str] = []
    skip = False
    for word in words:
        flag, eq, _value = word.partition("=")
        if skip:
            skip = False
        elif flag in INVOKE_ONLY:
            skip = not eq and flag != "--no-dedupe"
        else:
            kept.append(word)
    return kept
