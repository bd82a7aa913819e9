"""The merged config: layers folded record by record, each value remembering the file it came from."""

from __future__ import annotations

import contextlib
import copy
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from singkit.config import schema
from singkit.config.layers import Layer, locate, plain, position
from singkit.config.secrets import EnvRef, is_env_ref, masked
from singkit.exceptions import ConfigError, Problem, UsageError, shown_path
from singkit.fsutil import atomic_write, folder_lock
from singkit.suggest import did_you_mean as suggest

BUILTIN = Path("<built-in>")
BUILTIN_TARGETS = {
    "local": {"service": "local", "description": "processes on this machine"},
    "docker": {"service": "docker", "description": "containers on the local Docker Engine"},
}
RECORD_SECTIONS = ("external-services", "dockers", "compute-targets", "setups", "skus", "datastores")


@dataclass(frozen=True)
class Origin:
    file: Path
    line: int
    col: int  # of the value
    key_col: int = 0  # of the key, on the same line

    def __str__(self) -> str:
        return f"{shown_path(self.file)}:{self.line}" if self.file != BUILTIN else str(BUILTIN)


class Config:
    def __init__(self, layers: list[Layer]):
        self.layers = layers
        self.layer_problems: list[Problem] = []  # schema problems inside records (load_config sets them)
        self.project_root: Path | None = None  # load_config sets it: code-dirs must stay inside it
        self._records: dict[str, dict[str, dict[str, Any]]] = {s: {} for s in RECORD_SECTIONS}
        self._origins: dict[tuple[str, ...], Origin] = {}
        self._defined_in: dict[tuple[str, str], list[Layer]] = {}
        self.general: dict[str, Any] = {
            "experiment": "singkit",
            "installer-image": schema.DEFAULT_INSTALLER,
            "validator-image": schema.DEFAULT_VALIDATOR,
            "code-dirs": ["."],
            "code-omit": [],
            "maximize": True,
            "step-name": "step",
        }
        for name, record in BUILTIN_TARGETS.items():
            self._records["compute-targets"][name] = dict(record)
            for key in record:
                self._origins[("compute-targets", name, key)] = Origin(BUILTIN, 0, 0)
        for layer in layers:
            self._fold(layer)

    # -- building -------------------------------------------------------------------------
    def _fold(self, layer: Layer) -> None:
        if not layer.doc:
            return
        for raw_section, body in layer.doc.items():
            section = schema.canonical_key(str(raw_section))
            if not body:
                continue
            if section == "general":
                if not isinstance(body, dict):
                    continue
                for key, value in body.items():
                    canonical = schema.canonical_key(str(key))
                    self.general[canonical] = self._value(layer, [raw_section, key], value)
                    self._origins[("general", canonical)] = self._origin(layer, body, key)
                continue
            if section not in self._records or not isinstance(body, dict):
                continue  # reported by the layer's schema check
            for name, record in body.items():
                name = str(name)
                merged = self._records[section].setdefault(name, {})
                self._defined_in.setdefault((section, name), []).append(layer)
                self._origins.setdefault((section, name), self._origin(layer, body, name))
                if not isinstance(record, dict):
                    continue  # reported by the layer's schema check, scoped to this record
                for key, value in record.items():
                    canonical = schema.canonical_key(str(key))
                    earlier, later = merged.get(canonical), self._value(layer, [raw_section, name, key], value)
                    # a map inside a record (env, build-args, inputs, ai-super-computer) merges key by key,
                    # as records do: a user layer's `env: {A: 1}` adds A, it does not drop the project's others
                    both = isinstance(earlier, dict) and isinstance(later, dict)
                    merged[canonical] = merge_maps(earlier, later) if both else later
                    self._origins[(section, name, canonical)] = self._origin(layer, record, key)
                    if isinstance(earlier, dict) and not both:  # replaced whole: its keys' lines are gone
                        for stale in [k for k in self._origins if k[:3] == (section, name, canonical) and len(k) == 4]:
                            del self._origins[stale]
                    if isinstance(value, dict):  # its keys have lines of their own
                        for inner in value:
                            self._origins[(section, name, canonical, str(inner))] = self._origin(layer, value, inner)

    @staticmethod
    def _origin(layer: Layer, node: Any, key: Any) -> Origin:
        line, col = position(node, key, of_value=True)
        return Origin(layer.path, line, col, position(node, key)[1])

    @staticmethod
    def _value(layer: Layer, path: list[Any], value: Any) -> Any:
        if isinstance(value, str) and is_env_ref(value):
            line, col = locate(layer.doc, path, of_value=True)
            return EnvRef.at(str(value), str(layer.path), line, col)
        if isinstance(value, dict):  # `env:` maps: each reference knows its own line
            return {str(k): Config._value(layer, [*path, k], v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [Config._value(layer, [*path, i], v) for i, v in enumerate(value)]
        return plain(value)

    # -- reading --------------------------------------------------------------------------
    @property
    def services(self) -> dict[str, dict[str, Any]]:
        return self._records["external-services"]

    @property
    def dockers(self) -> dict[str, dict[str, Any]]:
        return self._records["dockers"]

    @property
    def targets(self) -> dict[str, dict[str, Any]]:
        return self._records["compute-targets"]

    @property
    def setups(self) -> dict[str, dict[str, Any]]:
        return self._records["setups"]

    @property
    def datastores(self) -> dict[str, dict[str, Any]]:
        """`datastores:` NAME -> {path, url}: local folders standing for Azure ML datastores (singkit.mounts)."""
        return self._records["datastores"]

    @functools.cached_property
    def skus(self) -> dict[str, dict[str, Any]]:
        """The instance-type catalog: the shipped one (singkit.singularity.catalog), with the
        config's `skus:` records over it, field by field."""
        from singkit.singularity.catalog import shipped

        merged = {name: dict(rec) for name, rec in shipped().items()}
        by_key = {_sku_key(name): name for name in merged}
        for name, rec in self._records["skus"].items():
            # `nd40rs_v2:` or `Singularity.ND40rs_v2:` refines the shipped ND40rs_v2, field by field
            merged.setdefault(by_key.get(_sku_key(name), name), {}).update(rec)
        return merged

    def _get(self, section: str, name: str, what: str) -> dict[str, Any]:
        records = self._records[section]
        if name not in records:
            raise UsageError(f"no {what} named `{name}`{suggest(name, records)}")
        return copy.deepcopy(records[name])

    def target(self, name: str) -> dict[str, Any]:
        record = self._get("compute-targets", name, "compute target")
        record.setdefault("nodes", 1)
        record.setdefault("env", {})
        record["name"] = name
        return record

    def docker(self, name: str) -> dict[str, Any]:
        record = self._get("dockers", name, "docker record")
        record.setdefault("sing-wrap", False)
        record.setdefault("post-sing-steps", [])
        record.setdefault("installer-image", self.general["installer-image"])
        record.setdefault("validator-image", self.general["validator-image"])
        record.setdefault("build-args", {})
        record["name"] = name
        return record

    def service(self, name: str) -> dict[str, Any]:
        record = self._get("external-services", name, "external service")
        if record.get("type") in ("singularity", "aml"):
            record.setdefault("workspace", name)
        record["name"] = name
        return record

    def setup(self, name: str) -> dict[str, Any]:
        record = self._get("setups", name, "setup")
        for key in ("pip", "conda", "pre-cmds"):
            record.setdefault(key, [])
        record.setdefault("env", {})
        record["name"] = name
        return record

    def origin(self, section: str, name: str, key: str | None = None) -> Path:
        """The file to write `key` of a record into: where that key is set, else where the record is."""
        if key and (section, name, key) in self._origins:
            found = self._origins[(section, name, key)].file
            if found != BUILTIN:
                return found
        layers = self._defined_in.get((section, name))
        if not layers:
            raise UsageError(f"`{name}` is not defined in any config file under {section}")
        return layers[0].path

    def where(self, section: str, name: str | None = None, key: str | None = None, sub: str | None = None) -> Origin | None:
        """Where a record, a key of it, or (`sub`) a key inside that key's mapping was written."""
        parts = tuple(p for p in (section, name, key, sub) if p is not None)
        return self._origins.get(parts)

    def provenance(self, section: str, name: str | None, record: dict[str, Any] | None = None) -> dict[str, tuple[Any, str]]:
        """Each key of a record → (value as it may be shown, `file:line` it came from, or `default`)."""
        if record is None:
            record = self.general if section == "general" else self._records[section].get(name or "", {})
        out = {}
        for key, value in record.items():
            if key == "name":
                continue
            origin = self._origins.get((section, key) if section == "general" else (section, name, key))
            out[key] = (masked(key, value, schema.SECRET_KEYS), str(origin) if origin else "default")
        return out

    def map_provenance(self, section: str, name: str, key: str, shown: dict[str, Any]) -> dict[str, tuple[Any, str]]:
        """Each key of a map inside a record (`env`, `build-args`, ...) → (its value in `shown`, the map
        as provenance() shows it, so secrets stay masked; the `file:line` that key came from)."""
        out = {}
        for inner, value in shown.items():
            origin = self._origins.get((section, name, key, str(inner)))
            out[str(inner)] = (value, str(origin) if origin else "default")
        return out

    def env_refs(self) -> list[EnvRef]:
        """Every `$env:` reference in the merged config (secrets and others)."""
        found: list[EnvRef] = []

        def walk(value: Any) -> None:
            if isinstance(value, EnvRef):
                found.append(value)
            elif isinstance(value, dict):
                for item in value.values():
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)

        walk(self.general)
        walk(self._records)
        return found

    # -- checking -------------------------------------------------------------------------
    def reference_problems(self) -> list[Problem]:
        """Broken references and service records, each scoped to the record it is in."""
        from singkit.config.references import reference_problems

        return reference_problems(self)

    # -- writing --------------------------------------------------------------------------
    def write_back(self, section: str, name: str, key: str, value: Any) -> Path:
        """Set `key` (a scalar) of a record in the file that defines it; every other byte of the
        file stays as it was (BOM, CRLF, comments, anchors, quoting: config.writeback).

        The file's folder itself is the lock (no lock file in the user's committed configs/),
        and the new text replaces the file atomically: a kill leaves the old file or the new."""
        from singkit.config.writeback import set_key

        path = self.origin(section, name, key)
        real = Path(os.path.realpath(path))
        with folder_lock(real.parent):
            _sweep_legacy_lock(real)
            try:
                text = real.read_bytes().decode("utf-8")
            except OSError as error:
                raise ConfigError(Problem(path, 1, 1, f"cannot read config file: {error.strerror}")) from None
            except UnicodeDecodeError:
                raise ConfigError(Problem(path, 1, 1, "not UTF-8 text; save the file as UTF-8")) from None
            parts = [section] if section == "general" else [section, name]
            new = set_key(text, path, parts, key, value, _same_key)
            if new != text:
                atomic_write(real, new.encode("utf-8"))
        return path


def _same_key(written: str, wanted: str) -> bool:
    """Whether a key as written in a file (`sing_wrap`) names the canonical key `wanted`."""
    return schema.canonical_key(written) == wanted


def _sweep_legacy_lock(path: Path) -> None:
    """Earlier versions locked with `.<config>.lock` beside the config, in the user's folder."""
    with contextlib.suppress(OSError):
        path.with_name(f".{path.name}.lock").unlink()


def merge_maps(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """`later` over `earlier`, key by key, maps inside them too."""
    out = dict(earlier)
    for key, value in later.items():
        out[key] = merge_maps(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
    return out


def _sku_key(name: str) -> str:
    name = name.strip()
    return name[len("singularity."):].lower() if name.lower().startswith("singularity.") else name.lower()

