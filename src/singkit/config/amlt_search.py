"""Amulet's `search:` → a singkit jobs-file sweep (used by singkit.config.amlt_jobs, which
documents the whole mapping).

- `type` grid|random (another type: random over the same space), `max_trials` → max-trials
  (random: a fixed `seed: 0`, so a dry run and the submit draw the same sets), `parallel_trials`
  → the job's `parallel`.
- `params` [{name, spec: discrete|choice|uniform|loguniform|randint, values}] → lists or
  {uniform|loguniform|randint: [low, high]}; a list written as text (`values: "[16, 32]"`) is read
  as that list; a param with no singkit form that the command places is kept as a FILL-IN that the
  jobs-file loader refuses at its line (dropping it would run `{name}` literally).
- `{name}` in the command (Python str.format, as the public amlt sweep template in launch_amlt.py
  writes `seed={seed}`) → `${SINGKIT_HP_NAME}`; `{{`/`}}` are str.format's literal braces.
"""

from __future__ import annotations

import re
from typing import Any

# `conv` below is a singkit.config.amlt_jobs.Converter (notes, fill_in); not imported: it imports this
DISTRIBUTIONS = {"uniform": "uniform", "loguniform": "loguniform", "randint": "randint"}
PLACEHOLDER = re.compile(r"(?<!\{)\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<spec>[^{}]*))?\}(?!\})")


def sweep(conv: Any, search: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """The jobs-file sweep of an Amulet `search:`; the command's {name} placeholders read the hparams."""
    kind = str(search.get("type", "grid")).lower()
    for key in search:
        if key == "parallel_trials":
            entry["parallel"] = int(search[key])  # at most this many trials at once, as Amulet runs them
        elif key not in ("type", "max_trials", "params", "job_template"):
            conv.note(f"search.{key}", "not used by singkit (it runs every trial it is given, without early stopping)")
    if kind not in ("grid", "random"):
        conv.note("search.type", f"`{kind}` has no singkit counterpart: imported as `random` over the same space")
        kind = "random"
    params: dict[str, Any] = {}
    said_before = " ".join(entry.get("command") or [])
    for index, param in enumerate(search.get("params") or [], start=1):
        converted = convert_param(conv, f"search.params[{index}]", param or {}, kind)
        if converted is not None:
            params[str(param["name"])] = converted
        elif (param or {}).get("name") and _placeholder_of(str(param["name"]), said_before):
            # the command places it: dropping it would run `{name}` literally, so the jobs file
            # keeps a FILL-IN the jobs-file loader refuses at its line until values are listed
            name = str(param["name"])
            params[name] = f"FILL-IN: list the values of `{name}`"
            conv.fill_in.append(f"the jobs file's sweep param `{name}`: its values (search.params[{index}]) have no "
                                "singkit form and the command places it; list them")
    sweep: dict[str, Any] = {"type": kind, "params": params}
    if search.get("max_trials") is not None:
        sweep["max-trials"] = int(search["max_trials"])
    elif kind == "random":
        sweep["max-trials"] = 10
        conv.note("search.max_trials", "not given for a random search: singkit draws 10 sets; change max-trials")
    if kind == "random":
        sweep["seed"] = 0
        conv.note("search.type", "random: singkit draws max-trials sets from the same space with `seed: 0` (the same "
                  "sets at every dry run and submit); Amulet draws its own")
    entry["command"] = [placeholders(conv, line, list(params)) for line in entry.get("command") or []] or None
    if entry["command"] is None:
        del entry["command"]
    said = " ".join(entry.get("command") or [])
    for name in params:
        if hp_variable(name) not in said:
            conv.note(f"search.params.{name}", f"not placed in the command by `{{{name}}}`: the runs get it as "
                      f"${hp_variable(name)}" + ("" if "SINGKIT_HP_" in said else f" and `--{name} VALUE` appended"))
    return sweep

def convert_param(conv: Any, where: str, param: dict[str, Any], kind: str) -> Any:
    name = param.get("name")
    if not name:
        conv.note(where, "a param with no name: left out")
        return None
    spec = str(param.get("spec", "discrete")).lower()
    values = param.get("values")
    if isinstance(values, str) and values.strip().startswith("["):
        values = _string_list(values)  # `values: "[16, 32]"`, a list written as text
        if values is not None:
            conv.note(where, f"`{name}`'s values are written as text `{param['values']}`: read as the list {values}")
    if spec in ("discrete", "choice") and isinstance(values, list) and values:
        return values
    bounds = values if isinstance(values, list) and len(values) == 2 else [param.get("min"), param.get("max")]
    if spec in DISTRIBUTIONS and all(isinstance(b, (int, float)) for b in bounds):
        if kind == "grid":
            conv.note(where, f"`{spec}` is a range: a grid cannot enumerate it; left out (use type: random)")
            return None
        return {DISTRIBUTIONS[spec]: list(bounds)}
    conv.note(where, f"`{name}` (spec `{spec}`, values {values!r}) has no singkit form: list its values; left out")
    return None

def placeholders(conv: Any, line: str, names: list[str]) -> str:
    """`seed={seed}` → `seed=${SINGKIT_HP_SEED}`; `{{`/`}}` are str.format's literal braces."""
    def swap(found: re.Match) -> str:
        if found["name"] not in names:
            return found.group(0)
        if found["spec"] not in (None, "", "s"):
            conv.note("search.job_template.command", f"`{found.group(0)}`: the value is passed as listed, without "
                      f"the format `{found['spec']}`")
        return "${" + hp_variable(found["name"]) + "}"

    return PLACEHOLDER.sub(swap, line).replace("{{", "{").replace("}}", "}")


def _string_list(text: str) -> list[Any] | None:
    """`"[16, 32]"` → [16, 32] (YAML flow syntax, which JSON and Python's list literals also are
    for numbers and quoted words); None when the text is not a non-empty flat list."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        value = YAML(typ="safe").load(text)
    except YAMLError:
        return None
    if isinstance(value, list) and value and all(isinstance(v, (str, int, float, bool)) for v in value):
        return value
    return None


def _placeholder_of(name: str, command: str) -> bool:
    """Whether `command` places hparam `name` as str.format's `{name}` (or `{name:spec}`)."""
    return any(found["name"] == name for found in PLACEHOLDER.finditer(command))


def hp_variable(name: str) -> str:
    """The variable a run reads a hparam from (singkit.jobs.spec.hp_environment's naming)."""
    return "SINGKIT_HP_" + re.sub(r"[^A-Za-z0-9_]", "_", name).upper()
