"""ARM (control plane) routes: cloud metadata, workspace, datastores, assets, jobs.

Response shapes follow what azure-ai-ml 1.35 deserializes; see the package
docstring for the list of calls each SDK operation makes.
"""

from __future__ import annotations

import copy
import re
import time
import uuid
from typing import TYPE_CHECKING

from .routes_compute import cluster_failure
from .routing import WS, Reply, Req, arm_error, not_found, route
from .state import TERMINAL, JobState, iso

if TYPE_CHECKING:
    import re

    from .server import StandIn

ARTIFACT_CONTAINER = "azureml"  # workspaceartifactstore: job logs and outputs


def system_data(t: float) -> dict:
    return {"createdAt": iso(t), "createdBy": "researcher@standin.test", "createdByType": "User",
            "lastModifiedAt": iso(t), "lastModifiedBy": "researcher@standin.test",
            "lastModifiedByType": "User"}


def _check_ws(si: "StandIn", m: "re.Match[str]") -> Reply | None:
    if (m["sub"].lower(), m["rg"].lower(), m["ws"].lower()) != (
        si.subscription_id.lower(), si.resource_group.lower(), si.workspace.lower()
    ):
        return not_found(f"Workspace {m['sub']}/{m['rg']}/{m['ws']}")
    return None


@route("GET", r"/metadata/endpoints")
def cloud_metadata(si: "StandIn", req: Req, m) -> Reply:
    base = si.url + "/"
    return Reply(200, [{
        "name": si.cloud_name,
        "portal": base,
        "resourceManager": base,
        "authentication": {"loginEndpoint": base, "audiences": [base], "tenant": "common",
                           "identityProvider": "AAD"},
        "media": base, "graphAudience": base, "graph": base, "batch": base,
        "activeDirectoryDataLake": base, "sqlManagement": base, "gallery": base,
        "suffixes": {"storage": si.storage_suffix, "keyVaultDns": "vault.standin.test",
                     "acrLoginServer": "azurecr.standin.test", "sqlServerHostname": "database.standin.test",
                     "azureDataLakeStoreFileSystem": "azuredatalakestore.standin.test",
                     "azureDataLakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.standin.test"},
    }])


@route("GET", WS)
def workspace(si: "StandIn", req: Req, m) -> Reply:
    if (bad := _check_ws(si, m)) is not None:
        return bad
    sub_rg = f"/subscriptions/{si.subscription_id}/resourceGroups/{si.resource_group}/providers"
    return Reply(200, {
        "id": si.workspace_id, "name": si.workspace, "type": "Microsoft.MachineLearningServices/workspaces",
        "location": si.location, "kind": "Default", "tags": {},
        "identity": {"type": "SystemAssigned,UserAssigned" if si.user_identities else "SystemAssigned",
                     "principalId": str(uuid.UUID(int=1)), "tenantId": si.tenant_id,
                     **({"userAssignedIdentities": {arm: {"principalId": str(uuid.uuid5(uuid.NAMESPACE_URL, arm)), "clientId": client}
                                                    for arm, client in si.user_identities.items()}} if si.user_identities else {})},
        "sku": {"name": "Basic", "tier": "Basic"},
        "systemData": system_data(si.started_at),
        "properties": {
            "workspaceId": si.workspace_guid, "friendlyName": si.workspace, "description": "",
            "discoveryUrl": f"{si.url}/discovery/workspaces/{si.workspace_guid}",
            "mlFlowTrackingUri": f"azureml://{si.location}.api.azureml.ms/mlflow/v1.0{si.workspace_id}",
            "storageAccount": f"{sub_rg}/Microsoft.Storage/storageAccounts/{si.azurite.account}",
            "keyVault": f"{sub_rg}/Microsoft.KeyVault/vaults/standinkv",
            "applicationInsights": f"{sub_rg}/Microsoft.Insights/components/standinai",
            "hbiWorkspace": False, "publicNetworkAccess": "Enabled", "provisioningState": "Succeeded",
            "v1LegacyMode": False, "enableDataIsolation": False, "systemDatastoresAuthMode": "accessKey",
            # the ARM id of the workspace's ACR (workspaceRP.json WorkspaceProperties.containerRegistry);
            # absent until the service first needs one (docs: how-to-identity-based-service-authentication)
            **({"containerRegistry": si.container_registry} if si.container_registry else {}),
        },
    })


@route("GET", r"/discovery/workspaces/(?P<guid>[^/]+)")
def discovery(si: "StandIn", req: Req, m) -> Reply:
    # Every dataplane service (run history, dataset, model registry...) lives on the stand-in.
    keys = ("api", "catalog", "experimentation", "gallery", "history", "hyperdrive", "labeling",
            "modelmanagement", "pipelines", "studiotrace", "studio")
    return Reply(200, {k: si.url for k in keys})


# --- datastores ---------------------------------------------------------------
def datastore_body(si: "StandIn", name: str) -> dict | None:
    containers = {"workspaceblobstore": si.blobstore_container, "workspaceartifactstore": ARTIFACT_CONTAINER,
                  **si.datastores}
    if name not in containers:
        return None
    return {
        "id": f"{si.workspace_id}/datastores/{name}", "name": name,
        "type": "Microsoft.MachineLearningServices/workspaces/datastores",
        "systemData": system_data(si.started_at),
        "properties": {
            "datastoreType": "AzureBlob", "accountName": si.azurite.account, "containerName": containers[name],
            "endpoint": si.storage_suffix, "protocol": "https", "credentials": {"credentialsType": "AccountKey"},
            "isDefault": name == "workspaceblobstore", "serviceDataAccessAuthIdentity": "None",
            "description": "", "tags": {}, "properties": {},
            "subscriptionId": si.subscription_id, "resourceGroup": si.resource_group,
        },
    }


@route("GET", WS + r"/datastores")
def datastores_list(si: "StandIn", req: Req, m) -> Reply:
    items = [datastore_body(si, n) for n in ("workspaceblobstore", "workspaceartifactstore", *si.datastores)]
    if req.query.get("isDefault", "").lower() == "true":
        items = [d for d in items if d["properties"]["isDefault"]]
    return Reply(200, {"value": items})


@route("GET", WS + r"/datastores/(?P<name>[^/]+)")
def datastore_get(si: "StandIn", req: Req, m) -> Reply:
    body = datastore_body(si, m["name"])
    return Reply(200, body) if body else not_found(f"Datastore {m['name']}")


@route("POST", WS + r"/datastores/(?P<name>[^/]+)/listSecrets")
def datastore_secrets(si: "StandIn", req: Req, m) -> Reply:
    if datastore_body(si, m["name"]) is None:
        return not_found(f"Datastore {m['name']}")
    return Reply(200, {"secretsType": "AccountKey", "key": si.azurite.key})


# --- versioned assets (codes, environments, data, models, components) ----------
ASSET = WS + r"/(?P<kind>codes|environments|data|models|components)/(?P<name>[^/]+)/versions"


def _asset_key(m: "re.Match[str]", version: str) -> str:
    return f"{m['kind']}/{m['name']}/versions/{version}".lower()


@route("PUT", ASSET + r"/(?P<version>[^/]+)")
def asset_put(si: "StandIn", req: Req, m) -> Reply:
    key = _asset_key(m, m["version"])
    existed = key in si.state.assets
    now = time.time()
    props = copy.deepcopy((req.body or {}).get("properties", {}))
    props.setdefault("provisioningState", "Succeeded")
    resource = {
        "id": f"{si.workspace_id}/{m['kind']}/{m['name']}/versions/{m['version']}", "name": m["version"],
        "type": f"Microsoft.MachineLearningServices/workspaces/{m['kind']}/versions",
        "systemData": system_data(now), "properties": props,
    }
    with si.state.lock:
        si.state.assets[key] = resource
    return Reply(200 if existed else 201, resource)


@route("GET", ASSET + r"/(?P<version>[^/]+)")
def asset_get(si: "StandIn", req: Req, m) -> Reply:
    resource = si.state.assets.get(_asset_key(m, m["version"]))
    return Reply(200, resource) if resource else not_found(f"{m['kind']} {m['name']}:{m['version']}")


@route("GET", ASSET)
def asset_list(si: "StandIn", req: Req, m) -> Reply:
    wanted = req.query.get("hash")
    # A lookup by content hash spans every name of the kind: anonymous code gets a fresh
    # UUID name per submission, and the SDK reads the matching asset's name from its id.
    prefix = f"{m['kind']}/" if wanted else f"{m['kind']}/{m['name']}/versions/".lower()
    with si.state.lock:
        items = [v for k, v in si.state.assets.items() if k.startswith(prefix)]
    if wanted:
        items = [v for v in items if (v["properties"].get("properties") or {}).get("hash_sha256") == wanted]
    return Reply(200, {"value": items})


@route("POST", ASSET + r"/(?P<version>[^/]+)/startPendingUpload")
def start_pending_upload(si: "StandIn", req: Req, m) -> Reply:
    # Like the service: a fresh temporary container per upload (the SDK uploads to its root).
    container = f"upload-{uuid.uuid4().hex}"
    si.azurite.ensure_container(container)
    sas = si.azurite.container_sas(container, write=True)
    blob_uri = si.azurite.public_url(container)
    return Reply(200, {
        "pendingUploadId": str(uuid.uuid4()), "pendingUploadType": "TemporaryBlobReference",
        "blobReferenceForConsumption": {
            "blobUri": blob_uri,
            "storageAccountArmId": f"/subscriptions/{si.subscription_id}/resourceGroups/{si.resource_group}"
                                   f"/providers/Microsoft.Storage/storageAccounts/{si.azurite.account}",
            "credential": {"credentialType": "SAS", "sasUri": f"{blob_uri}?{sas}"},
        },
    })


# --- jobs -----------------------------------------------------------------------
def job_resource(si: "StandIn", job: JobState) -> dict:
    """The job as GET answers it: what was PUT plus the service-owned fields."""
    res = copy.deepcopy(job.resource)
    props = res["properties"]
    props["status"] = job.status
    return res


def _new_resource(si: "StandIn", name: str, body: dict, now: float) -> dict:
    res = {"id": f"{si.workspace_id}/jobs/{name}", "name": name,
           "type": "Microsoft.MachineLearningServices/workspaces/jobs", "systemData": system_data(now),
           "properties": copy.deepcopy(body.get("properties", {}))}
    props = res["properties"]
    props.setdefault("experimentName", "Default")
    props.setdefault("displayName", name)
    props["services"] = {
        "Studio": {"jobServiceType": "Studio",
                   "endpoint": f"{si.url}/studio/experiments/runs/{name}?wsid={si.workspace_id}"},
        "Tracking": {"jobServiceType": "Tracking", "endpoint": f"azureml://{si.location}.api.azureml.ms/mlflow"},
    }
    outputs = props.get("outputs") or {}
    # The service always adds the "default" output: the run's folder in the artifact store.
    outputs.setdefault("default", {"jobOutputType": "uri_folder", "mode": "ReadWriteMount",
                                   "uri": f"azureml://datastores/workspaceartifactstore/ExperimentRun/dcid.{name}"})
    props["outputs"] = outputs
    return res


# What the service answers a PUT of a job name that exists (jobs are immutable): 400 UserError
# (MicrosoftDocs/azure-docs#122250, Azure/azure-cli#26857; inner code JobPropertyImmutable per
# Azure/azure-sdk-for-python PR #47389).
ALREADY_EXISTS = ("A job with this name already exists. If you are trying to create a new job, use a different name. "
                  "If you are trying to update an existing job, the existing job's Settings,  Inputs,  Outputs,  Jobs,  "
                  "InputBindings,  OutputBindings cannot be changed. Only description, tags, displayName, properties, "
                  "and isArchived can be updated.")
# The recorded answer to a job on a virtual cluster that does not exist (Azure/azure-sdk-assets,
# python/sdk/ml/azure-ai-ml/tests/recordings/command_job/e2etests/test_command_job.pyTestCommandJobtest_command_job_with_singularity.json).
NO_VC = ("The virtual cluster does not exist. Please ensure that you submitted a job to a virtual cluster which exists in "
         "the same cloud. A virtualcluster created in one Cloud cannot be used to submit jobs to another cloud.")
VC_ID = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
                   r"Microsoft\.MachineLearningServices/virtualclusters/(?P<vc>[^/]+)$", re.I)


def _singularity_refusal(si: "StandIn", props: dict) -> Reply | None:
    """A job on a virtual cluster: the cluster must exist and the job must carry its AISuperComputer block."""
    found = VC_ID.match(str(props.get("computeId") or ""))
    if found is None:
        return None
    if si.find_virtual_cluster(found["sub"], found["rg"], found["vc"]) is None:
        return arm_error(400, "UserError", NO_VC)
    resources = props.get("resources") or {}
    if "AISuperComputer" not in (resources.get("properties") or {}):
        return arm_error(400, "UserError", "A job on a virtual cluster needs resources.properties.AISuperComputer "
                                           "(azureml-standin, after the issue's account of the service).")
    return None


# What the service answers a job whose data names a datastore the workspace does not have: 400
# UserError "Could not find datastore: NAME" (the service's answer quoted in
# Azure/MachineLearningNotebooks#789). The path forms: Microsoft Learn, how-to-read-write-data-v2.
DATASTORE_IN_URI = re.compile(r"^azureml://(?:subscriptions/[^/]+/resourcegroups/[^/]+/workspaces/[^/]+/)?"
                              r"datastores/(?P<name>[^/]+)/paths/", re.I)


def _data_refusal(si: "StandIn", props: dict) -> Reply | None:
    """An input or output on a datastore the workspace does not have (a bad mode too)."""
    for kind, modes in (("inputs", ("ReadOnlyMount", "ReadWriteMount", "Download", "Direct", "EvalMount", "EvalDownload")),
                        ("outputs", ("ReadWriteMount", "Upload", "Direct"))):
        for name, item in (props.get(kind) or {}).items():
            found = DATASTORE_IN_URI.match(str((item or {}).get("uri") or ""))
            if found and datastore_body(si, found["name"]) is None:
                return arm_error(400, "UserError", f"Could not find datastore: {found['name']}.")
            if (item or {}).get("mode") not in (None, *modes):
                return arm_error(400, "UserError", f"{kind} {name}: mode {item.get('mode')} is not supported (azureml-standin).")
    return None


# CommandJobLimits in the REST models azure-ai-ml 1.35 carries (_restclient/arm_ml_service/models/_models.py):
# jobLimitsType is "[Required]" and timeout is "The max run duration in ISO 8601 format ... Only supports
# duration with precision as low as Seconds". No public source says the service refuses a zero or
# negative duration, so the stand-in does not.
ISO_DURATION = re.compile(r"^P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$")


def _limits_refusal(props: dict) -> Reply | None:
    """A command job's `limits` must name its type and give the timeout as an ISO 8601 duration in seconds."""
    limits = props.get("limits")
    if limits is None:
        return None
    if not isinstance(limits, dict) or limits.get("jobLimitsType") != "Command":
        return arm_error(400, "UserError", "limits.jobLimitsType is required and must be Command for a command job "
                                           "(azureml-standin).")
    timeout = limits.get("timeout")
    if timeout is not None and not (isinstance(timeout, str) and ISO_DURATION.match(timeout)):
        return arm_error(400, "UserError", f"limits.timeout `{timeout}` is not an ISO 8601 duration with precision as low "
                                           "as seconds (azureml-standin).")
    return None


def _offered(si: "StandIn", props: dict) -> bool:
    """Is the job's instance type one its virtual cluster offers? (Public evidence is that the
    service accepts the PUT and the job fails with "instanceType is invalid": see routes_vc.)"""
    found = VC_ID.match(str(props.get("computeId") or ""))
    if found is None:
        return True
    vc = si.find_virtual_cluster(found["sub"], found["rg"], found["vc"])
    return str((props.get("resources") or {}).get("instanceType")) in vc.offers()


@route("PUT", WS + r"/jobs/(?P<name>[^/]+)")
def job_put(si: "StandIn", req: Req, m) -> Reply:
    if (bad := _check_ws(si, m)) is not None:
        return bad
    name, body = m["name"], req.body or {}
    if not isinstance(body.get("properties"), dict) or "jobType" not in body["properties"]:
        return arm_error(400, "UserError", "The job body has no properties.jobType (azureml-standin).")
    if (refused := _singularity_refusal(si, body["properties"]) or _data_refusal(si, body["properties"])
            or _limits_refusal(body["properties"])) is not None:
        return refused
    now = time.time()
    with si.state.lock:
        if name in si.state.jobs:
            reply = arm_error(400, "UserError", ALREADY_EXISTS)
            reply.body["error"]["innerError"] = {"code": "Immutable", "innerError": {"code": "JobPropertyImmutable"}}
            return reply
        job = JobState(name=name, body=copy.deepcopy(body), resource=_new_resource(si, name, body, now),
                       cancel_polls=si.state.cancel_polls_default)
        si.state.jobs[name] = job
        if not _offered(si, body["properties"]):
            size = body["properties"]["resources"].get("instanceType")
            si.state.set_status(name, "Failed", error=f"instanceType is invalid: {size} is not offered by this virtual cluster")
        elif (why := cluster_failure(si, body["properties"])) is not None:  # routes_compute
            si.state.set_status(name, "Failed", error=why)
        return Reply(201, job_resource(si, job))


@route("GET", WS + r"/jobs/(?P<name>[^/]+)")
def job_get(si: "StandIn", req: Req, m) -> Reply:
    job = si.state.observe(m["name"])
    if job is None:
        return not_found(f"Job {m['name']}")
    with si.state.lock:
        return Reply(200, job_resource(si, job))


@route("GET", WS + r"/jobs")
def job_list(si: "StandIn", req: Req, m) -> Reply:
    with si.state.lock:
        items = [job_resource(si, j) for j in sorted(si.state.jobs.values(), key=lambda j: -j.created)]
    return Reply(200, {"value": items})


# Cancelling a job that has ended, or is finalizing, "is an error" (Azure/azureml-assets#2496:
# a CI run failed cancelling a Finalizing job); the stand-in answers it as a UserError.
NOT_CANCELLABLE = TERMINAL | {"Finalizing"}


@route("POST", WS + r"/jobs/(?P<name>[^/]+)/cancel")
def job_cancel(si: "StandIn", req: Req, m) -> Reply:
    with si.state.lock:
        job = si.state.jobs.get(m["name"])
        if job is None:
            return not_found(f"Job {m['name']}")
        job.cancel_requests += 1
        if job.status in NOT_CANCELLABLE:
            return arm_error(400, "UserError", f"Job {job.name} is in state {job.status} and cannot be canceled "
                                               "(azureml-standin, after Azure/azureml-assets#2496).")
        if job.status != "CancelRequested":
            job.cancel_requested_at = time.monotonic()
            si.state.set_status(job.name, "CancelRequested")
    # The SDK deserializes this Retry-After as an int; it does not sleep before the first poll.
    return Reply(202, None, {"Location": f"{si.url}/_standin/operations/cancel/{job.name}", "Retry-After": "0"})


@route("GET", r"/_standin/operations/cancel/(?P<name>[^/]+)")
def job_cancel_poll(si: "StandIn", req: Req, m) -> Reply:
    with si.state.lock:
        job = si.state.jobs.get(m["name"])
        if job is None:
            return not_found(f"Cancel operation for {m['name']}")
        if job.status == "CancelRequested" and not si.state.settle_cancel(job):
            slow = job.cancel_polls <= 0  # only the nodes' stopping is left: poll less often
            return Reply(202, None, {"Location": f"{si.url}{req.path}", "Retry-After": "0.2" if slow else "0.01"})
    return Reply(200, None)
