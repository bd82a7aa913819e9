"""Config write-back (image.pin) changes only the key it sets: every other byte of the file stays
(issue 16, "Also": CRLF, BOM, comments after anchors, flow mappings, quoting, new keys)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from singkit.config import load_config
from singkit.environment import Environment
from singkit.exceptions import ConfigError

OLD = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64


def env_for(tmp_path: Path) -> Environment:
    return Environment(project_root=tmp_path, environ={"HOME": str(tmp_path / "home")},
                       stdout=io.StringIO(), stderr=io.StringIO())


def pin(tmp_path: Path, raw: bytes, name: str = "py", key: str = "sha256", value: object = NEW) -> bytes:
    """Write `raw` as the project config, write `key` of dockers.<name> back, return the new bytes."""
    path = tmp_path / "configs" / "singkit.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    load_config(env_for(tmp_path)).write_back("dockers", name, key, value)
    return path.read_bytes()


def changed(before: bytes, after: bytes) -> tuple[list[bytes], list[bytes]]:
    """(lines only in before, lines only in after), each line with its own line break; asserts that
    the lines common to both are all of before's other lines, in order."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    import difflib

    removed, added = [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag != "equal":
            removed += old[i1:i2]
            added += new[j1:j2]
    return removed, added


CRLF = (b"# project\r\ndockers:\r\n  py:\r\n    image: 'python:3.11'   # base\r\n"
        b"    sha256: " + OLD.encode() + b"\r\n  other:\r\n    image: busybox\r\n")


def test_crlf_replace_in_place(tmp_path):
    after = pin(tmp_path, CRLF)
    assert changed(CRLF, after) == ([b"    sha256: " + OLD.encode() + b"\r\n"], [b"    sha256: " + NEW.encode() + b"\r\n"])


def test_crlf_new_key_gets_the_files_newline_and_indentation(tmp_path):
    raw = b"dockers:\r\n    py:\r\n        image: x   # four spaces\r\n\r\n    other:\r\n        image: y\r\n"
    after = pin(tmp_path, raw)
    assert after == raw.replace(b"# four spaces\r\n", b"# four spaces\r\n        sha256: " + NEW.encode() + b"\r\n")


def test_utf8_bom_is_kept(tmp_path):
    raw = "\ufeff# café config\ndockers:\n  py:\n    image: x\n".encode()
    after = pin(tmp_path, raw)
    assert after == raw + b"    sha256: " + NEW.encode() + b"\n"
    assert after.startswith(b"\xef\xbb\xbf")


def test_comment_after_an_anchor_stays_on_its_line(tmp_path):
    raw = (b"dockers:\n  base: &base   # shared settings\n    image: x\n    sing-wrap: false\n"
           b"  py:\n    <<: *base   # all of base\n    sha256: &pin " + OLD.encode() + b"  # pinned by image.pin\n"
           b"  again:\n    <<: *base\n    sha256: *pin\n")
    after = pin(tmp_path, raw)
    assert changed(raw, after) == ([b"    sha256: &pin " + OLD.encode() + b"  # pinned by image.pin\n"],
                                   [b"    sha256: &pin " + NEW.encode() + b"  # pinned by image.pin\n"])
    # an alias is replaced where it stands; the anchored value it pointed at stays
    after2 = pin(tmp_path, raw, name="again")
    assert changed(raw, after2) == ([b"    sha256: *pin\n"], [b"    sha256: " + NEW.encode() + b"\n"])


def test_a_merged_record_gets_its_own_key(tmp_path):
    raw = b"dockers:\n  base: &base {image: x, sha256: " + OLD.encode() + b"}\n  py:\n    <<: *base  # c\n"
    after = pin(tmp_path, raw)
    assert after == raw + b"    sha256: " + NEW.encode() + b"\n"
    assert load_config(env_for(tmp_path)).docker("base")["sha256"] == OLD


def test_flow_mappings(tmp_path):
    raw = b"dockers:\n  py: {image: 'busybox:1', sha256: " + OLD.encode() + b"}   # flow\n  q: {image: y}\n"
    assert pin(tmp_path, raw) == raw.replace(OLD.encode(), NEW.encode())
    assert pin(tmp_path, raw, name="q") == raw.replace(b"{image: y}", b"{image: y, sha256: " + NEW.encode() + b"}")
    empty = b"dockers:\n  py: {}\n"
    assert pin(tmp_path, empty) == b"dockers:\n  py: {sha256: " + NEW.encode() + b"}\n"


@pytest.mark.parametrize("quote", ['"', "'"])
def test_quoted_values_keep_their_quotes(tmp_path, quote):
    q = quote.encode()
    raw = b"dockers:\n  py:\n    sha256: " + q + OLD.encode() + q + b"\n    image: x\n"
    assert pin(tmp_path, raw) == raw.replace(OLD.encode(), NEW.encode())


def test_a_value_that_would_read_as_another_type_is_quoted(tmp_path):
    raw = b"dockers:\n  py:\n    image: x\n"
    after = pin(tmp_path, raw, key="image", value="123")
    assert after == b'dockers:\n  py:\n    image: "123"\n'
    assert load_config(env_for(tmp_path)).docker("py")["image"] == "123"


def test_new_key_after_nested_blocks_and_comments(tmp_path):
    raw = (b"dockers:\n  py:\n    image: x\n    post-sing-steps:\n      - RUN one   # step\n"
           b"    # a note about py\n\n  # about other\n  other:\n    image: y\n")
    after = pin(tmp_path, raw)
    assert after == raw.replace(b"# step\n", b"# step\n    sha256: " + NEW.encode() + b"\n")


def test_no_newline_at_end_of_file_stays_so(tmp_path):
    raw = b"dockers:\n  py:\n    image: x  # last"
    assert pin(tmp_path, raw) == raw + b"\n    sha256: " + NEW.encode()


def test_empty_value_and_booleans(tmp_path):
    raw = b"dockers:\n  py:\n    image: x\n    sha256:\n    sing_wrap: true  # XT spelling\n"
    after = pin(tmp_path, raw)
    assert after == raw.replace(b"sha256:\n", b"sha256: " + NEW.encode() + b"\n")
    after = pin(tmp_path, raw, key="sing-wrap", value=False)
    assert after == raw.replace(b"sing_wrap: true", b"sing_wrap: false")


def test_a_block_value_is_refused_with_its_line(tmp_path):
    raw = b"dockers:\n  py:\n    image: x\n    sha256:\n      - a\n"
    with pytest.raises(ConfigError, match=r"singkit.yaml:4:5: `sha256` holds a block"):
        pin(tmp_path, raw)
    assert (tmp_path / "configs" / "singkit.yaml").read_bytes() == raw


SHIPPED = (Path(__file__).resolve().parents[1] / "configs" / "singkit.yaml").read_bytes()


@pytest.mark.parametrize("variant", ["as-shipped", "crlf-bom"])
def test_every_record_of_the_shipped_config_changes_one_line(tmp_path, variant):
    from ruamel.yaml import YAML

    raw = SHIPPED if variant == "as-shipped" else b"\xef\xbb\xbf" + SHIPPED.replace(b"\n", b"\r\n")
    newline = b"\r\n" if variant == "crlf-bom" else b"\n"
    names = list(YAML(typ="safe").load(SHIPPED.decode())["dockers"])
    assert names
    for name in names:
        for key in ("sha256", "base-sha256"):
            after = pin(tmp_path, raw, name=name, key=key)
            removed, added = changed(raw, after)
            assert len(removed) <= 1 and len(added) == 1 and added[0].endswith(newline), (name, key, removed, added)
            assert added[0].strip().startswith(key.encode() + b": ") or added[0].strip().startswith(b"base_sha256: ")


def random_config(rng) -> tuple[bytes, bytes]:
    """A config in a random style, and the newline it uses."""
    nl = rng.choice(["\n", "\r\n"])
    ind = " " * rng.choice([2, 3, 4])
    quote = rng.choice(["", "'", '"'])
    comment = rng.choice(["", "  # note", "   # pinned: keep"])
    lines = ["# header" + comment, "general:", f"{ind}experiment: e{comment}", "dockers:"]
    for name in ("a", "py", "z"):
        style = rng.choice(["block", "flow", "anchored"])
        has_pin = rng.random() < 0.5
        pin_text = f"{quote}{OLD}{quote}"
        if style == "flow":
            body = "{image: x" + (f", sha256: {pin_text}" if has_pin else "") + "}"
            lines.append(f"{ind}{name}: {body}{comment}")
        else:
            anchor = f" &{name}_rec" if style == "anchored" else ""
            lines.append(f"{ind}{name}:{anchor}{comment}")
            lines.append(f"{ind * 2}image: {quote}busybox:1{quote}")
            if rng.random() < 0.5:
                lines += [f"{ind * 2}post-sing-steps:", f"{ind * 2}- RUN one{comment}"]
            if has_pin:
                lines.append(f"{ind * 2}sha256: {pin_text}{comment}")
            if rng.random() < 0.3:
                lines.append("")
            if rng.random() < 0.3:
                lines.append(f"{ind}# about the next one")
    text = nl.join(lines) + (nl if rng.random() < 0.8 else "")
    return (("\ufeff" if rng.random() < 0.3 else "") + text).encode(), nl.encode()


def test_random_styles_change_one_line_and_keep_the_rest(tmp_path):
    import random

    rng = random.Random(1616)
    for case in range(60):
        raw, nl = random_config(rng)
        after = pin(tmp_path, raw)
        removed, added = changed(raw, after)
        assert len(added) == 1 and len(removed) <= 1, (case, raw, after)
        assert added[0].endswith(nl), (case, raw, after)  # the file's own newline
        assert load_config(env_for(tmp_path)).docker("py")["sha256"] == NEW


def test_an_alias_of_a_block_is_replaced_where_it_stands(tmp_path):
    raw = (b"dockers:\n  base:\n    post-sing-steps: &steps\n      - RUN a\n"
           b"  py:\n    image: i\n    sha256: *steps   # odd, but valid YAML\n")
    after = pin(tmp_path, raw)
    assert after == raw.replace(b"*steps", NEW.encode())
