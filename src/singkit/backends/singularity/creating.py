"""Creating a run's Azure ML job so that nothing is lost or left behind: the Blob mirror's
credentials for it, the create itself, and what a failed create leaves (see backend.submit).

A create whose answer is lost — a 5xx sent after the service stored the job, a reset
connection — is retried by client.call; the job it made is this run's (same name, same
`singkit.run` tag), so it is found and followed (adopted), never cancelled or created twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from singkit.backends.singularity import client as aml, mirror as blob, spec as specs
from singkit.exceptions import ServiceError

if TYPE_CHECKING:
    from singkit.store.model import Job
    from singkit.store.model import Run
    from singkit.backends.singularity.backend import SingularityBackend


def _missing(ml: Any, name: str) -> Any:
    """ml.jobs.get(name), or None when Azure ML has no such job."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return ml.jobs.get(name)
    except ResourceNotFoundError:
        return None


def mirror_credentials(backend: SingularityBackend, job: Job) -> tuple[Any, dict[str, str]] | None:
    """The Blob mirror and what its runs need to write it, for as long as they can live: no
    secret when the job runs as a managed identity (the UAI variable in its spec), else a
    SAS covering the longest `limits.timeout` of its runs (or the default) plus queueing."""
    documents = [backend._yaml(job, run.id) for run in job.runs]
    identity = any(specs.UAI_VARIABLE in (d.get("environment_variables") or {}) for d in documents)
    limits = [blob.run_limit(d) for d in documents]
    longest = None if None in limits else max(limit for limit in limits if limit is not None)  # a run without a limit may run the default's
    found = blob.mirror_for(backend.config(), backend.env.environ, secrets=True, identity=identity, max_run=longest)
    if found and "SINGKIT_BLOB_SAS" in found[1] and backend.env.environ.get(blob.SAS_HOURS_VAR):
        given, life = blob.sas_lifetime(backend.env.environ), blob.sas_lifetime({}, longest)
        if given < life:
            backend.env.err(f"warning: {blob.SAS_HOURS_VAR}={backend.env.environ[blob.SAS_HOURS_VAR]}: the mirror's SAS expires "
                            f"before the job may end ({life.days} days with queueing); its logs stop reaching the store then")
    return found


def create(backend: SingularityBackend, ml: Any, job: Job, run: Run, extra: dict[str, str], name: str, retry: bool = False) -> Any:
    """Create the run's Azure ML job — or, when an earlier attempt landed although its answer
    was lost (a 5xx sent after the job was stored, a connection reset), adopt that job: it
    is this run's (same name, same `singkit.run` tag), and cancelling it would throw away a
    queued run. So a retry GETs the name first (a lost answer is what a retry follows), and
    a PUT answered 400 "A job with this name already exists" (MicrosoftDocs/azure-docs#122250:
    Azure ML refuses a second PUT of a job name) is settled the same way."""
    from azure.core.exceptions import HttpResponseError

    if retry:
        remote = _missing(ml, name)
        if remote is not None:
            return adopted(backend, run, remote, name)
    try:
        return ml.jobs.create_or_update(backend._entity(job, run, extra))
    except HttpResponseError as error:
        if aml.status_of(error) != 400 or "already exists" not in str(error):
            raise
        remote = _missing(ml, name)
        if remote is None:
            raise
        return adopted(backend, run, remote, name)


def adopted(backend: SingularityBackend, run: Run, remote: Any, name: str) -> Any:
    """The Azure ML job `name` found at submit, when it is this run's (its `singkit.run` tag);
    a job of that name that singkit did not create for this run is an error, never adopted."""
    if (remote.tags or {}).get("singkit.run") != run.id:
        raise ServiceError(f"submitting {run.id}: workspace {backend.workspace.name} already has a job named {name} "
                           f"that is not this run's (tag singkit.run={(remote.tags or {}).get('singkit.run')!r}); submit again")
    backend.env.err(f"{run.id}: Azure ML job {name} was created by an earlier attempt whose answer was lost; following it")
    return remote


def settle(backend: SingularityBackend, ml: Any, run: Run, name: str, adopt: bool = False) -> Any:
    """The create of `name` failed: forget it if Azure ML has no such job of this run's. If it
    has one after all (the last attempt's answer was lost), return it to be followed when
    `adopt` (the submit failed on Azure ML's side, not by Ctrl-C); else cancel it.
    Unsure (Azure ML unreachable): None, and the `submitting` record stays for refresh to
    settle. One try each, no retries."""
    try:
        remote = _missing(ml, name)
    except Exception:  # noqa: BLE001 - cannot tell; the error being raised matters more
        return None
    if remote is None or (remote.tags or {}).get("singkit.run") != run.id:  # none, or not ours: leave it be
        run.backend_path.unlink(missing_ok=True)
        return None
    if adopt:
        return adopted(backend, run, remote, name)
    backend._withdraw(ml, [(run, name)])
    return None
