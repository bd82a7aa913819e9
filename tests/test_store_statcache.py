"""Snapshots at the speed of `stat` (issue 14): the stat cache, its racy rule, one read per byte."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import tarfile
import time
import zlib
from collections import Counter
from pathlib import Path

import pytest

from singkit import snaparchive, snapshot
from singkit.exceptions import SingkitError
from singkit.snapshot import content_hash, safe_extract, take

HOUR_AGO_NS = time.time_ns() - 3600 * 10**9


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Project files the snapshot code opens, by name (the cache and archive are not counted)."""
    counted: Counter = Counter()
    real_open = os.open

    def counting_open(path, flags, *args, **kwargs):
        if "project" in Path(path).parts and not flags & (os.O_WRONLY | os.O_RDWR):
            counted[Path(path).name] += 1
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting_open)
    return counted


def project(tmp_path: Path, files: int = 5, old: bool = True) -> Path:
    root = tmp_path / "project"
    for k in range(files):
        path = root / f"pkg{k % 2}" / f"m{k}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"X = {k}\n" * (k + 1))
        if old:  # written long ago: not racy
            os.utime(path, ns=(HOUR_AGO_NS, HOUR_AGO_NS))
    return root


def snap(root: Path, tmp_path: Path) -> snapshot.Snapshot:
    return take(root, ["."], [], tmp_path / "store" / "snapshots", cache_dir=tmp_path / "store" / "cache" / "stat")


def test_first_snapshot_reads_each_file_once_and_is_named_by_its_bytes(tmp_path, reads):
    root = project(tmp_path)
    first = snap(root, tmp_path)
    assert not first.reused and first.files == 5 and set(reads.values()) == {1}
    assert first.sha256 == content_hash(root, snapshot.code_files(root, ["."], []))[0]
    out = tmp_path / "out"
    safe_extract(first.path, out)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.py")) == sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*.py"))
    assert (out / "pkg1" / "m3.py").read_text() == "X = 3\n" * 4


def test_an_unchanged_resubmit_reads_no_file(tmp_path, reads):
    root = project(tmp_path)
    first = snap(root, tmp_path)
    reads.clear()
    again = snap(root, tmp_path)
    assert again.reused and again.sha256 == first.sha256 and again.bytes == first.bytes and not reads


def test_one_changed_file_is_the_only_one_hashed_before_the_archive(tmp_path, reads):
    root = project(tmp_path)
    first = snap(root, tmp_path)
    (root / "pkg0" / "m2.py").write_text("X = 'changed'\n")
    reads.clear()
    second = snap(root, tmp_path)
    # hashed: the changed file; then archived: every file once
    assert reads["m2.py"] == 2 and all(reads[f"m{k}.py"] == 1 for k in (0, 1, 3, 4))
    assert second.sha256 != first.sha256 and not second.reused
    (root / "pkg0" / "m2.py").write_text("X = 2\n" * 3)  # back as it was: the first archive again
    os.utime(root / "pkg0" / "m2.py", ns=(HOUR_AGO_NS, HOUR_AGO_NS))
    reads.clear()
    third = snap(root, tmp_path)
    assert third.reused and third.sha256 == first.sha256 and reads == Counter({"m2.py": 1})


def test_racy_entries_are_hashed_again_and_a_same_size_edit_within_the_tick_is_seen(tmp_path, reads):
    root = project(tmp_path)
    fresh = root / "pkg0" / "fresh.py"
    fresh.write_text("A = 1\n")  # written just now: its mtime is within the racy window
    first = snap(root, tmp_path)
    reads.clear()
    assert snap(root, tmp_path).reused and reads == Counter({"fresh.py": 1})  # only the racy one again
    stamp = fresh.stat().st_mtime_ns
    fresh.write_text("B = 2\n")  # same size; the clock may not have moved: give it the same mtime
    os.utime(fresh, ns=(stamp, stamp))
    changed = snap(root, tmp_path)
    assert changed.sha256 != first.sha256


def test_an_edit_that_puts_the_old_mtime_back_is_seen_by_its_ctime(tmp_path):
    root = project(tmp_path)
    first = snap(root, tmp_path)
    path = root / "pkg0" / "m0.py"
    path.write_text("Y = 0\n")  # same size as "X = 0\n"
    os.utime(path, ns=(HOUR_AGO_NS, HOUR_AGO_NS))  # as `touch -r`, rsync -t or a checkout may leave it
    assert snap(root, tmp_path).sha256 != first.sha256


def test_mode_change_and_renames_are_seen(tmp_path):
    root = project(tmp_path)
    first = snap(root, tmp_path)
    path = root / "pkg1" / "m1.py"
    path.chmod(0o755)
    assert snap(root, tmp_path).sha256 != first.sha256
    path.chmod(0o644)
    assert snap(root, tmp_path).sha256 == first.sha256
    path.rename(root / "pkg1" / "renamed.py")
    assert snap(root, tmp_path).sha256 != first.sha256


@pytest.mark.parametrize("damage", [
    lambda data: b"{not json", lambda data: b"",
    lambda data: data[:-7],  # cut short
    lambda data: data + b"x",  # a byte too many
    lambda data: data.replace(b'"root":"', b'"root":"/elsewhere'),  # another project's
    lambda data: data.replace(b'"count":5', b'"count":4'),  # records and names disagree
    lambda data: data.replace(b'"stamp_ns":', b'"stamp_ns":"x",    "x":'),
    lambda data: data[:data.index(b"\n") + 1] + b"[]" + data[data.index(b"\n", 21):],  # no header object
], ids=["text", "empty", "cut", "longer", "foreign", "count", "stamp", "header"])
def test_a_damaged_or_foreign_cache_is_ignored_and_rewritten(tmp_path, reads, damage):
    root = project(tmp_path)
    first = snap(root, tmp_path)
    cache_files = list((tmp_path / "store" / "cache" / "stat").iterdir())
    assert len(cache_files) == 1
    cache_files[0].write_bytes(damage(cache_files[0].read_bytes()))
    reads.clear()
    again = snap(root, tmp_path)
    assert again.sha256 == first.sha256 and sum(reads.values()) == 5  # hashed again, from the files
    reads.clear()
    assert snap(root, tmp_path).reused and not reads  # and remembered again


def test_a_file_edited_while_it_is_archived_is_refused_not_mislabelled(tmp_path, monkeypatch):
    root = project(tmp_path, old=False)
    real_open = os.open

    def growing_open(path, flags, *args, **kwargs):
        if Path(path).name == "m4.py" and not flags & (os.O_WRONLY | os.O_RDWR):
            with Path(path).open("a") as fh:
                fh.write("# grown\n")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", growing_open)
    with pytest.raises(SingkitError, match="m4.py changed while the code snapshot was taken"):
        snap(root, tmp_path)
    assert [p.name for p in (tmp_path / "store" / "snapshots").iterdir()] == []  # no archive, no temporary


def test_the_archive_holds_what_was_hashed(tmp_path):
    root = project(tmp_path, files=30)
    taken = snap(root, tmp_path)
    with tarfile.open(taken.path) as tar:
        digest = hashlib.sha256()
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            data = tar.extractfile(member).read()
            digest.update(snapshot._line(member.name, bool(member.mode & 0o111), hashlib.sha256(data).hexdigest()))
    assert digest.hexdigest() == taken.sha256


def test_long_names_and_empty_files_round_trip(tmp_path):
    root = project(tmp_path, files=2)
    long_path = root / ("d" * 60) / ("e" * 70) / ("f" * 80 + ".py")
    long_path.parent.mkdir(parents=True)
    long_path.write_text("LONG = True\n")
    (root / "empty.txt").write_text("")
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    taken = snap(root, tmp_path)
    out = tmp_path / "out"
    safe_extract(taken.path, out)
    assert (out / long_path.relative_to(root)).read_text() == "LONG = True\n"
    assert (out / "empty.txt").read_text() == "" and os.access(out / "run.sh", os.X_OK)
    assert subprocess.run(["tar", "tzf", str(taken.path)], capture_output=True, text=True, check=True).stdout.count("\n") == 5


def test_our_tar_headers_are_tarfiles_byte_for_byte():
    import random

    rng = random.Random(4)
    alphabet = "abcXYZ019._-/ éü漢"
    for _ in range(3000):
        name = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 120))).strip("/") or "x"
        mode, size = rng.choice([0o644, 0o755, 0o600, 0o4755, 0o777]), rng.choice([0, 1, 511, 512, 10**6, 8**11 - 1, 8**11])
        mtime = rng.choice([0, 1_700_000_000, 8**11 - 1])
        info = tarfile.TarInfo(name)
        info.mode, info.size, info.mtime = mode, size, mtime
        assert snaparchive.tar_header(name, mode, size, mtime) == info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape"), name


def test_a_reused_archive_is_read_whole_once_then_trusted_by_its_stat_and_damage_is_seen(tmp_path, monkeypatch):
    root = project(tmp_path)
    checked: list[Path] = []
    real_check = snapshot.check_archive

    def spy(archive: Path) -> int:
        checked.append(archive)
        return real_check(archive)

    monkeypatch.setattr(snapshot, "check_archive", spy)
    first = snap(root, tmp_path)
    assert snap(root, tmp_path).reused and checked == []  # written by us, stat unchanged: not read again
    first.path.chmod(0o644)
    data = first.path.read_bytes()
    first.path.write_bytes(data[: len(data) // 2])  # truncated behind our back
    rebuilt = snap(root, tmp_path)  # the project has the files: written anew, and said
    assert checked == [first.path] and not rebuilt.reused and rebuilt.sha256 == first.sha256
    assert rebuilt.notes and "truncated" in rebuilt.notes[0] and "written anew" in rebuilt.notes[0]
    assert rebuilt.path.read_bytes() == data
    assert snap(root, tmp_path).reused and len(checked) == 1  # ours again: trusted by its stat


def _inflates_otherwise(archive: bytearray, at: int) -> bool:
    """Does flipping byte `at` change what inflating the gzip's deflate body gives (or break it)?"""
    assert archive[3] == 0, "a gzip header with optional fields: the body does not start at byte 10"
    flipped = bytearray(archive)
    flipped[at] ^= 0x55
    body = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        return body.decompress(bytes(flipped[10:])) != gzip.decompress(bytes(archive))
    except zlib.error:
        return True


def test_a_changed_byte_inside_a_reused_archive_is_caught_by_gzips_checksum(tmp_path):
    root = project(tmp_path, files=40)
    first = snap(root, tmp_path)
    first.path.chmod(0o644)
    data = bytearray(first.path.read_bytes())
    # One byte, as a bad disk or a careless edit leaves it. About 1 % of single-byte flips land on
    # bits deflate never reads (a code length of a symbol the block does not use) and leave every
    # byte of the code as it was; nothing is damaged then, so the flip is chosen, from the middle
    # on, among those that change what a bare inflate (no checksum) gives. CI once drew such a byte.
    at = next(at for at in range(len(data) // 2, len(data) - 8) if _inflates_otherwise(data, at))
    data[at] ^= 0x55
    first.path.write_bytes(bytes(data))
    with pytest.raises(snapshot.UsageError, match="damaged|not a gzip|truncated"):
        snapshot.check_archive(first.path)
    again = snap(root, tmp_path)
    assert again.notes and "written anew" in again.notes[0] and again.sha256 == first.sha256
    out = tmp_path / "out"
    safe_extract(again.path, out)
    assert (out / "pkg1" / "m39.py").read_text() == "X = 39\n" * 40


@pytest.mark.timeout(60)
def test_links_out_of_the_project_are_left_out_and_said_and_a_fifo_gitignore_is_no_hang(tmp_path):
    root = project(tmp_path, files=2)
    secret = tmp_path / "secret.txt"
    secret.write_text("aws_secret=XYZ\n")
    (root / "creds").symlink_to(secret)
    (root / "inside").symlink_to(root / "pkg0" / "m0.py")  # a link within the project is followed
    os.mkfifo(root / "pkg1" / ".gitignore")  # git ignores a FIFO .gitignore; reading it would block
    taken = snap(root, tmp_path)
    assert taken.notes == ("left out 1 link(s) to files outside the project: creds (the snapshot takes only the "
                           "project's own files; copy what a job needs into the project or mount it as an input)",)
    names = subprocess.run(["tar", "tzf", str(taken.path)], capture_output=True, text=True, check=True).stdout.split()
    assert "creds" not in names and "inside" in names


def test_a_hard_link_to_the_archive_as_each_job_takes_keeps_it_trusted(tmp_path, monkeypatch):
    root = project(tmp_path)
    checked: list[Path] = []
    real_check = snapshot.check_archive
    monkeypatch.setattr(snapshot, "check_archive", lambda archive: checked.append(archive) or real_check(archive))
    first = snap(root, tmp_path)
    for k in range(3):  # each job's code.tar.gz is a hard link to the snapshot: its ctime moves
        os.link(first.path, tmp_path / f"code{k}.tar.gz")
        assert snap(root, tmp_path).reused
    assert checked == []
