"""The Singularity backend: Azure ML command jobs on a virtual cluster, through azure-ai-ml.

    spec.py     target + run → CLI v2 job YAML (and the SDK entity); the values come from
                singkit.singularity.target (catalog, AISuperComputer, compute forms: no azure)
    offers.py   what a virtual cluster offers: its instance types and quota (asked online, cached)
    preflight.py  before anything queues: the size against the cluster's list, the identity
    client.py   MLClient, credential, cloud, retries, one-line errors
    status.py   Azure ML states → singkit statuses
    logs.py     following user logs with node/rank prefixes
    mirror.py   the jobs' Blob mirror of run.log/stdout (written by scripts/blob_sync.py)
    staging.py  the uploaded code with the in-job scripts, the job's command and environment
    backend.py  SingularityBackend (the singkit.backends.base interface)

Nothing here imports azure.* at module level.
"""

from singkit.backends.singularity.backend import SingularityBackend

__all__ = ["SingularityBackend"]
