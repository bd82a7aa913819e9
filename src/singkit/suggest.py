""""Did you mean": the one way singkit names the closest of the words it knows.

Used for task and option names (singkit.cli), for the values of enumerated options (the task
edge checks them through `choice`), and for table columns (singkit.reports.tables). Pure
standard library, so the CLI can import it at start-up.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from singkit.exceptions import UsageError

# Below this difflib ratio two words are not "close": `runing`/`running` is 0.92, `output`/`outputs`
# 0.92, `acuracy`/`accuracy` 0.93, `lsit`/`list` 0.75, while `bogus`/`last` is 0.22.
CUTOFF = 0.7
# Names this much less close than the closest are not offered beside it.
SPREAD = 0.08


def closest(word: str, names: Iterable[str], *, short: bool = False, n: int = 3) -> list[str]:
    """The names nearest to `word`, nearest first; [] when none is close.

    With `short`, each name is also compared by its part after the first dot (`list` → job.list,
    report.list; `acuracy` → metrics.accuracy), and a name whose last part starts the word or
    is started by it (`accuracy` → metrics.acc, `acc` → metrics.accuracy) counts as close:
    people type a metric's long name, or its first letters."""
    lowered = word.lower()

    def score(name: str) -> float:
        ratio = difflib.SequenceMatcher(None, lowered, name.lower()).ratio()
        if len(lowered) >= 3 and one_slip(lowered, name.lower()):
            ratio = max(ratio, CUTOFF)  # difflib rates `sdt`/`std` 0.67: short words need this
        if short:
            tail = name.split(".", 1)[-1].lower()
            ratio = max(ratio, difflib.SequenceMatcher(None, lowered, tail).ratio())
            if len(tail) >= 2 and len(lowered) >= 2 and (lowered.startswith(tail) or tail.startswith(lowered)):
                ratio = max(ratio, CUTOFF)
        return ratio

    scored = sorted(((score(name), name) for name in dict.fromkeys(names)), key=lambda item: -item[0])
    best = scored[0][0] if scored else 0.0
    return [name for ratio, name in scored[:n] if ratio >= CUTOFF and ratio >= best - SPREAD]


def one_slip(a: str, b: str) -> bool:
    """Is `a` one keystroke from `b`: a letter changed, added, dropped, or two neighbours swapped?"""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
                                  and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def hint(word: str, names: Iterable[str], *, short: bool = False) -> str:
    """`did you mean a, b?` for the names close to `word`, or "" when none is."""
    close = closest(word, names, short=short)
    return f"did you mean {', '.join(close)}?" if close else ""


def choice(value: str, choices: Sequence[str], flag: str, *, comma: bool = False) -> str:
    """`value` as one of `choices` (any case), or UsageError naming the closest and all of them.

    `flag` is the option's name without dashes (`what` → `--what=output`). With `comma`, the
    value is a comma list whose every item must be a choice; the list comes back normalized.
    Example: choice("output", ("code", "logs", "outputs", "all"), "what") raises
    "--what=output is not one of code, logs, outputs, all; did you mean outputs?"."""
    if comma:
        items = [item.strip() for item in str(value).split(",") if item.strip()]
        return ",".join(choice(item, choices, flag) for item in items)
    by_lower = {c.lower(): c for c in choices}
    found = by_lower.get(str(value).strip().lower())
    if found is not None:
        return found
    said = hint(str(value), choices)
    raise UsageError(f"--{flag}={value} is not one of {', '.join(choices)}" + (f"; {said}" if said else ""))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`; did you mean `x`?` for the nearest choice, else the list of valid ones: config's
    problems and the mounts say it so (singkit.config.validate.suggest)."""
    choices = sorted(set(choices))
    if not choices:
        return ""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"; did you mean `{close[0]}`?"
    if len(choices) <= 12:
        return "; expected one of: " + ", ".join(f"`{c}`" for c in choices)
    return ""
