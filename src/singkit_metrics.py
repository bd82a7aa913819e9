"""Log hparams and metrics from inside a job. Standard library only.

Installed with singkit as the top-level module `singkit_metrics` (so a script run directly in
the project's venv imports it too), and copied into every job as `singkit_metrics.py` on its
PYTHONPATH, so a script needs nothing installed in its image:

    import singkit_metrics as sm           # or: from singkit import metrics as sm
    sm.log_hparams({"lr": 0.1, "bs": 32})
    sm.log_metrics({"loss": 0.52, "acc": 0.81}, step=10)
    out = sm.outputs_dir()                 # write result files here; they are kept per run

The protocol under it is plain: JSON objects, one per line, appended to the file named by
$SINGKIT_RUN_LOG (any language can do the same):

    {"t": 1732450000.12, "event": "hparams", "hparams": {"lr": 0.1}}
    {"t": 1732450001.50, "event": "metrics", "step": 10, "metrics": {"loss": 0.52}}

Outside a singkit job ($SINGKIT_RUN_LOG unset) the first call makes a local run folder,
`<store>/local-runs/<YYYYmmdd-HHMMSS>-<pid>/` (the store: $SINGKIT_HOME, else `.singkit` in the
nearest folder at or above the working folder holding configs/singkit.yaml, else in the working
folder), and writes run.log and outputs/ there; it says so in one line on stderr, never on
stdout (a script's stdout may be its data). $SINGKIT_NODE (multi-node runs) adds "node": N to
every line.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Mapping

RUN_LOG_ENV = "SINGKIT_RUN_LOG"
OUTPUTS_ENV = "SINGKIT_OUTPUTS"
OUTPUT_DIR_ENV = "SINGKIT_OUTPUT_DIR"  # the target's first `outputs:` folder (mounted storage)
NODE_ENV = "SINGKIT_NODE"
LOCAL_RUNS_DIR = "local-runs"  # under the store, for scripts run outside a job
PROJECT_CONFIG = os.path.join("configs", "singkit.yaml")  # what marks a project root (as singkit.environment)

__all__ = ["emit", "local_run_dir", "log_hparams", "log_metrics", "outputs_dir", "run_log_path"]

_local_run: Path | None = None  # this process's local run folder, once made


def run_log_path() -> str | None:
    """The file events go to inside a singkit job, or None outside one."""
    return os.environ.get(RUN_LOG_ENV) or None


def local_run_dir() -> Path:
    """This process's run folder outside a job (made on first use, then the same one):
    `<store>/local-runs/<YYYYmmdd-HHMMSS>-<pid>`, the store being $SINGKIT_HOME, else `.singkit`
    in the project (the nearest folder at or above the working one with configs/singkit.yaml),
    else in the working folder. Announced once on stderr."""
    global _local_run
    if _local_run is None:
        home = os.environ.get("SINGKIT_HOME")
        if home:
            store = Path(home).expanduser()
        else:
            cwd = Path.cwd()
            root = next((d for d in (cwd, *cwd.parents) if (d / PROJECT_CONFIG).is_file()), cwd)
            store = root / ".singkit"
        folder = store / LOCAL_RUNS_DIR / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        folder.mkdir(parents=True, exist_ok=True)
        _local_run = folder
        print(f"singkit_metrics: not inside a singkit job; logging to {_shown(folder / 'run.log')}",
              file=sys.stderr, flush=True)
    return _local_run


def emit(event: str, path: str | os.PathLike | None = None, **fields: Any) -> dict[str, Any]:
    """Append one event line to `path`, else the job's run log, else the local run folder's."""
    path = path or run_log_path() or local_run_dir() / "run.log"
    record: dict[str, Any] = {"t": round(time.time(), 3), "event": event}
    node = os.environ.get(NODE_ENV)
    if node not in (None, ""):
        record["node"] = int(node) if node.isdigit() else node
    record.update(fields)
    line = (json.dumps(record, default=_jsonable) + "\n").encode("utf-8")
    # One write on an O_APPEND descriptor: lines from concurrent writers never interleave.
    # O_NONBLOCK changes nothing for a regular file, but a FIFO nobody reads would hold a
    # blocking open for ever: it fails at once (ENXIO) instead, and says so. O_NOFOLLOW: a
    # link put where the store keeps run.log is not written through (ELOOP).
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as error:
        raise OSError(error.errno, f"singkit_metrics: cannot write the run log ({error.strerror}; it must be "
                                   "a regular file, not a FIFO, folder, device or link)", str(path)) from None
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
    `job.rerun --resume` finds them), else the run's own ($SINGKIT_OUTPUTS), else (outside a
    job) `outputs/` in the local run folder, beside its run.log."""
    configured = os.environ.get(OUTPUT_DIR_ENV) or os.environ.get(OUTPUTS_ENV)
    path = Path(configured) if configured else local_run_dir() / "outputs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _shown(path: Path) -> str:
    """`path` relative to the working folder when it is below it (shorter to read)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


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
