"""`from singkit import metrics`: the in-job logging API under singkit's package name.

The module itself is the top-level, dependency-free `singkit_metrics` (src/singkit_metrics.py),
installed with singkit and copied into every job; this name shares its functions and state.
"""

from __future__ import annotations

from singkit_metrics import (LOCAL_RUNS_DIR, NODE_ENV, OUTPUT_DIR_ENV, OUTPUTS_ENV, RUN_LOG_ENV, __all__, emit,
                             local_run_dir, log_hparams, log_metrics, outputs_dir, run_log_path)

__all__ = [*__all__, "LOCAL_RUNS_DIR", "NODE_ENV", "OUTPUT_DIR_ENV", "OUTPUTS_ENV", "RUN_LOG_ENV"]
