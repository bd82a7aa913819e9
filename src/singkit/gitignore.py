""".gitignore matching without git, for projects that are not git work trees.

The patterns are git's wildmatch as the `pathspec` library implements it (`GitIgnoreSpec`:
`#` comments, `!` re-includes, a trailing `/` for folders only, anchoring, `*`, `?`, `[...]`,
`**`; the last matching pattern of a file wins). What pathspec leaves to its caller is git's
precedence between files (gitignore(5)): each folder's .gitignore applies below it, and a deeper
file's match overrides a shallower one's. Callers prune ignored folders while walking, which
gives git's "a file in an excluded folder cannot be re-included". tests/test_store_snapshot.py
checks the result against `git check-ignore` itself.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pathspec


class IgnoreRules:
    """The .gitignore files of one tree, loaded folder by folder as a walk enters them."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._specs: dict[str, pathspec.GitIgnoreSpec] = {}

    def enter(self, folder: str) -> None:
        """Load `folder`/.gitignore (folder relative to the root, "" for the root itself)."""
        if folder in self._specs:
            return
        path = self.root / folder / ".gitignore"
        text = ""
        try:
            if stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the read forever; git ignores it too
                text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            pass
        self._specs[folder] = parse(text)

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """Is `rel` (a '/'-separated path under the root) ignored? The deepest .gitignore with a
        matching pattern decides; no match anywhere: not ignored."""
        parts = rel.split("/")
        result = False
        for depth in range(len(parts)):
            base = "/".join(parts[:depth])
            self.enter(base)
            sub = "/".join(parts[depth:]) + ("/" if is_dir else "")  # pathspec's folder spelling
            decided = self._specs[base].check_file(sub).include
            if decided is not None:
                result = decided
        return result


def parse(text: str) -> pathspec.GitIgnoreSpec:
    """One .gitignore file's patterns."""
    return pathspec.GitIgnoreSpec.from_lines(text.splitlines())
