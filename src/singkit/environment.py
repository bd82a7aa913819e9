"""The world a command runs in, injected so tests can build their own (httpie-style)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

PROJECT_CONFIG = Path("configs") / "singkit.yaml"


def find_project_root(start: Path) -> Path:
    """The nearest folder at or above `start` holding configs/singkit.yaml; `start` itself if none does.

    A configs/singkit.yaml that is no file (a folder, a FIFO, a dangling symlink) still marks the
    project: loading it then says what is wrong with it, rather than singkit running elsewhere."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if os.path.lexists(folder / PROJECT_CONFIG):
            return folder
    return start


def cache_dir(environ: Mapping[str, str]) -> Path:
    """singkit's folder in the user's cache (derived data only: safe to delete)."""
    base = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME", "~")) / ".cache")
    return Path(base).expanduser() / "singkit"


@dataclass
class Environment:
    project_root: Path
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    verbose: bool = False

    @classmethod
    def from_os(cls, cwd: Path | None = None, **overrides) -> "Environment":
        return cls(project_root=find_project_root(cwd or Path.cwd()), **overrides)

    @property
    def home(self) -> Path:
        """Root of the local job store."""
        configured = self.environ.get("SINGKIT_HOME")
        return Path(configured).expanduser() if configured else self.project_root / ".singkit"

    @property
    def cache_dir(self) -> Path:
        return cache_dir(self.environ)

    @property
    def project_config(self) -> Path:
        return self.project_root / PROJECT_CONFIG

    @property
    def user_config(self) -> Path:
        base = self.environ.get("XDG_CONFIG_HOME") or str(Path(self.environ.get("HOME", "~")) / ".config")
        return Path(base).expanduser() / "singkit" / "config.yaml"

    @property
    def extra_configs(self) -> list[Path]:
        raw = self.environ.get("SINGKIT_CONFIG", "")
        return [Path(p).expanduser() for p in raw.split(os.pathsep) if p]

    def err(self, message: str) -> None:
        """A message for people, on stderr."""
        print(message, file=self.stderr, flush=True)

    def warn(self, message: str) -> None:
        """A warning from library code that goes on working (a lost engine, a retry): one
        `singkit: message` line on this environment's stderr, which the edge (or the detached
        runner, whose stderr is runner.log) chose, never the process's own."""
        print(f"singkit: {message}", file=self.stderr, flush=True)

    def out(self, text: str) -> None:
        """Data, on stdout."""
        print(text, file=self.stdout, flush=True)
