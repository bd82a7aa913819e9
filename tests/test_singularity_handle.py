"""Issue 12 (typed contracts): a Singularity run's backend.json read through SingularityHandle,
its submit state an enum derived from the flags singkit has always written, every change of
state one move of SUBMIT_MOVES. Old files read as before; new files are byte-for-byte what
the flag-writing code wrote (the store and older singkit versions read them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from singkit.backends.singularity.backend import _tracked
from singkit.backends.singularity.handle import SUBMIT_MOVES, SingularityHandle, SubmitState
from singkit.store.records import BACKEND_FIELDS, json_record

MIRROR = {"mirror": {"record": "runs", "url": "https://acct.blob.core.windows.net/runs", "prefix": "p/job1/job1.1"}}
CREATED_FIELDS = {"azureml_name": "sk-job1-1-ab12", "studio_url": "https://ml.azure.com/runs/sk-job1-1-ab12",
                  "workspace": "ws", "subscription": "sub", "resource_group": "rg", "experiment": "exp", "nodes": 2,
                  "per_node": 1, "azure_status": "Queued", "submitted": 1700000100.0}

# backend.json as singkit wrote it before the handle, at each point of a submit (backend.py, 2026-11)
OLD_FILES: list[tuple[dict[str, Any], SubmitState]] = [
    ({}, SubmitState.UNSENT),
    (MIRROR, SubmitState.UNSENT),
    ({**MIRROR, "azureml_name": "sk-job1-1-ab12", "submitting": True, "submit_started": 1700000000.0},
     SubmitState.SUBMITTING),
    ({**MIRROR, **CREATED_FIELDS}, SubmitState.CREATED),
    ({**MIRROR, **CREATED_FIELDS, "azure_status": "Completed", "final": True}, SubmitState.CREATED),
    ({**MIRROR, **CREATED_FIELDS, "withdrawn": True}, SubmitState.WITHDRAWN),
    ({**MIRROR, "azureml_name": "sk-job1-1-ab12", "submitting": False, "submit_started": 1700000000.0,
      "final": True, "never_created": True}, SubmitState.NEVER_CREATED),
]


@pytest.mark.parametrize("old, state", OLD_FILES, ids=[s.value + str(i) for i, (_, s) in enumerate(OLD_FILES)])
def test_an_old_backend_json_reads_as_its_submit_state(tmp_path: Path, old: dict[str, Any], state: SubmitState) -> None:
    path = tmp_path / "backend.json"
    path.write_text(json.dumps(old))
    info = json_record(path, BACKEND_FIELDS)  # what Run.backend_info() reads
    assert info == old
    handle = SingularityHandle(info)
    assert handle.state is state
    assert handle.tracked is _tracked(info) is (state in (SubmitState.CREATED, SubmitState.WITHDRAWN))
    assert handle.name == old.get("azureml_name")


def test_each_move_writes_what_the_flags_said() -> None:
    submitting = SingularityHandle(dict(MIRROR)).submitting("sk-job1-1-ab12", now=1700000000.0)
    assert submitting == OLD_FILES[2][0]
    assert SingularityHandle(submitting).submit_started == 1700000000.0
    held = dict(submitting)
    created = SingularityHandle(held).created(**CREATED_FIELDS)
    assert created is held and created == OLD_FILES[3][0]  # in place: cancel goes on with the same mapping
    assert SingularityHandle(dict(MIRROR)).created(**CREATED_FIELDS) == OLD_FILES[3][0]
    assert SingularityHandle(dict(created)).withdrawn("sk-job1-1-ab12") == OLD_FILES[5][0]
    assert SingularityHandle(dict(submitting)).withdrawn("sk-job1-1-ab12") == {**MIRROR, "azureml_name": "sk-job1-1-ab12",
                                                                               "withdrawn": True}
    assert SingularityHandle(dict(submitting)).never_created() == OLD_FILES[6][0]


@pytest.mark.parametrize("start, move", [
    (OLD_FILES[3][0], "submitting"), (OLD_FILES[3][0], "never_created"), (OLD_FILES[6][0], "created"),
    (OLD_FILES[5][0], "created"), (OLD_FILES[0][0], "never_created"), (OLD_FILES[2][0], "submitting"),
])
def test_a_move_the_table_does_not_allow_is_refused(start: dict[str, Any], move: str) -> None:
    handle = SingularityHandle(dict(start))
    with pytest.raises(ValueError, match=f"no move from {handle.state.value}"):
        getattr(handle, move)(*(["sk-x"] if move == "submitting" else []), **(CREATED_FIELDS if move == "created" else {}))
    assert handle.info == start  # nothing changed


def test_every_state_has_its_moves() -> None:
    assert set(SUBMIT_MOVES) == set(SubmitState)
    assert all(SubmitState.WITHDRAWN in moves for moves in SUBMIT_MOVES.values())
    assert not any(SubmitState.UNSENT in moves for moves in SUBMIT_MOVES.values())  # no way back
    assert [s for s, moves in SUBMIT_MOVES.items() if SubmitState.SUBMITTING in moves] == [SubmitState.UNSENT]
