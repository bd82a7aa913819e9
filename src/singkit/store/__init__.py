"""The job store: job folders under $SINGKIT_HOME (the truth), an SQLite index over them,
the audit log. Layout and run.log format: see model.py and runlog.py."""

from singkit.store.model import Job, Run, Store
from singkit.store.runlog import RunState
from singkit.store.status import STATUSES, TERMINAL, RunStatus

__all__ = ["Job", "Run", "RunState", "RunStatus", "STATUSES", "Store", "TERMINAL"]
