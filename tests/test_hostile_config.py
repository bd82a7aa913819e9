"""Hostile configs (issue 15): a generated corpus of families, each answered with exit 2 and one line.

Every case asserts: exit code 2, exactly one line on stderr (no traceback), `file:line:col:`
where a position exists (`file:` alone for a file that is no file: a FIFO, a symlink loop),
nothing written in the project (no store, the config untouched), and bounded time (a pytest
timeout; the few end-to-end cases also a subprocess timeout). The CLI runs in-process
(singkit.cli.main) for speed; `E2E` cases run `python -m singkit` as a user would.
"""

from __future__ import annotations

import os
import random
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from clirunner import run_singkit

PROJECT = "configs/singkit.yaml"
USER = "home/.config/singkit/config.yaml"
EXTRA = "extra/layer.yaml"

# special layers: not text but a kind of file
FIFO, FOLDER, DANGLING, LOOP, DEV_ZERO, DEV_URANDOM, SOCKET = (
    "<fifo>", "<folder>", "<dangling>", "<loop>", "<dev-zero>", "<dev-urandom>", "<socket>")

TARGET = "compute-targets:\n  a:\n    service: local\n"  # lines 1-3; a key added on line 4


@dataclass
class Case:
    id: str
    layers: dict[str, str | bytes]  # where (PROJECT, USER, EXTRA) -> text, bytes or a special kind
    where: str = PROJECT  # the file the line names
    line: int | None = None  # the line it names; None: any line (0: no position, the file as a whole)
    words: tuple[str, ...] = ()
    args: tuple[str, ...] = ("config.validate",)
    setup: Callable[[Path], None] | None = None  # more files in the project (a symlinked code dir)
    e2e: bool = False
    timeout: float = 90  # the subprocess of an e2e case (python start-up on a loaded CI machine)
    cwd: str = ""  # the folder (in the project) the command runs in


CASES: list[Case] = []


def case(*args, **kwargs) -> None:
    CASES.append(Case(*args, **kwargs))


# -- hangs: alias bombs, a config layer that blocks, nesting through aliases ------------------

def bomb(levels: int, width: int, indent: str = "", first: str = '"lol"') -> str:
    lines = [f"{indent}l0: &l0 {first}"]
    for i in range(1, levels + 1):
        lines.append(f"{indent}l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


case("alias-bomb-9x9-top", {PROJECT: bomb(9, 9)}, words=("alias",))
case("alias-bomb-9x9-in-valid-key", {PROJECT: TARGET + "    scale-policy:\n" + bomb(9, 9, " " * 6)}, words=("alias",))
case("alias-bomb-9x9-user-layer", {PROJECT: TARGET, USER: TARGET + "    scale-policy:\n" + bomb(9, 9, " " * 6)}, where=USER,
     words=("alias",))
case("alias-bomb-30x2", {PROJECT: TARGET + "    scale-policy:\n" + bomb(30, 2, " " * 6)}, words=("alias",))
case("alias-bomb-4x400", {PROJECT: TARGET + "    scale-policy:\n" + bomb(4, 400, " " * 6)}, words=("alias",))
case("alias-bomb-mappings", {PROJECT: TARGET + "    scale-policy:\n      m0: &m0 {a: 1, b: 2, c: 3}\n" + "".join(
    f"      m{i}: &m{i} {{{', '.join(f'k{j}: *m{i - 1}' for j in range(8))}}}\n" for i in range(1, 10))}, words=("alias",))
case("alias-bomb-extra-layer", {PROJECT: TARGET, EXTRA: "dockers:\n  py:\n    image: python:3.11\n    build-args:\n"
                                + bomb(9, 9, "      ").replace("[", "{x: [").replace("]", "]}")}, where=EXTRA)
case("alias-loop", {PROJECT: TARGET + "    scale-policy: &a [*a]\n"}, line=4, words=("loop",))
case("alias-loop-mapping", {PROJECT: TARGET + "    scale-policy: &a {x: *a}\n"}, line=4, words=("loop",))
case("alias-deep-chain", {PROJECT: TARGET + "    scale-policy:\n      n0: &n0 [x]\n" + "".join(
    f"      n{i}: &n{i} [*n{i - 1}]\n" for i in range(1, 400))}, words=("levels deep",))

for where in (PROJECT, USER, EXTRA):
    short = where.split("/")[0]
    base = {} if where == PROJECT else {PROJECT: TARGET}
    for kind in (FIFO, LOOP, FOLDER, DANGLING, DEV_ZERO):
        case(f"layer-{short}-{kind.strip('<>')}", {**base, where: kind}, where=where, line=0)
case("layer-extra-dev-urandom", {PROJECT: TARGET, EXTRA: DEV_URANDOM}, where=EXTRA, line=0)
case("layer-project-fifo-from-a-subfolder", {PROJECT: FIFO}, line=0, words=("FIFO",), cwd="src",
     setup=lambda root: (root / "src").mkdir())
case("layer-project-socket", {PROJECT: SOCKET}, line=0, words=("socket",))
case("layer-project-fifo-e2e", {PROJECT: FIFO}, line=0, words=("FIFO",), e2e=True)
case("layer-user-loop-e2e", {PROJECT: TARGET, USER: LOOP}, where=USER, line=0, words=("symlink loop",), e2e=True)

# -- bytes that are not YAML text -------------------------------------------------------------

for seed in range(6):
    noise = random.Random(seed).randbytes(512 + 300 * seed)
    case(f"random-bytes-{seed}", {PROJECT: noise})
for seed in range(2):
    case(f"random-bytes-user-layer-{seed}", {PROJECT: TARGET, USER: random.Random(100 + seed).randbytes(2048)}, where=USER)
case("latin1-in-comment", {PROJECT: (TARGET + "    # caf\xe9 au lait\n").encode("latin-1")}, line=4, words=("0xe9",))
case("latin1-in-value", {PROJECT: (TARGET + "    description: na\xefve\n").encode("latin-1")}, line=4, words=("0xef", "UTF-8"))
case("latin1-in-key", {PROJECT: ("compute-targets:\n  \xe9t\xe9:\n    service: local\n").encode("latin-1")}, line=2)
case("cp1252-smart-quote", {PROJECT: TARGET.encode() + b"    description: \x93quoted\x94\n"}, line=4)
case("utf8-surrogate-bytes", {PROJECT: TARGET.encode() + b"    description: \xed\xa0\x80\n"}, line=4)
case("utf8-truncated-at-end", {PROJECT: TARGET.encode() + b"    description: caf\xc3"}, line=4)
for codec in ("utf-16", "utf-16-le-bom", "utf-16-be-bom", "utf-32"):
    text = TARGET
    data = {"utf-16": text.encode("utf-16"), "utf-16-le-bom": b"\xff\xfe" + text.encode("utf-16-le"),
            "utf-16-be-bom": b"\xfe\xff" + text.encode("utf-16-be"), "utf-32": text.encode("utf-32")}[codec]
    case(f"bom-{codec}", {PROJECT: data}, line=1, words=(codec.split("-bom")[0].upper().replace("-LE", "").replace("-BE", ""),))
case("utf-16-without-bom", {PROJECT: TARGET.encode("utf-16-le")}, line=1)
for where, text in (("value", TARGET.encode() + b"    description: a\x00b\n"), ("comment", TARGET.encode() + b"    # \x00\n"),
                    ("start", b"\x00" + TARGET.encode()), ("key", b"compute-targets:\n  a\x00:\n    service: local\n")):
    case(f"nul-byte-in-{where}", {PROJECT: text}, line={"start": 1, "key": 2}.get(where, 4), words=("NUL",))
for char in ("\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f", "\x80", "\x9f", "\ufffe"):
    case(f"control-U+{ord(char):04X}", {PROJECT: (TARGET + f"    description: x{char}y\n").encode("utf-8", "surrogatepass")},
         line=4, words=(f"U+{ord(char):04X}",))
case("control-in-user-layer", {PROJECT: TARGET, USER: b"general:\n  experiment: a\x1bb\n"}, where=USER, line=2)

# -- nesting past what any parser stack takes -------------------------------------------------

for depth in (3000, 5000):
    case(f"nested-flow-lists-{depth}", {PROJECT: "general:\n  experiment: " + "[" * depth + "]" * depth + "\n"}, line=2,
         words=("levels deep",))
case("nested-flow-maps-3000", {PROJECT: "general:\n  experiment: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n"}, line=2)
case("nested-block-maps-1000", {PROJECT: "".join(" " * i + f"k{i}:\n" for i in range(1000)) + " " * 1000 + "v\n"})
case("nested-block-seqs-3000", {PROJECT: "general:\n  code-omit:\n" + "    " + "- " * 3000 + "x\n"}, line=3)
case("nested-in-user-layer-4000", {PROJECT: TARGET, USER: "general:\n  experiment: " + "[" * 4000 + "]" * 4000 + "\n"},
     where=USER, line=2)

# -- values accepted that no job could run with -----------------------------------------------

for value in ("1e9", "1000000000", "10**30", "2.0", "1.0e0", "2147483648", "99999999999999999999999999999", ".inf", ".nan", "-.inf"):
    case(f"nodes-{value}", {PROJECT: TARGET + f"    nodes: {value}\n"}, line=4, words=("nodes",))
for value in ("1e9", "1000000", "2.0", ".inf"):
    case(f"processes-per-node-{value}", {PROJECT: TARGET + f"    processes-per-node: {value}\n"}, line=4, words=("processes-per-node",))
for key, value in (("max-run-seconds", "1e30"), ("max-run-seconds", "2.5"), ("max-run-seconds", "100000000000"),
                   ("grace-seconds", ".nan"), ("grace-seconds", ".inf"), ("grace-seconds", "1e300")):
    case(f"{key}-{value}", {PROJECT: TARGET + f"    {key}: {value}\n"}, line=4, words=(key,))
for key, value in (("gpus", "1e9"), ("gpus", "2.0"), ("cpus", "100000000"), ("memory-gb", ".nan"), ("price-per-hour", ".inf")):
    case(f"sku-{key}-{value}", {PROJECT: f"skus:\n  my_size:\n    {key}: {value}\n"}, line=3, words=(key,))
case("nodes-huge-in-user-layer", {PROJECT: TARGET, USER: "compute-targets:\n  a:\n    nodes: 1000000000\n"}, where=USER, line=3)

# one key in both spellings in one mapping: the later would silently win
case("both-spellings-vm-size", {PROJECT: TARGET + "    vm-size: ND40rs_v2\n    vm_size: NC6_v3\n"}, line=5, words=("one key",))
case("both-spellings-post-sing-steps", {PROJECT: "dockers:\n  py:\n    image: python:3.11\n    post-sing-steps: [RUN a]\n"
                                        "    post_sing_steps: [RUN b]\n"}, line=5, words=("one key",))
case("both-spellings-general", {PROJECT: "general:\n  code-dirs: [src]\n  code_dirs: [lib]\n"}, line=3, words=("one key",))
case("both-spellings-section", {PROJECT: TARGET + "compute_targets:\n  b:\n    service: local\n"}, line=4, words=("one key",))
case("both-spellings-service-key", {PROJECT: "external-services:\n  reg:\n    type: registry\n    login-server: a.io\n"
                                    "    login_server: b.io\n"}, line=5, words=("one key",))
case("both-spellings-user-layer", {PROJECT: TARGET, USER: "setups:\n  s:\n    pre-cmds: [a]\n    pre_cmds: [b]\n"}, where=USER,
     line=4, words=("one key",))

# `$env:` is a whole value that supplies a secret, never part of an image reference
DOCKER = "dockers:\n  py:\n"
for key, value in (("image", "python:$env:TAG"), ("image", "$env:REGISTRY/python:3.11"), ("image", "$env:IMAGE"),
                   ("image", "python-$env:FLAVOR:3.11"), ("installer-image", "repo/inst:$env:TAG"),
                   ("wrapped-image", "$env:WRAPPED"), ("sha256", "$env:DIGEST")):
    case(f"env-in-{key}-{value.replace('$env:', 'env-').replace('/', '_').replace(':', '_')}",
         {PROJECT: DOCKER + ("    image: python:3.11\n" if key != "image" else "") + f"    {key}: {value}\n"},
         line=3 if key == "image" else 4, words=("$env:",))
case("env-in-middle-of-an-env-value", {PROJECT: TARGET + "    env: {PATH: '/opt/bin:$env:PATH'}\n"}, line=4, words=("$env:",))
case("env-in-middle-of-a-record-value", {PROJECT: "setups:\n  s:\n    conda: [x]\n    env:\n      HOME_DIR: /home/$env:USER\n"},
     line=5, words=("whole value",))

# a code snapshot that leaves the project would ship a system folder to the cloud
for i, dirs in enumerate((["../../etc"], ["/etc"], ["src/../../outside"], [".", ".."], ["/"])):
    case(f"code-dirs-outside-{i}", {PROJECT: f"general:\n  code-dirs: {dirs}\n"}, line=2, words=("outside the project",),
         setup=lambda root: (root / "src").mkdir())
case("code-dirs-outside-in-target", {PROJECT: TARGET + "    code-dirs: ['../']\n"}, line=4, words=("outside the project",))
case("code-dirs-outside-user-layer", {PROJECT: TARGET, USER: "general:\n  code-dirs: [/usr]\n"}, where=USER, line=2,
     words=("outside the project",))
case("code-dirs-symlink-out", {PROJECT: "general:\n  code-dirs: [lib]\n"}, line=2, words=("outside the project",),
     setup=lambda root: (root / "lib").symlink_to("/etc"))

# a mapping key that is itself a list or a mapping
case("complex-key-top", {PROJECT: "? [a, b]\n: 1\n"}, line=1, words=("mapping key",))
case("complex-key-section", {PROJECT: "compute-targets:\n  ? [a, b]\n  : {service: local}\n"}, line=2, words=("mapping key",))
case("complex-key-record", {PROJECT: TARGET + "    ? {x: 1}\n    : 2\n"}, line=4, words=("mapping key",))
case("complex-key-flow", {PROJECT: "compute-targets: {[a]: {service: local}}\n"}, line=1, words=("mapping key",))
case("complex-key-env-map", {PROJECT: TARGET + "    env:\n      ? [A]\n      : b\n"}, line=5, words=("mapping key",))

# shapes already refused before issue 15, kept so they stay refused
case("python-tag", {PROJECT: TARGET + "    description: !!python/object/apply:os.system [echo hi]\n"}, line=4)
case("two-documents", {PROJECT: TARGET + "---\n" + TARGET}, line=4)
case("top-level-list", {PROJECT: "- a\n- b\n"}, line=1)
case("undefined-alias", {PROJECT: TARGET + "    nodes: *nowhere\n"}, line=4)

# through other commands: the loader is shared
case("fifo-via-config-show", {PROJECT: FIFO}, line=0, args=("config.show",))
case("bomb-via-config-show", {PROJECT: bomb(9, 9)}, args=("config.show",))


# -- running a case ---------------------------------------------------------------------------

def make_layer(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if content == FIFO:
        os.mkfifo(path)
    elif content == FOLDER:
        path.mkdir()
    elif content == DANGLING:
        path.symlink_to(path.with_name("missing.yaml"))
    elif content == LOOP:
        path.symlink_to(path.with_name("loop-b.yaml"))
        path.with_name("loop-b.yaml").symlink_to(path.name)
    elif content in (DEV_ZERO, DEV_URANDOM):
        path.symlink_to("/dev/zero" if content == DEV_ZERO else "/dev/urandom")
    elif content == SOCKET:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(path))
    else:
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))


def tree(root: Path) -> dict[str, tuple]:
    """Every entry under `root` (links not followed) with what would show a write."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            info = path.lstat()
            out[str(path.relative_to(root))] = (info.st_mode, info.st_size, info.st_mtime_ns)
    return out


def run_case(c: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    project = tmp_path / "proj"
    project.mkdir()
    for where, content in c.layers.items():
        make_layer(project / where, content)
    if c.setup:
        c.setup(project)
    env = {"HOME": str(project / "home"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    if EXTRA in c.layers:
        env["SINGKIT_CONFIG"] = str(project / EXTRA)
    before = tree(project)
    if c.e2e:
        result = run_singkit(list(c.args), cwd=project / c.cwd, env=env, timeout=c.timeout)
        code, out, err = result.returncode, result.stdout, result.stderr
    else:
        code, out, err = _in_process(c, project, env, monkeypatch, capsys)
    assert tree(project) == before, "the project changed"
    return code, out, err


def _in_process(c: Case, project: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    from singkit.cli import main

    for name in list(os.environ):
        if name.startswith("SINGKIT_") or name in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(project / c.cwd)
    capsys.readouterr()
    try:
        main(["singkit", *c.args])
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.timeout(120)
@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_hostile_config_is_one_located_line(c: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture) -> None:
    code, out, err = run_case(c, tmp_path, monkeypatch, capsys)
    lines = err.strip().splitlines()
    assert code == 2, f"exit {code}: {err.strip()[:500]}"
    assert len(lines) == 1 and "Traceback" not in err, err[:2000]
    shown = "(/.*/)?" + re.escape(c.where)  # relative to the working folder, or absolute from outside it
    if c.line == 0:
        assert re.match(rf"{shown}: \S", lines[0]), lines[0]
    else:
        line = str(c.line) if c.line is not None else r"\d+"
        assert re.match(rf"{shown}:{line}:\d+: \S", lines[0]), lines[0]
    for word in c.words:
        assert word in lines[0], lines[0]
    if "config.show" not in c.args:
        assert out == ""


def test_the_corpus_has_every_family() -> None:
    assert len(CASES) >= 89
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.timeout(30)
def test_aliases_and_merge_keys_of_a_real_config_still_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture) -> None:
    config = ("compute-targets:\n  a: &base\n    service: local\n    nodes: 2\n  b:\n    <<: *base\n    nodes: 3\n"
              "  c: *base\n")
    code, _out, err = run_case(Case("ok", {PROJECT: config}), tmp_path, monkeypatch, capsys)
    assert code == 0, err
