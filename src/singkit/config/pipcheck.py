"""A setup's `pip:` entries that pip cannot read, found at validate instead of in a queued job.

Each entry becomes one argument of `python -m pip install` (singkit.backends.runtime.setup.steps quotes it), so
an entry that looks like a requirement must be one: pip parses it with the `packaging` library's
PEP 508 `Requirement` (pip vendors the same code), and refuses e.g. `xtlib==*` ("Invalid
requirement") — XT's `==*` spelling, which XT itself replaced before pip ran (xtlib 0.0.342
runner.py adjust_pip_packages). Options (`-U`, `-r file`), URLs, paths and archives are pip's
other argument forms and are not judged here. `packaging` is a declared dependency (it came with
marshmallow and matplotlib already); it is imported only when a config has pip entries.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from singkit.config import schema
from singkit.config.layers import locate
from singkit.exceptions import Problem

if TYPE_CHECKING:
    from singkit.config.model import Config


def _judged(entry: str) -> bool:
    """Is this entry meant as a requirement (NAME[extras][spec][; marker])? Not an option, URL or path."""
    text = entry.strip()
    return bool(text) and text[0].isalnum() and not any(c in text for c in "/\\") and "://" not in text


# The plain forms nearly every config uses (`numpy`, `torch>=2.1`, `transformers[torch]==4.44.2`,
# `apex==0.1.*`), all valid PEP 508/440: they pass without importing `packaging` (~50 ms at every
# validate and submit, issue 14). Anything else, valid or not, is left to `packaging` to judge.
_SUFFIX = r"(?:(?:a|b|rc)[0-9]+)?(?:\.post[0-9]+)?(?:\.dev[0-9]+)?"
_RELEASE = rf"[0-9]+(?:\.[0-9]+)*{_SUFFIX}"
_CLAUSE = (rf"(?:(?:==|!=)\s*(?:[0-9]+(?:\.[0-9]+)*\.\*|{_RELEASE})|(?:>=|<=|>|<)\s*{_RELEASE}"
           rf"|~=\s*[0-9]+(?:\.[0-9]+)+{_SUFFIX})")  # ~= needs two release numbers (PEP 440)
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_PLAIN = re.compile(rf"{_NAME}(?:\[{_NAME}(?:\s*,\s*{_NAME})*\])?"
                    rf"(?:\s*{_CLAUSE}(?:\s*,\s*{_CLAUSE})*)?")


def problem(entry: str) -> str | None:
    """Why pip would refuse `entry`, or None: `xtlib==*` → "… (Expected …)"."""
    if not _judged(entry) or _PLAIN.fullmatch(entry.strip()):
        return None
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        Requirement(entry.strip())
    except InvalidRequirement as error:
        why = str(error).splitlines()[0].strip().rstrip(".")
        if entry.strip().endswith("==*"):
            name = entry.strip()[:-3]
            return (f"`{entry}` is XT's \"the version installed on my machine\", which pip refuses; write "
                    f"`{name}==<version>` (e.g. the one `pip show {name}` names) or `{name}` unpinned")
        return f"`{entry}` is not a requirement pip can read ({why}); write NAME, NAME==VERSION or NAME>=VERSION (PEP 508)"
    return None


def pip_problems(cfg: "Config") -> list[Problem]:
    """One Problem per unreadable `pip:` entry of each setup, at the entry's own line and column."""
    out: list[Problem] = []
    for name, setup in cfg.setups.items():
        entries = (setup or {}).get("pip")
        if not isinstance(entries, list):
            continue  # the schema says what is wrong with it
        origin = cfg.where("setups", name, "pip")
        if origin is None:
            continue
        layer = next((l for l in cfg._defined_in.get(("setups", name), []) if l.path == origin.file), None)
        for index, entry in enumerate(entries):
            message = problem(str(entry)) if isinstance(entry, str) else None
            if message is None:
                continue
            line, col = origin.line, origin.col
            if layer is not None and layer.doc:
                path = _raw_path(layer.doc, name, index)
                if path:
                    line, col = locate(layer.doc, path, of_value=True)
            out.append(Problem(origin.file, line, col, f"setups.{name}.pip: {message}", (("setups", name),)))
    return out


def _raw_path(doc: Any, name: str, index: int) -> list[Any] | None:
    """[section key, name, pip key (any alias), index] as the layer spells them."""
    section = next((k for k in doc if schema.canonical_key(str(k)) == "setups"), None)
    record = (doc.get(section) or {}).get(name) if section is not None else None
    if not isinstance(record, dict):
        return None
    key = next((k for k in record if schema.canonical_key(str(k)) == "pip"), None)
    return [section, name, key, index] if key is not None else None
