"""The shape of a job spec: job.yaml as jobs/spec.py builds it and the store keeps it.

A JobSpec is the YAML mapping itself (a TypedDict, so the file format, its keys and the code
that writes it stay as they are); mypy checks every reader's key against it. The store checks
the types of what it reads back (store/records.py: SPEC_FIELDS, RUN_FIELDS), so a reader may
trust them: target, service and runs are always there, the rest may be missing or null in a
file an older singkit wrote.

    job.yaml   JobSpec {job, created, experiment, project_root, target, service, docker, setup,
               command, setup_prefix, env, withheld_env, data, parallel, repeats, hp, dry_run,
               allow_unpinned, create_registry_connection, code, runs: [RunEntry], rerun_of?,
               resumed_from?, image?}
"""

from __future__ import annotations

from typing import Any, TypedDict


class RunEntry(TypedDict, total=False):
    """One run of a job spec (`runs:`); `run` (`jobN.K`) is given when the job id is known."""

    run: str                      # None only between building a spec (or a rerun's) and numbering it
    hparams: dict[str, Any]       # typed values (1, 0.1, "adam"), for the record and the reports
    hparams_text: dict[str, str]  # as typed on the command line: what the run is given
    repeat: int
    command: str                  # the job's command with this run's hyperparameters
    output_key: str | None        # the Azure ML job name whose outputs this run resumes (a rerun)


class _JobSpecRequired(TypedDict):
    target: dict[str, Any]   # the resolved compute-target record; `name` always, `service` usually
    service: dict[str, Any]  # the resolved service record; `name` always, `type` usually
    runs: list[RunEntry]


class JobSpec(_JobSpecRequired, total=False):
    """job.yaml. Records copied from the config (target, service, docker, setup, data) keep
    the config's keys and are plain mappings; everything else is singkit's own."""

    job: str | None               # `jobN`; None until the store gives the id
    created: float | None         # epoch seconds
    experiment: str | None
    project_root: str | None
    docker: dict[str, Any] | None
    setup: dict[str, Any] | None
    command: str | None
    setup_prefix: str | None
    env: dict[str, str] | None    # literal secrets sealed as `$env:SINGKIT_SECRET_*`
    withheld_env: list[str]       # credential variable names a local run never inherits
    data: dict[str, Any] | None   # inputs/outputs (singkit.mounts)
    parallel: int | None
    repeats: int | None
    hp: dict[str, list[Any]] | None
    dry_run: bool | None
    allow_unpinned: bool | None
    create_registry_connection: bool | None
    code: dict[str, Any]          # {sha256, archive, files} of the snapshot (None until it is taken)
    rerun_of: str | None
    resumed_from: str | None
    image: dict[str, Any]         # the docker backend's {ref, id}: the image its runs use


def run_entry(spec: JobSpec, run_id: str) -> RunEntry:
    """The `runs:` entry of `run_id`, or an empty entry when the spec lists no such run."""
    return next((entry for entry in spec["runs"] if entry.get("run") == run_id), RunEntry())
