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
