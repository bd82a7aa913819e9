"""A run's handle on its Azure ML job: backend.json, typed, with the submit state as an enum.

backend.json keeps the flags it always had (old files read the same, new files are what old
singkit wrote); the state is derived from them and every change of state goes through
`SingularityHandle`, which knows the allowed moves (SUBMIT_MOVES):

    unsent ──▶ submitting ──▶ created
       │           └──▶ never-created
       └──▶ created   (recorded from what the submitter held before it named the job)
    any ──▶ withdrawn (a cancel by name: whatever the record says by then, even withdrawn)

    unsent         no Azure ML job named yet (no backend.json, or only the mirror record)
    submitting     `azureml_name` written BEFORE the create, `submitting: true`, `submit_started`
    created        Azure ML confirmed the job: studio URL, workspace, nodes, azure_status, final
    withdrawn      singkit cancelled it because the submit failed as a whole (`withdrawn: true`)
    never-created  the grace period passed and Azure ML has no such job (`never_created: true`)
"""

from __future__ import annotations

import enum
import time
from typing import Any


class SubmitState(enum.Enum):
    UNSENT = "unsent"
    SUBMITTING = "submitting"
    CREATED = "created"
    WITHDRAWN = "withdrawn"
    NEVER_CREATED = "never-created"


_ANY = frozenset({SubmitState.WITHDRAWN})
SUBMIT_MOVES: dict[SubmitState, frozenset[SubmitState]] = {
    SubmitState.UNSENT: _ANY | {SubmitState.SUBMITTING, SubmitState.CREATED},
    SubmitState.SUBMITTING: _ANY | {SubmitState.CREATED, SubmitState.NEVER_CREATED},
    SubmitState.CREATED: _ANY,
    SubmitState.WITHDRAWN: _ANY,
    SubmitState.NEVER_CREATED: _ANY,
}
_UNSETTLED = ("submitting", "submit_started")


class SingularityHandle:
    """backend.json of one Singularity run. `info` is the mapping itself, changed in place (the
    callers write it back with run.write_backend_info); ValueError for a move SUBMIT_MOVES
    does not allow (a fault in singkit, not in the store)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info

    @property
    def state(self) -> SubmitState:
        if not self.info.get("azureml_name"):
            return SubmitState.UNSENT
        if self.info.get("never_created"):
            return SubmitState.NEVER_CREATED
        if self.info.get("submitting"):
            return SubmitState.SUBMITTING
        if self.info.get("withdrawn"):
            return SubmitState.WITHDRAWN
        return SubmitState.CREATED

    @property
    def name(self) -> str | None:
        """The Azure ML job's name (known from `submitting` on)."""
        name = self.info.get("azureml_name")
        return str(name) if name else None

    @property
    def tracked(self) -> bool:
        """An Azure ML job known to exist (not one whose submit is unsettled or never happened)."""
        return self.state in (SubmitState.CREATED, SubmitState.WITHDRAWN)

    @property
    def submit_started(self) -> float:
        """Epoch seconds the submit began (0 when not recorded)."""
        return float(self.info.get("submit_started") or 0)

    def _move(self, to: SubmitState) -> None:
        if to not in SUBMIT_MOVES[self.state]:
            raise ValueError(f"backend.json of {self.name or 'a run'}: no move from {self.state.value} to {to.value}")

    def submitting(self, name: str, now: float | None = None) -> dict[str, Any]:
        """The record to write before the create: the job's name, so a submit cut short is found."""
        self._move(SubmitState.SUBMITTING)
        return {**self.info, "azureml_name": name, "submitting": True,
                "submit_started": round(time.time() if now is None else now, 3)}

    def created(self, **fields: Any) -> dict[str, Any]:
        """Azure ML confirmed the job: `fields` (azureml_name, studio_url, ...) recorded in place."""
        self._move(SubmitState.CREATED)
        self.info.update(fields)
        for key in _UNSETTLED:
            self.info.pop(key, None)
        return self.info

    def withdrawn(self, name: str) -> dict[str, Any]:
        """singkit cancelled the job (the submit failed as a whole): a new record."""
        self._move(SubmitState.WITHDRAWN)
        info = {k: v for k, v in self.info.items() if k not in _UNSETTLED}
        return {**info, "azureml_name": name, "withdrawn": True}

    def never_created(self) -> dict[str, Any]:
        """No such job in Azure ML after the grace period: the run's submit never reached it."""
        self._move(SubmitState.NEVER_CREATED)
        return {**self.info, "submitting": False, "final": True, "never_created": True}
