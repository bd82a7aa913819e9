"""The Blob mirror of remote runs: where a job's scripts/blob_sync.py appends, and reading it back.

A Singularity run cannot write into the user's local store, so the job appends its run.log,
stdout.log and stderr.log to append blobs `jobs/<jobN>/runs/<jobN.K>/...` in the container of
the storage record `general.store` names; `pull` copies what is new into the local store's
same files, so reports read remote runs exactly like local ones.

Credentials for the job, in order of preference — each lasts as long as the job can:
  * the job's managed identity: a job that runs as a user-assigned identity (the workspace
    record's `user-identity-id`), or a storage record with `account-url` and no `sas`, gets no
    secret at all; blob_sync asks the node's identity endpoint for a token and renews it before
    it expires (give the identity the Storage Blob Data Contributor role on the container).
  * a SAS in SINGKIT_BLOB_SAS, minted here from the record's connection string: add + create
    on the container only (append to and create blobs; no read, overwrite, list or delete),
    valid for the job's longest possible life — its maximum run time (the job's own
    `limits.timeout`, else MAX_RUN) plus QUEUE for queueing and requeues after preemption —
    or SINGKIT_BLOB_SAS_HOURS hours when set; or else the record's own `sas`, as it is.
Azure ML `environment_variables` are part of the job's definition: ANYONE WITH READ ACCESS TO
THE WORKSPACE (the Reader role included) can see them in the studio or through the API. So
the SAS is only as private as the workspace, which is why it is narrow (it can add to the
container, never read, overwrite or delete), ends with the job's longest possible life, and
is not minted at all for a job with a managed identity.
Nothing secret is written to the store, to disk, or printed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from singkit.exceptions import ServiceError, SingkitError, UsageError
from singkit.fsutil import atomic_write, file_lock
from singkit.store.safe import UnsafeStoreContent, check_not_linked, safe_join

if TYPE_CHECKING:
    from singkit.config.model import Config
    from singkit.store.run import Run

# run.log first: the job appends it last, so output read after it is at least as complete
FILES = ("run.log", "stdout.log", "stderr.log")
SAS_HOURS_VAR = "SINGKIT_BLOB_SAS_HOURS"  # the whole lifetime of a minted SAS, in hours, when set
# The longest an Azure ML job runs: "Job lifetime | 21 days" — "the duration between when a job
# starts and when it finishes" (learn.microsoft.com/azure/machine-learning/how-to-manage-quotas,
# Azure Machine Learning compute limits; MicrosoftDocs/azure-docs articles/machine-learning/
# how-to-manage-quotas.md). Singularity jobs run up to 14 days (issue 10); no public page states
# Singularity's own cap, so the documented Azure ML one, which covers it, is used.
MAX_RUN = dt.timedelta(days=21)
# Time in the queue before the first start, and again after each preemption: Azure ML documents
# no maximum; a week is singkit's allowance (SINGKIT_BLOB_SAS_HOURS sets the total instead).
QUEUE = dt.timedelta(days=7)


@dataclass(frozen=True)
class Mirror:
    record: str          # the storage record's name
    container_url: str   # https://<account>.blob.core.windows.net/<container> (no secret)
    container: str

    def prefix(self, job_id: str, run_id: str) -> str:
        return f"jobs/{job_id}/runs/{run_id}"


def _conn_parts(connection_string: str) -> dict[str, str]:
    parts = {}
    for item in connection_string.split(";"):
        key, sep, value = item.partition("=")
        if sep:
            parts[key.strip().lower()] = value.strip()
    return parts


def mirror_for(cfg: Config, environ: Mapping[str, str], secrets: bool = True, *, identity: bool = False,
               max_run: dt.timedelta | None = None) -> tuple[Mirror, dict[str, str]] | None:
    """(the mirror, secret env vars for the job) when `general.store` names a storage record.

    With secrets=False nothing secret is resolved (a dry run needs only the public URL).
    identity: the job runs as a managed identity, which writes the mirror — no SAS is minted or
    sent. max_run: the job's own maximum run time (its `limits.timeout`), else MAX_RUN; a minted
    SAS lives that long plus QUEUE (see sas_lifetime). Raises SingkitError for a record with
    neither a connection string nor an account URL, UsageError for a bad SINGKIT_BLOB_SAS_HOURS."""
    name = (cfg.general or {}).get("store")
    if not name:
        return None
    from singkit.config import resolve_secret

    record = cfg.service(name)
    container = str(record["container"])
    secret_env: dict[str, str] = {}
    if record.get("connection-string") and not secrets:
        url = _url_from_connection_string(record, container, environ)
    elif record.get("connection-string"):
        service = _service_client(record, environ)
        url = service.get_container_client(container).url
        key = _conn_parts(resolve_secret(record["connection-string"], environ) or "").get("accountkey")
        if identity:
            pass  # the job's own identity writes the mirror: no secret leaves this machine
        elif key:
            from azure.storage.blob import ContainerSasPermissions, generate_container_sas

            # add + create: blob_sync creates append blobs (If-None-Match: *) and appends blocks;
            # without write it cannot overwrite or truncate a blob someone else wrote
            secret_env["SINGKIT_BLOB_SAS"] = generate_container_sas(
                service.account_name, container, account_key=key,
                permission=ContainerSasPermissions(add=True, create=True),
                expiry=dt.datetime.now(dt.timezone.utc) + sas_lifetime(environ, max_run))
        elif record.get("sas"):
            secret_env["SINGKIT_BLOB_SAS"] = (resolve_secret(record["sas"], environ) or "").lstrip("?")
    else:
        url = f"{str(record.get('account-url') or '').rstrip('/')}/{container}"
        if record.get("sas") and secrets and not identity:
            secret_env["SINGKIT_BLOB_SAS"] = (resolve_secret(record["sas"], environ) or "").lstrip("?")
    if not url.startswith("http") and (secrets or url):
        raise SingkitError(f"storage record `{name}` needs a connection-string or an account-url")
    return Mirror(name, url.split("?")[0], container), secret_env


def sas_lifetime(environ: Mapping[str, str], max_run: dt.timedelta | None = None) -> dt.timedelta:
    """How long a minted SAS is valid: SINGKIT_BLOB_SAS_HOURS when set (0 < hours <= 8760), else
    the job's maximum run time (`max_run`, else MAX_RUN) plus QUEUE — the whole life of the job."""
    text = environ.get(SAS_HOURS_VAR)
    if not text:
        return (max_run or MAX_RUN) + QUEUE
    try:
        hours = float(text)
    except ValueError:
        hours = -1.0
    if not 0 < hours <= 24 * 365:
        raise UsageError(f"{SAS_HOURS_VAR}={text} is not a number of hours between 0 and 8760; e.g. {SAS_HOURS_VAR}=672")
    return dt.timedelta(hours=hours)


def run_limit(document: Mapping[str, Any]) -> dt.timedelta | None:
    """A CLI v2 job document's own maximum run time: `limits.timeout`, in seconds (azure-ai-ml
    CommandJobLimits: "The maximum run duration, in seconds, after which the job will be
    cancelled"); None when it sets none (or not as a number of seconds)."""
    timeout = (document.get("limits") or {}).get("timeout") if isinstance(document.get("limits"), Mapping) else None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float, str)):
        return None
    try:
        seconds = float(timeout)
    except ValueError:
        return None
    return dt.timedelta(seconds=seconds) if seconds > 0 else None


def _url_from_connection_string(record: Mapping[str, Any], container: str, environ: Mapping[str, str]) -> str:
    """The container URL a connection string implies, when its secret is at hand; else ''
    — a dry run must not fail for a secret it does not need."""
    from singkit.config import resolve_secret

    try:
        text = resolve_secret(record["connection-string"], environ) or ""
    except SingkitError:
        return ""
    parts = _conn_parts(text)
    if parts.get("blobendpoint"):
        return f"{parts['blobendpoint'].rstrip('/')}/{container}"
    return f"{parts.get('defaultendpointsprotocol', 'https')}://{parts.get('accountname', '')}.blob.{parts.get('endpointsuffix', 'core.windows.net')}/{container}"


def _service_client(record: Mapping[str, Any], environ: Mapping[str, str]) -> Any:
    """A BlobServiceClient for a storage record, with singkit's timeouts and few, quick retries
    (timeouts.blob_client_options; the SDK's defaults took 82-89 s to find storage down)."""
    from azure.storage.blob import BlobServiceClient

    from singkit.config import resolve_secret
    from singkit.timeouts import blob_client_options

    options = blob_client_options(environ)
    if record.get("connection-string"):
        return BlobServiceClient.from_connection_string(resolve_secret(record["connection-string"], environ) or "",
                                                        **options)
    url = str(record.get("account-url") or "").rstrip("/")
    if record.get("sas"):
        return BlobServiceClient(url, credential=(resolve_secret(record["sas"], environ) or "").lstrip("?"), **options)
    from singkit.backends.singularity.client import credential_from

    return BlobServiceClient(url, credential=credential_from(environ), **options)


def _locked(run: Run):
    """One reader of a run's mirror at a time, across processes (status in one terminal while
    monitor runs in another must not copy the same bytes twice)."""
    return file_lock(Path(run.dir) / ".mirror.lock")


def pull(cfg: Config, environ: Mapping[str, str], info: Mapping[str, Any], run: Run) -> bool:
    """Append what is new in the run's mirrored blobs to its local files; True if anything was.

    The byte offsets already copied live in the run's mirror.json. run.log only takes whole
    lines, so a local status line never lands in the middle of a remote one.
    """
    mirror = info.get("mirror")
    if not mirror:
        return False
    try:
        record = cfg.service(mirror["record"])
    except SingkitError:
        return False
    with _locked(run):
        state_path = Path(run.dir) / "mirror.json"
        try:
            offsets: dict[str, int] = json.loads(state_path.read_text())
        except (FileNotFoundError, ValueError):
            offsets = {}
        return _copy_new(_service_client(record, environ).get_container_client(record["container"]),
                         mirror["prefix"], offsets, Path(run.dir),
                         lambda: atomic_write(state_path, json.dumps(offsets, indent=1)))


def _copy_new(container: Any, prefix: str, offsets: dict[str, int], folder: Path, save: Callable[[], None]) -> bool:
    """Append each blob's new bytes to its local file, saving the offsets right after each
    append: a pull killed between two files must not copy the first one's bytes again."""
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    changed = False
    try:
        names = [f"{prefix}/{f}" for f in FILES]
        names += sorted(b.name for b in container.list_blobs(name_starts_with=f"{prefix}/ranks/"))
        for blob in names:
            rel = blob[len(prefix) + 1:]
            start = offsets.get(rel, 0)
            try:
                data = container.download_blob(blob, offset=start).readall() if start else container.download_blob(blob).readall()
            except ResourceNotFoundError:
                continue
            except AzureError as error:
                if getattr(error, "status_code", None) == 416:  # nothing past the offset yet
                    continue
                raise
            if rel.endswith("run.log"):
                data = data[: data.rfind(b"\n") + 1]
            if not data:
                continue
            # blob names come from the job (untrusted): the file must stay in the run folder, and
            # nothing is appended through a link there (singkit.store.safe)
            local = safe_join(folder, rel, "the Blob mirror file", f"{container.container_name}/{blob}")
            local.parent.mkdir(parents=True, exist_ok=True)
            try:
                check_not_linked(local)
            except FileNotFoundError as link:
                raise UnsafeStoreContent(f"{link.filename}: a symbolic link in the job store; the Blob mirror's "
                                         f"{blob} was not copied into it") from None
            with open(local, "ab") as handle:  # one write: O_APPEND keeps lines whole
                handle.write(data)
            offsets[rel] = start + len(data)
            save()
            changed = True
    except AzureError as error:
        raise storage_error(error, container, prefix) from None
    return changed


def storage_error(error: BaseException, container: Any, prefix: str) -> ServiceError:
    """One line naming the storage account and what went wrong with it (never a SAS)."""
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    where = f"Azure Blob storage at {container.primary_endpoint.split('?')[0].rsplit('/', 1)[0]}"
    what = f"reading the Blob mirror {container.container_name}/{prefix}"
    text = " ".join(str(error).split())
    if isinstance(error, ServiceRequestError):
        why = next((m for m in ("Connection refused", "Name or service not known", "timed out") if m in text), "no connection")
        return ServiceError(f"{where} is unreachable ({why.lower()}) {what}; check that it runs and the storage record")
    if isinstance(error, ServiceResponseError):
        return ServiceError(f"{where} stopped answering {what} ({text[:120]}); try again later")
    status = getattr(error, "status_code", None)
    return ServiceError(f"{where} answered {status or 'an error'} {what}: {text.split('?')[0][:200]}")
