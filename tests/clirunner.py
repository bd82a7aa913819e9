"""Running singkit as a user does: a subprocess in a project folder, with its own HOME."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_singkit(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SINGKIT_CONFIG")}
    environ.update({"HOME": str(cwd)})
    for isolated in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "SINGKIT_HOME"):
        environ.pop(isolated, None)
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "singkit", *args], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=timeout)
