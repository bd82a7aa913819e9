"""Reading a config file as hostile input: bounded work, and one located line for every way it can be wrong.

A config layer can be anything a path can name (a FIFO nobody writes, /dev/zero, a directory, a
symlink loop) and hold anything (binary bytes, UTF-16, a NUL byte, a YAML alias bomb, 5,000
levels of nesting). `read_bytes` refuses every file that is not a regular one before it could
block; `decode` names the line and column of the first byte that is not YAML text; `BoundedComposer`
(installed on every round-trip loader, singkit.config.layers.yaml_rt) refuses, while the document
is composed (singkit.config.composer: the one part that needs ruamel), nesting and alias expansion past limits no real config comes near, so everything
that later walks the tree (plain, jsonschema, the merge) does work linear in the file's size.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

from singkit.exceptions import ConfigError, Problem

# The largest config singkit reads. A 60,000-target config is ~5 MB; past this, it is not a config.
MAX_BYTES = 64 * 2**20
# Levels of nesting (written, or reached through aliases). A config needs about six; Python's
# recursion limit (1,000 frames) is reached near 300 by the parser and the checks after it.
MAX_DEPTH = 64
# Nodes that aliases may add to a document: the larger of this and ALIAS_FACTOR times the nodes
# written. Real configs use a handful of `<<: *defaults`; a "billion laughs" needs 9**9.
ALIAS_BUDGET = 100_000
ALIAS_FACTOR = 10
RULES = f"bounded depth {MAX_DEPTH}, aliases {ALIAS_BUDGET}/{ALIAS_FACTOR}, scalar keys"  # in the parse cache's key

# What YAML 1.2 allows in a stream (ruamel.yaml.reader.Reader.NON_PRINTABLE, the same class)
# (a pattern, compiled by re at the first parse: compiling it costs more than a cached config load)
NON_PRINTABLE = "[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]"
_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),  # before UTF-16: it starts the same
    (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"),
)
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _refuse(path: Path, message: str) -> ConfigError:
    """A problem with the file as a whole: no line to point at (Problem line 0)."""
    return ConfigError(Problem(path, 0, 0, message))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_bytes(path: Path) -> bytes:
    """The bytes of config file `path`.

    Raises ConfigError (one line naming the path) for a missing file, a dangling symlink, a
    symlink loop, anything but a regular file (checked before opening, and again on the open
    descriptor, which is opened non-blocking so a FIFO swapped in between cannot hang), and a
    file larger than MAX_BYTES."""
    try:
        info = os.stat(path)
    except OSError as error:
        raise _refuse(path, _stat_problem(path, error)) from None
    if not stat.S_ISREG(info.st_mode):
        raise _refuse(path, f"is {_kind(info.st_mode)}, not a file; a config layer must be a YAML file")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise _refuse(path, f"cannot read config file: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _refuse(path, f"is {_kind(info.st_mode)}, not a file; a config layer must be a YAML file")
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            total += len(chunk)
            if total > MAX_BYTES:
                raise _refuse(path, f"is larger than {MAX_BYTES // 2**20} MB; a config file is YAML text, not data")
        return b"".join(chunks)
    except OSError as error:
        raise _refuse(path, f"cannot read config file: {error.strerror}") from None
    finally:
        os.close(fd)


def _stat_problem(path: Path, error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return "is a symlink loop; point the link at a config file, or remove it"
    if error.errno == errno.ENOENT and os.path.islink(path):
        return f"is a dangling symlink (to {os.readlink(path)}, which does not exist); point it at a config file, or remove it"
    if error.errno == errno.ENOENT:
        return "does not exist; create it, or drop it from SINGKIT_CONFIG"
    return f"cannot read config file: {error.strerror}"


def decode(path: Path, raw: bytes) -> str:
    """`raw` as YAML text (UTF-8, an optional UTF-8 byte order mark dropped).

    Raises ConfigError at the line and column of the first byte that is not UTF-8, or of the
    first character YAML does not allow (NUL, a control character); a UTF-16 or UTF-32 file
    is named as such."""
    for bom, name in _BOMS:
        if raw.startswith(bom):
            raise ConfigError(Problem(path, 1, 1, f"the file is {name} text (it starts with a {name} byte order "
                                      "mark); save it as UTF-8"))
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        start = error.start
        line_start = raw.rfind(b"\n", 0, start) + 1
        col = len(raw[line_start:start].decode("utf-8", "replace")) + 1
        raise ConfigError(Problem(path, raw.count(b"\n", 0, start) + 1, col,
                                  f"byte 0x{raw[start]:02x} is not UTF-8 (the file was saved as Latin-1 or "
                                  "Windows-1252, or is not text); save it as UTF-8")) from None
    bad = re.search(NON_PRINTABLE, text)
    if bad:
        at = bad.start()
        line_start = text.rfind("\n", 0, at) + 1
        what = "a NUL byte" if bad.group() == "\0" else f"the control character U+{ord(bad.group()):04X}"
        raise ConfigError(Problem(path, text.count("\n", 0, at) + 1, at - line_start + 1,
                                  f"{what} is not allowed in YAML text (binary data?); remove it, or write it as an "
                                  "escape (`\\x07`) inside a double-quoted string"))
    return text
