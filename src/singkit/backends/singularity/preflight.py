"""What a real Singularity submit asks Azure before anything is queued.

- The virtual cluster must offer the target's size: its own list (offers.py, cached a day),
  since Singularity adds sizes faster than singkit's catalog, and public evidence is that the
  service accepts a job of a size the cluster does not offer and fails it later
  ("instanceType is invalid").
- A user-assigned identity named by name or client id is looked up among the workspace's
  identities, for its ARM id (`_AZUREML_SINGULARITY_JOB_UAI`) and client id (exported for SDKs
  inside the job; HSPK/azure_jobs src/azure_jobs/core/submit/_compute.py, _resolve_sing_identity).
"""

from __future__ import annotations

from typing import Any

from singkit.exceptions import ServiceError, UsageError


def check_offered(backend: Any, ml: Any, cfg: Any, resolved: Any) -> None:
    """Raise a located ConfigError when the cluster does not offer `resolved.vm_size`; an
    unreadable cluster (reading it may need a role submitting does not) only warns."""
    from singkit.singularity import target as targets

    cluster = resolved.compute.rsplit("/", 1)[-1]
    try:
        found = backend.cluster_offers(ml, resolved.compute, want=resolved.vm_size)
    except ServiceError as error:
        backend.env.err(f"warning: {error}; submitting without checking the instance type")
        return
    if found.find(resolved.vm_size) is not None:
        return
    names = found.names
    listed = (", ".join(names[:12]) + (f", … ({len(names)} in all)" if len(names) > 12 else "")) if names else "none (no quota)"
    raise targets.located(cfg, "compute-targets", resolved.name, "vm-size",
                          f"virtual cluster `{cluster}` does not offer `{resolved.vm_size}`; it offers: {listed} "
                          f"(`invoke config.skus --target={resolved.name}` shows its quota per SLA tier)")


def user_identity(backend: Any, ml: Any, value: str | None) -> dict[str, str] | None:
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
