"""Amulet's `jobs:` and `search:` → singkit compute targets and jobs-file entries.

Used by singkit.config.amlt_import (which documents the whole mapping). Per job:

- `sku` (`G8`, `80G8-A100`, `2x40G4-A100`, `C1`, an instance-type name, `@LOCATION` after it) →
  vm-size / nodes / location, through singkit.singularity.catalog.parse_amulet (the shorthand as
  HSPK/azure_jobs src/azure_jobs/core/sku.py parses it); Amulet picks among the VC's sizes at
  submit, so the import takes the catalog's first match (one seen in a public job file first)
  and names the others.
- `sla_tier` → sla, `priority` → priority (Amulet writes `Premium`/`high`: HSPK/azure_jobs
  docs/tutorial.md), `process_count_per_node` → processes-per-node.
- `command` lines → the job's command list; `submit_args.env` → the job's env.
- `sku` `SERIES:G4` (a public amlt job generator: `sku: NC_A100_v4:G{n}`) → that catalog family's
  size; `-IB` (HSPK/azure_jobs parses it as a flag) → only InfiniBand sizes (`infiniband: true`).
- `submit_args.max_run_duration_seconds` → the target's max-run-seconds (Azure ML's limits.timeout).
- `name` with env_defaults' `${VAR}` written in, then made a jobs-file name (job_name).
- `search:` → a sweep: singkit.config.amlt_search.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from singkit.config import amlt_search, schema

_VAR = re.compile(r"(?<!\$)\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")
_ANY_VAR = re.compile(r"(?P<dollars>\$\$?)(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")
# Amulet's output folder inside a job ("Write outputs to $AMLT_OUTPUT_DIR for retrieval with 'amlt
# results'": HSPK/azure_jobs amlt.yaml) → the run's output folder singkit keeps (job.extract --what outputs):
# the target's first `outputs:` folder, else the run's own (singkit.metrics.outputs_dir)
_AMLT_OUTPUT = re.compile(r"\$\$?(?:\{AMLT_OUTPUT_DIR\}|AMLT_OUTPUT_DIR\b)")
OUTPUT_DIR = "${SINGKIT_OUTPUT_DIR:-$SINGKIT_OUTPUTS}"
_AMLT_DATA = re.compile(r"\$\$?(?:\{AMLT_DATA_DIR\}|AMLT_DATA_DIR\b)")
_WHOLE_VAR = re.compile(r"^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))$")
_SERIES_SKU = re.compile(r"^(?P<series>[A-Za-z][A-Za-z0-9_]*)\s*:\s*(?P<sku>\S.*)$")
JOB_KEYS = ("name", "sku", "sla_tier", "priority", "process_count_per_node", "command", "submit_args")
UAI = "_AZUREML_SINGULARITY_JOB_UAI"
# variables the job's shell or Azure ML defines: a `$HOME` in a command is not the submitter's to send
SHELL_VARIABLES = frozenset({"PATH", "HOME", "PWD", "USER", "HOSTNAME", "SHELL", "PYTHONPATH", "LD_LIBRARY_PATH",
                             "CUDA_VISIBLE_DEVICES", "RANK", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK", "MASTER_ADDR",
                             "MASTER_PORT", "CONDA_PREFIX", "TMPDIR"})


class Converter:
    """What one import collects: records, notes, variables to export, things to fill in."""

    def __init__(self, source: Path, project_root: Path, defaults: dict[str, Any] | None = None):
        self.source, self.project_root = source, project_root
        self.defaults = {str(k): v for k, v in (defaults or {}).items()}  # Amulet's env_defaults
        self.shared_env: dict[str, Any] = {}  # variables the setup lines read: every job gets them
        self.kind: str | None = None  # singularity | aml | None (no runnable service)
        self.notes: list[str] = []
        self.variables: list[str] = []
        self.fill_in: list[str] = []
        self.registries: dict[str, Any] = {}
        self.docker: dict[str, Any] = {}
        self.setup: dict[str, Any] = {}
        self.targets: dict[str, Any] = {}
        self.identity: str | None = None
        self.data_dir: str | None = None  # what $AMLT_DATA_DIR is written as (amlt_import._data), None: as written

    def note(self, where: str, why: str) -> None:
        self.notes.append(f"{where}: {why}")

    # -- values ---------------------------------------------------------------------------
    def command_text(self, line: str, where: str, env: dict[str, Any]) -> str:
        """A command or setup line as singkit runs it. `$$` is Amulet's literal `$`; Amulet's
        $AMLT_OUTPUT_DIR is the run's output folder; a lone `$VAR` Amulet expanded on the
        submitting machine (or from env_defaults) is sent as the job's variable VAR into `env`,
        so the job's shell expands it to the same value."""
        if self.data_dir and _AMLT_DATA.search(line):
            line = _AMLT_DATA.sub(lambda _: self.data_dir or "", line)  # Amulet's data folder: the `data:` storage
        if _AMLT_OUTPUT.search(line):
            self.note(where, f"$AMLT_OUTPUT_DIR is written {OUTPUT_DIR}: the run's output folder singkit keeps "
                      "(`invoke job.extract JOB --what outputs`)")
            line = _AMLT_OUTPUT.sub(OUTPUT_DIR, line)
        for found in _ANY_VAR.finditer(line):
            name, literal = found["braced"] or found["bare"], found["dollars"] == "$$"
            if literal or name.startswith("SINGKIT_"):
                continue  # the job's own variable, as Amulet passes `$$NAME`
            if name.startswith("AMLT_"):
                self.note(where, f"`${name}` is set by Amulet inside its jobs, not by singkit")
            elif name in SHELL_VARIABLES or name.startswith(("AZUREML_", "OMPI_")):
                self.note(where, f"`${name}`: Amulet expanded it on the submitting machine; singkit leaves it to the job's "
                          f"shell (write $${name} in Amulet to mean the job's own)")
            elif name not in env:
                env[name] = self.env_value(name, self.defaults.get(name, "$" + name), where)
        return line.replace("$$", "$")

    def interpolate(self, text: str, where: str) -> str:
        """`${NODES}xG${GPUS}` with env_defaults' values, as Amulet interpolates a value when submitting."""
        def value(found: re.Match) -> str:
            name = found["braced"] or found["bare"]
            if found["dollars"] == "$$" or name not in self.defaults:
                self.note(where, f"`{found.group(0)}` is not in env_defaults: left as written")
                return found.group(0)
            return str(self.defaults[name])

        return _ANY_VAR.sub(value, text)

    def env_value(self, key: str, value: Any, where: str) -> Any:
        """An env value: `$VAR`/`${VAR}` → `$env:VAR` (read when submitting, as Amulet does);
        a literal secret is never written: it becomes `$env:KEY` and KEY is to be exported."""
        if isinstance(value, (bool, int, float)):
            return value
        text = str(value)
        whole = _WHOLE_VAR.match(text)
        if whole:  # the submitting machine's value, else env_defaults' (a secret's default is never written)
            name = whole[1] or whole[2]
            if name in self.defaults and not schema.is_secret_env(name) and not _WHOLE_VAR.match(str(self.defaults[name])):
                self.note(where, f"${name} is written as env_defaults' `{self.defaults[name]}` (Amulet takes your "
                          "environment's value first)")
                return self.defaults[name]
            self.variables.append(name)
            return f"$env:{name}"
        if schema.is_secret_env(key) and not text.startswith("$env:"):
            self.variables.append(key)
            self.note(where, f"a literal secret is not written into the config; export {key} (sent as $env:{key})")
            return f"$env:{key}"
        if _VAR.search(text):
            self.note(where, "a `$VARIABLE` inside the value reaches the job as written (Amulet expanded it when submitting)")
        return text.replace("$$", "$")

    # -- jobs -----------------------------------------------------------------------------
    def jobs(self, jobs: Any, search: Any, base: dict[str, Any]) -> dict[str, Any]:
        """The jobs-file entries, by name, after making each job's compute target."""
        listed = [jobs] if isinstance(jobs, dict) else list(jobs or [])
        out: dict[str, Any] = {}
        templates = [search["job_template"]] if isinstance(search, dict) and isinstance(search.get("job_template"), dict) else []
        self._wrap_switch([*listed, *templates])
        for index, job in enumerate(listed, start=1):
            name, entry = self.job(f"jobs[{index}]", job or {}, base, f"job{index}")
            out[self._unique(name, out)] = entry
        if isinstance(search, dict):
            name, entry = self.job("search.job_template", search.get("job_template") or {}, base, "search")
            entry["sweep"] = amlt_search.sweep(self, search, entry)
            out[self._unique(name, out)] = entry
        return out

    def _wrap_switch(self, jobs: list[Any]) -> None:
        """AMLT_DOCKERFILE_TEMPLATE: none means Amulet does not wrap the image (public amlt config
        in an MSAGen README: `AMLT_DOCKERFILE_TEMPLATE: "none"  # skip Singularity verification`)."""
        for job in jobs:
            env = ((job or {}).get("submit_args") or {}).get("env") or {}
            if str(env.get("AMLT_DOCKERFILE_TEMPLATE", "")).lower() == "none" and self.docker:
                self.docker["sing-wrap"] = False

    @staticmethod
    def _unique(name: str, taken: dict[str, Any]) -> str:
        candidate, n = name, 2
        while candidate in taken:
            candidate, n = f"{name}-{n}", n + 1
        return candidate

    def job(self, where: str, job: dict[str, Any], base: dict[str, Any], fallback: str) -> tuple[str, dict[str, Any]]:
        raw_name = str(job.get("name") or fallback)
        name, why = job_name(self.interpolate(raw_name, f"{where}.name"), fallback)
        if name != raw_name:
            self.note(f"{where}.name", f"`{raw_name}` is named `{name}` ({why})")
        for key in job:
            if key not in JOB_KEYS:
                self.note(f"{where}.{key}", self._unknown_job_key(key))
        entry: dict[str, Any] = {}
        commands = job.get("command") or []
        commands = [commands] if isinstance(commands, str) else commands
        read: dict[str, Any] = dict(self.shared_env)
        entry["command"] = [self.command_text(str(c), f"{where}.command", read) for c in commands]
        if not entry["command"]:
            del entry["command"]
            self.note(f"{where}.command", "none given: singkit runs its default command (python examples/train.py); add one to the jobs file")
        env = {**read, **self.submit_args(where, job.get("submit_args") or {})}

        if self.kind is None:
            entry["target"] = "local"
        else:
            target_name = self._unique(name, self.targets)
            self.targets[target_name] = self.target(where, job, base, target_name)
            entry["target"] = target_name
        if env:
            entry["env"] = env
        return name, entry

    @staticmethod
    def _unknown_job_key(key: str) -> str:
        return {
            "identity": "singkit runs a job as the workspace record's `user-identity-id` (set from "
                        f"{UAI} when the job's env names one); Amulet's `identity:` switch has no counterpart",
            "mpi": "singkit starts processes with Azure ML's PyTorch distribution, not mpirun; a command that needs "
                   "mpirun must start it itself",
            "tags": "Azure ML tags are not carried (singkit tags each run with its singkit run id)",
        }.get(key, "not used by singkit")

    def submit_args(self, where: str, args: dict[str, Any]) -> dict[str, Any]:
        for key in args:
            if key not in ("env", "container_args", "max_run_duration_seconds"):
                self.note(f"{where}.submit_args.{key}", "not used by singkit")
        for key, value in (args.get("container_args") or {}).items():
            why = ("Singularity sizes /dev/shm from the job's SHARED_MEMORY_PERCENT (a fraction of the node's memory), "
                   "not from a size: set SHARED_MEMORY_PERCENT in the job's env") if key == "shm_size" else \
                "Singularity runs the image as it is; no docker run options"
            self.note(f"{where}.submit_args.container_args.{key}", f"`{value}` not carried: {why}")
        env: dict[str, Any] = {}
        for key, value in (args.get("env") or {}).items():
            key = str(key)
            if key == UAI and not _WHOLE_VAR.match(str(value)):
                self.identity = str(value)
                self.note(f"{where}.submit_args.env.{key}", "written as the workspace record's user-identity-id "
                          "(singkit sets the variable itself from it)")
                continue
            if key == "AMLT_DOCKERFILE_TEMPLATE":
                self.note(f"{where}.submit_args.env.{key}", "Amulet's own switch: read as the docker record's "
                          f"sing-wrap: {str(self.docker.get('sing-wrap', False)).lower()}")
                continue
            env[key] = self.env_value(key, value, f"{where}.submit_args.env.{key}")
        return env

    def target(self, where: str, job: dict[str, Any], base: dict[str, Any], name: str) -> dict[str, Any]:
        target: dict[str, Any] = {"service": base["service"]}
        if base.get("compute"):
            target["compute"] = base["compute"]
        self.sku(where, str(job.get("sku") or ""), target, name)
        self.run_limit(where, (job.get("submit_args") or {}).get("max_run_duration_seconds"), target)
        if job.get("process_count_per_node") is not None:
            target["processes-per-node"] = _count(job["process_count_per_node"])
        elif target.get("nodes", 1) > 1 or (self.kind == "singularity" and target.get("vm-size")):
            self.note(f"{where}.process_count_per_node", "not given: singkit starts 1 process per node (processes-per-node: "
                      "gpus starts one per GPU, as a launcher-free DDP script needs)")
        for key, field, allowed in (("sla_tier", "sla", schema.SLA_VALUES), ("priority", "priority", schema.PRIORITY_VALUES)):
            if job.get(key) is None:
                continue
            value = str(job[key]).strip().lower()
            if value in allowed:
                target[field] = value
            else:
                self.note(f"{where}.{key}", f"`{job[key]}` is none of {', '.join(allowed)}; left out")
        if self.kind == "aml" and (job.get("sla_tier") or job.get("priority")):
            self.note(f"{where}.sla_tier", "an Azure ML compute cluster has no SLA tier or Singularity priority")
        for key in ("docker", "setup"):
            if base.get(key) and (key != "setup" or self.setup):
                target[key] = base[key]
        if base.get("inputs"):
            target["inputs"] = dict(base["inputs"])
        return target

    def run_limit(self, where: str, value: Any, target: dict[str, Any]) -> None:
        """submit_args.max_run_duration_seconds (Azure ML's RunConfiguration argument of that name, which
        Amulet's submit_args pass on: "Azure ML will attempt to automatically cancel the run if it takes
        longer than this value") → the target's max-run-seconds (sent as limits.timeout)."""
        if value is None:
            return
        try:
            seconds = int(str(value).strip())
        except ValueError:
            seconds = 0
        if seconds >= 1:
            target["max-run-seconds"] = seconds
        else:
            self.note(f"{where}.submit_args.max_run_duration_seconds", f"`{value}` is not a whole number of seconds >= 1; "
                      "left out (set the target's max-run-seconds)")

    def sku(self, where: str, sku: str, target: dict[str, Any], name: str) -> None:
        """vm-size, nodes and location from Amulet's sku (`2x40G4-A100@eastus`)."""
        from singkit.singularity import catalog

        sku, _, location = self.interpolate(sku.strip(), f"{where}.sku").partition("@")
        if location:
            target["location"] = location.strip()
        # `SERIES:SKU` names the series to pick from (public amlt job generator: `sku: NC_A100_v4:G4`)
        series_match = _SERIES_SKU.match(sku.strip())
        series, sku = (series_match["series"], series_match["sku"]) if series_match else (None, sku)
        nodes, _, rest = sku.rpartition("x") if re.match(r"^\d+\s*x", sku) else ("", "", sku)
        parsed = catalog.parse_amulet(sku)
        if parsed:
            target["nodes"] = parsed["nodes"] or 1
        elif nodes:
            target["nodes"] = int(nodes)
        if self.kind == "aml":
            self.fill_in.append(f"compute-targets.{name}.vm-size: the Azure VM size of cluster `{target.get('compute')}` "
                                f"(e.g. Standard_NC6s_v3; Amulet reads it from the cluster, its sku `{sku}` only asks for a share)")
            return
        if not sku:
            self.fill_in.append(f"compute-targets.{name}.vm-size: the job has no sku (`invoke config.skus` lists sizes)")
            return
        if not parsed:
            target["vm-size"] = rest.strip()  # an instance-type name, as Amulet passes it on
            return
        shipped = catalog.shipped()
        sizes = catalog.amulet_sizes(shipped, parsed)
        asked = f"{series}:{sku}" if series else sku
        if series:  # the catalog's family of that name (Amulet's series ids drop or keep the underscores)
            sizes = [s for s in sizes if _squash(shipped[s].get("family", "")) == _squash(series)]
        if "IB" in (p.strip().upper() for p in sku.split("-")[1:]):
            # `-IB` asks for InfiniBand: the catalog's `r` sizes (infiniband: true), e.g. ND96r_H100_v5
            sizes = [s for s in sizes if shipped[s].get("infiniband")]
        if not sizes:
            self.fill_in.append(f"compute-targets.{name}.vm-size: no size in singkit's catalog has what `{asked}` asks for "
                                "(`invoke config.skus --target=...` lists what the virtual cluster offers)")
            return
        seen = [s for s in sizes if shipped[s].get("evidence") == "job"]
        chosen = (seen or sizes)[0]
        target["vm-size"] = chosen
        if len(sizes) > 1:
            others = ", ".join(s for s in sizes if s != chosen)
            self.note(f"{where}.sku", f"`{asked}` fits several sizes; Amulet picks among the virtual cluster's at submit, "
                      f"singkit takes `{chosen}` (also: {others}); `invoke config.skus --target={name}` shows the cluster's")

def job_name(text: str, fallback: str) -> tuple[str, str]:
    """A jobs-file job name (singkit.jobs.jobfile's rule: ASCII letters, digits, _ . -; it also names
    the compute target and reaches Azure ML in the run's name) from an Amulet name whose
    `${VAR}`s are already expanded, and why it changed. Accented letters keep their base letter
    (NFKD, marks dropped: `ünï` → `uni`); a search name's `{lr}` fields are dropped (each trial's
    values are in its hparams); any other character becomes `-`."""
    import unicodedata

    why = []
    if amlt_search.PLACEHOLDER.search(text):
        why.append("a search name's {...} fields are dropped: each run's values are its hparams")
        text = amlt_search.PLACEHOLDER.sub("", text)
    ascii_text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    if ascii_text != text:
        why.append("accents dropped")
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "-", ascii_text).strip("-_.")
    if name != ascii_text.strip("-_."):
        why.append("a job name is ASCII letters, digits, _ . -")
    if not name:
        name = fallback
        why.append("nothing of it is left")
    return name, "; ".join(why) or "env_defaults' values written in"


def _squash(series: str) -> str:
    """`NC_A100_v4` and `NCA100v4` alike: Amulet's series ids and the catalog's family names."""
    return series.replace("_", "").lower()


def _count(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value  # config.validate says what is wrong with it, at its line
