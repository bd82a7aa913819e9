"""The shape of a singkit config, as one JSON Schema used both to validate and to help editors.

Keys are hyphenated; XT's underscore spellings (`post_sing_steps`, `sing_wrap`, `vm_size`) are
listed too so an editor accepts a config copied from XT. `ALIASES` maps each spelling to its
canonical key.
"""

from __future__ import annotations

from typing import Any

from singkit.backendkinds import REMOTE_SERVICES

SCHEMA_ID = "https://singkit.dev/schema/config.json"

SECTIONS = ("external-services", "dockers", "compute-targets", "setups", "general", "skus", "datastores")
SECTION_ALIASES = {s.replace("-", "_"): s for s in SECTIONS if "-" in s}

# a service record is a backend kind that runs elsewhere (singkit.backendkinds), or a resource one uses
SERVICE_TYPES = (*REMOTE_SERVICES, "virtual_cluster", "registry", "storage")
SLA_VALUES = ("premium", "standard", "basic")
PRIORITY_VALUES = ("low", "medium", "high")

# Keys whose values are secrets: a committed (project) config must reference them as `$env:NAME`.
SECRET_KEYS = frozenset({"password", "connection-string", "sas", "sas-token", "account-key", "client-secret", "token"})

# Environment variables (in `env:` maps) whose names say they hold a secret.
SECRET_ENV_NAME = r"(?i)(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|ACCOUNT_?KEY|PRIVATE_?KEY|SAS|CONNECTION_?STRING|CREDENTIALS?)$"


def is_secret_env(name: str) -> bool:
    import re

    return re.search(SECRET_ENV_NAME, str(name)) is not None


# Singularity's installer and validator repositories, as the published wrap recipe names them
# (its tags then were 20220218T112740648 and 20220309T233405410). No tag: a wrap uses each
# repository's newest dated tag (singkit.images.render.stage_image); `repo:tag` pins one.
DEFAULT_INSTALLER = "singularitybase.azurecr.io/installer/base/singularity-installer"
DEFAULT_VALIDATOR = "singularitybase.azurecr.io/validations/base/singularity-tests"

# Caps on counts and durations. The Azure ML REST API carries `instanceCount` as an Int32
# (2,147,483,647), which would accept `nodes: 1000000000`; these are singkit's own, documented
# caps: far above any Singularity or Azure ML quota a researcher gets, far below a typo's value.
MAX_NODES = 1000
MAX_PROCESSES_PER_NODE = 1000
MAX_RUN_SECONDS = 366 * 24 * 3600  # a year
MAX_GRACE_SECONDS = 24 * 3600

_str: dict[str, Any] = {"type": "string"}
_bool: dict[str, Any] = {"type": "boolean"}
_str_list: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
_env_map: dict[str, Any] = {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}}
_secret: dict[str, Any] = {"type": "string", "description": "a secret: write `$env:NAME` and set NAME in the environment"}


def _with(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "description": description}


SERVICE_FIELDS: dict[str, dict[str, Any]] = {
    "singularity": {
        "subscription-id": _str,
        "resource-group": _str,
        "workspace": _with("Azure ML workspace; defaults to the record's name", _str),
        "user-identity-id": _with("user-assigned identity for the jobs: its ARM id or its name (resolved through the workspace)", _str),
        "cloud": _with("Azure cloud name (AzureCloud, AzureChinaCloud, …)", _str),
        "location": _str,
    },
    "virtual_cluster": {"subscription-id": _str, "resource-group": _str, "location": _str},
    "registry": {
        "login-server": _with("host[:port] of the registry", _str),
        "username": _str,
        "password": _secret,
        "login": _bool,
        "pull": {"enum": ["identity"], "description": "Singularity jobs pull from it with their user-assigned "
                 "identity, which you gave AcrPull there (singkit cannot check role assignments)"},
    },
    "storage": {
        "connection-string": _secret,
        "account-url": _str,
        "sas": _secret,
        "container": _str,
        "provider": _str,
    },
}
SERVICE_FIELDS["aml"] = SERVICE_FIELDS["singularity"]
SERVICE_REQUIRED = {
    "singularity": ["subscription-id", "resource-group"],
    "aml": ["subscription-id", "resource-group"],
    "virtual_cluster": ["subscription-id", "resource-group"],
    "registry": ["login-server"],
    "storage": ["container"],
}

DOCKER_FIELDS: dict[str, dict[str, Any]] = {
    "image": _with("image name in its registry, with a tag", _str),
    "registry": _with("name of a `type: registry` record in external-services", _str),
    "sha256": {"type": "string", "pattern": "^(sha256:)?[0-9a-f]{64}$", "description": "pinned digest (written by image.pin)"},
    "base-sha256": {"type": "string", "pattern": "^(sha256:)?[0-9a-f]{64}$", "description": "digest of the base image (written by image.pin)"},
    "sing-wrap": _with("wrap the image so it is Singularity-compliant", _bool),
    "post-sing-steps": _with("Dockerfile lines run after the Singularity installer", _str_list),
    "installer-image": _str,
    "validator-image": _str,
    "accelerator": {"type": "string", "enum": ["NVIDIA", "AMD", "CPU"]},
    "template": _with("a Jinja template of your own that extends wrap.Dockerfile.j2", _str),
    "build-args": _env_map,
    "wrapped-image": _with("name:tag the wrapped image is pushed as (default: <image>-sing)", _str),
}

TARGET_FIELDS: dict[str, dict[str, Any]] = {
    "service": _with("local, docker, or an external-services record (singularity/aml)", _str),
    "compute": _with("virtual cluster name (a virtual_cluster or singularity record, or just the name)", _str),
    "vm-size": _with("Singularity instance type, e.g. ND12_H100_v5 or ND96amrs_A100_v4 (`invoke config.skus` lists them)", _str),
    "location": _str,
    "locations": _str_list,
    "nodes": {"type": "integer", "minimum": 1, "maximum": MAX_NODES},
    # no "type": the value is judged on the merged config (config.references.per_node_problem), once
    "processes-per-node": {"description": "processes started on each node: a number, or `gpus` (one per GPU); default 1"},
    "grace-seconds": {"type": "number", "minimum": 0, "maximum": MAX_GRACE_SECONDS,
                      "description": "seconds a run's program gets between SIGTERM and SIGKILL on a cancel or a "
                                     "preemption, to save its work; default 30"},
    "shell": {"type": "string", "enum": ["auto", "bash", "sh"],
              "description": "the shell a run's setup and command run in: auto (default) = bash where the "
                             "machine or image has it, else sh; sh forces POSIX sh; bash requires bash"},
    # Azure ML CLI v2 command job YAML `limits.timeout` (integer seconds; azure-ai-ml CommandJobLimits
    # "The maximum run duration, in seconds, after which the job will be cancelled"); Amulet's
    # submit_args.max_run_duration_seconds
    "max-run-seconds": {"type": "integer", "minimum": 1, "maximum": MAX_RUN_SECONDS,
                        "description": "a run is cancelled after this many seconds (Azure ML's limits.timeout); local "
                                       "runs are stopped too (SIGTERM, then SIGKILL after grace-seconds), reason `timeout`"},
    "group-policy": _with("Singularity group policy (AISuperComputer.groupPolicyName)", _str),
    "tensorboard-log-dir": _with("AISuperComputer.tensorboardLogDirectory, e.g. /scratch/tensorboard_logs", _str),
    "enable-azml-int": _with("AISuperComputer.enableAzmlInt", _bool),
    "sla": {"type": "string", "enum": list(SLA_VALUES)},
    "priority": {"type": "string", "enum": list(PRIORITY_VALUES)},
    "setup": _with("name of a record in setups", _str),
    "docker": _with("name of a record in dockers", _str),
    "env": _env_map,
    "network": _with("docker target: give containers a network", _bool),
    "gpus": _with("docker target: request GPUs (default: when the engine has them)", _bool),
    "interactive": _bool,
    "low-pri": _with("Azure ML compute cluster: run on low-priority VMs (XT's low-pri)", _bool),
    "image-version": _str,
    "scale-policy": {"type": "object"},
    "ai-super-computer": _with("raw resources.properties.AISuperComputer overrides (checked by singkit)", {"type": "object"}),
    "code-dirs": _str_list,
    "code-omit": _str_list,
    "description": _str,
    # singkit.mounts: NAME -> azureml://datastores/NAME/paths/PATH or a blob URI
    "inputs": _with("data folders mounted read-only: NAME: azureml://datastores/STORE/paths/PATH (or a blob URI); "
                    "$SINGKIT_INPUT_<NAME>, the first also $SINGKIT_DATA_DIR", {"type": "object", "additionalProperties": _str}),
    "outputs": _with("folders mounted read-write, one sub-folder per run: NAME: azureml://datastores/STORE/paths/PATH; "
                     "$SINGKIT_OUTPUT_<NAME>, the first also $SINGKIT_OUTPUT_DIR", {"type": "object", "additionalProperties": _str}),
}

DATASTORE_FIELDS: dict[str, dict[str, Any]] = {
    "path": _with("the local folder that stands for this datastore on the local and docker targets "
                  "(relative: from the project root)", _str),
    "url": _with("a blob container URL (https://ACCOUNT.blob.core.windows.net/CONTAINER) whose blob URIs map to `path`", _str),
    "description": _str,
}

SETUP_FIELDS: dict[str, dict[str, Any]] = {
    "pip": _with("packages for `python -m pip install`, run after pre-cmds and conda", _str_list),
    "conda": _with("packages for `conda install -y` (needs conda in the image; refused at run time without it)", _str_list),
    "pre-cmds": _with("shell commands run before the job's command, after activate", _str_list),
    "env": _env_map,
    "activate": _with("one shell command run first, in the job's shell (e.g. `conda activate myenv`; "
                      "XT's `$current_conda_env` is the submitting machine's)", _str),
}

GENERAL_FIELDS: dict[str, dict[str, Any]] = {
    "experiment": _str,
    "primary-metric": _str,
    "maximize": _bool,
    "step-name": _str,
    "store": _with("external-services storage record that mirrors the job store", _str),
    "installer-image": _str,
    "validator-image": _str,
    "code-dirs": _str_list,
    "code-omit": _str_list,
    "default-target": _str,
    "credential": {"type": "string", "enum": ["default", "cli", "managed-identity", "environment", "workload-identity", "azd", "powershell"],
                   "description": "the Azure credential: default (DefaultAzureCredential), cli (az login), managed-identity, ..."},
    "default-command": _str,
}

SKU_FIELDS: dict[str, dict[str, Any]] = {
    "gpus": {"type": "integer", "minimum": 0, "maximum": 1024},
    "gpu-type": _str,
    "vendor": {"type": "string", "enum": ["NVIDIA", "AMD", "none"]},
    "gpu-memory-gb": {"type": "number"},
    "cpus": {"type": "integer", "minimum": 1, "maximum": 100_000},
    "memory-gb": {"type": "number"},
    "price-per-hour": {"type": "number", "minimum": 0},
}

# XT spellings (and a few common slips) accepted as-is and read as the canonical key.
ALIASES: dict[str, str] = {
    k.replace("-", "_"): k
    for fields in (DOCKER_FIELDS, TARGET_FIELDS, SETUP_FIELDS, DATASTORE_FIELDS, GENERAL_FIELDS, SKU_FIELDS, *SERVICE_FIELDS.values())
    for k in fields
    if "-" in k
}
ALIASES.update({"pip-packages": "pip", "conda-packages": "conda"})


def _record(fields: dict[str, dict[str, Any]], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    props = dict(fields)
    for alias, canonical in ALIASES.items():
        if canonical in fields and alias not in props:
            props[alias] = {**fields[canonical], "description": f"XT spelling of `{canonical}`"}
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = required
    out.update(extra)
    return out


def _service_record() -> dict[str, Any]:
    branches = []
    for kind, fields in SERVICE_FIELDS.items():
        branches.append({
            "if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
            "then": _record({"type": _str, **fields}, SERVICE_REQUIRED[kind]),
        })
    return {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"type": "string", "enum": list(SERVICE_TYPES)}},
        "allOf": branches,
    }


def _map_of(record: dict[str, Any]) -> dict[str, Any]:
    return {"type": ["object", "null"], "additionalProperties": record}


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one config file."""
    sections = {
        "external-services": _map_of(_service_record()),
        "dockers": _map_of(_record(DOCKER_FIELDS)),
        "compute-targets": _map_of(_record(TARGET_FIELDS)),
        "setups": _map_of(_record(SETUP_FIELDS)),
        "general": {**_record(GENERAL_FIELDS), "type": ["object", "null"]},
        "skus": _map_of(_record(SKU_FIELDS)),
        "datastores": _map_of(_record(DATASTORE_FIELDS)),
    }
    for alias, canonical in SECTION_ALIASES.items():
        sections[alias] = {**sections[canonical], "description": f"XT spelling of `{canonical}`"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "singkit config",
        "type": "object",
        "properties": sections,
        "additionalProperties": False,
    }


def canonical_key(key: str) -> str:
    return ALIASES.get(key, SECTION_ALIASES.get(key, key))
