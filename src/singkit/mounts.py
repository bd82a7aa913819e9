"""Data inputs and checkpoint outputs of a job: one `inputs:`/`outputs:` on a target, every target.

A target names folders in cloud storage, each under a name the program sees:

    inputs:  {data: azureml://datastores/training/paths/mnist}      # or https://ACCT.blob.core.windows.net/C/P
    outputs: {ckpt: azureml://datastores/training/paths/checkpoints}

- Singularity: CLI v2 `inputs`/`outputs` of the command job, `type: uri_folder`, `mode: ro_mount`
  / `rw_mount` (azure-ai-ml 1.35.2 `azure/ai/ml/constants/_common.py` InputOutputModes.RO_MOUNT /
  RW_MOUNT, sent as `ReadOnlyMount` / `ReadWriteMount`; the path forms are Microsoft Learn's
  "Access data in a job" (how-to-read-write-data-v2): `azureml://datastores/<name>/paths/<path>`
  and `https://<account>.blob.core.windows.net/<container>/<path>`). Azure ML replaces
  `${{inputs.NAME}}` / `${{outputs.NAME}}` in the command with the mount paths, so the command
  exports them (command_exports).
- local / docker: the config's `datastores:` section maps each datastore name (and, with `url:`,
  a blob container URL) to a local folder: the input is read there (bind-mounted read-only in the
  container), the output written there (read-write).

Each run writes its own folder under an output: `<output path>/<key>`, the key being the run id
(`job3.1`) locally and the Azure ML job name on Singularity (unique across everyone writing to a
shared datastore). `job.rerun --resume` gives the new runs the earlier runs' keys (`output_key` in
job.yaml), so they find the checkpoints there.

The program sees `$SINGKIT_INPUT_<NAME>` / `$SINGKIT_OUTPUT_<NAME>` per name, `$SINGKIT_DATA_DIR`
(the first input) and `$SINGKIT_OUTPUT_DIR` (the first output; `singkit_metrics.outputs_dir()`).
No azure or docker import here; nothing reads the config (callers pass its records).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from singkit.exceptions import SingkitError

if TYPE_CHECKING:
    from singkit.store.jobspec import JobSpec, RunEntry

# Azure ML's own path forms (see the module docstring for the sources)
DATASTORE_URI = re.compile(r"^azureml://datastores/(?P<store>[^/]+)/paths/(?P<path>.*)$")
BLOB_URI = re.compile(r"^https://(?P<account>[a-z0-9]{3,24})\.blob\.(?P<suffix>[A-Za-z0-9.\-]+)"
                      r"/(?P<container>[a-z0-9][a-z0-9-]{1,61}[a-z0-9])(?:/(?P<path>.*))?$")
# An input/output name: azure-ai-ml 1.35.2 IOConstants.VALID_KEY_PATTERN (constants/_component.py,
# checked in entities/_job/_input_output_helpers.py) without its dotted form, which would not make
# one environment variable
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Datastores every Azure ML workspace has (Microsoft Learn, "Create datastores": workspaceblobstore,
# workspacefilestore, workspaceartifactstore, workspaceworkingdirectory)
WORKSPACE_STORES = ("workspaceblobstore", "workspacefilestore", "workspaceartifactstore", "workspaceworkingdirectory")
INSIDE = "/singkit/data"  # where a docker container sees them: INSIDE/inputs/NAME, INSIDE/outputs/NAME
EXAMPLE = "azureml://datastores/NAME/paths/PATH or https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH"


@dataclass(frozen=True)
class Location:
    """A parsed input/output URI: a datastore path (`datastore` set) or a blob URI (`url` set:
    the container's URL); `path` is the folder inside it, without surrounding slashes."""

    uri: str
    datastore: str | None
    url: str | None
    path: str


def parse(uri: Any) -> Location | None:
    """The Location of an input/output value, or None when it is neither form."""
    text = str(uri or "").strip()
    if (found := DATASTORE_URI.match(text)) and found["store"]:
        return Location(text, found["store"], None, found["path"].strip("/"))
    if found := BLOB_URI.match(text):
        container = f"https://{found['account']}.blob.{found['suffix']}/{found['container']}"
        return Location(text, None, container, (found["path"] or "").strip("/"))
    return None


def declared(target: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """The target's (inputs, outputs) as {NAME: uri}, in the order written."""
    def of(key: str) -> dict[str, str]:
        value = target.get(key)
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}
    return of("inputs"), of("outputs")


def variable(kind: str, name: str) -> str:
    """`SINGKIT_INPUT_DATA` for input `data`, `SINGKIT_OUTPUT_CKPT` for output `ckpt`."""
    return f"SINGKIT_{kind.upper()}_{name.upper()}"


def collides(kind: str, names: list[str], name: str) -> str | None:
    """The name among `names` that would be the same variable as `name` (`ckpt`, `CKPT`), or None;
    `kind` "inputs"|"outputs"."""
    return next((n for n in names if variable(kind[:-1], n) == variable(kind[:-1], name)), None)


def local_folder(location: Location, datastores: Mapping[str, Mapping[str, Any]], root: Path) -> Path | None:
    """Where a location is on this machine through `datastores:` (relative `path:` from the
    project root), or None when no record maps it."""
    record: Mapping[str, Any] | None = None
    rest = location.path
    if location.datastore is not None:
        record = datastores.get(location.datastore)
    else:
        for candidate in datastores.values():
            url = str(candidate.get("url") or "").rstrip("/")
            if url and location.url == url:
                record = candidate
                break
    if not record or not record.get("path"):
        return None
    base = Path(str(record["path"])).expanduser()
    return (base if base.is_absolute() else root / base) / rest


def plan(target: Mapping[str, Any], datastores: Mapping[str, Mapping[str, Any]], root: Path) -> dict[str, Any] | None:
    """What job.yaml keeps (`data:`): {"inputs"|"outputs": {NAME: {"uri", "local"}}}, `local` the
    folder on this machine (None where `datastores:` maps nothing: fine on Singularity). None
    without inputs or outputs. Checked before (singkit.mounts.problems)."""
    inputs, outputs = declared(target)
    if not inputs and not outputs:
        return None
    out: dict[str, Any] = {"inputs": {}, "outputs": {}}
    for kind, names in (("inputs", inputs), ("outputs", outputs)):
        for name, uri in names.items():
            location = parse(uri)
            folder = local_folder(location, datastores, root) if location else None
            out[kind][name] = {"uri": uri, "local": str(folder.resolve()) if folder else None}
    return out


def output_key(entry: Mapping[str, Any], default: str) -> str:
    """The folder a run writes under each output: an earlier run's (`--resume`), else `default`."""
    return str(entry.get("output_key") or default)


def _folders(spec: JobSpec, entry: RunEntry, run_id: str) -> dict[tuple[str, str], Path]:
    """(kind, NAME) → the host folder of each input, and of this run's output folder."""
    data = spec.get("data") or {}
    out: dict[tuple[str, str], Path] = {}
    for kind in ("inputs", "outputs"):
        for name, item in (data.get(kind) or {}).items():
            if not item.get("local"):
                raise SingkitError(f"{kind[:-1]} `{name}` ({item.get('uri')}) has no local folder; map its datastore "
                                   "under `datastores:` (NAME: {path: FOLDER}) to run it here")
            folder = Path(item["local"])
            out[(kind, name)] = folder / output_key(entry, run_id) if kind == "outputs" else folder
    return out


def _exports(names: Mapping[tuple[str, str], str]) -> dict[str, str]:
    """The program's variables for (kind, NAME) → path, in declaration order."""
    env: dict[str, str] = {}
    for (kind, name), path in names.items():
        env[variable(kind[:-1], name)] = path
        common = "SINGKIT_DATA_DIR" if kind == "inputs" else "SINGKIT_OUTPUT_DIR"
        env.setdefault(common, path)
    return env


def run_variables(spec: JobSpec, entry: RunEntry, run_id: str, *, container: bool) -> dict[str, str]:
    """The run's data variables on local (host paths; output folders created) or docker
    (`container`: the paths its mounts have inside). {} without inputs/outputs."""
    folders = _folders(spec, entry, run_id)
    for (kind, _name), folder in folders.items():
        if kind == "outputs":
            folder.mkdir(parents=True, exist_ok=True)
    if container:
        return _exports({key: f"{INSIDE}/{key[0]}/{key[1]}" for key in folders})
    return _exports({key: str(folder) for key, folder in folders.items()})


def docker_volumes(spec: JobSpec, entry: RunEntry, run_id: str) -> dict[str, dict[str, str]]:
    """docker-py `volumes=`: each input read-only, this run's output folders read-write."""
    return {str(folder): {"bind": f"{INSIDE}/{kind}/{name}", "mode": "ro" if kind == "inputs" else "rw"}
            for (kind, name), folder in _folders(spec, entry, run_id).items()}


def azureml_io(target: Mapping[str, Any], key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """CLI v2 `inputs` and `outputs` of a run's command job: uri_folder, ro_mount / rw_mount, each
    output at `<path>/<key>` (see the module docstring for the sources)."""
    inputs, outputs = declared(target)
    return ({name: {"type": "uri_folder", "path": uri, "mode": "ro_mount"} for name, uri in inputs.items()},
            {name: {"type": "uri_folder", "path": f"{uri.rstrip('/')}/{key}", "mode": "rw_mount"}
             for name, uri in outputs.items()})


def command_exports(target: Mapping[str, Any]) -> str:
    """`export SINGKIT_INPUT_DATA="${{inputs.data}}" … && ` for a Singularity command ("" without
    any): Azure ML substitutes the mount paths into the command (not into environment_variables)."""
    inputs, outputs = declared(target)
    names = {**{("inputs", n): f"${{{{inputs.{n}}}}}" for n in inputs},
             **{("outputs", n): f"${{{{outputs.{n}}}}}" for n in outputs}}
    if not names:
        return ""
    return "export " + " ".join(f'{k}="{v}"' for k, v in _exports(names).items()) + " && "


def config_root(cfg: Any) -> Path:
    """The project root a relative `datastores.*.path` is read from: the folder holding the
    project's `configs/singkit.yaml` (the current folder when there is none)."""
    for layer in getattr(cfg, "layers", []):
        if layer.committed:
            return Path(layer.path).resolve().parent.parent
    return Path.cwd()


def item_problem(kind: str, io: str, uri: str, stores: Mapping[str, Mapping[str, Any]], root: Path,
                 here: bool, where: str) -> tuple[str, bool] | None:
    """What is wrong with one input/output (`kind` "inputs"|"outputs", name `io`, value `uri`) on
    a target that runs here (local/docker) or not: (message, is-a-warning), or None."""
    from singkit.suggest import did_you_mean as suggest

    if not NAME.match(io):
        return (f"`{io}` ({where}) must be a letter or _ then letters, digits, _ (it becomes ${{{{{kind}.NAME}}}} "
                "and an environment variable)", False)
    location = parse(uri)
    if location is None:
        return f"`{uri}` ({where}) is not {EXAMPLE}", False
    if ".." in PurePosixPath(location.path or "").parts:
        return f"`{uri}` ({where}) climbs out of its datastore with `..`; write the path from the datastore's root", False
    if kind == "outputs" and location.datastore is None:
        return (f"{where} is a blob URI; Azure ML writes outputs through a datastore: register the container as one "
                "and write azureml://datastores/NAME/paths/PATH", False)
    if location.datastore is not None and location.datastore not in stores:
        if not here and location.datastore in WORKSPACE_STORES:
            return None  # every workspace has it
        if here:
            return (f"datastore `{location.datastore}` ({where}) is not in `datastores:`; map it to a local folder "
                    f"there{suggest(location.datastore, stores)}", False)
        hint = suggest(location.datastore, [*stores, *WORKSPACE_STORES])
        if hint.startswith("; did"):  # a workspace may well have a datastore singkit never heard of
            return f"datastore `{location.datastore}` ({where}) is not in `datastores:` nor one every workspace has{hint}", True
        return None
    if not here:
        return None
    folder = local_folder(location, stores, root)
    if folder is None and location.datastore is not None:
        return f"datastore `{location.datastore}` ({where}) has no `path:` under `datastores:`", False
    if folder is None:
        return (f"no `datastores:` record has `url: {location.url}` ({where}); add one with the local `path:` that "
                "stands for that container", False)
    if kind == "inputs" and not folder.is_dir():
        return (f"input `{io}` ({where}) is {folder} on this machine, which is not a folder; create it or correct "
                "`datastores:`", False)
    blocking = next((f for f in (folder, *folder.parents) if f.exists()), None)
    if kind == "outputs" and blocking is not None and not blocking.is_dir():
        return (f"output `{io}` ({where}) is {folder} on this machine, but {blocking} is a file; "
                "point `datastores:` at a folder", False)
    return None


def runs_here(target: Mapping[str, Any]) -> bool:
    """Does the target run on this machine (local or docker), reading `datastores:` folders?"""
    return str(target.get("service") or "local") in ("local", "docker")


def problems(cfg: Any, root: Path | None = None) -> list[Any]:
    """config.validate's findings about `inputs:`/`outputs:` and `datastores:`, each a Problem at
    the value's line: a name that cannot be a variable, a value in neither form, a blob URI as
    an output, an unknown datastore (an error where the target runs here, a did-you-mean warning
    on Singularity, whose workspace may have it), an input whose local folder is missing."""
    from singkit.exceptions import Problem

    found: list[Problem] = []
    stores = cfg.datastores
    root = root or config_root(cfg)

    def say(section: str, name: str, key: str, sub: str | None, message: str, warning: bool = False) -> None:
        origin = cfg.where(section, name, key, sub) or cfg.where(section, name, key) or cfg.where(section, name)
        if origin is not None and origin.line:
            found.append(Problem(origin.file, origin.line, origin.col, message, ((section, name),), warning))

    for store, record in stores.items():
        if not str(record.get("path") or "").strip():
            say("datastores", store, "path", None, f"`datastores.{store}` needs `path:`: the local folder that stands "
                "for it on the local and docker targets")
    for name, target in cfg.targets.items():
        for index, kind in enumerate(("inputs", "outputs")):
            names = declared(target)[index]
            for position, (io, uri) in enumerate(names.items()):
                same = collides(kind, list(names)[:position], io)
                if same:
                    say("compute-targets", name, kind, io, f"`{io}` and `{same}` in compute-targets.{name}."
                        f"{kind} would both be ${variable(kind[:-1], io)}; rename one")
                said = item_problem(kind, io, uri, stores, root, runs_here(target), f"compute-targets.{name}.{kind}.{io}")
                if said:
                    say("compute-targets", name, kind, io, *said)
    return found


def with_options(target: Mapping[str, Any], inputs: list[str], outputs: list[str],
                 stores: Mapping[str, Mapping[str, Any]], root: Path) -> dict[str, Any]:
    """The target with `job.submit --input NAME=URI` / `--output NAME=URI` added (over its own
    of the same name), each checked as config.validate checks the target's; UsageError else."""
    from singkit.exceptions import UsageError

    out = dict(target)
    for kind, options in (("inputs", inputs), ("outputs", outputs)):
        if not options:
            continue
        merged = dict(declared(target)[0 if kind == "inputs" else 1])
        for option in options:
            io, sep, uri = str(option).partition("=")
            flag = f"--{kind[:-1]} {option}"
            if not sep or not io.strip() or not uri.strip():
                raise UsageError(f"{flag} is not NAME=URI; e.g. --{kind[:-1]} data=azureml://datastores/NAME/paths/PATH")
            said = item_problem(kind, io.strip(), uri.strip(), stores, root, runs_here(target), flag)
            if said and not said[1]:
                raise UsageError(said[0])
            same = collides(kind, [n for n in merged if n != io.strip()], io.strip())
            if same:
                raise UsageError(f"{flag}: `{io.strip()}` and `{same}` would both be ${variable(kind[:-1], same)}; use `{same}=` "
                                 "to replace it, or another name")
            merged[io.strip()] = uri.strip()
        out[kind] = merged
    return out
