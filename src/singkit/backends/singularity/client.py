"""Talking to Azure ML: the MLClient, its credential and cloud, retries, and errors as one line.

Credentials, in order:
  1. `SINGKIT_AZURE_TOKEN` — a bearer token for Azure Resource Manager, e.g. from
     `az account get-access-token --query accessToken -o tsv` (for CI). Jobs that run as a
     user identity also need `SINGKIT_AZURE_ML_TOKEN` (`--resource https://ml.azure.com`).
  2. `general.credential` (CREDENTIALS below): `default` is DefaultAzureCredential
     (environment service principal, workload identity, managed identity, Azure CLI, azd,
     PowerShell — without the interactive browser; on an Azure VM its managed identity is
     taken before `az login`), `cli` is `az login` only, and so on.
Clouds: the service record's `cloud:` (AzureCloud, AzureChinaCloud, AzureUSGovernment, or a
name the ARM metadata lists), and the SDK's own `ARM_CLOUD_METADATA_URL` for custom clouds.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from singkit.exceptions import ServiceError, SingkitError, UsageError

T = TypeVar("T")
TOKEN_VAR = "SINGKIT_AZURE_TOKEN"
ML_TOKEN_VAR = "SINGKIT_AZURE_ML_TOKEN"
METADATA_VAR = "ARM_CLOUD_METADATA_URL"
CLOUD_VAR = "AZUREML_CURRENT_CLOUD"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
AUTHORITIES = {"AzureChinaCloud": "login.chinacloudapi.cn", "AzureUSGovernment": "login.microsoftonline.us"}


def quiet_sdk() -> None:
    """azure-ai-ml sets its logger to INFO with its own stderr handler and warns about
    'experimental' classes on every use; singkit reports on its own, so keep them to errors."""
    for name in ("azure", "azure.ai.ml", "azure.core", "azure.identity", "azure.storage", "msal", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if name.startswith("azure.") and isinstance(logger, logging.Logger) and logger.level and logger.level < logging.ERROR:
            logger.setLevel(logging.ERROR)


def import_sdk() -> Any:
    """`azure.ai.ml`, imported (about a second) and quieted.

    Its import evaluates a default argument that fetches ARM_CLOUD_METADATA_URL (three times)
    and writes AZUREML_CURRENT_CLOUD; neither is needed to build or validate a spec, so the
    import runs without them — a dry run stays off the network."""
    import sys

    if "azure.ai.ml" not in sys.modules:
        with _ENV_LOCK:
            saved = {name: os.environ.pop(name, None) for name in (METADATA_VAR, CLOUD_VAR)}
            try:
                quiet_sdk()
                import azure.ai.ml  # noqa: F401
            finally:
                for name, value in saved.items():
                    os.environ.pop(name, None)
                    if value is not None:
                        os.environ[name] = value
    quiet_sdk()  # its __init__ set its logger back to INFO
    return sys.modules["azure.ai.ml"]


# -- credentials ------------------------------------------------------------------------------
def _jwt_claims(token: str) -> dict[str, Any]:
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


class StaticTokenCredential:
    """A TokenCredential over tokens handed in through the environment; never refreshes.

    Given several tokens, it answers each scope with the one whose audience matches.
    """

    def __init__(self, tokens: Mapping[str, str]):
        self._tokens = [(var, tok, _jwt_claims(tok)) for var, tok in tokens.items() if tok]

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken
        from azure.core.exceptions import ClientAuthenticationError

        resource = (scopes[0] if scopes else "").removesuffix("/.default").rstrip("/")
        chosen = next((t for t in self._tokens if str(t[2].get("aud", "")).rstrip("/") == resource), self._tokens[0])
        var, token, claims = chosen
        expires = int(claims.get("exp") or time.time() + 3600)
        if expires <= time.time():
            raise ClientAuthenticationError(message=f"the token in {var} expired at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(expires))}; get a fresh one with `az account get-access-token`")
        return AccessToken(token, expires)

    def close(self) -> None:
        pass


# general.credential → the azure-identity class (public azure.identity API)
CREDENTIALS = {
    "default": "DefaultAzureCredential", "cli": "AzureCliCredential", "managed-identity": "ManagedIdentityCredential",
    "environment": "EnvironmentCredential", "workload-identity": "WorkloadIdentityCredential",
    "azd": "AzureDeveloperCliCredential", "powershell": "AzurePowerShellCredential",
}


def credential_name(environ: Mapping[str, str], kind: str | None = None) -> str:
    """What a 401/403 message calls the credential used."""
    if environ.get(TOKEN_VAR):
        return f"the token in {TOKEN_VAR}"
    return CREDENTIALS.get(kind or "default", "DefaultAzureCredential")


def _credential_hint(used: str) -> str:
    if used.startswith("DefaultAzureCredential"):
        return ("; DefaultAzureCredential takes environment variables, workload identity and a VM's managed identity "
                "before `az login` — set `general.credential: cli` to use az login only")
    return ""


def credential_from(environ: Mapping[str, str], cloud: str | None = None, authority: str | None = None,
                    kind: str | None = None) -> Any:
    """The credential singkit uses: tokens from the environment, else the `general.credential` kind."""
    if environ.get(TOKEN_VAR):
        return StaticTokenCredential({TOKEN_VAR: environ[TOKEN_VAR], ML_TOKEN_VAR: environ.get(ML_TOKEN_VAR, "")})
    import azure.identity

    authority = authority or AUTHORITIES.get(cloud or "")
    name = CREDENTIALS.get(kind or "default", "DefaultAzureCredential")
    kwargs: dict[str, Any] = {}
    if name == "DefaultAzureCredential":
        kwargs["exclude_interactive_browser_credential"] = True
    if authority and name in ("DefaultAzureCredential", "EnvironmentCredential", "WorkloadIdentityCredential"):
        kwargs["authority"] = authority
    return getattr(azure.identity, name)(**kwargs)


# -- the SDK's process-wide cloud settings ----------------------------------------------------
_ENV_LOCK = threading.RLock()
_ENV_DEPTH = 0
_ENV_SAVED: dict[str, str | None] = {}


@contextlib.contextmanager
def sdk_environ(environ: Mapping[str, str]) -> Iterator[None]:
    """Run SDK code with the command's ARM_CLOUD_METADATA_URL, and put AZUREML_CURRENT_CLOUD
    back afterwards: the SDK reads both from os.environ and MLClient() sets the latter.
    Re-entrant and thread-safe (job.monitor follows logs and refreshes on several threads):
    the outermost entry saves, the last exit restores."""
    global _ENV_DEPTH
    with _ENV_LOCK:
        if _ENV_DEPTH == 0:
            _ENV_SAVED.clear()
            _ENV_SAVED.update({name: os.environ.get(name) for name in (METADATA_VAR, CLOUD_VAR)})
            if environ.get(METADATA_VAR):
                os.environ[METADATA_VAR] = environ[METADATA_VAR]
        _ENV_DEPTH += 1
    try:
        yield
    finally:
        with _ENV_LOCK:
            _ENV_DEPTH -= 1
            if _ENV_DEPTH == 0:
                for name, value in _ENV_SAVED.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value


def _cloud_from_metadata(url: str, wanted: str | None) -> tuple[str, dict[str, str]]:
    """(name, endpoints) of the cloud an ARM metadata URL describes (the one serving the URL,
    or `wanted`). Registered over any stale entry so a new endpoint always wins."""
    from azure.ai.ml import _azure_environments as clouds

    listed = clouds._get_clouds_by_metadata_url(url)
    if not listed:
        raise ServiceError(f"cannot reach Azure: no cloud metadata from {METADATA_VAR}={url}; check the network and the URL")
    if wanted and wanted not in listed:
        raise UsageError(f"cloud `{wanted}` is not among the clouds {url} lists ({', '.join(listed)}); fix `cloud:` in the service record")
    name = wanted or next(
        (n for n, c in listed.items() if c[clouds.EndpointURLS.RESOURCE_MANAGER_ENDPOINT].rstrip("/") in url), None)
    if name is None:
        raise UsageError(f"none of the clouds {url} lists ({', '.join(listed)}) is served from it; set `cloud:` in the service record")
    clouds._environments[name] = listed[name]
    return name, listed[name]


def ml_client(workspace: Any, environ: Mapping[str, str], credential: Any = None) -> Any:
    """An MLClient for a Workspace (see spec.workspace_for); call inside `sdk_environ(environ)`."""
    from singkit.timeouts import azure_ml_client_options, blob_client_options

    MLClient = import_sdk().MLClient
    # singkit retries whole operations itself (bounded, one clear error after): no retries
    # underneath; every request has connect and read timeouts (SINGKIT_HTTP_TIMEOUT)
    timeouts = azure_ml_client_options(environ)
    kwargs: dict[str, Any] = {"show_progress": False, "enable_telemetry": False, "retry_total": 0, **timeouts}
    _bound_code_upload(blob_client_options(environ, retries=0))
    authority = None
    if environ.get(METADATA_VAR):
        name, endpoints = _cloud_from_metadata(environ[METADATA_VAR], workspace.cloud)
        kwargs["cloud"] = name
        authority = endpoints.get("active_directory", "").removeprefix("https://").rstrip("/") or None
    elif workspace.cloud:
        kwargs["cloud"] = workspace.cloud
    if credential is None:
        credential = credential_from(environ, kwargs.get("cloud"), authority, getattr(workspace, "credential", None))
    try:
        client = MLClient(credential, workspace.subscription_id, workspace.resource_group, workspace.name, **kwargs)
    except Exception as error:  # MlException for an unknown cloud, ValueError for bad ids
        raise ServiceError(f"cannot set up Azure ML client for workspace {workspace.name}: {one_line(error)}") from None
    client._singkit_timeouts = timeouts  # for arm_get's own pipeline
    return client


_UPLOAD_OPTIONS: dict[str, Any] = {}


def _bound_code_upload(options: dict[str, Any]) -> None:
    """Give the storage clients azure-ai-ml builds for a job's code upload singkit's timeouts and
    no retries of their own (call() retries the whole create): azure/ai/ml/_artifacts/
    _blob_storage_helper.py constructs `BlobServiceClient(account_url=..., credential=...)`, or
    for a pending upload's SAS URL `ContainerClient.from_container_url(account_url)`, with no way
    to pass options, so the SDK's defaults applied — 20 s to connect, 3 retries after 15/18/24 s,
    per request — and a submit with the workspace's storage down took 423 s (issue 16). The
    names are private: tests/test_service_faults_azure.py fails when they move. Options are the
    latest ml_client()'s (one environment per process in practice)."""
    from azure.ai.ml._artifacts import _blob_storage_helper as helper

    _UPLOAD_OPTIONS.clear()
    _UPLOAD_OPTIONS.update(options)
    for name in ("BlobServiceClient", "ContainerClient"):
        base = getattr(helper, name)
        if getattr(base, "_singkit_bounded", False):
            continue

        class Bounded(base):  # type: ignore[misc, valid-type]
            _singkit_bounded = True

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **{**_UPLOAD_OPTIONS, **kwargs})

        Bounded.__name__ = Bounded.__qualname__ = f"Bounded{name}"
        setattr(helper, name, Bounded)


def connection_fault(error: BaseException) -> BaseException | None:
    """The connection-level failure behind `error` — itself, or what it wraps (azure-ai-ml
    wraps a failed code upload in an MlException, an AzureError with no status) — else None."""
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    seen = 0
    current: BaseException | None = error
    while current is not None and seen < 10:
        if isinstance(current, (ServiceRequestError, ServiceResponseError, ConnectionError, TimeoutError)):
            return current
        current, seen = current.__cause__ or current.__context__, seen + 1
    return None


def from_storage(error: BaseException) -> bool:
    """Did `error` come out of azure-storage-blob (the workspace's storage), not Azure ML itself?"""
    tb = error.__traceback__
    while tb is not None:
        if "/azure/storage/" in tb.tb_frame.f_code.co_filename.replace("\\", "/"):
            return True
        tb = tb.tb_next
    return False


# -- errors and retries -----------------------------------------------------------------------
def one_line(error: BaseException | str, limit: int = 240) -> str:
    """The first line of an error (azure-core repeats `Code:`/`Message:` on the next ones)."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    text = " ".join((lines[0] if lines else type(error).__name__).split())
    return text[:limit] + ("…" if len(text) > limit else "")


def status_of(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    code = getattr(error, "status_code", None) or getattr(response, "status_code", None)
    return int(code) if code else None


def _retry_after(error: BaseException) -> float | None:
    headers = getattr(getattr(error, "response", None), "headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def explain(error: BaseException, what: str, workspace: Any = None) -> ServiceError:
    """One line saying what failed and what would fix it."""
    from azure.core.exceptions import ClientAuthenticationError

    where = f" (workspace {workspace.name}, subscription {workspace.subscription_id})" if workspace else ""
    used = getattr(workspace, "credential_used", None) or ""
    said = f", {used}" if used else ""
    status = status_of(error)
    if isinstance(error, ClientAuthenticationError) and status is None:
        return _signed_out(ServiceError(f"{what}: no usable Azure credential: {one_line(error, 160).rstrip('.')}; "
                                        f"run `az login`, or set {TOKEN_VAR} for CI"), no_token=True)
    if status == 401:
        return _signed_out(ServiceError(f"{what}: Azure refused the credential (401{said}){where}; it may have expired — "
                                        f"run `az login` again or refresh {TOKEN_VAR}{_credential_hint(used)}"))
    if status == 403:
        return _signed_out(ServiceError(f"{what}: access denied (403{said}){where}; that identity needs a role such as "
                                        f"AzureML Data Scientist on the workspace{_credential_hint(used)}"))
    if status == 404:
        return ServiceError(f"{what}: not found (404){where}; check subscription-id, resource-group and workspace in the service record, and the target's compute: {one_line(error, 120)}")
    if status in RETRY_STATUSES:
        return ServiceError(f"{what}: Azure ML kept answering {status} after retries{where}; try again later: {one_line(error, 120)}")
    fault = connection_fault(error)
    if fault is not None:
        if from_storage(fault) or from_storage(error):
            return ServiceError(f"{what}: cannot reach the workspace's Azure Blob storage: {_no_query(one_line(error, 160))}; "
                                "check the network, or try again later")
        return ServiceError(f"{what}: cannot reach Azure ML: {_no_query(one_line(error, 160))}; check the network")
    return ServiceError(f"{what}: Azure ML error{f' {status}' if status else ''}: {one_line(error)}")


def _no_query(text: str) -> str:
    """A message without URL query strings: a storage URL's may hold a SAS signature."""
    import re

    return re.sub(r"\?[^\s)'\"]*", "?…", text)


def _signed_out(error: ServiceError, no_token: bool = False) -> ServiceError:
    """Mark an error that came before Azure did anything with the request: no token could be
    had (`no_token`: the request was never sent), or Azure refused it at the door (401/403: a
    request is authenticated and authorized before the resource provider acts on it).
    Source: Microsoft Learn, "What is Azure Resource Manager?" (Resource Manager "authenticates
    and authorizes the request before forwarding it" to the service); azure-ai-ml sends a job's
    create as a PUT through Resource Manager (…/workspaces/W/jobs/NAME)."""
    error.credential = True  # type: ignore[attr-defined]
    error.no_token = no_token  # type: ignore[attr-defined]
    return error


def credential_refused(error: BaseException) -> bool:
    """Did `error` stop a call before Azure acted on it (see _signed_out)?"""
    return bool(getattr(error, "credential", False))


def call(what: str, fn: Callable[[], T], *, workspace: Any = None, attempts: int = 5,
         base_delay: float = 1.0, max_delay: float = 20.0, sleep: Callable[[float], None] = time.sleep,
         deadline: float | None = None) -> T:
    """Run one SDK call; retry 408/429/5xx, dropped connections and timeouts with capped
    exponential backoff (honouring Retry-After), then raise a one-line ServiceError.

    deadline: a time.monotonic() value (the submit's, see timeouts.submit_deadline): no retry
    starts after it — the call gives up then with what the last try said. A first try always
    runs, so a submit's clean-up (settling or withdrawing a create) still gets its one chance."""
    from azure.core.exceptions import AzureError

    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except SingkitError:
            raise
        except (AzureError, ConnectionError, TimeoutError) as error:
            transient = status_of(error) in RETRY_STATUSES or (status_of(error) is None and connection_fault(error) is not None)
            if not transient or attempt == attempts:
                raise explain(error, what, workspace) from None
            delay = min(max_delay, _retry_after(error) or base_delay * 2 ** (attempt - 1)) * (0.8 + 0.4 * random.random())
            if deadline is not None and time.monotonic() + delay > deadline:
                from singkit.timeouts import SUBMIT_DEADLINE_VAR

                raise ServiceError(f"{explain(error, what, workspace)} (gave up at the submit's deadline, "
                                   f"{SUBMIT_DEADLINE_VAR})") from None
            sleep(delay)
        except Exception as error:  # the SDK wraps some HTTP errors in its own exception types
            inner = error.__cause__ or error.__context__
            if inner is not None and isinstance(inner, AzureError):
                raise explain(inner, what, workspace) from None
            raise ServiceError(f"{what}: {one_line(error)}") from None
    raise AssertionError("unreachable")


# -- plain ARM reads --------------------------------------------------------------------------
def arm_get(ml: Any, path: str, api_version: str) -> Any:
    """GET an ARM resource with the MLClient's own cloud endpoint and credential (azure-core's
    public PipelineClient). The two MLClient attributes read here are private: this is the one
    place that reads them (tests/test_singularity_units.py fails when they move)."""
    from azure.core import PipelineClient
    from azure.core.pipeline.policies import BearerTokenCredentialPolicy, RetryPolicy
    from azure.core.rest import HttpRequest

    base = str(ml._base_url).rstrip("/")
    policies = [RetryPolicy(retry_total=0), BearerTokenCredentialPolicy(ml._credential, base + "/.default")]
    timeouts = getattr(ml, "_singkit_timeouts", {})  # set by ml_client: connection_timeout, read_timeout
    with PipelineClient(base_url=base, policies=policies, **timeouts) as client:
        response = client.send_request(HttpRequest("GET", base + path, params={"api-version": api_version}))
        response.raise_for_status()
        return response.json()
