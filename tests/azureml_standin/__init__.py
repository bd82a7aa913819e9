"""azureml_standin: a loopback HTTPS stand-in for the Azure ML REST API (test infrastructure).

The stock azure-ai-ml 1.35 ``MLClient`` runs end to end against it: workspace get,
command-job submission with local code upload, get, list, cancel, stream, download,
metadata updates. Blob traffic goes to a real Azurite.

Connecting a client (all of it is what the ``azureml_standin`` fixture does)
-------------------------------------------------------------------------
``StandIn.environ()`` gives the environment; with it applied, unchanged production code
``MLClient(credential, sub, rg, ws)`` reaches the stand-in:

* ``ARM_CLOUD_METADATA_URL=https://127.0.0.1:<port>/metadata/endpoints?api-version=2019-05-01``:
  the SDK picks the cloud whose resourceManager occurs in that URL (ours), sets
  ``AZUREML_CURRENT_CLOUD`` in os.environ, and asks tokens for ``https://127.0.0.1:<port>/.default``.
  (An SDK bug makes it re-read the metadata on nearly every call; harmless.)
  Alternative without that variable: ``MLClient(..., cloud=si.cloud_name,
  cloud_metadata=si.cloud_metadata)``; the cloud name is unique per stand-in because
  the SDK caches clouds by name in a module global (``stop()`` removes it).
* ``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE``: a throw-away CA (the SDK refuses bearer
  tokens over http, so the stand-in speaks TLS).
* ``HTTPS_PROXY`` + ``NO_PROXY=127.0.0.1,localhost``: the SDK builds storage URLs itself as
  ``https://<account>.blob.<storage suffix>``; the suffix is ``core.standin.test`` and the
  stand-in's CONNECT proxy terminates TLS for ``*.blob.core.standin.test`` and relays to
  Azurite (which accepts production-style host names). It also relays
  ``management.azure.com`` (hard-coded by the SDK's virtual-cluster lookup) to the stand-in.
* Credentials: ``si.credential()`` (``StandinCredential``) returns HS256 JWTs with tid,
  oid, aud (= the scope without ``/.default``), exp...; the SDK decodes them unverified.

Fixture API (tests/azureml_standin/fixtures.py, function scope, needs conftest's ``azurite``)
-------------------------------------------------------------------------------------------
``si = azureml_standin`` is a started ``StandIn``:
  .url .subscription_id .resource_group .workspace .workspace_id .location .tenant_id
  .credential() .ml_client(**mlclient_kwargs) .virtual_cluster_id(name) .environ()
  .requests             list of (method, path, json body) NamedTuples, in arrival order
  .state.request_log    the same with .query, .headers (lower-case), .status, .route, .at (arrival, monotonic s)
  .state.unhandled      "METHOD /path?query" the stand-in had no route for (answered 404)
  .state.bodies(method, path_regex) -> bodies;  .job_body(name) -> the job PUT body as sent
  .jobs                 dict name -> JobState (.status, .body, .resource, .logs, .cancel_polls)
  .set_status(name, "queued"|"Running"|"completed"|"failed"|"cancelled"..., error=None)
  .append_log(name, text, file="user_logs/std_log.txt")   (also appended to an append blob in Azurite)
  .preempt(name, "Queued"|"Paused")  a running job is preempted: requeued (Queued) or Paused, not final
  .requeue(name, text="", file=...)  it runs again: every log blob replaced by a fresh one (deleted,
                        recreated: new creation time), `text` the first of the new log; Running
  .blob_requests        (method, path, range) of each request that reached Azurite through the proxy
                        (path without the SAS query; range = the x-ms-range/Range header or None)
  .blob_bytes_down      bytes Azurite sent back through the proxy (headers and bodies)
  .put_output(name, "outputs/x.json", data)               (what jobs.download fetches)
  .script(name, ["Queued", ("Running", "log text"), "Completed"])  one step per status read;
                        also "Preempt" / ("Preempt", "Paused") and ("Requeue", "first new log text")
  .slow_cancel(name, seconds)  the job stays CancelRequested that long after its first cancel
      request (its nodes stopping), then turns Canceled at the next status read or cancel poll
  .fail_next(route_regex, status, times=1 | None (forever), retry_after=None, body=None, handled=False)
      regex searched in "METHOD /path", e.g. r"^GET .*/jobs/", "startPendingUpload";
      handled=True carries the request out first (the job exists) and then fails it;
      status=0 closes the connection with no answer (with handled=True: a create whose answer was lost)
  .hold(route_regex, handled=True) -> Hold (.arrived Event, .release()): the next matching
      request waits until released — handled=True after being carried out (its answer waits),
      handled=False before, and is then dropped unanswered (for killing a client mid-request)
  .storage_down(down=True)  the workspace's Blob storage (code upload, artifacts) is down, or back with False
  .add_datastore(name, container="")  a blob datastore on an Azurite container of its own (GET/list
      answer it beside workspaceblobstore/workspaceartifactstore); a job PUT whose inputs/outputs
      name a datastore the workspace lacks is refused: 400 UserError "Could not find datastore: NAME."
  .add_compute(name, vm_size="Standard_NC6s_v3", max_nodes=4, tier="dedicated"|"low_priority")  an Azure ML
      compute cluster (AmlCompute; GET {WS}/computes/<name>); a job on a compute the workspace lacks, or
      asking more nodes than its max_nodes, fails at once with the service's words (routes_compute)
  .azurite              .names(container), .get(container, blob), .public_url(...)
ml_client(retry_total=2, retry_backoff_factor=0.01) keeps 5xx-forever tests fast.

REST calls azure-ai-ml 1.35.2 makes (observed; {WS} = /subscriptions/<sub>/resourceGroups/
<rg>/providers/Microsoft.MachineLearningServices/workspaces/<ws>; api-version in brackets)
-------------------------------------------------------------------------------------------
MLClient(): only GET /metadata/endpoints [2019-05-01] when ARM_CLOUD_METADATA_URL is set.
workspaces.get: GET {WS} [2024-10-01-preview] -> properties.discoveryUrl, workspaceId.
jobs.create_or_update(command job, local code, Environment(image=...@sha256:...)):
  1 GET  {WS}/codes/<new uuid>/versions?hash=<sha256>&hashVersion=202208 [2023-04-01]
    hit (same code before): GET {WS}/codes/<name>/versions/<v> [2023-04-01], skip to 5
  2 POST {WS}/codes/<uuid>/versions/1/startPendingUpload [2023-04-01]
       {"pendingUploadType": "TemporaryBlobReference"} -> blobReferenceForConsumption
       .credential.sasUri (a fresh container SAS) and .blobUri
  3 blob PUTs to <container>/<code dir name>/... with that SAS (storage SDK)
  4 PUT  {WS}/codes/<uuid>/versions/1 [2023-04-01] {"properties": {"codeUri": <blobUri>/<dir>,
       "isAnonymous": true, "properties": {"hash_sha256": ..., "hash_version": 202208}}}
  5 PUT  {WS}/environments/CliV2AnonymousEnvironment/versions/<hash> [2023-04-01-preview]
       {"properties": {"image": ..., "isAnonymous": true, "isArchived": false}}
  6 PUT  {WS}/jobs/<name> [2025-01-01-preview]: properties.jobType "Command", command, codeId,
       environmentId, computeId (the VC ARM id, verbatim), resources {instanceCount,
       instanceType, properties.AISuperComputer}, distribution {distributionType "PyTorch",
       processCountPerInstance}, environmentVariables, tags, experimentName (default: cwd
       folder name), displayName, identity {"identityType": "UserIdentity"} (then the
       request also carries header x-azureml-token, a token whose aud is the AML resource id).
  compute "azureml://subscriptions/<s>/resourceGroups/<rg>/virtualclusters/<vc>" adds
    GET https://management.azure.com/subscriptions/.../virtualclusters/<vc> [2021-03-01-preview];
    "azureml://virtualclusters/<vc>" needs azure-mgmt-resource + resourcegraph (not installed).
jobs.get: GET {WS}/jobs/<name> [2024-01-01-preview].
jobs.list: GET {WS}/jobs?listViewType=ActiveOnly [2024-01-01-preview] ({"value": [...]}).
jobs.begin_cancel: POST {WS}/jobs/<name>/cancel [2023-04-01-preview] -> 202 + Location;
  the poller GETs Location (202 = running, 200 = done). The 202's Retry-After must be an int.
jobs.stream: GET job; GET {WS}; GET discoveryUrl (-> {"api": ..., "history": ...});
  GET {WS}/datastores/workspaceartifactstore + POST .../listSecrets [2024-10-01-preview]
  (because the job's outputs.default is a uri_folder); then GET /history/v1.0{WS}/runs/<name>/details
  [v1.0] per poll and blob list/GET of <artifact container>/ExperimentRun/dcid.<name>/user_logs/.
  Run details' logFiles are blob SAS URLs (sr=b, sp=r) on those blobs; Azurite serves Range reads
  on them (x-ms-range; 416 past the end), as Blob storage does.
jobs.download: GET job; GET {WS}; GET discovery; POST /history/v1.0{WS}/rundata [v1.0]
  {"runId": ...}; GET job; GET {WS}/datastores?isDefault=true&count=30&orderByAsc=false;
  GET {WS}/datastores/workspaceartifactstore; POST .../listSecrets; blob list + GETs under
  ExperimentRun/dcid.<name>/ -> <download_path>/artifacts/. output_name=X instead probes
  workspaceblobstore paths azureml/<name>/X/ and dataset/<name>/X/.
workspaces.get also reads properties.containerRegistry (the workspace's ACR ARM id; si.set_container_registry).
connections.list(connection_type="container_registry"): GET {WS}/connections?category=ContainerRegistry
  [2024-04-01-preview]; connections.get: GET {WS}/connections/<name>; connections.create_or_update:
  PUT {WS}/connections/<name> (routes_connections; si.connections keeps what was PUT, secrets too).
create_or_update of a fetched job (metadata only): GET job twice, then
  PATCH /history/v1.0{WS}/experiments/<exp>/runs/<name> [v1.0] {displayName, description, tags, properties}.

compute.get: GET {WS}/computes/<name> [2023-08-01-preview] (routes_compute).

Known gaps: no pipelines/sweeps/registries/endpoints; computes: AmlCompute get only; job bodies are judged only on
jobType, the virtual cluster (+ AISuperComputer) and the datastores/modes of inputs and outputs; ``azureml://virtualclusters/<vc>`` short form unsupported (see above);
every request is authorized (use fail_next for 401/403); api-versions are accepted, not checked.
"""

from .credential import StandinCredential
from .server import StandIn

__all__ = ["StandIn", "StandinCredential"]
