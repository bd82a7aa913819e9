"""What the keys of an XT config mean, and why singkit carries or leaves each one.

Sources (public): xtlib 0.0.342 as published on PyPI (the newest XT with Singularity support;
files named below are in that wheel), its factory config (xtlib/helpers/factory_config.yaml)
and schema (xtlib/helpers/xt_config_schema.yaml); XT's "Running jobs on Singularity" guide
(build 0.0.264). Nothing here imports anything heavy: the import runs at CLI speed.
"""

from __future__ import annotations

# XT's service `type:` → singkit's. (`vc`/`virtual-cluster` are spellings seen in user configs.)
SERVICE_TYPES = {"singularity": "singularity", "aml": "aml", "virtual_cluster": "virtual_cluster",
                 "vc": "virtual_cluster", "virtual-cluster": "virtual_cluster", "registry": "registry", "storage": "storage"}
WORKSPACES = ("singularity", "aml")

# XT service types with no singkit counterpart: a record of one is left out, and so is every
# target that runs on one (xt_config_schema.yaml lists these record types).
DROPPED_SERVICE_TYPES = {
    "batch": "Azure Batch pools have no singkit counterpart (singkit submits to Azure ML: Singularity or a compute cluster)",
    "philly": "Philly clusters were retired; singkit has no counterpart",
    "itp": "ITP (Azure ML on Kubernetes) has no singkit counterpart",
    "pool": "XT's pool of your own machines (over ssh); singkit's `local` and `docker` targets run on this machine",
    "mongo": "XT's run database; singkit keeps runs in its own store (.singkit)",
    "odbc": "XT's run database; singkit keeps runs in its own store (.singkit)",
    "vault": "XT's key vault; singkit reads secrets from the environment (`$env:NAME`)",
    "email": "XT's job notifications; singkit has none",
    "sms": "XT's job notifications; singkit has none",
    "openai": "XT's OpenAI key for its assistant; singkit does not use one",
}
# XT's built-in service name for its box pool (factory_config.yaml: `service: "pool"`, no record)
POOL_SERVICE = "pool"

# A Singularity target without `sla:` has no SLA in XT 0.0.342: its factory config maps service type
# `singularity` to xtlib.backends.backend_singularity.Singularity (factory_config.yaml `providers:
# compute:`), whose submit reads `sla = compute_def["sla"]` with no default (a KeyError unless
# `xt run --sla=…` set it: runner.py update_compute_def_from_cmd_options); xt_config_schema.yaml has
# `sla` optional with no default. Only the unused old_backend_singularity.py defaulted to "basic".
# So the import writes no `sla:` and says so; singkit's own default (Standard) applies.
SLA_NOTE = ("no `sla`: XT 0.0.342 has no default for it (backends/backend_singularity.py reads compute_def[\"sla\"]; "
            "`xt run --sla=…` had to give it), so singkit's default, standard, applies; write `sla: basic|standard|premium` to choose")

# An XT storage record is XT's run store: the record's name is the storage account (xtlib 0.0.342
# storage/store_azure_blob_12_18.py: `storage_url = "https://{}.blob.core.windows.net".format(storage_id)`,
# storage_id = the record's name), `key` its account key (xt_config_schema.yaml rec_storage: provider,
# azure-login, key, path, pool_connections; no container: XT names containers after its workspaces).
# singkit's storage record serves general.store only and needs a container XT never names, so the
# record is left out with the lines that would mirror singkit's store there.
def storage_skip(name: str) -> str:
    url = f"https://{name}.blob.core.windows.net"
    return (f"XT's run store (storage account {name}, {url}; XT keeps each workspace's runs in a container named after it); "
            f"singkit keeps jobs in .singkit: to mirror them to this account, add `{name}: {{type: storage, account-url: {url}, "
            f"container: <a container>}}` and `general.store: {name}` (signed in with general.credential, as XT's azure-login)")

# The virtual clusters XT's Singularity backend knows, and the subscription and resource group
# it builds their ARM ids from (its VC records say `subscription-id: "notused"`): xtlib
# backends/backend_singularity.py `submit_node_run`, the `vc_name in [...]` table.
_LAB = ("156138e5-a3b1-48af-9e2e-883f4df3f457", "gcr-singularity-lab")
_GCR = ("22da88f6-1210-4de2-a5a3-da4c7c2a1213", "gcr-singularity")
_RESRCH = ("22da88f6-1210-4de2-a5a3-da4c7c2a1213", "gcr-singularity-resrch")
_OCTO = ("d4404794-ab5b-48de-b7c7-ec1fefb0a04e", "gcr-singularity-octo")
XT_VIRTUAL_CLUSTERS: dict[str, tuple[str, str]] = {
    **{n: _LAB for n in ("dell1", "msrresrchlab", *(f"kings{i:02d}" for i in range(1, 13)),
                        *(f"mckinley{i:02d}" for i in range(1, 9)), *(f"barlow{i:02d}" for i in range(1, 10)))},
    **{n: _GCR for n in (*(f"baltic{i:02d}" for i in range(1, 13)), *(f"huashanvc{i}" for i in range(1, 5)))},
    "msrresrchvc": _RESRCH, "msrreschlab": _RESRCH, "msrresrchbasicvc": _GCR,
    "msroctovc": _OCTO, "msroctobasicvc": _OCTO, "quickdevvc": _OCTO,
}


def virtual_cluster_ids(name: str) -> tuple[str, str] | None:
    """(subscription id, resource group) of a Singularity virtual cluster in XT's public table, or
    None for a cluster XT does not know. The one lookup both importers use (XT's and Amulet's):
    XT's backend matches the name exactly (`vc_name in [...]`), so this does too."""
    return XT_VIRTUAL_CLUSTERS.get(name)


NOT_USED = "notused"  # XT's placeholder id (factory_config.yaml virtual_cluster records)

SERVICE_KEYS = {
    "user-identity-client-id": "singkit looks the identity's client id up in the workspace at submit",
    "azure-login": "singkit signs in to Azure with general.credential (DefaultAzureCredential by default)",
    "provider": "XT's storage provider class; singkit talks to Blob Storage itself",
    "pool_connections": "an XT storage tuning knob; singkit needs none",
    "url": "an endpoint of a service singkit does not use",
}
TARGET_KEYS = {
    "azure-image": "an Azure Batch VM image; Azure ML picks the VM image itself",
    "boxes": "XT pool boxes; singkit's local/docker targets run on this machine",
    "box-class": "XT pool boxes; singkit's local/docker targets run on this machine",
    "vc": "a Philly/ITP virtual cluster; singkit's Singularity targets name theirs in `compute:`",
    "cluster": "a Philly/ITP cluster name; no singkit counterpart",
    "queue": "a Philly/ITP queue; no singkit counterpart",
    "sku": "an ITP/Philly GPU count (g1, g4); singkit's `vm-size` names the instance type",
    "install-docker": "XT installs Docker on pool boxes; Azure ML runs the image itself",
    "docker-run-cmd": "XT's docker command for pool boxes; singkit's docker target uses the Docker Engine API",
    "low-pri": "on Singularity the `sla` decides preemption; `low-pri` is for Azure ML compute clusters",
}
SETUP_KEYS = {
    "use-sudo": "XT's pip/apt run under sudo on its VMs; a container job runs as its image's user",
    "install-blobfuse": "XT mounts storage with blobfuse; singkit mounts data as the target's inputs/outputs",
    "mounting-enabled": "XT's blobfuse mounts; singkit mounts data as the target's inputs/outputs",
    "python-version": "XT installs this Python on Azure Batch VMs; the image decides it on Azure ML",
    "use-legacy-resolver": "an old pip option (--use-deprecated=legacy-resolver); add it to a pre-cmds pip line if you need it",
    "python-path": "XT prepends these to PYTHONPATH; set PYTHONPATH under the target's `env:` if you need it",
    "other-cmds": "XT runs these after the pip installs; singkit's pre-cmds run before them: move them into pre-cmds if the order allows",
}
GENERAL_KEYS = {
    "username": "the name XT files runs under; singkit's store is yours",
    "workspace": "XT's workspace (a storage container of runs); singkit's store is per project (.singkit)",
    "display-name": "XT's Singularity display name; singkit names each Azure ML run by its run id (jobN.M)",
    "env-vars": "carried into the `env:` of every setup, and a target with no setup gets setup `xt-env` "
                "(`$$NAME` as `$env:NAME`: read from your shell when you submit, as XT read it)",
    "advanced-mode": "an XT console setting",
    "distributed": "in singkit a target with nodes > 1 or processes-per-node > 1 is one distributed job",
}
# Whole XT sections singkit has no counterpart for, by kind (any other section: "no singkit counterpart").
_REPORTS = "XT's report settings; singkit's report.* tasks take options (report.list --columns, --sort, ...)"
SECTIONS = {
    **{s: _REPORTS for s in ("run-reports", "job-reports", "node-reports", "request-reports", "compare-reports",
                             "named-columns", "plots", "user-filters", "hyperparameter-explorer", "tensorboard")},
    "stores": "XT's job store (storage + database); singkit keeps jobs in .singkit (mirrored with general.store)",
    "store": "XT's job store (storage + database); singkit keeps jobs in .singkit (mirrored with general.store)",
    "boxes": "XT's ssh boxes; singkit's local/docker targets run on this machine",
    "azure-batch-images": "Azure Batch VM images; singkit has no Azure Batch targets",
    "after-files": "singkit keeps each run's outputs folder (singkit_metrics.outputs_dir())",
    "data": "singkit names data as a target's inputs (azureml://datastores/...)",
    "model": "singkit names data as a target's inputs/outputs",
    "mounting": "singkit mounts data as a target's inputs/outputs",
    "hyperparameter-search": "singkit sweeps with `job.submit --hp NAME=V1,V2` (a grid)",
    "early-stopping": "no singkit counterpart",
    "providers": "XT's plug-in classes",
    "script-launch-prefix": "XT's node script launcher; singkit runs the command with sh",
}
