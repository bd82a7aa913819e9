"""Log hparams and metrics from inside a job. Standard library only.

Every job gets a copy of this file as `singkit_metrics.py` on its PYTHONPATH, so a script
needs nothing installed in its image:

    import singkit_metrics as sm           # or: from singkit import metrics as sm
    sm.log_hparams({"lr": 0.1, "bs": 32})
    sm.log_metrics({"loss": 0.52, "acc": 0.81}, step=10)
    out = sm.outputs_dir()                 # write result files here; they are kept per run

The protocol under it is plain: JSON objects, one per line, appended to the file named by
$SINGKIT_RUN_LOG (any language can do the same):

    {"t": 1732450000.12, "event": "hparams", "hparams": {"lr": 0.1}}
    {"t": 1732450001.50, "event": "metrics", "step": 10, "metrics": {"loss": 0.52}}

Outside a singkit job ($SINGKIT_RUN_LOG unset) the calls do nothing, so the same script runs
anywhere. $SINGKIT_NODE (multi-node runs) adds "node": N to every line.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Mapping

RUN_LOG_ENV = "SINGKIT_RUN_LOG"
OUTPUTS_ENV = "SINGKIT_OUTPUTS"
OUTPUT_DIR_ENV = "SINGKIT_OUTPUT_DIR"  # the target's first `outputs:` folder (mounted storage)
NODE_ENV = "SINGKIT_NODE"

__all__ = ["emit", "log_hparams", "log_metrics", "outputs_dir", "run_log_path"]


def run_log_path() -> str | None:
    """The file events go to, or None outside a singkit job."""
    return os.environ.get(RUN_LOG_ENV) or None


def emit(event: str, path: str | os.PathLike | None = None, **fields: Any) -> dict[str, Any] | None:
    """Append one event line; None (and nothing written) when there is no run log."""
    path = path or run_log_path()
    if not path:
        return None
    record: dict[str, Any] = {"t": round(time.time(), 3), "event": event}
    node = os.environ.get(NODE_ENV)
    if node not in (None, ""):
        record["node"] = int(node) if node.isdigit() else node
    record.update(fields)
    line = (json.dumps(record, default=_jsonable) + "\n").encode("utf-8")
    # One write on an O_APPEND descriptor: lines from concurrent writers never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return record


def log_hparams(hparams: Mapping[str, Any]) -> None:
    """Record the run's hyperparameters (later calls add to / override earlier ones)."""
    emit("hparams", hparams=dict(hparams))


def log_metrics(metrics: Mapping[str, Any], step: int | None = None) -> None:
    """Record metric values, optionally at a training step."""
    fields: dict[str, Any] = {}
    if step is not None:
        fields["step"] = step
    emit("metrics", **fields, metrics=dict(metrics))


def outputs_dir() -> Path:
    """The run's output folder, created if needed: the target's first `outputs:` folder
    ($SINGKIT_OUTPUT_DIR: mounted storage, so checkpoints outlive the container and a
    `job.rerun --resume` finds them), else the run's own ($SINGKIT_OUTPUTS), else ./outputs."""
    path = Path(os.environ.get(OUTPUT_DIR_ENV) or os.environ.get(OUTPUTS_ENV) or "outputs")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _jsonable(value: Any) -> Any:
    """numpy / torch scalars and the like: their Python value, else their text."""
    for attr in ("item", "tolist"):
        method = getattr(value, attr, None)
        if callable(method):
            try:
                return method()
            except Exception:  # noqa: BLE001 - fall through to str()
                pass
    return str(value)
