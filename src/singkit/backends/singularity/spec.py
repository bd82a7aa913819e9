"""A Singularity target + a run → an Azure ML CLI v2 command-job YAML (and its azure-ai-ml entity).

The spec is built as a plain mapping (no azure import), written as the YAML that
`az ml job create -f` would take, and turned into the SDK's job entity with
`azure.ai.ml.load_job` — so a dry run and a submission go through the very same file.
Secrets never enter it: the Blob SAS a job uses is added to the entity at submit time only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from singkit import mounts
from singkit.exceptions import ConfigError, UsageError
from singkit.fsutil import atomic_write
from singkit.singularity import target as targets
from singkit.singularity.target import Workspace

if TYPE_CHECKING:
    from singkit.config.model import Config

SCHEMA = "https://azuremlschemas.azureedge.net/latest/commandJob.schema.json"
UAI_VARIABLE = "_AZUREML_SINGULARITY_JOB_UAI"
AISC = "AISuperComputer"
# The image Azure ML validates when Singularity picks the real one from AISuperComputer.imageVersion
# (HSPK/azure_jobs, src/azure_jobs/core/submit/_environment.py: _SING_DUMMY_IMAGE).
CURATED_PLACEHOLDER = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest"

__all__ = ["Workspace", "build_spec", "image_reference", "load_spec", "write_spec"]


def image_reference(cfg: Config, docker: Mapping[str, Any], allow_unpinned: bool = False, *, wrapped: bool = True,
                    resolved: str | None = None) -> str:
    """`<login-server>/<repo>@sha256:<digest>` for a docker record: the wrapped image when
    `sing-wrap: true` (named as image.wrap names it), or with `wrapped=False` (a compute-cluster
    job, which runs the base image as XT's aml backend does) the record's own image. `resolved`:
    that reference as the submit pipeline's resolve_image step wrote it into job.yaml (the one rule,
    imageref.run_reference; computed here only when not given). Refuses an unpinned one
    (ConfigError at the record) unless `allow_unpinned`."""
    from singkit.imageref import run_reference

    name = docker.get("name", "?")
    if resolved is None:
        registry = cfg.service(docker["registry"]) if docker.get("registry") else None
        try:
            resolved = run_reference(dict(docker), registry, wrapped=wrapped)
        except ValueError as error:
            raise UsageError(f"docker record `{name}`: {error}") from None
    if "@" in resolved or allow_unpinned:  # run_reference writes `@` only for a pinned image
        return resolved
    key = "sha256" if wrapped and docker.get("sing-wrap") and cfg.where("dockers", name, "sha256") else "image"
    raise targets.located(cfg, "dockers", name, key, unpinned_message(name, dict(docker), wrapped=wrapped))


def unpinned_message(name: str, record: Mapping[str, Any] | None = None, *, wrapped: bool = True) -> str:
    """singkit.imageref.unpinned_text, and the way past it for this one job."""
    from singkit.imageref import unpinned_text

    return unpinned_text(name, dict(record or {}), wrapped=wrapped) + ", or pass --allow-unpinned"


def environment_variables(setup: Mapping[str, Any] | None, target: Mapping[str, Any],
                          extra: Mapping[str, Any] | None) -> dict[str, str]:
    """Setup env, then target env, then the caller's — all as strings, as Azure ML wants."""
    merged: dict[str, Any] = {}
    merged.update((setup or {}).get("env") or {})
    merged.update(target.get("env") or {})
    merged.update(extra or {})
    return {str(k): _env_text(v) for k, v in merged.items() if v is not None}


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def setup_command(setup: Mapping[str, Any] | None, command: str) -> str:
    """The setup's steps (activate, pre-commands, conda and pip installs: singkit.backends.runtime.setup),
    then the command, joined with &&."""
    from singkit.backends.runtime.setup import steps

    return " && ".join([*steps(setup, pip_options="--no-input -q"), command])


def build_spec(cfg: Config, target: Mapping[str, Any], *, job_id: str, run_id: str, command: str,
               name: str, code: str = "code", extra_env: Mapping[str, Any] | None = None,
               allow_unpinned: bool = False, docker: Any = None, setup: Mapping[str, Any] | None = None,
               experiment: str | None = None, identity: Mapping[str, str] | None = None,
               output_key: str | None = None, image: str | None = None) -> dict[str, Any]:
    """The CLI v2 command-job mapping for one run of a job on a Singularity target (or an Azure
    ML compute cluster target: the same job with a smaller placement, see `_placement`).

    `command` is what runs on each process (the in-job wrapper around the user's command);
    `name` is the Azure ML job name, chosen by the caller so a retried PUT stays idempotent;
    `code` is the folder to upload, relative to where the YAML will be written;
    `docker`: the stored job's docker record (default: the config's for the target's name);
    a `setup`'s pre-commands and pip installs are prefixed to `command`; `identity`: the
    user-assigned identity as resolved online ({"id", "client_id"}), else the record's value;
    `output_key`: the folder under each of the target's `outputs:` this run writes (an earlier
    run's on `--resume`; default `name`, unique on a shared datastore), see singkit.mounts;
    `image`: the docker record's image as the submit pipeline resolved it (job.yaml `image.ref`).
    Raises ConfigError (file:line:col) for what singkit.singularity.target finds wrong."""
    resolved = targets.resolve(cfg, target, docker=docker)
    if resolved.errors:
        raise ConfigError(resolved.errors)
    spec: dict[str, Any] = {
        "$schema": SCHEMA,
        "type": "command",
        "name": name,
        "display_name": run_id,
        "experiment_name": str(experiment or cfg.general.get("experiment") or "singkit"),
        "description": f"singkit {run_id} on {resolved.name}",
        "tags": {"singkit.job": job_id, "singkit.run": run_id, "singkit.target": resolved.name},
        "code": code,
        # the mount paths reach the program through the command: Azure ML substitutes ${{inputs.X}} there
        "command": mounts.command_exports(target) + setup_command(setup, command),
        "environment": _environment(cfg, resolved, allow_unpinned, image),
        "environment_variables": environment_variables(setup, target, extra_env) or None,
        **_placement(resolved),
        "distribution": resolved.distribution,
        "limits": limits(target),
    }
    spec["inputs"], spec["outputs"] = mounts.azureml_io(target, output_key or name)
    spec = {k: v for k, v in spec.items() if v is not None and (v or k not in ("inputs", "outputs"))}
    variables = spec.setdefault("environment_variables", {})
    if not resolved.is_cluster:  # Singularity's identity variable; a cluster runs as its own identity
        variables.update(identity_variables(resolved.identity, identity))
    if not variables:
        del spec["environment_variables"]
    return spec


def limits(target: Mapping[str, Any]) -> dict[str, int] | None:
    """`limits.timeout` of the CLI v2 command job YAML (Microsoft Learn, "CLI (v2) command job YAML
    schema": `limits.timeout`, integer, "the maximum time in seconds the job is allowed to run. Once
    this limit is reached the system will cancel the job"; azure-ai-ml entities/_job/job_limits.py
    CommandJobLimits sends it as an ISO 8601 duration) from the target's `max-run-seconds`."""
    value = target.get("max-run-seconds")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None  # the schema refuses it at its line first
    return {"timeout": value}


def _placement(resolved: targets.Resolved) -> dict[str, Any]:
    """Where the job runs. A virtual cluster: its ARM id, `Singularity.<size>`, the AISuperComputer
    block and queue settings. A compute cluster (singkit.singularity.amlcompute): `azureml:<name>`
    and the node count only — the cluster's own size and tier decide the VMs (CLI v2 command job
    schema: `resources.instance_type` is for Kubernetes computes), and no Singularity block."""
    if resolved.is_cluster:
        return {"compute": f"azureml:{resolved.compute}", "resources": {"instance_count": resolved.nodes}}
    return {
        "compute": resolved.compute,
        "resources": {
            "instance_count": resolved.nodes,
            "instance_type": resolved.instance_type,
            **({"locations": resolved.locations} if resolved.locations else {}),
            "properties": {AISC: resolved.aisc},
        },
        "queue_settings": {"job_tier": resolved.aisc["slaTier"].lower(), "priority": resolved.aisc["priority"].lower()},
    }


def _environment(cfg: Config, resolved: targets.Resolved, allow_unpinned: bool, image: str | None = None) -> Any:
    """`azureml:NAME:VERSION` (a registered environment), the pinned image, or — with no docker
    record — the SDK's curated placeholder: the image comes from AISuperComputer.imageVersion."""
    if resolved.environment:
        return resolved.environment
    if resolved.docker:
        # a compute cluster runs the base image: XT's aml backend drops the record's sing_wrap
        # (xtlib 0.0.342 backends/backend_aml.py: `container_registry, docker_image, _, =
        # self.get_docker_container_registry(args)`, then `base_image: docker_image`)
        return {"image": image_reference(cfg, resolved.docker, allow_unpinned, wrapped=not resolved.is_cluster,
                                         resolved=image)}
    return {"image": CURATED_PLACEHOLDER}


def identity_variables(record_value: str | None, online: Mapping[str, str] | None) -> dict[str, str]:
    """Where Singularity looks for the job's user-assigned identity (`_AZUREML_SINGULARITY_JOB_UAI`,
    its ARM id), and its client id for SDKs inside the job (DEFAULT_IDENTITY_CLIENT_ID,
    AZURE_CLIENT_ID, read by azure-identity's DefaultAzureCredential / ManagedIdentityCredential)."""
    if not record_value and not online:
        return {}
    arm_id = (online or {}).get("id") or str(record_value)
    out = {UAI_VARIABLE: arm_id}
    client_id = (online or {}).get("client_id")
    if client_id:
        out.update(DEFAULT_IDENTITY_CLIENT_ID=client_id, AZURE_CLIENT_ID=client_id)
    return out


def write_spec(path: Path, spec: Mapping[str, Any]) -> Path:
    """Write the spec as YAML (atomically); the header says what it is and how to use it."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096  # long image references and commands stay on one line
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]  # keep our key order (ruamel types it None)
    buffer = io.StringIO()
    buffer.write("# Azure ML CLI v2 command job written by singkit; `az ml job create -f <this file>` takes it too.\n")
    yaml.dump(dict(spec), buffer)
    atomic_write(path, buffer.getvalue())
    return path


def load_spec(path: Path) -> Any:
    """The azure-ai-ml job entity for a written spec, validated offline; UsageError if it is not valid."""
    from singkit.backends.singularity.client import import_sdk

    load_job = import_sdk().load_job
    from marshmallow.exceptions import ValidationError

    try:
        job = load_job(source=str(path))
    except (ValidationError, Exception) as error:  # the SDK raises several types here
        raise UsageError(f"{path}: Azure ML refuses this job spec: {_first_line(error)}") from error
    result = job._validate()
    if not result.passed:
        raise UsageError(f"{path}: Azure ML refuses this job spec: {_first_line(result)}")
    return job


def _first_line(error: Any) -> str:
    text = " ".join(str(error).split())
    return text[:300] + ("…" if len(text) > 300 else "")
