""".gitignore matching without git, for projects that are not git work trees.

Follows gitignore(5): one .gitignore per folder applies below it; `#` comments; `!` re-includes;
a trailing `/` matches folders only; a pattern with a `/` (other than trailing) is anchored to
its .gitignore's folder, otherwise it matches a name at any depth; `*`, `?`, `[...]`, and `**`
(`**/x`, `x/**`, `a/**/b`). The last matching pattern wins. Callers prune ignored folders
while walking, which gives git's "a file in an excluded folder cannot be re-included".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Rule:
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool
    anchored: bool


def translate(pattern: str) -> str:
    """A gitignore glob as a regex body (no anchors)."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**/", i):
                out.append("(?:.*/)?")
                i += 3
                continue
            if pattern.startswith("**", i):
                out.append(".*")
                i += 2
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def parse(text: str) -> list[Rule]:
    rules = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if not line.endswith("\\ "):
            line = line.rstrip()
        negate = line.startswith("!")
        if negate:
            line = line[1:]
        if line.startswith(("\\#", "\\!")):
            line = line[1:]
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        if not line:
            continue
        anchored = "/" in line
        line = line.lstrip("/")
        rules.append(Rule(re.compile("^" + translate(line) + "$", re.DOTALL), negate, dir_only, anchored))
    return rules


class IgnoreRules:
    """The .gitignore files of one tree, loaded folder by folder as a walk enters them."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._rules: dict[str, list[Rule]] = {}

    def enter(self, folder: str) -> None:
        """Load `folder`/.gitignore (folder relative to the root, "" for the root itself)."""
        if folder in self._rules:
            return
        path = self.root / folder / ".gitignore"
        try:
            self._rules[folder] = parse(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            self._rules[folder] = []

    def ignored(self, rel: str, is_dir: bool) -> bool:
        parts = rel.split("/")
        result = False
        for depth in range(len(parts)):
            base = "/".join(parts[:depth])
            self.enter(base)
            sub = "/".join(parts[depth:])
            name = parts[-1]
            for rule in self._rules[base]:
                if rule.dir_only and not is_dir:
                    continue
                subject = sub if rule.anchored else name
                if rule.regex.match(subject):
                    result = not rule.negate
        return result
