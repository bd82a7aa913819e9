"""What a real Singularity submit asks Azure before anything is queued.

- The virtual cluster must offer the target's size: its own list (offers.py, cached a day),
  since Singularity adds sizes faster than singkit's catalog, and public evidence is that the
  service accepts a job of a size the cluster does not offer and fails it later
  ("instanceType is invalid").
- A user-assigned identity named by name or client id is looked up among the workspace's
  identities, for its ARM id (`_AZUREML_SINGULARITY_JOB_UAI`) and client id (exported for SDKs
  inside the job; HSPK/azure_jobs src/azure_jobs/core/submit/_compute.py, _resolve_sing_identity).
- The job must be able to pull its image (check_pull): an image in an Azure Container Registry
  or in a registry singkit pushes to with credentials passes when the registry is
  1. the workspace's own ACR (workspace property `containerRegistry`, an ARM id: Azure/azure-rest-api-specs
     .../2024-04-01-preview/workspaceRP.json WorkspaceProperties; `az ml workspace show --query
     containerRegistry`, MicrosoftDocs/azure-docs how-to-identity-based-service-authentication.md), or
  2. the target of a workspace connection of category ContainerRegistry (`ml_client.connections`,
     REST GET {WS}/connections?category=ContainerRegistry at api-version 2024-04-01-preview:
     azure-ai-ml 1.35.2 _ml_client.py ServiceClient042024PreviewArm; the connection is what
     MicrosoftDocs/azure-ai-docs articles/machine-learning/how-to-connection.md "Azure Container
     Registry" creates: type container_registry, target https://<registry>, username_password), or
  3. declared pulled by the job's identity (`pull: identity` on the registry record). Whether that
     identity holds AcrPull is a role assignment (Microsoft.Authorization), an API azure-ai-ml
     1.35.2 never reads (it only writes feature-store role assignments through ARM templates):
     singkit cannot check it and does not guess; it takes the declaration and says so.
  Otherwise the submit is refused (exit 2) naming the commands that fix it, or, with
  `--create-registry-connection`, the connection is created from the registry record (its
  `$env:` password is read at that moment and sent only in the PUT body).
  Registered `azureml:` environments and Singularity's curated image are not checked.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from singkit.exceptions import ServiceError, UsageError

if TYPE_CHECKING:
    from singkit.config.model import Config
    from singkit.backends.singularity.backend import SingularityBackend

CONNECTION_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$")  # workspaceRP.json parameter ConnectionName


def check_offered(backend: SingularityBackend, ml: Any, cfg: Config, resolved: Any) -> None:
    """Raise a located ConfigError when the cluster does not offer `resolved.vm_size`; an
    unreadable cluster (reading it may need a role submitting does not) only warns."""
    from singkit.singularity import target as targets

    cluster = resolved.compute.rsplit("/", 1)[-1]
    try:
        found = backend.cluster_offers(ml, resolved.compute, want=resolved.vm_size)
    except ServiceError as error:
        if getattr(error, "no_token", False):
            raise  # no token at all: the submit cannot succeed, so it is refused here (nothing was created)
        backend.env.err(f"warning: {error}; submitting without checking the instance type")
        return
    if found.find(resolved.vm_size) is not None:
        return
    names = found.names
    listed = (", ".join(names[:12]) + (f", … ({len(names)} in all)" if len(names) > 12 else "")) if names else "none (no quota)"
    raise targets.located(cfg, "compute-targets", resolved.name, "vm-size",
                          f"virtual cluster `{cluster}` does not offer `{resolved.vm_size}`; it offers: {listed} "
                          f"(`invoke config.skus --target={resolved.name}` shows its quota per SLA tier)")


def user_identity(backend: SingularityBackend, ml: Any, value: str | None) -> dict[str, str] | None:
    """{"id": ARM id, "client_id"} of the workspace's user-assigned identity that `value` (an ARM
    id, a name or a client id) names; an ARM id the workspace does not list is kept as it is."""
    if not value:
        return None
    name = backend.workspace.name
    workspace = backend.call(f"reading workspace {name}", lambda: ml.workspaces.get(name))
    identities = list(getattr(getattr(workspace, "identity", None), "user_assigned_identities", None) or [])
    wanted = value.strip().lower().rstrip("/")
    for item in identities:
        arm = str(getattr(item, "resource_id", "") or "")
        # azure-ai-ml 1.35 copies the REST model's camelCase keys onto the entity and leaves client_id None
        client = str(getattr(item, "client_id", None) or getattr(item, "clientId", None) or "")
        if wanted in (arm.lower().rstrip("/"), arm.lower().rsplit("/", 1)[-1], client.lower()):
            return {"id": arm, "client_id": client}
    if value.startswith("/subscriptions/"):
        return {"id": value}  # not attached to the workspace: Singularity still gets the id
    known = ", ".join(str(getattr(i, "resource_id", "")).rsplit("/", 1)[-1] for i in identities) or "none"
    raise UsageError(f"user-identity-id `{value}` names no user-assigned identity of workspace {name} "
                     f"(its identities: {known}); write the identity's ARM id or its name")


def _host(target: Any) -> str:
    """`host[:port]` of a registry as a connection's target or a login server writes it."""
    text = str(target or "").strip().lower()
    text = re.sub(r"^[a-z]+://", "", text)
    return text.split("/", 1)[0]


def _is_acr(host: str) -> bool:
    # ACR login servers are <name>.azurecr.io, .azurecr.cn, .azurecr.us (one per cloud)
    return ".azurecr." in host


def check_pull(backend: SingularityBackend, ml: Any, cfg: Config, resolved: Any, *, create: bool = False,
               image: str | None = None) -> str | None:
    """Refuse a job whose image the service could not pull (see the module docstring).

    `resolved`: the target (singkit.singularity.target.Resolved). Returns how the job pulls
    ("workspace-acr", "connection", "created-connection", "identity") or None when nothing
    needs (or could) be checked: a workspace or connection list Azure ML will not show only warns.
    `image`: the reference the job runs, as the submit pipeline resolved it (job.yaml `image.ref`).
    Raises a ConfigError located at the docker record's `registry:` (exit 2), UsageError, or
    ServiceError when creating the connection fails (exit 4)."""
    from singkit.imageref import Reference, run_digest

    docker = resolved.docker
    if resolved.environment or not docker:
        return None  # a registered environment, or Singularity's curated image
    registry = cfg.service(docker["registry"]) if docker.get("registry") else None
    # the image the job runs (computed here only for a caller without it: a compute cluster's is the base)
    ref = Reference.parse(image) if image else run_digest(dict(docker), registry, wrapped=not resolved.is_cluster)[0]
    host = ref.registry_host.lower()
    has_credentials = bool(registry and registry.get("username"))
    if not _is_acr(host) and not has_credentials:
        return None  # a public image: nothing to authenticate
    name = backend.workspace.name
    try:
        workspace = backend.call(f"reading workspace {name}", lambda: ml.workspaces.get(name))
        acr_id = str(getattr(workspace, "container_registry", None) or "")
        if acr_id and _is_acr(host) and host.split(".", 1)[0] == acr_id.rstrip("/").rsplit("/", 1)[-1].lower():
            return "workspace-acr"
        connections = backend.call(f"listing the container registry connections of workspace {name}",
                                   lambda: list(ml.connections.list(connection_type="container_registry")))
    except ServiceError as error:  # as check_offered: reading may need a role submitting does not
        backend.env.err(f"warning: {error}; submitting without checking that the job can pull {host}")
        return None
    if any(_host(getattr(c, "target", None)) == host for c in connections):
        return "connection"
    if registry and str(registry.get("pull") or "") == "identity":
        if not resolved.identity:
            raise _refusal(cfg, docker, f"registry record `{registry['name']}` says `pull: identity`, but workspace "
                           f"record `{resolved.workspace.service}` names no user-identity-id for the job to pull with")
        backend.env.err(f"note: {host} is pulled with the job's identity {resolved.identity.rsplit('/', 1)[-1]}; "
                        "singkit cannot check it holds AcrPull there (azure-ai-ml reads no role assignments)")
        return "identity"
    if create:
        _create_connection(backend, ml, cfg, docker, registry, host)
        return "created-connection"
    raise _refusal(cfg, docker, _advice(backend, docker, registry, host, acr_id, resolved))


def _refusal(cfg: Config, docker: dict[str, Any], message: str) -> Exception:
    from singkit.singularity import target as targets

    key = "registry" if docker.get("registry") else "image"
    return targets.located(cfg, "dockers", str(docker.get("name")), key, message)


def connection_name(registry: dict[str, Any] | None, host: str) -> str:
    """The connection singkit creates for a registry: `singkit-<record>` (the service's name rule)."""
    stem = re.sub(r"[^a-zA-Z0-9_-]", "-", str((registry or {}).get("name") or host.split(".", 1)[0]))
    name = ("singkit-" + stem)[:33].rstrip("-_")
    return name if CONNECTION_NAME.match(name) else "singkit-registry"


def _advice(backend: SingularityBackend, docker: dict[str, Any], registry: dict[str, Any] | None, host: str, acr_id: str,
            resolved: Any) -> str:
    """One line: why the job could not pull, and the commands that fix it."""
    ws = backend.workspace
    target = resolved.name
    where = f"-g {ws.resource_group} -w {ws.name}"
    own = f" (its own registry is {acr_id.rsplit('/', 1)[-1]})" if acr_id else " (it has no registry of its own yet)"
    fixes = []
    if registry and registry.get("username"):
        fixes.append(f"rerun with `invoke job.submit --target={target} --create-registry-connection` to create "
                     f"workspace connection {connection_name(registry, host)} from registry record `{registry['name']}`")
    user = (registry or {}).get("username") or "<username>"
    fixes.append(f"`az ml connection create --file conn.yml --set credentials.password=<password> {where}` with conn.yml "
                 f"holding `name: {connection_name(registry, host)}`, `type: container_registry`, `target: https://{host}`, "
                 f"`credentials: {{type: username_password, username: {user}}}`")
    if _is_acr(host):
        identity = resolved.identity.rsplit("/", 1)[-1] if resolved.identity else "<the job's identity>"
        fixes.append(f"`az role assignment create --role AcrPull --assignee <principal id of {identity}> --scope "
                     f"$(az acr show --name {host.split('.', 1)[0]} --query id -o tsv)`, then `pull: identity` on the "
                     f"registry record{'' if resolved.identity else ' and user-identity-id on the workspace record'}")
    return (f"Azure ML workspace {ws.name} cannot pull {host}{own}: no container registry connection targets it; "
            f"fix it once: " + "; or ".join(fixes))


def _create_connection(backend: SingularityBackend, ml: Any, cfg: Config, docker: dict[str, Any], registry: dict[str, Any] | None,
                       host: str) -> None:
    """Create the workspace connection for `host` from the registry record's credentials. The
    password is resolved here and travels only in the PUT body, never printed or recorded."""
    from azure.core.exceptions import ResourceNotFoundError

    from singkit.config import resolve_secret

    if not registry or not registry.get("username") or not registry.get("password"):
        raise _refusal(cfg, docker, f"--create-registry-connection needs a registry record for {host} with username "
                       "and password (`password: $env:NAME`) to store in the connection")
    name = connection_name(registry, host)

    def lookup() -> Any:
        try:
            return ml.connections.get(name)
        except ResourceNotFoundError:
            return None

    existing = backend.call(f"reading connection {name}", lookup)
    if existing is not None:  # never overwrite a connection someone else made
        raise UsageError(f"workspace {backend.workspace.name} already has a connection named {name} "
                         f"(target {getattr(existing, 'target', '?')}); delete or rename it, or create one for {host} by hand")
    secret = resolve_secret(registry["password"], backend.env)
    entity = _connection_entity(name, host, str(registry["username"]), secret or "")
    backend.call(f"creating connection {name} in workspace {backend.workspace.name}",
                 lambda: ml.connections.create_or_update(entity))
    backend.env.err(f"created workspace connection {name} for {host} (username {registry['username']}; "
                    "Azure ML keeps the password, singkit records none)")


def _connection_entity(name: str, host: str, username: str, password: str) -> Any:
    """azure-ai-ml's WorkspaceConnection for a container registry, as how-to-connection.md builds it."""
    from azure.ai.ml.entities import UsernamePasswordConfiguration, WorkspaceConnection

    return WorkspaceConnection(name=name, type="container_registry", target=f"https://{host}",
                               credentials=UsernamePasswordConfiguration(username=username, password=password))


def cluster_note(resolved: Any, workspace: str) -> str:
    """What a dry run of a compute-cluster target leaves to the submit's check_cluster."""
    low = "" if resolved.low_pri is None else f"; `low-pri: {str(resolved.low_pri).lower()}` is checked against the cluster's tier then"
    return (f"note: {resolved.name} runs on Azure ML compute cluster {resolved.compute}: a submit first checks that workspace "
            f"{workspace} has it, of vm-size {resolved.vm_size or '(any)'}, scaling to {resolved.nodes} node(s){low} "
            "(a dry run stays offline)")


def check_cluster(backend: SingularityBackend, ml: Any, cfg: Config, resolved: Any) -> None:
    """An Azure ML compute-cluster target against the cluster its workspace holds (ml.compute.get):
    it exists and is an AmlCompute; its VM size is the target's `vm-size` (the cluster decides it:
    a job sends none); it scales to the target's `nodes` (its max_instances); and its tier is what
    `low-pri` asks for — low priority is the cluster's, never a job's (singkit.singularity.amlcompute).
    Raises a ConfigError at the key that disagrees; a compute the caller may not read only warns."""
    from azure.core.exceptions import ResourceNotFoundError

    from singkit.singularity import amlcompute
    from singkit.singularity import target as targets

    ws, name = backend.workspace, resolved.compute

    def lookup() -> Any:
        try:
            return ml.compute.get(name)
        except ResourceNotFoundError:
            return None

    try:
        cluster = backend.call(f"reading compute {name} of workspace {ws.name}", lookup)
    except ServiceError as error:
        backend.env.err(f"warning: {error}; submitting without checking compute cluster {name}")
        return

    def refuse(key: str, message: str) -> Exception:
        return targets.located(cfg, "compute-targets", resolved.name, key, message)

    size = resolved.vm_size or "<an Azure VM size>"
    if cluster is None:
        raise refuse("compute", f"Azure ML workspace {ws.name} has no compute `{name}`; create it (`az ml compute create "
                     f"--type amlcompute --name {name} --size {size} --max-instances {resolved.nodes}"
                     f"{' --tier low_priority' if resolved.low_pri else ''} -g {ws.resource_group} -w {ws.name}`) "
                     "or name a compute cluster it has")
    kind = str(getattr(cluster, "type", "") or "")
    if kind.lower() != "amlcompute":
        raise refuse("compute", f"compute `{name}` of workspace {ws.name} is a {kind or 'compute'} resource, not a compute "
                     "cluster (AmlCompute); name a compute cluster, or a virtual cluster for a Singularity job")
    actual = str(getattr(cluster, "size", "") or "")
    if resolved.vm_size and actual and actual.lower() != resolved.vm_size.lower():
        raise refuse("vm-size", f"compute cluster `{name}` runs {actual}, not `{resolved.vm_size}`: the cluster decides "
                     f"the VM size; write `vm-size: {actual}`, or name a cluster of that size")
    most = getattr(cluster, "max_instances", None)
    if isinstance(most, int) and resolved.nodes > most:
        raise refuse("nodes", f"compute cluster `{name}` scales to at most {most} node(s) (its max_instances), and "
                     f"`nodes: {resolved.nodes}` asks more: Azure ML would fail the job (\"Requested {resolved.nodes} "
                     f"nodes but AzureMLCompute cluster only has {most} maximum nodes\"); lower `nodes` or raise "
                     f"the cluster's max_instances")
    tier = str(getattr(cluster, "tier", "") or "")
    if resolved.low_pri is not None and tier and tier != amlcompute.tier_of(resolved.low_pri):
        raise refuse("low-pri", f"`low-pri: {str(resolved.low_pri).lower()}` but compute cluster `{name}` runs "
                     f"{tier.replace('_', '-')} VMs: Azure ML takes low priority from the cluster (its tier), not per "
                     f"job; name a {amlcompute.tier_of(resolved.low_pri).replace('_', '-')} cluster, or drop `low-pri`")
