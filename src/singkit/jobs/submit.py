"""The submit pipeline as data: a tuple of named steps, each a plain function State -> State
(nox's workflow, nox/workflow.py, is the model), that `execute` runs in order:

    SUBMIT = load_config, resolve_target, build_spec, resolve_image, snapshot, commit, prepare, start
    RERUN  = load_stored, resolve_image, reuse_snapshot, commit, prepare, start

`execute` has the one rule for `--dry-run`: a dry run stops after prepare. The job folder then
holds job.yaml, the code and whatever the backend renders (the Azure ML job YAML for
singularity targets), and nothing runs. Then the job is indexed and `submit` recorded.

No step before commit writes into a job folder (snapshot fills the shared snapshots/). A failure
in commit or prepare (nothing started anywhere), or in start with the error marked
`nothing_created` (a Singularity submit signed out before Azure ML created a job), removes the
job again, its id kept taken and the attempt recorded as `submit-refused`; any other failure in
start (something may have started) keeps the job, its runs `failed`. Submit and rerun need a
project (configs/singkit.yaml).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

from singkit import imageref
from singkit.backends.base import Backend, backend_for, service_record
from singkit.backends.runtime.workdir import processes_per_node
from singkit.configcheck import require
from singkit.environment import Environment
from singkit.exceptions import ConfigError, Problem, SingkitError, UsageError
from singkit.jobs import spec as jobspec
from singkit.jobs.spec import SubmitRequest, check_env_refs, launcher_warning, number_runs
from singkit.snapshot import Snapshot, check_archive, take
from singkit.store import Job, Store, events
from singkit.store.jobspec import JobSpec
from singkit.store.safe import safe_join


@dataclasses.dataclass
class State:
    """What passes from step to step. Each step reads what the steps before it set and sets its own
    part: cfg (load_config), target/service/backend (resolve_target), spec/secrets (build_spec),
    store/archive (snapshot), job (commit; from then on a failure settles the job, see execute)."""

    env: Environment
    request: SubmitRequest | None = None    # submit: what the command line asked for
    what: str = "job.submit"                # the command, for the project check's message
    cfg: Any = None                         # the loaded Config (None: a rerun whose config does not load)
    target: dict[str, Any] | None = None
    service: dict[str, Any] | None = None
    backend: Backend | None = None
    spec: JobSpec = dataclasses.field(default_factory=lambda: cast(JobSpec, {}))  # job.yaml to be
    secrets: dict[str, str] = dataclasses.field(default_factory=dict)  # `$env:SINGKIT_SECRET_*` values
    store: Store | None = None
    archive: Path | None = None             # the code snapshot the job links
    job: Job | None = None
    rerun_of: str | None = None             # rerun: the earlier job's reference, the job, its options
    old: Job | None = None
    parallel: int | None = None
    resume: bool = False

    @property
    def dry_run(self) -> bool:
        return bool(self.spec.get("dry_run"))


Step = Callable[[State], State]


def load(env: Environment) -> Any:
    from singkit.config import load_config

    return load_config(env)


def load_config(state: State) -> State:
    """Refuse outside a project; load the layered config (unless the caller has it)."""
    require_project(state.env, state.what)
    if state.cfg is None:
        state.cfg = load(state.env)
    return state


def resolve_target(state: State) -> State:
    """The target record, its service record and its backend; the target's own problems block it."""
    assert state.request is not None
    cfg = state.cfg
    state.target = cfg.target(state.request.target)
    require(cfg, state.env.err, "compute-targets", state.target["name"])  # its problems block it; others warn
    state.service = service_record(state.target, cfg)
    state.backend = backend_for(state.target, state.env, cfg, service=state.service)
    return state


def build_spec(state: State) -> State:
    """The job spec (jobs.spec.build_spec) and the literal secrets it references."""
    assert state.request is not None and state.target is not None and state.backend is not None
    backend = state.backend
    state.spec, state.secrets = jobspec.build_spec(state.env, state.cfg, state.target, state.service or {},
                                                   state.request, backend.default_parallel)
    for key in ("inputs", "outputs"):  # `--input`/`--output` reach the backend's own copy of the target
        if key in state.spec["target"]:
            backend.target = {**backend.target, key: state.spec["target"][key]}
    said = launcher_warning(str(state.spec.get("command") or ""), processes_per_node(state.spec))
    if said:
        state.env.err(f"warning: {said}")
    return state


def resolve_image(state: State) -> State:
    """Which image the runs use, for every backend: `spec["image"]["ref"]`, by digest when the docker
    record is pinned (imageref.run_reference), the wrapped or the base image as the backend runs
    it (Backend.image_kind). Nothing for a backend that runs no image, a target without a docker
    record, or a registered Azure ML environment (`azureml:`). A record that cannot be read is a
    ConfigError at its line (UsageError for a stored job's record)."""
    assert state.backend is not None
    record = state.spec.get("docker")
    kind = state.backend.image_kind()
    if kind is None or not isinstance(record, dict) or str(record.get("image") or "").startswith("azureml:"):
        return state
    cfg = state.cfg
    registry = cfg.service(record["registry"]) if record.get("registry") and cfg is not None else None
    try:
        ref = imageref.run_reference(record, registry, wrapped=kind == "wrapped")
    except ValueError as error:
        raise record_problem(cfg, record, error) from None
    # a rerun keeps the image id it ran in (the docker backend prefers it while the engine has it)
    state.spec["image"] = {**(state.spec.get("image") or {}), "ref": ref}
    return state


def record_problem(cfg: Any, record: dict[str, Any], error: ValueError) -> SingkitError:
    """A docker record whose image or digest cannot be read: a ConfigError at its line, or a
    UsageError naming the job's stored record when there is no config line to point at."""
    name = str(record.get("name", "?"))
    text = imageref.record_problem_text(name, error)
    where = None
    if cfg is not None:
        where = cfg.where("dockers", name, imageref.record_problem_key(error)) or cfg.where("dockers", name)
    if where is None:
        return UsageError(text if cfg is not None else f"{text} (in the job's stored docker record)")
    return ConfigError(Problem(where.file, where.line, where.col, text))


def snapshot(state: State) -> State:
    """Snapshot the code (into the store's shared snapshots/; a reused archive is checked)."""
    assert state.target is not None
    state.store = Store.of(state.env)
    snap = take_snapshot(state.env, state.cfg, state.target, state.store)
    state.spec["code"] = code_record(snap)
    state.archive = snap.path
    return state


def take_snapshot(env: Environment, cfg: Any, target: dict[str, Any], store: Store) -> Snapshot:
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


def commit(state: State) -> State:
    """Allocate the id and write the job folder.

    job.yaml is the commit point: the code and every run's folder (recorded `queued`; a dry run's
    runs get none, nothing will run them) exist before it is written, so a submit killed at any
    moment leaves either a folder without job.yaml (ignored, see Store.job_ids) or a whole job
    whose runs `refresh` can reconcile."""
    assert state.store is not None and state.archive is not None
    job = state.job = state.store.allocate()
    number_runs(state.spec, job.id)
    job.link_code(state.archive)
    job.use_spec(state.spec)  # the runs are known (in memory) before job.yaml exists
    if not state.dry_run:
        for run in job.runs:
            run.create()
    job.write_spec(state.spec)
    return state


def prepare(state: State) -> State:
    """The backend writes its files (the Azure ML job YAML, the docker image's id into job.yaml) and
    refuses what it cannot run (an unpinned image, a pull refused, ...) before anything starts.
    Literal secrets reach it through its process environment only (with_secrets)."""
    assert state.backend is not None and state.job is not None
    with_secrets(state.backend, state.secrets).prepare(state.job)
    return state


def start(state: State) -> State:
    """The backend starts the runs (detached from this process)."""
    assert state.backend is not None and state.job is not None
    state.backend.submit(state.job)
    return state


SUBMIT: tuple[Step, ...] = (load_config, resolve_target, build_spec, resolve_image, snapshot, commit, prepare, start)


def execute(steps: Sequence[Step], state: State) -> State:
    """Run the steps in order; a dry run stops after `prepare` (the one place that rule lives).

    Once `commit` has allocated the job, a failure settles it before it is raised again: removed
    (`submit-refused`) when nothing can have started — any step up to prepare, or a start error
    marked `nothing_created` — else kept with every run `failed`. A job that got through is
    indexed and recorded (`submit`) in events.jsonl."""
    for step in steps:
        try:
            state = step(state)
        except BaseException as error:
            if state.job is not None and state.store is not None:
                settle(state, step, error)
            raise
        if step.__name__ == "prepare" and state.dry_run:
            break
    if state.job is not None and state.store is not None:
        spec = state.spec
        state.store.save(state.job)
        events.record(state.env, "submit", job=state.job.id, target=spec["target"]["name"], runs=len(spec["runs"]),
                      code=spec["code"]["sha256"], dry_run=state.dry_run,
                      **({"rerun_of": spec["rerun_of"]} if spec.get("rerun_of") else {}))
    return state


def settle(state: State, step: Step, error: BaseException) -> None:
    """A committed job whose step failed: refused (removed) unless something may have started."""
    assert state.job is not None and state.store is not None
    if step.__name__ == "start" and not getattr(error, "nothing_created", False):
        give_up(state.store, state.job, error)  # something may have started: it never looks pending
    else:
        refused(state.env, state.store, state.job, state.spec, error)


def refused(env: Environment, store: Store, job: Job, spec: JobSpec, error: BaseException) -> None:
    """Discard a job nothing was started for (its commit or prepare failed, or its start created
    nothing), and record `submit-refused` (or `submit-abandoned` for an interruption or an
    unexpected error) in events.jsonl."""
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
    folder (a home or /tmp, thousands of files), snapshotted and shipped. A configs/singkit.yaml
    that is there but no file (a FIFO, a folder) passes: loading it says what is wrong with it."""
    if not os.path.lexists(env.project_config):
        raise UsageError(f"{what} needs a singkit project: no configs/singkit.yaml in {env.project_root} or any folder "
                         f"above it; cd into your project, or make {env.project_root} one by creating "
                         f"{env.project_config} (e.g. `general: {{experiment: NAME}}`)")


def submit(env: Environment, request: SubmitRequest, cfg: Any | None = None) -> Job:
    """Submit a job (the SUBMIT steps); `cfg`: the config when the caller has loaded it."""
    job = execute(SUBMIT, State(env, request=request, cfg=cfg)).job
    assert job is not None
    return job


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


def load_stored(state: State) -> State:
    """A rerun's spec: the earlier job's, as a new job (no id, today's time, never dry), with today's
    credential variables withheld; `resume`: each run keeps the earlier run's output folders."""
    env = state.env
    require_project(env, state.what)
    store = state.store = Store.of(env)
    assert state.rerun_of is not None
    old = state.old = store.job(state.rerun_of)
    spec = state.spec = copy.deepcopy(old.spec)
    if state.resume and not (spec.get("data") or {}).get("outputs"):
        raise UsageError(f"{old.id} has no outputs to resume from: give its target `outputs:` "
                         "(NAME: azureml://datastores/STORE/paths/PATH), then checkpoints are kept there")
    if state.resume:
        resumable(env, store, old)
    spec.update({"job": None, "created": round(time.time(), 3), "dry_run": False, "rerun_of": old.id})
    if state.parallel is not None:
        spec["parallel"] = state.parallel
    check_env_refs(spec.get("env") or {}, env.environ, old.spec_path)
    try:
        state.cfg = load(env)  # for registry credentials if an image must be pulled again
    except SingkitError:
        state.cfg = None
    if state.cfg is not None:  # today's service records name today's credential variables (a job before withheld_env too)
        spec["withheld_env"] = sorted({*(spec.get("withheld_env") or ()), *jobspec.credential_variables(state.cfg)})
    state.target, state.service = spec["target"], spec["service"]
    backend = state.backend = backend_for(spec["target"], env, state.cfg, service=spec["service"])
    for run in spec["runs"]:
        key = backend.output_key(old, run["run"]) if state.resume else None  # before the id is cleared
        run.pop("output_key", None)  # a plain rerun writes folders of its own
        run["run"] = None  # type: ignore[typeddict-item]  # number_runs gives the new id
        if key:
            run["output_key"] = key
    if state.resume:
        spec["resumed_from"] = old.id
    state.archive = old.code_archive
    return state


def reuse_snapshot(state: State) -> State:
    """The earlier job's code snapshot, checked: a damaged or escaping archive is refused now, not
    after the runs are queued."""
    assert state.store is not None and state.archive is not None and state.old is not None
    name = (state.spec.get("code") or {}).get("archive") if isinstance(state.spec.get("code"), dict) else None
    if name:  # job.yaml is untrusted: its archive name must stay in the store
        stored = safe_join(state.store.root, str(name), "the code archive", state.old.spec_path)
        if stored.exists():
            state.archive = stored
    check_archive(state.archive)
    return state


RERUN: tuple[Step, ...] = (load_stored, resolve_image, reuse_snapshot, commit, prepare, start)


def rerun(env: Environment, job_ref: str, parallel: int | None = None, resume: bool = False) -> Job:
    """A new job with the same target, command, runs and code snapshot as an earlier one (the RERUN
    steps); `resume`: each new run writes the earlier run's output folders (singkit.mounts), so it
    finds the checkpoints that run left there."""
    job = execute(RERUN, State(env, what="job.rerun", rerun_of=job_ref, parallel=parallel, resume=resume)).job
    assert job is not None
    return job
