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
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported by parse() only: a git work tree never needs it (~80 ms to import)
    import pathspec

# (characters of the path to cut: the folder the file sits in, with its "/"; that folder's patterns;
# one regex matching wherever any of them matches, or None)
Chain = tuple[tuple[int, "pathspec.GitIgnoreSpec", "re.Pattern[str] | None"], ...]


class IgnoreRules:
    """The .gitignore files of one tree, loaded folder by folder as a walk enters them."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._specs: dict[str, pathspec.GitIgnoreSpec] = {}
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
        self._specs[folder] = parse(text)

    def chain(self, folder: str) -> Chain:
        """The .gitignore files that decide for the entries of `folder`, shallowest first (only
        those with patterns): a walk asks once per folder, not once per file and depth."""
        found = self._chains.get(folder)
        if found is None:
            self.enter(folder)
            parent = self.chain(folder.rpartition("/")[0]) if folder else ()
            spec = self._specs[folder]
            # a folder without patterns (most of them) costs no match per file below it
            found = ((*parent, (len(folder) + 1 if folder else 0, spec, any_match(spec)))
                     if any(p.include is not None for p in spec.patterns) else parent)
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
    for cut, spec, quick in chain:
        sub = rel[cut:] + suffix
        if quick is not None and quick.search(sub) is None:
            continue  # no pattern of this file matches (most paths): pathspec would say None
        decided = spec.check_file(sub).include
        if decided is not None:
            result = decided
    return result


_ANY_DEPTH = "^(?:.+/)?"  # how pathspec's regex for a pattern without a "/" in it starts


def any_match(spec: pathspec.GitIgnoreSpec) -> re.Pattern[str] | None:
    """One regex that finds (re.search, as pathspec looks) a match in a path wherever a pattern of
    `spec` does, or None if the patterns do not combine. pathspec tries each pattern's regex in turn, in Python (tens of µs a path
    for a typical .gitignore); this asks the regex engine once, and pathspec decides only for the
    paths some pattern matches, so its rules (last match wins, folder patterns) stay its own."""
    regexes: list[re.Pattern[str]] = []
    for pattern in spec.patterns:
        regex = getattr(pattern, "regex", None)
        if pattern.include is None:
            continue
        if not (isinstance(regex, re.Pattern) and isinstance(regex.pattern, str)):
            return None
        regexes.append(regex)
    if not regexes or any(r.flags != regexes[0].flags for r in regexes):
        return None
    # each pattern's named groups (pathspec marks a folder match) made plain: names may repeat
    plain = [re.sub(r"[(][?]P<[^>]*>", "(?:", r.pattern) for r in regexes]
    # most patterns match at any depth ("*.log", "build/"): behind one shared prefix the engine
    # tries each place a name starts once, not once per pattern (5 times faster for 70 patterns)
    anywhere = [r[len(_ANY_DEPTH):] for r in plain if r.startswith(_ANY_DEPTH)]
    alternatives = [f"(?:{r})" for r in plain if not r.startswith(_ANY_DEPTH)]
    if anywhere:
        alternatives.append(f"{_ANY_DEPTH}(?:{'|'.join(f'(?:{r})' for r in anywhere)})")
    joined = "|".join(alternatives)
    try:
        return re.compile(joined, regexes[0].flags)
    except re.error:
        return None


def parse(text: str) -> pathspec.GitIgnoreSpec:
    """One .gitignore file's patterns."""
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(text.splitlines())
