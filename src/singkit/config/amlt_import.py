"""Turning an Amulet (amlt, "Manifold") config into a singkit config and a jobs file.

Amulet's config file (https://amulet-docs.azurewebsites.net/main/config_file.html, as public
amlt configs use it) has `target`, `environment`, `code`, `storage`, `jobs` and `search`:

- `target` {service: sing|singularity|aml, name, workspace_name, resource_group, subscription_id}
  → an external-services record (type singularity or aml) named after the workspace; the
  target's `name` (the virtual cluster, or the aml compute cluster) becomes each target's `compute`.
- `environment` {image, registry, username, setup} → a docker record (+ a registry record whose
  password is `$env:SINGKIT_<REGISTRY>_PASSWORD`) and a setup whose `pre-cmds` are the setup lines.
- `code` {local_dir, ignore} → general.code-dirs / code-omit.
- `storage` {NAME: {storage_account_name, container_name, mount_dir}} → each target's `inputs:`
  (singkit.mounts), plus a setup line that links the mount to the `mount_dir` the commands read.
- each of `jobs` → a compute target of its own (sku → vm-size, nodes, processes-per-node, sla,
  priority, location) and a job of the jobs file (singkit.jobs.jobfile): command, env, sweep.
- `search` {type: grid|random, max_trials, params, job_template} → a job with a `sweep:`.

Amulet's `$$` is a literal `$` (HSPK/azure_jobs amlt.yaml: "Use $$VAR to pass env vars
literally ($VAR is interpolated at submission time)"); a value that is exactly `$VAR`/`${VAR}`
becomes `$env:VAR`, read on the submitting machine as Amulet reads it. Everything not carried
is listed (AmltImport.notes), never dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from singkit.config import schema
from singkit.config.amlt_jobs import Converter
from singkit.config.layers import plain, read_layer
from singkit.config.xt.facts import virtual_cluster_ids

# Amulet service names → singkit service types (the public configs spell Singularity both ways)
SERVICES = {"sing": "singularity", "singularity": "singularity", "aml": "aml"}
TOP_KEYS = ("description", "target", "environment", "code", "storage", "data", "jobs", "search", "env_defaults")


@dataclass
class AmltImport:
    config_text: str  # the singkit config, YAML with a header and a comment block of notes
    jobs_text: str  # the jobs file
    notes: list[str] = field(default_factory=list)  # what did not carry over, and why
    variables: list[str] = field(default_factory=list)  # environment variables to export before submitting
    fill_in: list[str] = field(default_factory=list)  # what the user must write before a real submit
    warnings: list[str] = field(default_factory=list)  # e.g. nothing to submit (an empty file, `jobs: []`)


def import_amlt(path: Path, project_root: Path, jobs_file: str = "amlt.jobs.yaml") -> AmltImport:
    """Convert the Amulet config at `path`. Raises ConfigError for unreadable YAML (file:line:col).

    `project_root`: where the singkit project is (code.local_dir is made relative to it);
    `jobs_file`: the jobs file's name, said in the config's header."""
    doc = _read(path)
    conv = Converter(path, project_root, doc.get("env_defaults") or {})
    for key in doc:
        if key not in TOP_KEYS:
            conv.note(key, "not an Amulet key singkit knows; left out")
    services = _services(doc.get("target") or {}, conv)
    conv.kind = services["kind"]
    data_storage = _data(doc.get("data"), doc.get("storage") or {}, conv)
    docker, setup = _environment(doc.get("environment") or {}, conv)
    general = _code(doc.get("code") or {}, conv)
    inputs, links = _storage(doc.get("storage") or {}, conv, data_storage)
    if links:
        conv.setup.setdefault("pre-cmds", []).extend(links)
    if doc.get("description"):
        conv.note("description", "kept as a comment (Amulet's experiment name is given to `amlt run`; singkit's is general.experiment)")
    for key in conv.defaults:
        conv.note(f"env_defaults.{key}", "Amulet's value when $" + key + " is not set where you submit: written where the "
                  "config uses it" + (" (a secret: as $env:" + key + ", never its value)" if schema.is_secret_env(key) else
                                      "; singkit does not read your environment for it"))
    base = {"service": services["record"], "compute": services["compute"], "docker": docker, "setup": setup,
            "inputs": inputs}
    jobs_out = conv.jobs(doc.get("jobs"), doc.get("search"), base)
    if conv.identity and services["record"]:
        services["records"][services["record"]]["user-identity-id"] = conv.identity
    out: dict[str, Any] = {"external-services": {**services["records"], **conv.registries}}
    if conv.docker:
        out["dockers"] = {docker: conv.docker}
    if conv.targets:
        out["compute-targets"] = conv.targets
    if conv.setup:
        out["setups"] = {setup: conv.setup}
    if general:
        out["general"] = general
    if not out["external-services"]:
        del out["external-services"]
    variables = sorted(set(conv.variables))
    header = [f"# Converted from the Amulet config {path.name} by `invoke config.import-amlt`.",
              f"# Its jobs are in {jobs_file}: `invoke job.submit --from {jobs_file} --job NAME --dry-run`."]
    if doc.get("description"):
        header.append(f"# Amulet description: {' '.join(str(doc['description']).split())}")
    if variables:
        header.append("# Read from the environment when you submit; export: " + ", ".join(variables))
    config_text = render(out, ["# yaml-language-server: $schema=singkit.schema.json", *header], conv.fill_in, conv.notes)
    jobs_text = render({"jobs": jobs_out}, [f"# singkit jobs file, converted from {path.name} (see README: Moving from Amulet)."],
                       [], [n for n in conv.notes if n.startswith(("jobs", "search"))])
    warnings = [] if jobs_out else [f"{path.name} has no jobs (no `jobs:` entry, no `search:`): the jobs file is empty and "
                                    "there is nothing to submit"]
    return AmltImport(config_text, jobs_text, conv.notes, variables, conv.fill_in, warnings)


def _read(path: Path) -> dict[str, Any]:
    """The Amulet config as plain data. UsageError for a missing or unreadable (binary) file,
    ConfigError at 1:1 for YAML that is not a mapping, as config.import-xt answers them."""
    from singkit.exceptions import ConfigError, Problem, UsageError

    try:
        path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {path}: {getattr(error, 'strerror', None) or error} (an Amulet config is YAML text)") from None
    doc = read_layer(path).doc
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(Problem(path, 1, 1, "an Amulet config is a mapping (target, environment, jobs, ...), "
                                  "not a " + ("list" if isinstance(doc, list) else "single value")))
    return plain(doc)


def _services(target: dict[str, Any], conv: Converter) -> dict[str, Any]:
    """The workspace record of Amulet's `target`, and the compute its jobs run on."""
    service = str(target.get("service", "")).lower()
    kind = SERVICES.get(service)
    known = ("service", "name", "workspace_name", "resource_group", "subscription_id")
    for key in target:
        if key not in known:
            conv.note(f"target.{key}", "not used by singkit")
    if not kind:
        conv.note("target.service", f"`{service or '(none)'}` has no singkit counterpart (singkit submits to Singularity "
                  "and Azure ML compute clusters); the jobs run on the `local` target")
        return {"kind": None, "record": None, "compute": None, "records": {}}
    name = str(target.get("name") or "")
    if not name:
        conv.fill_in.append(f"compute-targets.*.compute: the {'virtual cluster' if kind == 'singularity' else 'compute cluster'}"
                            " (Amulet's target.name was not given)")
    workspace = str(target.get("workspace_name") or "")
    record: dict[str, Any] = {"type": kind}
    if target.get("subscription_id"):
        record["subscription-id"] = str(target["subscription_id"])
    if target.get("resource_group"):
        record["resource-group"] = str(target["resource_group"])
    record_name = workspace or f"{name or 'amlt'}-workspace"
    if not workspace:
        record["workspace"] = "FILL-IN-WORKSPACE"
        conv.fill_in.append(f"external-services.{record_name}.workspace: the Azure ML workspace (Amulet's "
                            "target.workspace_name was not given; Amulet picks the VC's default)")
    for key in ("subscription-id", "resource-group"):
        if key not in record:
            conv.fill_in.append(f"external-services.{record_name}.{key}: Amulet looks it up from the "
                                f"{'virtual cluster' if kind == 'singularity' else 'workspace'}; singkit needs it written "
                                f"(`az ml workspace show -n {workspace or 'WORKSPACE'} --query id`)")
    records = {record_name: record}
    if kind == "singularity" and name and name != record_name:
        records[name] = _virtual_cluster(name, conv)
    return {"kind": kind, "record": record_name, "compute": name or None, "records": records}


def _virtual_cluster(name: str, conv: Converter) -> dict[str, Any]:
    """The `type: virtual_cluster` record of Amulet's target.name. A virtual cluster usually lives in
    another subscription and resource group than the workspace (XT's table: mckinley01 in
    gcr-singularity-lab, the workspaces elsewhere), so the workspace's are never assumed: the ids come
    from XT's public table (the lookup import-xt uses), else they are FILL-IN placeholders that
    config.validate and every submit refuse at their line."""
    known = virtual_cluster_ids(name)
    if known:
        conv.note("target.name", f"virtual cluster `{name}`: subscription {known[0]}, resource group {known[1]}, "
                  "from XT's public table of Singularity clusters (xtlib backends/backend_singularity.py)")
        return {"type": "virtual_cluster", "subscription-id": known[0], "resource-group": known[1]}
    for key in ("subscription-id", "resource-group"):
        conv.fill_in.append(f"external-services.{name}.{key}: the virtual cluster's (Amulet looks it up; it is often not the "
                            f"workspace's: `az resource list --name {name} --query [].id`)")
    return {"type": "virtual_cluster", "subscription-id": "FILL-IN-SUBSCRIPTION", "resource-group": "FILL-IN-RESOURCE-GROUP"}


def _environment(env: dict[str, Any], conv: Converter) -> tuple[str | None, str]:
    """The docker record's name (None without an image) and the setup's name."""
    for key in env:
        if key not in ("image", "registry", "username", "setup"):
            conv.note(f"environment.{key}", "not carried: singkit builds no image from it (put its steps in the setup or "
                      "the docker record's post-sing-steps)")
    setup_lines = env.get("setup") or []
    if isinstance(setup_lines, str):
        setup_lines = [setup_lines]
    if setup_lines:
        conv.setup["pre-cmds"] = [conv.command_text(str(line), "environment.setup", conv.shared_env) for line in setup_lines]
    image = env.get("image")
    if not image:
        conv.note("environment.image", "no image: Amulet's default image has no singkit counterpart; the targets run "
                  "without a docker record (set one before a Singularity submit)")
        return None, "amlt"
    image = str(image).strip()
    registry = str(env.get("registry") or "").strip()
    record: dict[str, Any] = {"image": f"{registry}/{image}" if registry and not image.startswith(registry + "/") else image}
    if registry:
        reg_name = _slug(registry.split(".")[0]) or "registry"
        reg: dict[str, Any] = {"type": "registry", "login-server": registry}
        if env.get("username"):
            reg["username"] = str(env["username"])
            variable = f"SINGKIT_{reg_name.upper().replace('-', '_')}_PASSWORD"
            reg["password"] = f"$env:{variable}"
            conv.variables.append(variable)
        conv.registries[reg_name] = reg
        record["registry"] = reg_name
    curated = image.startswith("amlt-sing/")
    if curated:
        conv.note("environment.image", f"`{image}` is one of Amulet's Singularity images, which Amulet resolves in its own "
                  "registry; write that registry's host into the image (or pick a public image)")
    # Amulet wraps a custom image for Singularity unless the job sets AMLT_DOCKERFILE_TEMPLATE: "none"
    # (public amlt config in an MSAGen README: `AMLT_DOCKERFILE_TEMPLATE: "none"  # skip Singularity verification`)
    record["sing-wrap"] = conv.kind == "singularity" and not curated
    conv.docker = record
    return _slug(image.rsplit("/", 1)[-1].split(":")[0].split("@")[0]) or "amlt-image", "amlt"


def _code(code: dict[str, Any], conv: Converter) -> dict[str, Any]:
    """general.code-dirs / code-omit from Amulet's `code` ($CONFIG_DIR = the amlt file's folder)."""
    general: dict[str, Any] = {}
    for key in code:
        if key not in ("local_dir", "ignore"):
            conv.note(f"code.{key}", "not used by singkit")
    if code.get("local_dir"):
        raw = str(code["local_dir"])
        where = Path(raw.replace("$CONFIG_DIR", str(conv.source.parent)).replace("${CONFIG_DIR}", str(conv.source.parent)))
        if not where.is_absolute():
            where = Path.cwd() / where
        try:
            relative = where.resolve().relative_to(conv.project_root.resolve())
            general["code-dirs"] = [relative.as_posix() or "."]
        except ValueError:
            conv.note("code.local_dir", f"`{raw}` is outside the project ({conv.project_root}); singkit snapshots "
                      "the project's folders only: code-dirs stays `.`")
    if code.get("ignore"):
        general["code-omit"] = [str(p) for p in code["ignore"]]
    return general


def _data(data: Any, storage: dict[str, Any], conv: Converter) -> str | None:
    """Amulet's `data:` {storage_id, remote_dir, local_dir}: the `storage:` entry (and folder in it)
    the jobs read as $AMLT_DATA_DIR (public amlt configs: `data: {storage_id: external}` beside three
    storage mounts; jobs `export DATA_DIR=${AMLT_DATA_DIR}`). singkit's data folder is the first input
    ($SINGKIT_DATA_DIR, singkit.mounts), so that storage becomes the first input and $AMLT_DATA_DIR
    is written $SINGKIT_DATA_DIR. Returns the storage's name, or None."""
    if data is None:
        return None
    if not isinstance(data, dict):
        conv.note("data", "not a mapping {storage_id, remote_dir, local_dir}: left out")
        return None
    for key in data:
        if key not in ("storage_id", "remote_dir", "local_dir"):
            conv.note(f"data.{key}", "not used by singkit")
    if data.get("local_dir"):
        conv.note("data.local_dir", "Amulet uploads this folder when you run; singkit does not: upload it to the data "
                  "storage's container yourself (`az storage blob upload-batch`)")
    name = str(data.get("storage_id") or "")
    if name and name not in storage:
        conv.note("data.storage_id", f"`{name}` is not one of `storage:` ({', '.join(map(str, storage)) or 'none'}): "
                  "$AMLT_DATA_DIR is left as written")
        return None
    if not name:
        conv.note("data", "no storage_id: Amulet's default data storage has no singkit counterpart; $AMLT_DATA_DIR is left "
                  "as written")
        return None
    remote = str(data.get("remote_dir") or "").strip("/")
    conv.data_dir = "${SINGKIT_DATA_DIR}" + (f"/{remote}" if remote else "")
    conv.note("data.storage_id", f"the storage `{name}` is the targets' first input, so $SINGKIT_DATA_DIR is its folder; "
              f"$AMLT_DATA_DIR is written {conv.data_dir}")
    return name


def _storage(storage: dict[str, Any], conv: Converter, first: str | None = None) -> tuple[dict[str, str], list[str]]:
    """Inputs (NAME → blob URI or datastore path; `first` leads: it is $SINGKIT_DATA_DIR) and the
    setup lines linking them to mount_dir."""
    inputs: dict[str, str] = {}
    links: list[str] = []
    order = sorted(storage.items(), key=lambda item: item[0] != first)  # stable: the rest keep their order
    for name, mount in order:
        mount = mount or {}
        key = re.sub(r"[^A-Za-z0-9_]", "_", str(name))
        key = key if re.match(r"^[A-Za-z_]", key) else f"s_{key}"
        account, container = mount.get("storage_account_name"), mount.get("container_name")
        for extra in mount:
            if extra not in ("storage_account_name", "container_name", "mount_dir", "local_dir"):
                conv.note(f"storage.{name}.{extra}", "not used by singkit")
        if mount.get("local_dir"):
            conv.note(f"storage.{name}.local_dir", "Amulet's folder for `amlt run -t local`; give singkit's local targets "
                      "a `datastores:` record whose `url:` is the container (see README: Data and checkpoints)")
        if not account or not container or "<" in f"{account}{container}":
            conv.note(f"storage.{name}", "no storage_account_name/container_name (or a <placeholder>): kept out; "
                      f"add it under the targets' inputs: as {key}: https://ACCOUNT.blob.core.windows.net/CONTAINER")
            continue
        inputs[key] = f"https://{account}.blob.core.windows.net/{container}"
        conv.note(f"storage.{name}", f"an input `{key}` (read-only): Amulet mounts the container read-write; a job that "
                  "writes there (checkpoints) needs it under `outputs:` as azureml://datastores/DATASTORE/paths/PATH "
                  "(Azure ML writes outputs through a registered datastore: `az ml datastore list`)")
        if mount.get("mount_dir"):
            target = str(mount["mount_dir"]).rstrip("/") or "/"
            # the commands read the mount where Amulet put it: link that path to singkit's mount
            links.append(f'mkdir -p "$(dirname {target})" && ln -sfn "$SINGKIT_INPUT_{key.upper()}" {target}')
    return inputs, links


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "-", text).strip("-.").lower()


def render(data: dict[str, Any], header: list[str], fill_in: list[str], notes: list[str]) -> str:
    """YAML with a header, a `fill in` block and a `not carried` comment block (none left silent)."""
    from io import StringIO

    from singkit.config.layers import yaml_rt

    lines = list(header)
    if fill_in:
        lines += ["#", "# Fill in before a real submit (config.validate names each at its line):"]
        lines += [f"#   - {item}" for item in fill_in]
    if notes:
        lines += ["#", "# What the import did not carry as it was, and why:"]
        lines += [f"#   - {note}" for note in notes]
    yaml = yaml_rt()
    yaml.indent(mapping=2, sequence=4, offset=2)
    buffer = StringIO()
    yaml.dump(data, buffer)
    return "\n".join(lines) + "\n\n" + buffer.getvalue()
