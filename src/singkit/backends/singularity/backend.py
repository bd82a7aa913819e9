"""SingularityBackend: each run of a job is one Azure ML command job on a virtual cluster.

    prepare  stage the code (+ the in-job scripts) and write jobs/<jobN>/azureml/<jobN.K>.yaml
             — a standard CLI v2 job YAML, validated offline with azure.ai.ml.load_job
    submit   load those YAMLs, add the secrets (never written), create the jobs; record each
             Azure ML name and studio URL in the run's backend.json
    refresh  pull the Blob mirror of each run into the store, then map the Azure ML state
    logs     follow the user logs, with node/rank prefixes on distributed runs
    cancel   cancel and wait until Azure ML confirms, then record `cancelled`
    download fetch the mirror and Azure ML's logs and outputs into the store, then copy out
"""

from __future__ import annotations

import contextlib
import secrets
import shlex
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from singkit.backends.base import Backend
from singkit.backends.singularity import client as azure, mirror as blob, spec as specs, status as states
from singkit.exceptions import ServiceError, SingkitError, UsageError
from singkit.store import events

STAGE = "azureml"
IN_JOB = "_singkit"  # singkit's scripts inside the uploaded code (a dot folder, or .singkit, is often .gitignored — and Azure ML honours .gitignore)


def _script(name: str) -> Path:
    """An in-job script: packaged under singkit/data in a wheel, in scripts/ in a checkout."""
    package = Path(__file__).resolve().parents[2]
    for candidate in (package / "data" / name, package.parent.parent / "scripts" / name):
        if candidate.is_file():
            return candidate
    raise SingkitError(f"cannot find {name} (looked in singkit/data and scripts/); reinstall singkit")


def _status_text(value: Any) -> str:
    """Azure ML states arrive as str or as an enum (JobStatus.RUNNING): the service's word."""
    return str(getattr(value, "value", value) or "Unknown")


def _is_secret(value: Any) -> bool:
    from singkit.config.secrets import is_env_ref

    return is_env_ref(value)


class SingularityBackend(Backend):
    name = "singularity"
    default_parallel = None  # the virtual cluster queues them; submit every run at once

    def __init__(self, env: Any, target: dict[str, Any], service: dict[str, Any]) -> None:
        super().__init__(env, target, service)
        self._cfg: Any = None
        self._client: Any = None
        self._mirror_warned = False
        self._lock = threading.Lock()
        self.workspace = specs.Workspace(
            subscription_id=str(service.get("subscription-id")), resource_group=str(service.get("resource-group")),
            name=str(service.get("workspace") or service.get("name")), service=str(service.get("name")),
            user_identity_id=service.get("user-identity-id"), cloud=service.get("cloud"))
        self.poll = float(env.environ.get("SINGKIT_POLL_INTERVAL", "5"))
        self.retry_delay = float(env.environ.get("SINGKIT_RETRY_BASE_DELAY", "1"))

    # -- plumbing -----------------------------------------------------------------------
    def config(self) -> Any:
        if self._cfg is None:
            from singkit.config import load_config

            self._cfg = load_config(self.env)
        return self._cfg

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        """An MLClient, with the process environment the SDK reads set for this command."""
        with azure.sdk_environ(self.env.environ):
            with self._lock:  # monitor asks from several threads at once: build one client
                if self._client is None:
                    self._client = azure.ml_client(self.workspace, self.env.environ)
            yield self._client

    def call(self, what: str, fn: Any) -> Any:
        return azure.call(what, fn, workspace=self.workspace, base_delay=self.retry_delay)

    @staticmethod
    def spec_path(job: Any, run_id: str) -> Path:
        return job.dir / STAGE / f"{run_id}.yaml"

    # -- prepare: the YAML a dry run stops at ----------------------------------------------
    def prepare(self, job: Any) -> None:
        cfg = self.config()
        code = job.dir / STAGE / "code"
        self._stage_code(job, code)
        spec = job.spec
        target = {k: v for k, v in self.target.items() if k != "env"}  # job env comes resolved below
        mirror = blob.mirror_for(cfg, self.env.environ, secrets=False)
        for run in job.runs:
            entry = next(r for r in spec["runs"] if r["run"] == run.id)
            env = {k: v for k, v in (spec.get("env") or {}).items() if not _is_secret(v)}
            env.update(self._run_env(job, run, entry))
            if mirror and mirror[0].container_url:  # unknown until its secret is at hand: set at submit
                env.update(SINGKIT_BLOB_URL=mirror[0].container_url, SINGKIT_BLOB_PREFIX=mirror[0].prefix(job.id, run.id))
            document = specs.build_spec(
                cfg, target, job_id=job.id, run_id=run.id, command=self._command(job, entry),
                name=self._name(job, run), code="code", extra_env=env,
                allow_unpinned=bool(spec.get("allow_unpinned") or self.env.environ.get("SINGKIT_ALLOW_UNPINNED")),
                docker=spec.get("docker"), setup=None, experiment=spec.get("experiment"))
            path = specs.write_spec(self.spec_path(job, run.id), document)
            specs.load_spec(path)  # the SDK's own offline validation, before anything is sent
            self.env.err(f"{run.id}: Azure ML job spec {path}")

    def _stage_code(self, job: Any, code: Path) -> None:
        from singkit.snapshot import safe_extract

        marker = code.parent / ".staged"  # outside the folder Azure ML uploads
        if not marker.exists():
            if code.exists():
                shutil.rmtree(code)
            safe_extract(job.code_archive, code)
            lib = code / IN_JOB
            lib.mkdir(exist_ok=True)
            shutil.copyfile(Path(__file__).resolve().parents[2] / "metrics.py", lib / "singkit_metrics.py")
            for name in ("singkit_entry.py", "blob_sync.py"):
                shutil.copyfile(_script(name), lib / name)
            marker.touch()

    def _name(self, job: Any, run: Any) -> str:
        """Keep the name a YAML already has (a retried submit stays idempotent); else a new one."""
        path = self.spec_path(job, run.id)
        if path.exists():
            for line in path.read_text().splitlines():
                if line.startswith("name: "):
                    return line[6:].strip()
        return f"singkit-{job.id}-{run.num}-{secrets.token_hex(4)}"

    def _run_env(self, job: Any, run: Any, entry: dict[str, Any]) -> dict[str, str]:
        from singkit.jobs.spec import hp_environment

        return {**hp_environment(run.hparams), "SINGKIT_JOB": job.id, "SINGKIT_RUN": run.id,
                "SINGKIT_REPEAT": str(entry.get("repeat", 1)), "SINGKIT_TARGET": str(self.target.get("name", "")),
                "SINGKIT_EXPERIMENT": str(job.spec.get("experiment") or ""), "SINGKIT_NODES": str(self.target.get("nodes") or 1),
                "PYTHONUNBUFFERED": "1"}

    @staticmethod
    def _command(job: Any, entry: dict[str, Any]) -> str:
        """blob_sync (mirror) → singkit_entry (status lines, files, console) → the run's shell command."""
        inner = (job.spec.get("setup_prefix") or "") + (entry.get("command") or job.spec["command"])
        # python3 where an image has only that; the scripts need nothing beyond the standard library
        return ('PY="$(command -v python3 || command -v python)" && '
                f'PYTHONPATH="$PWD/{IN_JOB}${{PYTHONPATH:+:$PYTHONPATH}}" SINGKIT_OUTPUTS="$PWD/outputs" '
                f'"$PY" {IN_JOB}/blob_sync.py -- "$PY" {IN_JOB}/singkit_entry.py --tee -- sh -c {shlex.quote(inner)}')

    # -- submit ---------------------------------------------------------------------------
    def _secret_env(self, job: Any) -> tuple[dict[str, str], Any]:
        """The job env's `$env:` secrets, resolved now, and the Blob mirror with its SAS."""
        from singkit.config import resolve_secret

        out = {k: resolve_secret(v, self.env.environ) or "" for k, v in (job.spec.get("env") or {}).items() if _is_secret(v)}
        found = blob.mirror_for(self.config(), self.env.environ, secrets=True)
        return out, found

    def _entity(self, job: Any, run: Any, extra: dict[str, str]) -> Any:
        entity = specs.load_spec(self.spec_path(job, run.id))
        entity.environment_variables = {**(entity.environment_variables or {}), **extra}
        return entity

    def submit(self, job: Any) -> None:
        secret_env, found = self._secret_env(job)
        done: list[tuple[Any, str]] = []
        with self.session() as ml:
            for run in job.runs:
                extra = dict(secret_env)
                info: dict[str, Any] = {}
                if found:
                    mirror, sas = found
                    extra.update(sas, SINGKIT_BLOB_URL=mirror.container_url, SINGKIT_BLOB_PREFIX=mirror.prefix(job.id, run.id))
                    info["mirror"] = {"record": mirror.record, "url": mirror.container_url, "prefix": mirror.prefix(job.id, run.id)}
                try:
                    created = self.call(f"submitting {run.id} to {self.workspace.name}",
                                        lambda run=run, extra=extra: ml.jobs.create_or_update(self._entity(job, run, extra)))
                except SingkitError:
                    self._withdraw(ml, done)
                    raise
                document = self._yaml(job, run.id)
                dist = document.get("distribution") or {}
                info.update(azureml_name=created.name, studio_url=created.studio_url, workspace=self.workspace.name,
                            subscription=self.workspace.subscription_id, resource_group=self.workspace.resource_group,
                            experiment=document.get("experiment_name"), nodes=document["resources"]["instance_count"],
                            per_node=dist.get("process_count_per_instance", 1), azure_status=_status_text(created.status),
                            submitted=round(time.time(), 3))
                run.write_backend_info(info)
                events.record(self.env, "azureml-submit", job=job.id, run=run.id, name=created.name,
                              workspace=self.workspace.name, subscription=self.workspace.subscription_id)
                done.append((run, created.name))
                self.env.err(f"{run.id}: submitted as Azure ML job {created.name}: {created.studio_url}")

    def _withdraw(self, ml: Any, done: list[tuple[Any, str]]) -> None:
        """A later run failed to submit: cancel the earlier ones, so the failed job the store
        records is not still running (best effort; the error being raised says what failed)."""
        for run, name in done:
            try:
                ml.jobs.begin_cancel(name)
                run.write_backend_info({**run.backend_info(), "withdrawn": True})
            except Exception:  # noqa: BLE001 - best effort, the original error matters more
                self.env.err(f"{run.id}: could not cancel Azure ML job {name}; cancel it in the studio")

    def _yaml(self, job: Any, run_id: str) -> dict[str, Any]:
        from singkit.store.model import load_yaml

        return load_yaml(self.spec_path(job, run_id))

    # -- refresh --------------------------------------------------------------------------
    def refresh(self, job: Any) -> None:
        pending = [(r, r.backend_info()) for r in job.runs]
        pending = [(r, i) for r, i in pending if i.get("azureml_name") and not (r.state().terminal and i.get("final"))]
        if not pending:
            return
        with self.session() as ml:
            for run, info in pending:
                self._refresh_run(ml, run, info)

    def _refresh_run(self, ml: Any, run: Any, info: dict[str, Any]) -> None:
        name = info["azureml_name"]
        if info.get("mirror"):
            try:
                blob.pull(self.config(), self.env.environ, info, run)
            except SingkitError as error:  # the mirror is a convenience; the status still counts
                if not self._mirror_warned:
                    self._mirror_warned = True
                    self.env.err(f"warning: {error}")
        remote = self.call(f"reading the status of {run.id} ({name})", lambda: ml.jobs.get(name))
        azure_status = _status_text(remote.status)
        error = None
        if azure_status.lower() in ("failed", "notresponding"):
            error = self._error(ml, name)
        was_running = info.get("azure_status", "").lower() in ("running", "finalizing") or run.state().status == "preempted"
        change = states.transition(azure_status, error, was_running)
        if change and change[0] != run.state().status:
            run.set_status(change[0], reason=change[1])
        info["azure_status"] = azure_status
        info["final"] = azure_status.lower() in ("completed", "failed", "canceled", "notresponding")
        run.write_backend_info(info)

    def _error(self, ml: Any, name: str) -> Any:
        with contextlib.suppress(Exception):
            details = ml.jobs._runs_operations.get_run_details(name)
            error = getattr(details, "error", None)
            return error.as_dict() if hasattr(error, "as_dict") else error
        return None

    # -- logs -----------------------------------------------------------------------------
    def logs(self, job: Any, run: str, follow: bool = False, stream: str = "stdout",
             tail: int | None = None) -> Iterator[str]:
        """stdout: Azure ML's user logs (node/rank prefixes on distributed runs); stderr: the
        store's file, which the Blob mirror fills (Azure ML folds stderr into its logs)."""
        info = job.run(run).backend_info()
        if not info.get("azureml_name") or stream != "stdout":
            return super().logs(job, run, follow=follow, stream=stream, tail=tail)
        return self._follow(job, run, info, follow, tail)

    def _follow(self, job: Any, run: str, info: dict[str, Any], follow: bool, tail: int | None) -> Iterator[str]:
        from singkit.backends.singularity.logs import follow_logs

        try:
            with self.session() as ml:
                yield from follow_logs(ml, info["azureml_name"], follow=follow, nodes=int(info.get("nodes") or 1),
                                       per_node=int(info.get("per_node") or 1), poll=self.poll, call=self.call, tail=tail)
        except ServiceError as error:
            # monitor must not die with Azure ML's log service: say so once, go on with the mirror
            self.env.err(f"warning: {error}; showing the Blob mirror of {run} instead")
            yield from super().logs(job, run, follow=follow, stream="stdout", tail=tail)

    # -- cancel ---------------------------------------------------------------------------
    def cancel(self, job: Any, run: str | None = None) -> None:
        runs = [job.run(run)] if run else job.runs
        todo = [(r, r.backend_info()) for r in runs if not r.state().terminal]
        if not todo:
            return
        with self.session() as ml:
            for r, info in todo:
                if not info.get("azureml_name"):
                    r.set_status("cancelled", reason="cancelled before it reached Azure ML")
                    continue
                self._cancel_one(ml, r, info)

    def _cancel_one(self, ml: Any, run: Any, info: dict[str, Any]) -> None:
        name = info["azureml_name"]
        current = self.call(f"reading the status of {run.id}", lambda: ml.jobs.get(name))
        if _status_text(current.status).lower() not in ("completed", "failed", "canceled", "notresponding"):
            poller = self.call(f"cancelling {run.id} ({name})", lambda: ml.jobs.begin_cancel(name))
            self.call(f"cancelling {run.id} ({name})", poller.result)
        deadline = time.monotonic() + float(self.env.environ.get("SINGKIT_CANCEL_TIMEOUT", "900"))
        while True:  # Azure ML accepts a cancel long before the nodes stop: wait for its word
            current = self.call(f"reading the status of {run.id}", lambda: ml.jobs.get(name))
            status = _status_text(current.status)
            if status.lower() in ("completed", "failed", "canceled", "notresponding"):
                break
            if time.monotonic() > deadline:
                raise ServiceError(f"{run.id}: Azure ML accepted the cancel of {name} but still reports {status}; check `invoke job.status` later")
            time.sleep(self.poll)
        info.update(azure_status=status, final=True)
        run.write_backend_info(info)
        if status == "Canceled":
            run.set_status("cancelled", reason="cancelled by the user")
        else:  # it ended on its own first
            self._refresh_run(ml, run, info)

    # -- download -------------------------------------------------------------------------
    def download(self, job: Any, dest: Path, what: str = "all") -> None:
        with self.session() as ml:
            for run in job.runs:
                info = run.backend_info()
                if not info.get("azureml_name"):
                    continue
                if info.get("mirror"):
                    blob.pull(self.config(), self.env.environ, info, run)
                if what == "code":
                    continue
                remote = self.call(f"reading the status of {run.id}", lambda: ml.jobs.get(info["azureml_name"]))
                if _status_text(remote.status).lower() not in ("completed", "failed", "canceled", "notresponding"):
                    self.env.err(f"{run.id}: still {_status_text(remote.status)} in Azure ML; its logs and outputs can be fetched once it ends")
                    continue
                self._fetch_artifacts(ml, run, info["azureml_name"])
        super().download(job, dest, what)
        if what in ("logs", "all"):  # Azure ML's own logs, and the job YAMLs that were sent
            for run in job.runs:
                if (run.dir / "azureml-logs").is_dir():
                    shutil.copytree(run.dir / "azureml-logs", dest / "runs" / run.id / "azureml-logs", dirs_exist_ok=True)
            for path in sorted((job.dir / STAGE).glob("*.yaml")):
                (dest / STAGE).mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest / STAGE / path.name)

    def _fetch_artifacts(self, ml: Any, run: Any, name: str) -> None:
        """Azure ML's artifacts: outputs/ into the run's outputs, its logs into azureml-logs/."""
        with tempfile.TemporaryDirectory(dir=run.dir, prefix=".download-") as tmp:
            self.call(f"downloading logs and outputs of {run.id}", lambda: ml.jobs.download(name, download_path=tmp, all=True))
            artifacts = Path(tmp) / "artifacts"
            for item in sorted(artifacts.iterdir()) if artifacts.is_dir() else []:
                target = run.outputs_dir if item.name == "outputs" else run.dir / "azureml-logs" / item.name
                if item.is_dir():
                    shutil.copytree(item, target, dirs_exist_ok=True)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(item, target)
            named = Path(tmp) / "named-outputs"
            if named.is_dir():
                shutil.copytree(named, run.outputs_dir / "named-outputs", dirs_exist_ok=True)



def portal_urls(job: Any) -> dict[str, str]:
    """run id → the Azure ML studio page of its job (recorded at submit)."""
    kind = (job.spec.get("service") or {}).get("type")
    if kind not in ("singularity", "aml"):
        raise UsageError(f"{job.id} ran on `{(job.spec.get('target') or {}).get('name')}` ({kind}); only Singularity jobs have a portal page")
    urls = {r.id: r.backend_info().get("studio_url") for r in job.runs}
    found = {k: v for k, v in urls.items() if v}
    if not found:
        why = "it was a dry run" if job.spec.get("dry_run") else "its submit did not reach Azure ML"
        raise UsageError(f"{job.id} has no Azure ML job: {why}")
    return found
