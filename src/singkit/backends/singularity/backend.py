"""SingularityBackend: each run of a job is one Azure ML command job on a virtual cluster.

    prepare  stage the code (+ the in-job scripts) and write jobs/<jobN>/azureml/<jobN.K>.yaml
             — a standard CLI v2 job YAML, validated offline with azure.ai.ml.load_job
    submit   load those YAMLs, add the secrets (never written), create the jobs; the run's
             backend.json names the Azure ML job BEFORE the create (`submitting`), then gets
             its studio URL — so a submit that dies half-way leaves a job singkit can find
    refresh  pull the Blob mirror of each run into the store, then map the Azure ML state:
             only Azure ML's state ends a run (the ranks' wrappers write `exit` events only);
             a `submitting` run is looked up by name — adopted, or failed after a grace period
    logs     follow the user logs, with node/rank prefixes on distributed runs
    cancel   send every run's cancel, then wait for all at once until Azure ML confirms (cancel.py)
    download fetch the mirror and Azure ML's logs and outputs into the store, then copy out
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from singkit.backends.base import Backend
from singkit.backends.singularity import client as aml, creating, mirror as blob, settled, spec as specs, staging, status as states
from singkit.backends.singularity.handle import SingularityHandle, SubmitState
from singkit.exceptions import ServiceError, SingkitError, UsageError
from singkit.store import events, runlog
from singkit.store.jobspec import run_entry

if TYPE_CHECKING:
    from singkit.config.model import Config
    from singkit.environment import Environment
    from singkit.store.model import Job
    from singkit.store.model import Run

STAGE = "azureml"
SUBMIT_GRACE_VAR = "SINGKIT_SUBMIT_GRACE"
# How long a run may stay `submitting` with no such job in Azure ML before it counts as failed:
# the submitting process may still be uploading code or retrying (bounded, well under this).
SUBMIT_GRACE = 1800.0
MIRROR_RETRY = 60.0  # seconds before a Blob mirror found down is read again (job.monitor polls)


_missing = creating._missing  # one definition: a job by name, or None


def _tracked(info: dict[str, Any]) -> bool:
    """A run with an Azure ML job known to exist (not one whose submit is unsettled)."""
    return SingularityHandle(info).tracked


def _exit_code(run: Run, status: str) -> int | None:
    """The exit code to record with Azure ML's verdict, from the ranks' `exit` events (None
    when none arrived): 0 for completed (an earlier, preempted attempt may have said 143);
    for failed, the latest non-zero one."""
    if status not in ("completed", "failed"):
        return None
    codes = [e.get("exit_code") for e in runlog.events(run.log_path) if e.get("event") == "exit"]
    codes = [c for c in codes if isinstance(c, int) and not isinstance(c, bool)]
    if status == "completed":
        return 0 if codes else None
    failed = [c for c in codes if c]
    return failed[-1] if failed else None


class SingularityBackend(Backend):
    name = "singularity"
    default_parallel = None  # the virtual cluster queues them; submit every run at once

    def __init__(self, env: Environment, target: dict[str, Any], service: dict[str, Any]) -> None:
        super().__init__(env, target, service)
        self._cfg: Any = None
        self._client: Any = None
        self._mirror_warned = False
        self._mirror_retry_at = 0.0  # monotonic time: a mirror found down is not asked again before it
        self._deadline: float | None = None  # monotonic time a submit's retries end (SINGKIT_SUBMIT_DEADLINE)
        self._lock = threading.Lock()
        self.workspace = specs.Workspace.of(service)
        self.poll = float(env.environ.get("SINGKIT_POLL_INTERVAL", "5"))
        self.retry_delay = float(env.environ.get("SINGKIT_RETRY_BASE_DELAY", "1"))

    # -- plumbing -----------------------------------------------------------------------
    def config(self) -> Any:
        if self._cfg is None:
            from singkit.config import load_config

            self._cfg = getattr(self, "cfg", None) or load_config(self.env)  # the submit's own, when it has one
        return self._cfg

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        """An MLClient, with the process environment the SDK reads set for this command."""
        with aml.sdk_environ(self.env.environ):
            with self._lock:  # monitor asks from several threads at once: build one client
                if self._client is None:
                    kind = self._credential_kind()
                    self.workspace = dataclasses.replace(self.workspace, credential=kind,
                                                         credential_used=aml.credential_name(self.env.environ, kind))
                    self._client = aml.ml_client(self.workspace, self.env.environ)
            yield self._client

    def _credential_kind(self) -> str | None:
        try:
            return self.config().general.get("credential")
        except SingkitError:  # a job is followed even when today's config is broken
            return None

    def call(self, what: str, fn: Any) -> Any:
        return aml.call(what, fn, workspace=self.workspace, base_delay=self.retry_delay, deadline=self._deadline)

    def image_kind(self) -> str | None:
        """A compute cluster runs the record's base image (spec._environment), a virtual cluster the wrapped one."""
        from singkit.singularity import amlcompute

        service = (getattr(self.cfg, "services", None) or {}).get(str(self.target.get("service") or ""))  # as resolve reads it
        return "base" if amlcompute.is_cluster(self.cfg, self.target, service or self.service) else "wrapped"

    @staticmethod
    def spec_path(job: Job, run_id: str) -> Path:
        return job.dir / STAGE / f"{run_id}.yaml"

    # -- prepare: the YAML a dry run stops at ----------------------------------------------
    def prepare(self, job: Job) -> None:
        from singkit.timeouts import http_timeouts, submit_deadline

        http_timeouts(self.env.environ), submit_deadline(self.env.environ)  # a bad value: refused before anything runs
        cfg = self.config()
        code = staging.stage_code(job)
        spec = job.spec
        target = {k: v for k, v in self.target.items() if k != "env"}  # job env comes via run_variables
        mirror = blob.mirror_for(cfg, self.env.environ, secrets=False)

        def document(run: Run, identity: dict[str, str] | None) -> dict[str, Any]:
            env = staging.run_variables(run, int(self.target.get("nodes") or 1))
            if mirror and mirror[0].container_url:  # unknown until its secret is at hand: set at submit
                env.update(SINGKIT_BLOB_URL=mirror[0].container_url, SINGKIT_BLOB_PREFIX=mirror[0].prefix(job.id, run.id))
            return specs.build_spec(
                cfg, target, job_id=job.id, run_id=run.id, command=staging.command(run),
                name=self._name(job, run), code=os.path.relpath(code, self.spec_path(job, run.id).parent), extra_env=env,
                allow_unpinned=bool(spec.get("allow_unpinned") or self.env.environ.get("SINGKIT_ALLOW_UNPINNED")),
                docker=spec.get("docker"), setup=None, experiment=spec.get("experiment"), identity=identity,
                output_key=run_entry(spec, run.id).get("output_key"),
                image=(spec.get("image") or {}).get("ref"))

        documents = {run.id: document(run, None) for run in job.runs}  # what is refused offline, first
        if spec.get("dry_run"):
            self._offline_notes(target)
            said = staging.secret_names(job)
            if said:  # never in the spec (secrets are never written): the names show they were carried
                self.env.err(f"{job.id}: secret variables added at submit, not written into the spec: {', '.join(said)}")
        else:
            identity = self._online_checks(cfg, target, spec.get("docker"), bool(spec.get("create_registry_connection")),
                                           (spec.get("image") or {}).get("ref"))
            if identity:
                documents = {run.id: document(run, identity) for run in job.runs}
        for run in job.runs:
            path = specs.write_spec(self.spec_path(job, run.id), documents[run.id])
            specs.load_spec(path)  # the SDK's own offline validation, before anything is sent
            self.env.err(f"{run.id}: Azure ML job spec {path}")

    def _online_checks(self, cfg: Config, target: dict[str, Any], docker: Any, create_connection: bool = False,
                       image: str | None = None) -> dict[str, str] | None:
        """Before anything is queued (see preflight): the size against the cluster's own list,
        that the job can pull its image, and the user-assigned identity as the workspace knows it.
        Returns that identity."""
        from singkit.backends.singularity import preflight
        from singkit.singularity import target as targets

        resolved = targets.resolve(cfg, target, docker=docker)
        if resolved.errors:
            return None  # build_spec raises them, located
        with self.session() as ml:
            if resolved.is_cluster:  # an Azure ML compute cluster: its own size, nodes and tier
                preflight.check_cluster(self, ml, cfg, resolved)
                preflight.check_pull(self, ml, cfg, resolved, create=create_connection, image=image)
                return None  # the job runs as the cluster's identity: no Singularity identity variable
            preflight.check_offered(self, ml, cfg, resolved)
            preflight.check_pull(self, ml, cfg, resolved, create=create_connection, image=image)
            return preflight.user_identity(self, ml, resolved.identity)

    def cluster_offers(self, ml: Any, compute: str, *, refresh: bool = False, want: str | None = None) -> Any:
        """What the target's virtual cluster offers (offers.ClusterOffers; cached a day)."""
        from singkit.backends.singularity import offers

        cluster = compute.rsplit("/", 1)[-1]
        if not compute.startswith("/subscriptions/"):  # `azureml:NAME`: an Azure ML compute cluster
            raise UsageError(f"`{cluster.removeprefix('azureml:')}` is an Azure ML compute cluster, not a Singularity "
                             "virtual cluster: its VM size is the cluster's own (`az ml compute show --name NAME`)")
        return self.call(f"asking virtual cluster {cluster} which instance types it offers",
                         lambda: offers.offers_for(lambda path, api: aml.arm_get(ml, path, api), self.env.environ,
                                                   compute, refresh=refresh, want=want))

    def _offline_notes(self, target: dict[str, Any]) -> None:
        from singkit.singularity import target as targets

        resolved = targets.resolve(self.config(), target)
        if resolved.is_cluster:
            from singkit.backends.singularity.preflight import cluster_note

            self.env.err(cluster_note(resolved, self.workspace.name))
            return
        identity = str(self.workspace.user_identity_id or "")
        if identity and not identity.startswith("/subscriptions/"):
            self.env.err(f"note: user-identity-id `{identity}` is resolved to its ARM id through workspace "
                         f"{self.workspace.name} when the job is submitted (a dry run stays offline)")

    def _name(self, job: Job, run: Run) -> str:
        """The name the YAML already has (a retried submit stays idempotent); else a new one."""
        path = self.spec_path(job, run.id)
        name = self._yaml(job, run.id).get("name") if path.exists() else None
        return str(name) if name else f"singkit-{job.id}-{run.num}-{secrets.token_hex(4)}"

    # -- submit ---------------------------------------------------------------------------
    def _entity(self, job: Job, run: Run, extra: dict[str, str]) -> Any:
        entity = specs.load_spec(self.spec_path(job, run.id))
        entity.environment_variables = {**(entity.environment_variables or {}), **extra}
        return entity

    def submit(self, job: Job) -> None:
        from singkit.timeouts import submit_deadline

        done: list[tuple[Any, str]] = []
        self._deadline = time.monotonic() + submit_deadline(self.env.environ)
        try:
            self._submit(job, done)
        except SingkitError as error:
            if not done and aml.credential_refused(error) and not getattr(error, "maybe_created", False):
                # signed out before Azure ML created anything: a refusal (no job is kept, see
                # the submit pipeline's execute, jobs.submit), not a failed job
                error.nothing_created = True  # type: ignore[attr-defined]
            raise
        finally:
            self._deadline = None

    def _submit(self, job: Job, done: list[tuple[Any, str]]) -> None:
        """Create every run's Azure ML job in turn; `done` collects the (run, name) created."""
        secret_env = staging.secret_variables(job, self.env.environ)
        found = creating.mirror_credentials(self, job)
        with self.session() as ml:
            for run in job.runs:
                name = self._name(job, run)
                extra = dict(secret_env)
                info: dict[str, Any] = {}
                if found:
                    mirror, sas = found
                    extra.update(sas, SINGKIT_BLOB_URL=mirror.container_url, SINGKIT_BLOB_PREFIX=mirror.prefix(job.id, run.id))
                    info["mirror"] = {"record": mirror.record, "url": mirror.container_url, "prefix": mirror.prefix(job.id, run.id)}
                # before the create: if this process dies before Azure ML answers, refresh finds the job by name
                run.write_backend_info(SingularityHandle(info).submitting(name))
                tries = itertools.count(1)
                try:
                    created = self.call(f"submitting {run.id} to {self.workspace.name}",
                                        lambda run=run, extra=extra, name=name, tries=tries:
                                        creating.create(self, ml, job, run, extra, name, retry=next(tries) > 1))
                except BaseException as error:  # Ctrl-C too: the create may have reached Azure ML all the same
                    adopted = creating.settle(self, ml, run, name, adopt=isinstance(error, ServiceError))
                    if adopted is None:
                        self._withdraw(ml, done)
                        if next(tries) > 2:  # an earlier try reached Azure ML: it may hold the job after all
                            error.maybe_created = True  # type: ignore[attr-defined]
                        raise
                    created = adopted
                self._record(run, created, info)
                events.record(self.env, "azureml-submit", job=job.id, run=run.id, name=created.name,
                              workspace=self.workspace.name, subscription=self.workspace.subscription_id)
                done.append((run, created.name))
                self.env.err(f"{run.id}: submitted as Azure ML job {created.name}: {created.studio_url}")
                if run.state().terminal:  # a refresh gave up on it meanwhile (see _adopt): do not leave it running
                    self._withdraw(ml, [(run, created.name)])

    def _record(self, run: Run, remote: Any, info: dict[str, Any]) -> None:
        """What singkit keeps about a run's Azure ML job, once Azure ML has confirmed it."""
        document = self._yaml(run.job, run.id)
        dist = document.get("distribution") or {}
        run.write_backend_info(SingularityHandle(info).created(
            azureml_name=remote.name, studio_url=remote.studio_url, workspace=self.workspace.name,
            subscription=self.workspace.subscription_id, resource_group=self.workspace.resource_group,
            experiment=document.get("experiment_name"), nodes=document["resources"]["instance_count"],
            per_node=dist.get("process_count_per_instance", 1), azure_status=states.text(remote.status),
            submitted=round(time.time(), 3)))

    def _withdraw(self, ml: Any, done: list[tuple[Any, str]]) -> None:
        """Cancel Azure ML jobs the store has given up on (a later run failed to submit, or the
        submit failed after all): the failed job the store records must not still run (best
        effort; the error being raised says what failed)."""
        for run, name in done:
            try:
                ml.jobs.begin_cancel(name)
                run.write_backend_info(SingularityHandle(run.backend_info()).withdrawn(name))
            except Exception:  # noqa: BLE001 - best effort, the original error matters more
                self.env.err(f"{run.id}: could not cancel Azure ML job {name}; cancel it in the studio")

    def output_key(self, job: Job, run_id: str) -> str:
        """The Azure ML job name the run's outputs were written under (or the one it resumed)."""
        entry = run_entry(job.spec, run_id)
        if entry.get("output_key"):
            return str(entry["output_key"])
        name = self._yaml(job, run_id).get("name") if self.spec_path(job, run_id).exists() else None
        if not name:
            raise UsageError(f"{run_id} has no Azure ML job spec, so no output folder to resume from")
        return str(name)

    def _yaml(self, job: Job, run_id: str) -> dict[str, Any]:
        from singkit.store.model import load_yaml

        return load_yaml(self.spec_path(job, run_id))

    # -- refresh --------------------------------------------------------------------------
    def refresh(self, job: Job) -> set[str]:
        """The runs Azure ML may have moved on (see the module docstring); returns the ids of
        those it asked about: no other run's files are written here."""
        known = settled.over(job)  # a sweep's finished runs: no backend.json read for them
        looked = [(r, r.backend_info()) for r in job.runs if r.id not in known]
        pending = [(r, i) for r, i in looked if i.get("azureml_name") and not (r.state().terminal and i.get("final"))]
        if pending:
            with self.session() as ml:
                for run, info in pending:
                    if SingularityHandle(info).state is SubmitState.SUBMITTING and not self._adopt(ml, run, info):
                        continue
                    self._refresh_run(ml, run, info)
        # over for good: terminal, and final on Azure ML or never sent (a run just looked at: read again)
        asked = {r.id for r, _ in pending}
        now = {r.id for r, i in looked if r.state().terminal
               and ((r.backend_info() if r.id in asked else i).get("final") or not i.get("azureml_name"))}
        if now:
            settled.keep(job, known | now)
        return asked

    def _adopt(self, ml: Any, run: Run, info: dict[str, Any]) -> bool:
        """A run whose submit did not finish: look its job up by name. True when there is one to
        follow (recorded now); else the run waits out the grace period, then fails."""
        name = info["azureml_name"]
        remote = self.call(f"looking up {run.id} ({name}), whose submit did not finish", lambda: _missing(ml, name))
        if remote is not None:
            self._record(run, remote, info)
            events.record(self.env, "azureml-adopt", job=run.job.id, run=run.id, name=name, workspace=self.workspace.name)
            if run.state().terminal:  # the store failed it already: an orphan using quota
                self._withdraw(ml, [(run, name)])
                return False
            self.env.err(f"{run.id}: found Azure ML job {name}, whose submit was cut short; following it")
            return True
        if run.state().terminal:  # its submit failed and never reached Azure ML: nothing to follow
            run.backend_path.unlink(missing_ok=True)
            return False
        grace = float(self.env.environ.get(SUBMIT_GRACE_VAR) or SUBMIT_GRACE)
        waited = time.time() - SingularityHandle(info).submit_started
        if waited >= grace:
            run.set_status("failed", reason=(
                f"its submit never reached Azure ML: no job {name} in workspace {self.workspace.name} "
                f"{waited / 60:.0f} min after singkit began submitting it (the submitting process stopped?); submit it again"))
            run.write_backend_info(SingularityHandle(info).never_created())
        return False

    def _refresh_run(self, ml: Any, run: Run, info: dict[str, Any]) -> None:
        name = info["azureml_name"]
        if info.get("mirror") and time.monotonic() >= self._mirror_retry_at:
            try:
                blob.pull(self.config(), self.env.environ, info, run)
            except SingkitError as problem:  # the mirror is a convenience; the status still counts
                # one wait for the storage per refresh, not one per run (a sweep has many)
                self._mirror_retry_at = time.monotonic() + MIRROR_RETRY
                if not self._mirror_warned:
                    self._mirror_warned = True
                    self.env.err(f"warning: {problem}")
        remote = self.call(f"reading the status of {run.id} ({name})", lambda: ml.jobs.get(name))
        azure_status = states.text(remote.status)
        error = None
        if azure_status.lower() in ("failed", "notresponding"):
            error = self._error(ml, name)
        was_running = info.get("azure_status", "").lower() in ("running", "finalizing") or run.state().status == "preempted"
        change = states.transition(azure_status, error, was_running)
        if change and change[0] != run.state().status:
            run.set_status(change[0], reason=change[1], exit_code=_exit_code(run, change[0]))
        info["azure_status"] = azure_status
        info["final"] = states.is_final(azure_status)
        run.write_backend_info(info)

    def _error(self, ml: Any, name: str) -> Any:
        with contextlib.suppress(Exception):
            details = ml.jobs._runs_operations.get_run_details(name)
            error: Any = getattr(details, "error", None)
            return error.as_dict() if hasattr(error, "as_dict") else error
        return None

    # -- logs -----------------------------------------------------------------------------
    def logs(self, job: Job, run: str, follow: bool = False, stream: str = "stdout",
             tail: int | None = None) -> Iterator[str]:
        """stdout: Azure ML's user logs (node/rank prefixes on distributed runs); stderr: the
        store's file, which the Blob mirror fills (Azure ML folds stderr into its logs)."""
        info = job.run(run).backend_info()
        if not _tracked(info) or stream != "stdout":
            return super().logs(job, run, follow=follow, stream=stream, tail=tail)
        return self._follow(job, run, info, follow, tail)

    def _follow(self, job: Job, run: str, info: dict[str, Any], follow: bool, tail: int | None) -> Iterator[str]:
        from singkit.backends.singularity.logs import follow_logs

        try:
            with self.session() as ml:
                yield from follow_logs(ml, info["azureml_name"], follow=follow, nodes=int(info.get("nodes") or 1),
                                       per_node=int(info.get("per_node") or 1), poll=self.poll, call=self.call, tail=tail,
                                       environ=self.env.environ)
        except ServiceError as error:
            # monitor must not die with Azure ML's log service: say so once, go on with the mirror
            self.env.err(f"warning: {error}; showing the Blob mirror of {run} instead")
            yield from super().logs(job, run, follow=follow, stream="stdout", tail=tail)

    # -- cancel ---------------------------------------------------------------------------
    def cancel(self, job: Job, run: str | None = None) -> None:
        """Cancel every run still going (or one): all cancel requests first, then one wait for
        all (see cancel.py); a run whose submit is unsettled is looked up by name first."""
        from singkit.backends.singularity.cancel import cancel_runs

        runs = [job.run(run)] if run else job.runs
        todo = [(r, r.backend_info()) for r in runs if not r.state().terminal]
        if not todo:
            return
        with self.session() as ml:
            sent = []
            for r, info in todo:
                name = info.get("azureml_name")
                unsettled = SingularityHandle(info).state is SubmitState.SUBMITTING
                remote = self.call(f"looking up {r.id} ({name})", lambda name=name: _missing(ml, name)) if unsettled else True
                if not name or remote is None:
                    # a submit still under way withdraws its job once it sees this (see submit)
                    r.set_status("cancelled", reason="cancelled before it reached Azure ML")
                    continue
                if unsettled:
                    self._record(r, remote, info)
                sent.append((r, info))
            cancel_runs(self, ml, sent)

    # -- download -------------------------------------------------------------------------
    def download(self, job: Job, dest: Path, what: str = "all") -> list[str]:
        with self.session() as ml:
            for run in job.runs:
                info = run.backend_info()
                if not _tracked(info):
                    continue
                if info.get("mirror"):
                    blob.pull(self.config(), self.env.environ, info, run)
                if what == "code":
                    continue
                remote = self.call(f"reading the status of {run.id}", lambda: ml.jobs.get(info["azureml_name"]))  # noqa: B023 (called at once)
                if not states.is_final(remote.status):
                    self.env.err(f"{run.id}: still {states.text(remote.status)} in Azure ML; its logs and outputs can be fetched once it ends")
                    continue
                self._fetch_artifacts(ml, run, info["azureml_name"])
        notes = super().download(job, dest, what)
        if what in ("logs", "all"):  # Azure ML's own logs, and the job YAMLs that were sent
            from singkit.store.safe import copy_file_out, copy_tree_out

            for run in job.runs:
                copy_tree_out(run.dir / "azureml-logs", dest / "runs" / run.id / "azureml-logs", notes)
            for path in sorted((job.dir / STAGE).glob("*.yaml")):
                copy_file_out(path, dest / STAGE / path.name, notes)
        return notes

    def _fetch_artifacts(self, ml: Any, run: Run, name: str) -> None:
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



def portal_urls(job: Job) -> dict[str, str]:
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
