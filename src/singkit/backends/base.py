"""The one small interface every place that runs jobs implements, and the picker.

Three implementations: `local` (processes on this machine), `docker` (containers on the
local Docker Engine), `singularity` (Azure ML command jobs; singkit.backends.singularity).

A backend is told about a job through the store (`singkit.store.Job`): the job folder holds
the resolved spec (job.yaml: target, service, docker, setup, command, runs, parallel, code)
and each run's files. Backends write what they learn back into the store: status lines in
each run's run.log (`Run.set_status`), their own ids in `Run.write_backend_info`.

Rules every implementation keeps:
- A terminal status (completed, failed, cancelled) is final: the first one written wins, so
  a cancel that records `cancelled` before it kills cannot be overwritten by the dying run.
- `refresh` reconciles: a run whose process/container/remote job is gone without an
  outcome becomes `failed` with a reason; nothing stays `running` forever.
- `cancel` is idempotent; cancelling a finished run changes nothing.
- Heavy imports (docker, azure.*) happen inside methods.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from singkit.backendkinds import BACKENDS, BUILTIN_SERVICES
from singkit.environment import Environment
from singkit.exceptions import UsageError

if TYPE_CHECKING:
    from singkit.store import Job

EMBEDDED = set(BUILTIN_SERVICES)
WHAT = ("code", "logs", "outputs", "all")


class Backend(abc.ABC):
    """Runs the runs of a job somewhere, and reports on them through the store."""

    name: ClassVar[str]
    #: how many runs go at once when --parallel is not given (None: all of them)
    default_parallel: ClassVar[int | None] = 1

    def __init__(self, env: Environment, target: dict[str, Any], service: dict[str, Any]) -> None:
        self.env = env
        self.target = target    # resolved compute-target record (has "name")
        self.service = service  # resolved service record; {"name": "local", "type": "local"} for embedded
        self.cfg: Any = None    # the loaded Config when there is one (set by backend_for); None for stored jobs

    def prepare(self, job: Job) -> None:
        """Write backend-specific files into the job folder (e.g. the Azure ML job YAML).

        Runs for every submit, and is where `--dry-run` stops. Default: nothing to write."""

    def image_kind(self) -> str | None:
        """Which image of the job's docker record the runs use: "wrapped" (the Singularity-ready one
        when the record says `sing-wrap: true`), "base" (the record's own image even then), or None
        (no image). The submit pipeline's resolve_image step reads it. Default: None."""
        return None

    @abc.abstractmethod
    def submit(self, job: Job) -> None:
        """Start the job's runs (detached from this process) and record backend ids in the store."""

    @abc.abstractmethod
    def refresh(self, job: Job) -> set[str] | None:
        """Bring each run's status in the store up to date; mark dead runs failed with a reason.
        Returns the ids of the runs whose files it may have written (the caller sums up only
        those again: a sweep has thousands), or None for any run."""

    @abc.abstractmethod
    def cancel(self, job: Job, run: str | None = None) -> None:
        """End one run (`run` = "jobN.K") or every run: record `cancelled`, then stop them all."""

    def output_key(self, job: Job, run_id: str) -> str:
        """The folder under each of the target's `outputs:` a run writes (singkit.mounts): what
        `job.rerun --resume` hands the new run. Here: the run id, or the one it resumed."""
        from singkit.mounts import output_key

        return output_key(next((r for r in job.spec["runs"] if r["run"] == run_id), {}), run_id)

    def logs(self, job: Job, run: str, follow: bool = False, stream: str = "stdout",
             tail: int | None = None) -> Iterator[str]:
        """Lines (each ending in a newline) of a run's stdout or stderr: the last `tail` lines
        (all if None), then, with follow, new lines as they come until the run has ended.

        Default: read the store's files, which local and docker runs write as they go."""
        from singkit.backends.follow import follow_lines

        return follow_lines(job.run(run), stream, follow=follow, tail=tail)

    def download(self, job: Job, dest: Path, what: str = "all") -> list[str]:
        """Copy code / logs / outputs of the job from the store into `dest` (store layout); the
        notes on what was skipped (a link out of the store, a device), one line each.

        Remote backends fetch into the store first, then call this. Archive members that
        would land outside `dest` are refused (SingkitError) before anything is written. Store
        content is untrusted (singkit.store.safe): no link is followed out of the job folder,
        and nothing is written through a link already in `dest`."""
        from singkit.snapshot import safe_extract
        from singkit.store.safe import copy_file_out, copy_tree_out, real_folder

        if what not in WHAT:
            raise UsageError(f"--what={what} is not one of {', '.join(WHAT)}")
        notes: list[str] = []
        runs = job.runs  # every run id checked before anything is written
        dest.mkdir(parents=True, exist_ok=True)
        if what in ("code", "all"):
            real_folder(dest / "code")  # a link there would take the code elsewhere
            safe_extract(job.code_archive, dest / "code")
        if what in ("logs", "all"):
            copy_file_out(job.spec_path, dest / "job.yaml", notes)
        for r in runs:
            target = dest / "runs" / r.id
            if what != "code":  # each folder singkit writes into is a real one, not a link out
                real_folder(dest / "runs")
                real_folder(target)
            if what in ("logs", "all"):
                for path in (r.log_path, r.stdout_path, r.stderr_path):
                    copy_file_out(path, target / path.name, notes)
            if what in ("outputs", "all"):
                copy_tree_out(r.outputs_dir, target / "outputs", notes)
        return notes


def service_record(target: dict[str, Any], cfg: Any | None) -> dict[str, Any]:
    """The service record a target names: a stub for the embedded ones, else the config's."""
    service = target.get("service") or "local"
    if service in EMBEDDED:
        return {"name": service, "type": service}
    if cfg is None:
        raise UsageError(f"target `{target.get('name')}` needs its service record `{service}`; load the config first")
    return cfg.service(service)


def backend_for(target: dict[str, Any], env: Environment, cfg: Any | None = None,
                service: dict[str, Any] | None = None) -> Backend:
    """The backend for a resolved target: by target["service"] (local | docker), else by the
    type of the service record it names (singularity | aml), as singkit.backendkinds lists
    them. `service` overrides the lookup (a job reloaded from the store passes the record
    saved in its job.yaml). UsageError for a type no backend runs."""
    service = service or service_record(target, cfg)
    kind = service.get("type")
    if not isinstance(kind, str) or kind not in BACKENDS:
        raise UsageError(f"target `{target.get('name')}`: service `{service.get('name')}` has type `{kind}`; "
                         "a target runs on local, docker, or a singularity/aml service")
    backend = backend_class(kind)(env, target, service)
    backend.cfg = cfg
    return backend


def backend_class(kind: str) -> type[Backend]:
    """The Backend class of a service type in singkit.backendkinds.BACKENDS, imported now
    (KeyError for a kind the table lacks)."""
    module, _, name = BACKENDS[kind].partition(":")
    found = getattr(importlib.import_module(module), name)
    assert isinstance(found, type) and issubclass(found, Backend), BACKENDS[kind]
    return found


def backend_for_job(job: Job, env: Environment) -> Backend:
    """The backend a stored job was submitted to, from its job.yaml alone (no config needed)."""
    spec = job.spec
    return backend_for(spec["target"], env, service=spec["service"])
