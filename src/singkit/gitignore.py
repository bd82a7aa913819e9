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
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported by parse() only: a git work tree never needs it (~80 ms to import)
    import pathspec

# (characters of the path to cut: the folder the file sits in, with its "/"; that folder's patterns)
Chain = tuple[tuple[int, "pathspec.GitIgnoreSpec"], ...]


class IgnoreRules:
    """The .gitignore files of one tree, loaded folder by folder as a walk enters them."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._specs: dict[str, pathspec.GitIgnoreSpec | None] = {}
        self._chains: dict[str, Chain] = {}

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
        spec = parse(text)
        # a folder without patterns (most of them) costs no match per file below it
        self._specs[folder] = spec if any(p.include is not None for p in spec.patterns) else None

    def chain(self, folder: str) -> Chain:
        """The .gitignore files that decide for the entries of `folder`, shallowest first (only
        those with patterns): a walk asks once per folder, not once per file and depth."""
        found = self._chains.get(folder)
        if found is None:
            self.enter(folder)
            parent = self.chain(folder.rpartition("/")[0]) if folder else ()
            spec = self._specs[folder]
            found = (*parent, (len(folder) + 1 if folder else 0, spec)) if spec is not None else parent
            self._chains[folder] = found
        return found

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """Is `rel` (a '/'-separated path under the root) ignored? The deepest .gitignore with a
        matching pattern decides; no match anywhere: not ignored."""
        return ignored_by(self.chain(rel.rpartition("/")[0]), rel, is_dir)


def ignored_by(chain: Chain, rel: str, is_dir: bool) -> bool:
    """`rel` against the chain of its folder (IgnoreRules.chain): the deepest match decides."""
    result = False
    suffix = "/" if is_dir else ""  # pathspec's folder spelling
    for cut, spec in chain:
        decided = spec.check_file(rel[cut:] + suffix).include
        if decided is not None:
            result = decided
    return result


def parse(text: str) -> pathspec.GitIgnoreSpec:
    """One .gitignore file's patterns."""
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(text.splitlines())
