"""The variables singkit gives a run, and the ones it keeps from it.

Shared by the submit pipeline (singkit.jobs.spec, which seals secrets under SECRET_PREFIX and
records the withheld names) and the runtime that builds a run's environment (workdir).
"""

from __future__ import annotations

import json
import re
from typing import Any

SECRET_PREFIX = "SINGKIT_SECRET_"

# singkit's own credentials that live in fixed variables (singkit.backends.singularity.client)
OWN_CREDENTIALS = ("SINGKIT_AZURE_TOKEN", "SINGKIT_AZURE_ML_TOKEN")


def hp_variable(name: str) -> str:
    """The variable a run reads hparam `name` from: SINGKIT_HP_<NAME>, `.`/`-` as `_`."""
    return "SINGKIT_HP_" + re.sub(r"[^A-Za-z0-9_]", "_", name).upper()


def hp_environment(hparams: dict[str, Any], text: dict[str, str] | None = None) -> dict[str, str]:
    """The hparams as environment: SINGKIT_HPARAMS (JSON of the typed values: the entry wrapper
    records it in run.log) and SINGKIT_HP_<NAME> each, as typed on the command line (`text`;
    jobs stored before it was kept have only the typed values)."""
    env = {"SINGKIT_HPARAMS": json.dumps(hparams)}
    text = text or {}
    for name, value in hparams.items():
        env[hp_variable(name)] = str(text.get(name, value))
    return env
