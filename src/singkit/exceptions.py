"""Every error singkit raises on purpose, each with the exit code the CLI ends with.

Messages are one line: what is wrong and what would be right. The task edge
(singkit.tasks._edge) turns them into a line on stderr and an invoke Exit.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path


class ExitStatus(IntEnum):
    """What a singkit command (or the detached job runner) ends with; DESIGN.md's codes.

    Scripts branch on these (`job.monitor` in CI: 1 failed, 3 cancelled), so a value never
    changes; 130 and 141 are what a shell reports for a command ended by SIGINT / SIGPIPE."""

    OK = 0
    ERROR = 1  # an error of ours, or the job failed
    USAGE = 2  # the command line or a config is wrong
    CANCELLED = 3
    SERVICE = 4  # an outside service is unreachable or refused us
    INTERRUPTED = 130  # 128 + SIGINT: Ctrl-C
    SIGPIPE = 141  # 128 + SIGPIPE: the reader of stdout went away (`| head -1`)


@dataclass(frozen=True)
class Hint:
    """A command the user could run next, as data (pip's `hint_stmt`): the library names the task
    and its arguments, the edge decides how a command is spelled (`invoke job.status job3`).

    `say` places the command in the message's closing words: `"; run {} first"` reads
    `…; run `invoke image.build --docker=x` first`; each hint in `more` fills the next `{}`."""

    task: str
    words: tuple[str, ...] = ()
    options: tuple[tuple[str, str], ...] = ()
    say: str = " (see {})"
    more: tuple["Hint", ...] = ()

    @classmethod
    def command(cls, task: str, *words: str, say: str = " (see {})", more: tuple["Hint", ...] = (),
                **options: object) -> "Hint":
        """`Hint.command("image.build", docker="pytorch", say="; run {} first")`: options given as
        Python names (`create_registry_connection=True` is the flag `--create-registry-connection`)."""
        return cls(task, tuple(words), tuple((k, "" if v is True else str(v)) for k, v in options.items()), say, more)

    def argv(self) -> list[str]:
        """The task's words as typed: `["job.status", "job3", "--wide"]`."""
        flags = [f"--{k.replace('_', '-')}" + (f"={v}" if v else "") for k, v in self.options]
        return [self.task, *self.words, *flags]

    def render(self, program: str = "invoke") -> str:
        """The closing words with the command spelled for `program`."""
        return self.say.format(*(f"`{' '.join([program, *h.argv()])}`" for h in (self, *self.more)))


class SingkitError(Exception):
    """Base class; exit code 1.

    `hint`: what to run next, which the edge renders after the message (str() renders it the
    way the README teaches, `invoke …`, for a log line or a run's reason)."""

    exit_code: ExitStatus = ExitStatus.ERROR

    def __init__(self, *args: object, hint: Hint | None = None) -> None:
        super().__init__(*args)
        self.hint = hint

    @property
    def message(self) -> str:
        """The message without its hint."""
        return super().__str__()

    def __str__(self) -> str:
        return self.message + (self.hint.render() if self.hint else "")


class UsageError(SingkitError):
    """The command line asked for something that cannot be (unknown job, bad flag value)."""

    exit_code = ExitStatus.USAGE


Record = tuple[str, str]  # (config section, record name), e.g. ("compute-targets", "eus-v100")


@dataclass(frozen=True)
class Problem:
    """One mistake in a config file, at a 1-based line and column.

    `records` names the config records the mistake is about (empty: the whole file, e.g.
    broken YAML): a command that uses none of them is not blocked by it. A `warning` never
    blocks on its own (config.validate --strict makes it an error). Line 0: the file as a
    whole (it is a FIFO, a symlink loop), shown without a position.
    """

    file: Path | str
    line: int
    col: int
    message: str
    records: tuple[Record, ...] = ()
    warning: bool = False

    def __str__(self) -> str:
        if self.line <= 0:  # about the file as a whole (a FIFO, a symlink loop): no position to name
            return f"{shown_path(self.file)}: {self.message}"
        return f"{shown_path(self.file)}:{self.line}:{self.col}: {self.message}"

    def as_error(self) -> "Problem":
        return Problem(self.file, self.line, self.col, self.message, self.records, False)


def shown_path(file: Path | str) -> str:
    """A path as short as it can be said from here: relative to the working folder when inside it."""
    path = Path(file)
    try:
        # a link is named as itself (its target may be missing, or a loop)
        full = path.parent.resolve() / path.name if path.is_symlink() else path.resolve()
        return str(full.relative_to(Path.cwd()))
    except (ValueError, OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return str(file)


class ConfigError(SingkitError):
    """One or more config mistakes; the message lists each as `file:line:col: message`."""

    exit_code = ExitStatus.USAGE

    def __init__(self, problems: list[Problem] | Problem):
        if isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ServiceError(SingkitError):
    """An outside service (Docker Engine, registry, Azure) is unreachable, refused us, or kept failing."""

    exit_code = ExitStatus.SERVICE


class JobFailed(SingkitError):
    exit_code = ExitStatus.ERROR


class JobCancelled(SingkitError):
    exit_code = ExitStatus.CANCELLED
