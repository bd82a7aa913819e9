"""How jobs and runs are named: `job3` (a job), `job3.2` (its second run).

The store names its folders this way (store/model.py) and the command line reads a bare word
by the same grammar (a word that is a job id is the job where a task's job is optional). This
module imports only `re`, so the CLI can use it without loading the store (SQLite, YAML).
"""

from __future__ import annotations

import re

JOB_ID = re.compile(r"^job(\d+)$")
RUN_ID = re.compile(r"^(job\d+)\.(\d+)$")


def parse_ref(word: str) -> tuple[str, str | None] | None:
    """(job id, run id or None) for `jobN` / `jobN.K`; None for anything else (`3`, `foo`).

    >>> parse_ref("job3.2"), parse_ref("job3"), parse_ref("job.list")
    (('job3', 'job3.2'), ('job3', None), None)
    """
    if JOB_ID.match(word):
        return word, None
    if match := RUN_ID.match(word):
        return match[1], word
    return None


# Control characters (C0, DEL, C1): a word holding one is never an id, and is shown escaped, so a
# newline typed into a job word cannot split the one line the user reads.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def shown(word: str) -> str:
    """A word as a one-line message shows it: in backquotes, or as a Python literal (escaped)
    when it holds a control character or a backquote."""
    return repr(word) if _CONTROL.search(word) or "`" in word else f"`{word}`"


def check_word(word: str, what: str = "job") -> str:
    """`word` unchanged, or UsageError for one holding a control character (`'job1\\n'`)."""
    if _CONTROL.search(word):
        from singkit.exceptions import UsageError

        example = "jobN.K, e.g. job3.2" if what == "run" else "jobN, e.g. job3"
        raise UsageError(f"the {what} {shown(word)} holds a control character (a newline or escape); "
                         f"a {what} is written {example}")
    return word
