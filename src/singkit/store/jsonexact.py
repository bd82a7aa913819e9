"""Where orjson, the fast JSON reader, may give another answer than json for the same text.

orjson reads an integer of more than 64 bits as a float (json gives the int), so a text with a
run of 19 or more digits outside a fraction is read by json (runlog.decode, yamlio.parse_yaml).
The search is made on the text translated by DIGITS, every digit a `9` (and every `[` a `{`,
so that runlog counts brackets in the same pass): two C-level passes, not a regex per byte.
"""

from __future__ import annotations

import re

DIGITS = bytes(range(256)).translate(bytes.maketrans(b"0123456789[", b"9" * 10 + b"{"))
_LONG, _NINES, _DOT = b"9" * 19, re.compile(rb"9*"), ord(".")


def long_integer(digits: bytes) -> bool:
    """Does a text, translated by DIGITS, hold 19 digits in a row that are not a fraction's (an
    integer that may be past 64 bits, or digits in a string: not proven safe either way)?"""
    at = digits.find(_LONG)
    while at >= 0:
        if at == 0 or digits[at - 1] != _DOT:
            return True
        nines = _NINES.match(digits, at)  # (always a match: `9*`)
        at = digits.find(_LONG, nines.end() if nines else at + 1)  # a fraction's digits: a float either way
    return False
