"""The submit pipeline, as plain steps:

    load config → resolve target → build spec → snapshot → allocate + record → prepare → submit

`--dry-run` stops after prepare: the job folder then holds job.yaml, the code and whatever the
backend renders (the Azure ML job YAML for singularity targets), and nothing runs.

A job the backend refuses in prepare (nothing started anywhere), or whose submit fails with the
error marked `nothing_created` (a Singularity submit signed out before Azure ML created a job),
is removed again, its id kept taken and the attempt recorded as `submit-refused`; any other
failure in submit (something may have started) keeps the job, its runs `failed`. Submit and rerun need a project (configs/singkit.yaml).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import time
from typing import Any

from singkit.backends.base import Backend, backend_for, service_record
from singkit.backends.runtime.workdir import processes_per_node
from singkit.configcheck import require
from singkit.environment import Environment
from singkit.exceptions import SingkitError, UsageError
from singkit.jobs.spec import SubmitRequest, build_spec, check_env_refs, launcher_warning, number_runs
from singkit.snapshot import Snapshot, check_archive, take
from singkit.store import Job, Store, events
from singkit.store.safe import safe_join


def load(env: Environment) -> Any:
    from singkit.config import load_config

    return load_config(env)


def snapshot(env: Environment, cfg: Any, target: dict[str, Any], store: Store) -> Snapshot:
    general = cfg.general
    code_dirs = target.get("code-dirs") or general.get("code-dirs") or ["."]
    omit = [*(general.get("code-omit") or []), *(target.get("code-omit") or [])]
    snap = take(env.project_root, code_dirs, omit, store.snapshots_dir, exclude=[store.root],
                cache_dir=store.root / "cache" / "stat")
    for note in snap.notes:
        env.err(f"warning: {note}")
    if snap.bytes > 200 * 1024 * 1024:
        env.err(f"warning: the code snapshot is {snap.bytes / 2**20:.0f} MB; "
                "leave data and checkpoints out with general.code-omit or .gitignore")
    return snap


def code_record(snap: Snapshot) -> dict[str, Any]:
    return {"sha256": snap.sha256, "files": snap.files, "bytes": snap.bytes,
            "archive": f"snapshots/{snap.path.name}"}


def record_and_start(env: Environment, store: Store, backend: Backend, spec: dict[str, Any],
                     code_archive: Any) -> Job:
    """Allocate the id, write the job folder, let the backend prepare and (unless dry) submit.

    job.yaml is the commit point: the code and every run's folder (recorded `queued`) exist
    before it is written, so a submit killed at any moment leaves either a folder without
    job.yaml (ignored, see Store.job_ids) or a whole job whose runs `refresh` can reconcile."""
    job = store.allocate()
    number_runs(spec, job.id)
    job.link_code(code_archive)
    job.use_spec(spec)  # the runs are known (in memory) before job.yaml exists
    if not spec.get("dry_run"):
        for run in job.runs:
            run.create()
    job.write_spec(spec)
    try:
        backend.prepare(job)
    except BaseException as error:
        # refused (an unpinned image, a pull refused, ...) before anything started anywhere:
        # no job is left behind; the audit log keeps the attempt, and the id stays taken
        refused(env, store, job, spec, error)
        raise
    try:
        if not spec.get("dry_run"):
            backend.submit(job)
    except BaseException as error:
        if getattr(error, "nothing_created", False):
            # the backend knows nothing started (e.g. signed out before Azure ML created a job):
            # refused like a prepare refusal
            refused(env, store, job, spec, error)
            raise
        # something may have started: the job stays, every run given an outcome so it never looks pending
        give_up(store, job, error)
        raise
    store.save(job)
    events.record(env, "submit", job=job.id, target=spec["target"]["name"], runs=len(spec["runs"]),
                  code=spec["code"]["sha256"], dry_run=bool(spec.get("dry_run")),
                  **({"rerun_of": spec["rerun_of"]} if spec.get("rerun_of") else {}))
    return job


def refused(env: Environment, store: Store, job: Job, spec: dict[str, Any], error: BaseException) -> None:
    """Discard a job whose backend refused it in prepare, and record `submit-refused` (or
    `submit-abandoned` for an interruption or an unexpected error) in events.jsonl."""
    if isinstance(error, SingkitError):
        event, reason = "submit-refused", " ".join(str(error).split())
    elif isinstance(error, KeyboardInterrupt):
        event, reason = "submit-abandoned", "interrupted"
    else:
        event, reason = "submit-abandoned", f"{type(error).__name__}: {' '.join(str(error).split())}"
    try:
        store.discard(job, reason[:500])
    except Exception as problem:  # noqa: BLE001 - the refusal is what the user must read
        env.err(f"warning: could not remove {job.dir} ({problem}); it is kept as a failed job")
        with contextlib.suppress(Exception):
            give_up(store, job, error)
    with contextlib.suppress(OSError):
        events.record(env, event, job=job.id, target=spec["target"]["name"], reason=reason[:500],
                      dry_run=bool(spec.get("dry_run")))


def give_up(store: Store, job: Job, error: BaseException) -> None:
    """Record every run of a job whose submit failed as `failed`, with the error as reason."""
    reason = f"submit failed: {error}" if isinstance(error, SingkitError) else f"submit failed: {type(error).__name__}: {error}"
    for run in job.runs:
        if not run.dir.exists():  # a dry run's runs: give them their folder now
            run.create()
        run.set_status("failed", reason=reason[:500])
    store.save(job)


def with_secrets(backend: Backend, secrets: dict[str, str]) -> Backend:
    """Hand literal secrets to the backend through its process environment only: the runner
    (and the Azure ML submit) resolve job.yaml's `$env:SINGKIT_SECRET_*` references from it."""
    if secrets:
        backend.env = dataclasses.replace(backend.env, environ={**backend.env.environ, **secrets})
    return backend


def require_project(env: Environment, what: str) -> None:
    """Refuse to submit from a folder that is not in a project: its code would be a stranger's
    folder (a home or /tmp, thousands of files), snapshotted and shipped."""
    if not env.project_config.is_file():
        raise UsageError(f"{what} needs a singkit project: no configs/singkit.yaml in {env.project_root} or any folder "
                         f"above it; cd into your project, or make {env.project_root} one by creating "
                         f"{env.project_config} (e.g. `general: {{experiment: NAME}}`)")


def submit(env: Environment, request: SubmitRequest, cfg: Any | None = None) -> Job:
    require_project(env, "job.submit")
    cfg = cfg if cfg is not None else load(env)                    # load config
    target = cfg.target(request.target)                            # resolve target
    require(cfg, env.err, "compute-targets", target["name"])      # its problems block it; others warn
    service = service_record(target, cfg)
    backend = backend_for(target, env, cfg, service=service)
    spec, secrets = build_spec(env, cfg, target, service, request, backend.default_parallel)  # build spec
    for key in ("inputs", "outputs"):  # `--input`/`--output` reach the backend's own copy of the target
        if key in spec["target"]:
            backend.target = {**backend.target, key: spec["target"][key]}
    said = launcher_warning(str(spec.get("command") or ""), processes_per_node(spec))
    if said:
        env.err(f"warning: {said}")
    store = Store.of(env)
    snap = snapshot(env, cfg, target, store)                       # snapshot (a reused archive is checked)
    spec["code"] = code_record(snap)
    return record_and_start(env, store, with_secrets(backend, secrets), spec, snap.path)  # record, prepare, submit


def resumable(env: Environment, store: Store, old: Job) -> None:
    """Refuse to resume from a dry run (it wrote no checkpoint) or from a job whose runs still
    run (two runs would write one checkpoint folder)."""
    from singkit.jobs.control import refresh
    from singkit.store import runlog

    if old.spec.get("dry_run"):
        raise UsageError(f"{old.id} was a dry run: it left no checkpoints to resume from")
    refresh(env, store, old)
    live = [run_id for run_id, state in old.states().items() if state.status in runlog.ACTIVE]
    if live:
        raise UsageError(f"{old.id} still runs ({', '.join(live)}): a resumed run would write into the same "
                         f"checkpoint folders; wait for it, or `invoke job.cancel {old.id}` first")


def rerun(env: Environment, job_ref: str, parallel: int | None = None, resume: bool = False) -> Job:
    """A new job with the same target, command, runs and code snapshot as an earlier one;
    `resume`: each new run writes the earlier run's output folders (singkit.mounts), so it finds
    the checkpoints that run left there."""
    require_project(env, "job.rerun")
    store = Store.of(env)
    old = store.job(job_ref)
    spec = copy.deepcopy(old.spec)
    if resume and not (spec.get("data") or {}).get("outputs"):
        raise UsageError(f"{old.id} has no outputs to resume from: give its target `outputs:` "
                         "(NAME: azureml://datastores/STORE/paths/PATH), then checkpoints are kept there")
    if resume:
        resumable(env, store, old)
    spec.update(job=None, created=round(time.time(), 3), dry_run=False, rerun_of=old.id)
    if parallel is not None:
        spec["parallel"] = parallel
    check_env_refs(spec.get("env") or {}, env.environ, old.spec_path)
    try:
        cfg = load(env)  # for registry credentials if an image must be pulled again
    except SingkitError:
        cfg = None
    if cfg is not None:  # today's service records name today's credential variables (a job before withheld_env too)
        from singkit.jobs.spec import credential_variables

        spec["withheld_env"] = sorted({*(spec.get("withheld_env") or ()), *credential_variables(cfg)})
    backend = backend_for(spec["target"], env, cfg, service=spec["service"])
    for run in spec["runs"]:
        key = backend.output_key(old, run["run"]) if resume else None  # before the id is cleared
        run.pop("output_key", None)  # a plain rerun writes folders of its own
        run["run"] = None
        if key:
            run["output_key"] = key
    if resume:
        spec["resumed_from"] = old.id
    archive = old.code_archive
    name = (spec.get("code") or {}).get("archive") if isinstance(spec.get("code"), dict) else None
    if name:  # job.yaml is untrusted: its archive name must stay in the store
        stored = safe_join(store.root, str(name), "the code archive", old.spec_path)
        if stored.exists():
            archive = stored
    check_archive(archive)  # a damaged or escaping archive is refused now, not after the runs are queued
    return record_and_start(env, store, backend, spec, archive)
