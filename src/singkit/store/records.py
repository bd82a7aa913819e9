"""The store's own records, checked where they are read: job.yaml, runner.json, backend.json.

A store is written by singkit, but it can be damaged (a full disk, an edit by hand, a copy cut
short) and its run folders come back from job containers, so nothing read from it is trusted:
each field the readers use is checked for its type here, once, and a record that fails is
one line naming the file and what to do, never a KeyError or TypeError somewhere later.

    job.yaml      checked_spec → the mapping, or StoreDamaged (exit 2)
    runner.json   json_record(path, RUNNER_FIELDS) → the mapping, or {} (and a logged warning)
    backend.json  json_record(path, BACKEND_FIELDS) → the same
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from singkit.exceptions import UsageError
from singkit.store.yamlio import DAMAGED_HINT

if TYPE_CHECKING:
    from singkit.store.jobspec import JobSpec

log = logging.getLogger("singkit.store")

NONE = type(None)
NUMBER = (int, float)
MAPPING = (dict,)
TEXT = (str,)


class StoreDamaged(UsageError):
    """A store file that is not what singkit wrote: one line naming it and what to do (exit 2)."""


# job.yaml: key → (allowed types, required). Keys not listed are left to the code that uses them.
SPEC_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "target": (MAPPING, True),
    "service": (MAPPING, True),
    "runs": ((list,), True),
    "job": ((str, NONE), False),
    "command": ((str, NONE), False),
    "created": ((*NUMBER, NONE), False),
    "experiment": ((str, NONE), False),
    "project_root": ((str, NONE), False),
    "setup_prefix": ((str, NONE), False),
    "dry_run": ((bool, NONE), False),
    "allow_unpinned": ((bool, NONE), False),
    "create_registry_connection": ((bool, NONE), False),
    "parallel": ((int, NONE), False),
    "repeats": ((int, NONE), False),
    "rerun_of": ((str, NONE), False),
    "resumed_from": ((str, NONE), False),
    "code": ((dict, NONE), False),
    "env": ((dict, NONE), False),
    "data": ((dict, NONE), False),
    "hp": ((dict, NONE), False),
    "docker": ((dict, NONE), False),
    "setup": ((dict, NONE), False),
    "image": ((dict, NONE), False),
}
RECORD_FIELDS = {  # inside target / service: the name every reader shows, the type backends pick by
    "target": {"name": (TEXT, True), "service": ((str, NONE), False)},
    "service": {"name": (TEXT, True), "type": ((str, NONE), False)},
}
RUN_FIELDS = {
    "run": (TEXT, True),
    "hparams": ((dict, NONE), False),
    "command": ((str, NONE), False),
    "output_key": ((str, NONE), False),
}
CODE_FIELDS = {"sha256": ((str, NONE), False), "archive": ((str, NONE), False), "files": ((int, NONE), False)}

RUNNER_FIELDS: dict[str, tuple[type, ...]] = {
    "pid": (int,), "start": (int, NONE), "boot_id": (str, NONE), "host": (str, NONE), "argv": (list, NONE),
}
BACKEND_FIELDS: dict[str, tuple[type, ...]] = {
    **RUNNER_FIELDS, "pid": (int, NONE), "kind": (str, NONE), "processes": (int, NONE), "container": (str, NONE),
    "name": (str, NONE), "image": (str, NONE), "azureml_name": (str, NONE), "submitting": (bool, NONE),
    "submit_started": (*NUMBER, NONE), "withdrawn": (bool, NONE), "final": (bool, NONE),
    "never_created": (bool, NONE), "studio_url": (str, NONE), "azure_status": (str, NONE),
    "nodes": (int, NONE), "per_node": (int, NONE), "mirror": (dict, NONE),
}

_TYPE_WORDS = {str: "text", int: "a whole number", float: "a number", bool: "true or false", dict: "a mapping",
               list: "a list", NONE: "empty"}


def checked_spec(data: dict[str, Any], path: Path, job_id: str) -> JobSpec:
    """`data` (job.yaml of `job_id`, already known to be a mapping) when every field the readers
    use has its type; StoreDamaged naming the first field that does not. A YAML timestamp as
    `created` (a hand edit) is taken as the epoch seconds it means, as the reports take it."""
    if isinstance(data.get("created"), _dt.date):
        created = data["created"]
        if not isinstance(created, _dt.datetime):
            created = _dt.datetime(created.year, created.month, created.day)
        data["created"] = (created if created.tzinfo else created.replace(tzinfo=_dt.timezone.utc)).timestamp()
    _check(data, SPEC_FIELDS, path, "")
    for key, fields in RECORD_FIELDS.items():
        _check(data[key], fields, path, f"{key}.")
    if isinstance(data.get("code"), dict):
        _check(data["code"], CODE_FIELDS, path, "code.")
    run_id = re.compile(rf"^{re.escape(job_id)}\.[1-9]\d*$")
    for i, run in enumerate(data["runs"], start=1):
        where = f"runs[{i}]"
        if not isinstance(run, dict):
            raise _damaged(path, f"`{where}` is {_kind(run)}, expected a mapping with `run`")
        _check(run, RUN_FIELDS, path, f"{where}.")
        if not run_id.match(run["run"]):
            raise _damaged(path, f"`{where}.run` is {run['run']!r}, expected `{job_id}.{i}` (a run of this job)")
    return cast("JobSpec", data)  # its fields were checked just now


def _check(record: dict[str, Any], fields: dict[str, tuple[tuple[type, ...], bool]], path: Path, prefix: str) -> None:
    for key, (types, required) in fields.items():
        if key not in record:
            if required:
                raise _damaged(path, f"`{prefix}{key}` is missing, expected {_expected(types)}")
            continue
        if not _is(record[key], types):
            raise _damaged(path, f"`{prefix}{key}` is {_kind(record[key])}, expected {_expected(types)}")


def _is(value: Any, types: tuple[type, ...]) -> bool:
    """isinstance, except that true/false is not a number (YAML `yes` must not pass as 1)."""
    if isinstance(value, bool):
        return bool in types
    return isinstance(value, types)


def _expected(types: tuple[type, ...]) -> str:
    words = [_TYPE_WORDS.get(t, t.__name__) for t in types if t is not NONE and not (t is float and int in types)]
    return " or ".join(words) + (" (or nothing)" if NONE in types else "")


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    text = " ".join(repr(value).split())
    return f"{_TYPE_WORDS.get(type(value), type(value).__name__)} {text[:60]}{'…' if len(text) > 60 else ''}"


def _damaged(path: Path, what: str) -> StoreDamaged:
    return StoreDamaged(f"{path}: {what}; {DAMAGED_HINT}")


def json_record(path: Path, fields: dict[str, tuple[type, ...]]) -> dict[str, Any]:
    """A JSON object file whose listed `fields` have their types; {} when it is missing or
    unreadable, and (with a logged warning) when it is not such an object: a record a reader
    cannot trust is a record it does not have."""
    try:
        data = json.loads(Path(path).read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as error:
        log.warning("%s cannot be read (%s); taken as missing", path, " ".join(str(error).split())[:200])
        return {}
    if not isinstance(data, dict):
        log.warning("%s holds %s, not a JSON object; taken as missing", path, _kind(data))
        return {}
    for key, types in fields.items():
        if key in data and not _is(data[key], types):
            log.warning("%s: `%s` is %s, expected %s; taken as missing", path, key, _kind(data[key]), _expected(types))
            return {}
    return data
