"""XT's `$` macros in config values, expanded when a job is submitted (and in a dry run).

XT users write `experiment: "exp-$username"` and `activate: "conda activate $current_conda_env"`;
XT replaces these on the submitting machine, so singkit does the same, in one place, for the
submit pipeline, its dry run and config.validate alike. The macros and their meaning are XT's
own (xtlib 0.0.342 on PyPI):
- `$username`: xtlib/helpers/xt_config.py `expand_system_symbols`: $USER (USERNAME on Windows),
  else $XT_USERNAME, else empty;
- `$current_conda_env`: the same function and backends/backend_base.py `expand_system_names`:
  $CONDA_DEFAULT_ENV of the submitting machine, left as written when it is not set;
- `$job_id`: xtlib/utils.py `expand_xt_vars`: the job's id (singkit's `jobN`).
XT's other macros name what singkit has no counterpart for at submit (`$run_id`, `$node_id`,
`$node_index`: one value per XT node run; `$lastjob`, `$lastrun`: XT's own history); they are
left as written, so config.validate's experiment-name rule (no `$`) points at them.
"""

from __future__ import annotations

from collections.abc import Mapping

SUBMIT_MACROS = ("$username", "$current_conda_env", "$job_id")
XT_MACROS = (*SUBMIT_MACROS, "$run_id", "$node_id", "$node_index", "$lastjob", "$lastrun")


def username(environ: Mapping[str, str]) -> str:
    """The submitting user's name as XT takes it: $USER, $USERNAME, then $XT_USERNAME; "" if none."""
    return environ.get("USER") or environ.get("USERNAME") or environ.get("XT_USERNAME") or ""


def expand(text: str | None, environ: Mapping[str, str], job_id: str | None = None) -> str | None:
    """`text` with `$username`, `$current_conda_env` and (when `job_id` is given) `$job_id`
    replaced as XT replaces them; None stays None, text without `$` is returned unchanged.

    Plain replacement, as XT does it (`str.replace`): `$usernames` becomes `<user>s`."""
    if text is None or "$" not in str(text):
        return text
    out = str(text)
    if "$current_conda_env" in out and environ.get("CONDA_DEFAULT_ENV"):
        out = out.replace("$current_conda_env", environ["CONDA_DEFAULT_ENV"])
    if "$username" in out:
        out = out.replace("$username", username(environ))
    if job_id is not None:
        out = out.replace("$job_id", job_id)
    return out


def unexpanded(text: str | None) -> list[str]:
    """XT macros still in `text` (those singkit cannot fill at submit, or `$job_id` before the id exists)."""
    return [m for m in XT_MACROS if text and m in str(text)]
