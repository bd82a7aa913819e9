"""One merged XT config → singkit records, saying why for every key left out.

`Converter(doc, nodes_mode).run()` fills `out` (the singkit sections), `skipped` ("path: why"
for every XT key not carried), `notes` (what changed meaning), `variables` (environment
variables to export), `comments` ((section, record, key) → a YAML end-of-line comment) and
`commands` (submit commands that do what XT did, for `--xt-nodes=runs`).
"""

from __future__ import annotations

import re
from typing import Any

from singkit.config import schema
from singkit.config.xt import facts

XT_SECRET = "$vault"      # XT: the value is in XT's key vault
XT_FROM_ENV = "$$"         # XT: `$$NAME` = NAME from the submitting machine (xtlib runner.py, env-vars)
NODES_MODES = ("job", "runs")
XT_ENV_SETUP = "xt-env"    # the setup that carries XT's general.env-vars to targets that name no setup


def env_name(record: str, key: str) -> str:
    """The variable a secret of `record.key` is read from: SINGKIT_<RECORD>_<KEY>."""
    return "SINGKIT_" + re.sub(r"[^A-Za-z0-9]+", "_", f"{record}_{key}").upper().strip("_")


def typed(field: dict[str, Any], value: Any) -> Any:
    """XT often quotes booleans and numbers ("true", "1"); give them the type the schema wants."""
    if field.get("type") == "boolean" and isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    if field.get("type") == "integer" and isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


def installed_version(package: str) -> str | None:
    """The version of `package` installed in this Python (importlib.metadata, as XT reads it), or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package) if package else None
    except (PackageNotFoundError, ValueError):
        return None


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


class Converter:
    """Converts one merged XT config (plain dicts) into singkit's sections."""

    def __init__(self, doc: dict[str, Any], nodes_mode: str = "job"):
        self.doc = {schema.canonical_key(str(k)) if str(k) in schema.SECTION_ALIASES else str(k): v for k, v in doc.items()}
        self.nodes_mode = nodes_mode
        self.out: dict[str, Any] = {}
        self.skipped: list[str] = []
        self.notes: list[str] = []
        self.variables: list[str] = []
        self.env: dict[str, Any] = {}  # general.env-vars as every target's `env:` (env_vars)
        self.comments: dict[tuple[str, str, str], str] = {}
        self.commands: list[str] = []
        raw = self.doc.get("external-services") or {}
        self.xt_types = {str(n): str((r or {}).get("type", "")).lower() for n, r in raw.items() if isinstance(r, dict)}

    def run(self) -> None:
        self.env = self.env_vars()
        self.services()
        self.dockers()
        self.targets()
        self.setups()
        self.general()
        for section, body in self.doc.items():
            if section not in ("external-services", "dockers", "compute-targets", "setups", "general", "code"):
                keys = f" ({', '.join(map(str, body))})" if isinstance(body, dict) and body else ""
                self.skip(f"{section}{keys}", facts.SECTIONS.get(section, "an XT setting with no singkit counterpart"))

    def skip(self, path: str, why: str) -> None:
        self.skipped.append(f"{path}: {why}")

    def section(self, name: str) -> dict[str, Any]:
        return self.out.setdefault(name, {})

    # -- external-services ------------------------------------------------------------------
    def secret(self, record: str, key: str, value: Any) -> Any:
        """`$vault` and literal secrets become `$env:SINGKIT_<RECORD>_<KEY>` (to export)."""
        if not isinstance(value, str) or value.startswith("$env:"):
            return value
        if value.strip().startswith(XT_SECRET) or key in schema.SECRET_KEYS:
            name = env_name(record, key)
            self.variables.append(name)
            if not value.strip().startswith(XT_SECRET):
                self.notes.append(f"external-services.{record}.{key}: a literal secret was replaced by $env:{name}")
            return f"$env:{name}"
        return value

    def services(self) -> None:
        for name, record in (self.doc.get("external-services") or {}).items():
            kind = self.xt_types.get(str(name), "")
            if kind not in facts.SERVICE_TYPES:
                self.skip(f"external-services.{name}", facts.DROPPED_SERVICE_TYPES.get(kind, f"type `{kind}` has no singkit counterpart"))
                continue
            kind = facts.SERVICE_TYPES[kind]
            if kind == "storage":
                self.skip(f"external-services.{name}", facts.storage_skip(str(name)))
                continue
            allowed = schema.SERVICE_FIELDS[kind]
            converted: dict[str, Any] = {"type": kind}
            for key, value in record.items():
                canonical = schema.canonical_key(str(key))
                if canonical == "type" or _empty(value):
                    continue
                if canonical not in allowed:
                    self.skip(f"external-services.{name}.{key}", facts.SERVICE_KEYS.get(canonical, "not used by singkit"))
                    continue
                converted[canonical] = typed(allowed[canonical], self.secret(str(name), canonical, value))
            if kind == "virtual_cluster" and facts.NOT_USED in (converted.get("subscription-id"), converted.get("resource-group")):
                self.fill_cluster(str(name), converted)
            self.section("external-services")[str(name)] = converted

    def fill_cluster(self, name: str, record: dict[str, Any]) -> None:
        """XT's `notused` ids of a virtual cluster it knows → the ids XT's backend sends."""
        known = facts.virtual_cluster_ids(name)
        if known is None:
            return  # config.validate: subscription-id must be a GUID, at its line
        record["subscription-id"], record["resource-group"] = known
        self.notes.append(f"external-services.{name}: XT writes `notused` ids and builds the cluster's ARM id from its own "
                          f"table (subscription {known[0]}, resource group {known[1]}); those are written here")

    # -- dockers ----------------------------------------------------------------------------
    def dockers(self) -> None:
        for name, record in (self.doc.get("dockers") or {}).items():
            converted: dict[str, Any] = {}
            for key, value in (record or {}).items():
                canonical = schema.canonical_key(str(key))
                if _empty(value):
                    continue
                if canonical not in schema.DOCKER_FIELDS:
                    self.skip(f"dockers.{name}.{key}", "not used by singkit")
                    continue
                converted[canonical] = typed(schema.DOCKER_FIELDS[canonical], value)
            digest = str(converted.get("sha256") or "").removeprefix("sha256:")
            if digest and converted.get("sing-wrap") and "@" not in str(converted.get("image", "")):
                # XT's sha256 of a wrapped record pins the ORIGINAL image, the wrap's FROM
                # (old_backend_singularity.py: image_url.split(":")[0] + "@sha256:" + sha256);
                # singkit's `sha256:` is the wrapped image's digest, which image.wrap writes.
                del converted["sha256"]
                converted["image"] = f"{converted['image']}@sha256:{digest}"
                self.notes.append(f"dockers.{name}: XT's sha256 pins the image it wraps, so it is now part of `image:` "
                                  f"(the base pin); run `invoke image.wrap --docker={name}` to build and pin the wrapped image")
            elif digest:
                converted["sha256"] = f"sha256:{digest}"  # not wrapped: the digest of the image that runs
            self.section("dockers")[str(name)] = converted

    # -- compute-targets ----------------------------------------------------------------------
    def target_kind(self, record: dict[str, Any]) -> str:
        """What XT would run the target on: its service record's type, XT's `pool`, or `missing`."""
        service = str(record.get("service") or "")
        if service == facts.POOL_SERVICE and service not in self.xt_types:
            return "pool"
        return self.xt_types.get(service, "missing")

    def targets(self) -> None:
        for name, record in (self.doc.get("compute-targets") or {}).items():
            record = record or {}
            kind = self.target_kind(record)
            if kind not in facts.WORKSPACES and kind != "missing":
                why = facts.DROPPED_SERVICE_TYPES.get(kind) or f"its service `{record.get('service')}` is a {kind} record, not an Azure ML workspace"
                self.skip(f"compute-targets.{name}", why)
                continue
            if kind == "missing":  # kept: config.validate names the record to define, at `service:`
                kind = "aml" if "low-pri" in record else "singularity"
                self.notes.append(f"compute-targets.{name}: its service `{record.get('service')}` is not defined in these "
                                  "files; define it under external-services (config.validate points at the reference)")
            self.section("compute-targets")[str(name)] = self.target(str(name), record, kind)

    def target(self, name: str, record: dict[str, Any], kind: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in record.items():
            canonical = schema.canonical_key(str(key))
            if _empty(value):
                continue
            if (canonical == "low-pri" and kind == "singularity") or canonical not in schema.TARGET_FIELDS:
                self.skip(f"compute-targets.{name}.{key}", facts.TARGET_KEYS.get(canonical, "not used by singkit"))
                continue
            if canonical == "locations":  # XT 2024: a list; one location is singkit's `location`
                values = value if isinstance(value, list) else [value]
                canonical, value = ("location", values[0]) if len(values) == 1 else ("locations", values)
            elif canonical in ("sla", "priority"):
                value = str(value).lower()
            out[canonical] = typed(schema.TARGET_FIELDS[canonical], value)
        if kind == "singularity" and "sla" not in out:
            self.notes.append(f"compute-targets.{name}: {facts.SLA_NOTE}")
        if "nodes" in out:
            self.nodes(name, out)
        self.check_cluster(name, out, kind)
        return out

    def nodes(self, name: str, out: dict[str, Any]) -> None:
        try:
            count = int(out["nodes"])
        except (TypeError, ValueError):
            return  # config.validate says what is wrong with it
        if count <= 1:
            return
        if self.nodes_mode == "runs":
            out["nodes"] = 1
            command = f"invoke job.submit --target={name} --runs={count}"
            self.commands.append(command)
            self.comments[("compute-targets", name, "nodes")] = f"XT's nodes: {count} (independent runs): `{command}`"
            self.notes.append(f"compute-targets.{name}.nodes: XT ran {count} independent runs; written as nodes: 1, "
                              f"submit them as XT did with `{command}`")
            return
        self.comments[("compute-targets", name, "nodes")] = (
            f"singkit: ONE {count}-node distributed job; in XT {count} independent runs (import with --xt-nodes=runs for that)")
        self.notes.append(f"compute-targets.{name}.nodes: {count} now means ONE {count}-node distributed job (XT ran {count} "
                          f"independent single-node runs); `config.import-xt --xt-nodes=runs` imports it as nodes: 1 and "
                          f"`job.submit --runs={count}` instead")

    def check_cluster(self, name: str, out: dict[str, Any], kind: str) -> None:
        """A Singularity target's cluster XT knows but these files do not define: a record with XT's ids."""
        compute = str(out.get("compute") or "")
        if kind != "singularity" or not compute or compute in (self.doc.get("external-services") or {}):
            return
        known = facts.virtual_cluster_ids(compute)
        if known is None:
            return  # a bare name: a cluster in the workspace's subscription and resource group
        services = self.section("external-services")
        if compute not in services:
            services[compute] = {"type": "virtual_cluster", "subscription-id": known[0], "resource-group": known[1]}
            self.notes.append(f"external-services.{compute}: added for compute-targets.{name}, with the ids XT's Singularity "
                              f"backend uses for this cluster (subscription {known[0]}, resource group {known[1]})")

    # -- setups -----------------------------------------------------------------------------
    def setups(self) -> None:
        for name, record in (self.doc.get("setups") or {}).items():
            converted: dict[str, Any] = {}
            for key, value in (record or {}).items():
                canonical = schema.canonical_key(str(key))
                if _empty(value):
                    continue
                if canonical not in schema.SETUP_FIELDS:
                    self.skip(f"setups.{name}.{key}", facts.SETUP_KEYS.get(canonical, "not used by singkit"))
                    continue
                if canonical in ("pip", "conda", "pre-cmds"):
                    value = [str(v) for v in (value if isinstance(value, list) else str(value).split())]
                    if canonical == "pip":
                        value = [self.pin_star(str(name), v) for v in value]
                elif canonical == "activate":  # XT's `$call ` is its Windows marker, removed on Linux
                    value = str(value).removeprefix("$call ")
                converted[canonical] = value
            self.section("setups")[str(name)] = converted
        if self.env:
            self.spread_env()

    def pin_star(self, setup: str, entry: str) -> str:
        """XT's `NAME==*` = the version of NAME installed on the submitting machine (xtlib 0.0.342
        runner.py `adjust_pip_packages`: `get_installed_package_version`, importlib.metadata); pip
        itself refuses `==*` ("Invalid requirement"). The version installed where this import runs
        (the machine XT would have submitted from), else NAME unpinned; a note either way."""
        if not entry.endswith("==*"):
            return entry
        words = entry.split(" ")  # XT's own split: options may come before the package
        package = words[-1][:-len("==*")]
        version = installed_version(package)
        pinned = " ".join([*words[:-1], f"{package}=={version}" if version else package])
        said = (f"pinned to {version}, the version installed where this import ran" if version else
                f"{package} is not installed where this import ran, so it is written unpinned (pip installs the newest); "
                f"pin the version you want")
        self.notes.append(f"setups.{setup}.pip: `{entry}` means the version installed on the submitting machine in XT "
                          f"(pip refuses `==*`): {said} → `{pinned}`")
        return pinned

    def spread_env(self) -> None:
        """XT's general.env-vars reach every run on every target; singkit has no config-wide env, so
        every setup gets them (`env:`, before its own), and a target without a setup gets XT_ENV_SETUP."""
        setups = self.section("setups")
        for record in setups.values():
            record["env"] = {**self.env, **(record.get("env") or {})}
        targets = self.out.get("compute-targets") or {}
        bare = [n for n, t in targets.items() if not t.get("setup")]
        if bare or not setups:
            setups.setdefault(XT_ENV_SETUP, {}).setdefault("env", dict(self.env))
        for name in bare:
            targets[name]["setup"] = XT_ENV_SETUP
            self.comments[("compute-targets", name, "setup")] = "added: it carries XT's general.env-vars"

    # -- general ----------------------------------------------------------------------------
    def env_vars(self) -> dict[str, Any]:
        """general.env-vars as singkit `env:` values: `$$NAME` → `$env:NAME`; a literal secret too."""
        out: dict[str, Any] = {}
        for key, value in ((self.doc.get("general") or {}).get("env-vars") or {}).items():
            key = str(key)
            if isinstance(value, str) and value.startswith(XT_FROM_ENV):
                value = f"$env:{value[len(XT_FROM_ENV):]}"
                self.variables.append(value[len("$env:"):])
            elif value is not None and schema.is_secret_env(key) and not str(value).startswith("$env:"):
                self.notes.append(f"general.env-vars.{key}: a literal secret was replaced by $env:{key}; export {key}")
                self.variables.append(key)
                value = f"$env:{key}"
            out[key] = value
        return out

    def general(self) -> None:
        general = self.doc.get("general") or {}
        carried: dict[str, Any] = {}
        for key, value in general.items():
            canonical = "maximize" if key == "maximize-metric" else schema.canonical_key(str(key))
            if canonical in ("experiment", "primary-metric", "maximize", "step-name") and not _empty(value):
                carried[canonical] = typed(schema.GENERAL_FIELDS[canonical], value)
            elif key == "env-vars":
                if general.get("env-vars"):
                    self.notes.append("general.env-vars: " + facts.GENERAL_KEYS["env-vars"])
            else:
                self.skip(f"general.{key}", facts.GENERAL_KEYS.get(str(key), "an XT setting with no singkit counterpart"))
        code = self.doc.get("code") or {}
        for key, value in code.items():
            if key == "code-omit" and value:
                carried["code-omit"] = [str(v) for v in value]
            elif key == "code-dirs" and [str(v) for v in value or []] in ([], ["$code/**"], ["$code"]):
                self.skip("code.code-dirs", "XT's default (the whole code folder) is singkit's default too (general.code-dirs: [.])")
            else:
                self.skip(f"code.{key}", "XT's code upload settings; singkit snapshots general.code-dirs minus .gitignore and code-omit")
        if carried:
            self.out["general"] = carried
        self.variables = sorted(set(self.variables))
