"""Code snapshots: what goes in (.gitignore, code-omit), content hashing, dedupe, safe extraction."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from singkit.exceptions import SingkitError
from singkit.gitignore import IgnoreRules, parse
from singkit.snapshot import code_files, content_hash, safe_extract, take


def tree(root: Path) -> Path:
    files = {
        "train.py": "print('train')\n",
        "lib/util.py": "X = 1\n",
        "lib/cache.bin": "junk",
        "lib/keep.log": "keep me\n",
        "logs/a.log": "ignored\n",
        "data/big.csv": "1,2,3\n",
        "notes/draft.md": "omitted by code-omit\n",
        "build/out.o": "ignored dir\n",
        "sub/.gitignore": "*.tmp\n/local-only.txt\n",
        "sub/x.tmp": "ignored by nested\n",
        "sub/deep/y.tmp": "ignored by nested, any depth\n",
        "sub/local-only.txt": "anchored ignore\n",
        "sub/deep/local-only.txt": "anchored: not ignored here\n",
        "venv/pyvenv.cfg": "home = /usr\n",
        "venv/lib/site.py": "a virtualenv\n",
        "__pycache__/m.cpython-311.pyc": "bytecode",
        ".singkit/jobs/job1/job.yaml": "the store itself\n",
        ".gitignore": "*.log\n!keep.log\n*.bin\nbuild/\nlogs/\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


EXPECTED = [".gitignore", "lib/keep.log", "lib/util.py", "sub/.gitignore", "sub/deep/local-only.txt", "train.py"]


def test_walk_honours_gitignore_and_omit(tmp_path: Path) -> None:
    root = tree(tmp_path / "p")
    files = code_files(root, ["."], ["data/*", "notes"], exclude=[root / ".singkit"])
    assert files == EXPECTED


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_work_tree_gives_the_same_files(tmp_path: Path) -> None:
    root = tree(tmp_path / "p")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    files = code_files(root, ["."], ["data/*", "notes"], exclude=[root / ".singkit"])
    assert files == EXPECTED


@pytest.mark.parametrize("git", [False, True], ids=["walk", "git"])
def test_a_code_dir_inside_what_is_never_code_takes_nothing(tmp_path: Path, git: bool) -> None:
    """A code dir in a virtualenv, in __pycache__, or in an excluded folder (the store) is left
    out as a whole; the walk decides that once per code dir, below it folder by folder."""
    root = tree(tmp_path / "p")
    (root / "venv" / "lib" / "deep").mkdir(parents=True)
    (root / "venv" / "lib" / "deep" / "m.py").write_text("x = 1\n")
    (root / "__pycache__" / "pkg").mkdir()
    (root / "__pycache__" / "pkg" / "m.py").write_text("x = 1\n")
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
    dirs = ["venv/lib", "venv/lib/site.py", "__pycache__/pkg", ".singkit/jobs", "lib/util.py", "sub"]
    assert code_files(root, dirs, [], exclude=[root / ".singkit"]) == [
        "lib/util.py", "sub/.gitignore", "sub/deep/local-only.txt"]
    assert code_files(root, ["lib"], [], exclude=[root / "lib"]) == []


def test_code_dirs_limit_the_snapshot(tmp_path: Path) -> None:
    root = tree(tmp_path / "p")
    assert code_files(root, ["lib", "train.py"], []) == ["lib/keep.log", "lib/util.py", "train.py"]
    with pytest.raises(SingkitError, match="code-dirs names `nope`"):
        code_files(root, ["nope"], [])


def test_gitignore_patterns() -> None:
    rules = IgnoreRules(Path("/nonexistent"))
    rules._specs[""] = parse("a/**/z\n**/cache\n/top.txt\ndocs/*.md\n!docs/keep.md\n\\#hash\n*.py[co]\n")
    assert rules.ignored("a/z", False) and rules.ignored("a/b/c/z", False)
    assert rules.ignored("x/y/cache", True) and rules.ignored("cache", False)
    assert rules.ignored("top.txt", False) and not rules.ignored("d/top.txt", False)
    assert rules.ignored("docs/a.md", False) and not rules.ignored("docs/keep.md", False)
    assert not rules.ignored("docs/sub/a.md", False)
    assert rules.ignored("#hash", False) and rules.ignored("m.pyc", False) and not rules.ignored("m.py", False)


def test_hash_depends_on_content_not_time(tmp_path: Path) -> None:
    root = tree(tmp_path / "p")
    files = code_files(root, ["."], [])
    first, _ = content_hash(root, files)
    (root / "train.py").write_text("print('train')\n")  # same bytes, new mtime
    assert content_hash(root, files)[0] == first
    (root / "train.py").write_text("print('changed')\n")
    assert content_hash(root, files)[0] != first


def test_identical_code_is_stored_once(tmp_path: Path) -> None:
    root = tree(tmp_path / "p")
    snaps = tmp_path / "snapshots"
    one = take(root, ["."], [], snaps, exclude=[root / ".singkit"])
    two = take(root, ["."], [], snaps, exclude=[root / ".singkit"])
    assert not one.reused and two.reused and one.sha256 == two.sha256
    assert [p.name for p in snaps.iterdir()] == [f"{one.sha256}.tar.gz"]
    (root / "new.py").write_text("x = 2\n")
    three = take(root, ["."], [], snaps, exclude=[root / ".singkit"])
    assert three.sha256 != one.sha256 and len(list(snaps.iterdir())) == 2
    out = tmp_path / "out"
    safe_extract(three.path, out)
    assert (out / "new.py").read_text() == "x = 2\n" and (out / "lib" / "util.py").exists()


def evil_archive(path: Path, member: tarfile.TarInfo, data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        ok = tarfile.TarInfo("fine.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"ok"))
        if member.isfile():
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
        else:
            tar.addfile(member)
    return path


@pytest.mark.parametrize("member", [
    tarfile.TarInfo("../escape.txt"),
    tarfile.TarInfo("a/../../escape.txt"),
    tarfile.TarInfo("/tmp/absolute.txt"),
])
def test_extract_refuses_members_outside(tmp_path: Path, member: tarfile.TarInfo) -> None:
    archive = evil_archive(tmp_path / "evil.tar.gz", member)
    dest = tmp_path / "dest"
    with pytest.raises(SingkitError, match="outside"):
        safe_extract(archive, dest)
    assert not (tmp_path / "escape.txt").exists()
    assert not (dest / "fine.txt").exists()  # nothing at all was extracted


def test_extract_refuses_links_pointing_outside(tmp_path: Path) -> None:
    link = tarfile.TarInfo("innocent")
    link.type = tarfile.SYMTYPE
    link.linkname = "../../etc"
    archive = evil_archive(tmp_path / "link.tar.gz", link)
    with pytest.raises(SingkitError, match="links to"):
        safe_extract(archive, tmp_path / "dest")


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_walk_without_git_takes_what_git_takes(tmp_path: Path) -> None:
    """Random trees with nested .gitignore files: the no-git walk lists exactly `git ls-files
    --others --exclude-standard`, git itself being the oracle for precedence (a nested file
    overriding its parent's, `!` re-includes, folder-only and anchored patterns)."""
    import random

    from singkit.snapfiles import _walk_files

    rng = random.Random(12)
    names = ["a", "b", "keep", "build", "x.log", "y.py", "z.pyc", "doc.md"]
    patterns = ["*.log", "!keep*", "build/", "/a", "b/", "**/z.pyc", "!x.log", "*.md", "!doc.md", "a/**/y.py",
                "[xy].*", "!b", "keep/", "*/y.py"]
    for case in range(25):
        root = tmp_path / f"t{case}"
        for _ in range(14):
            depth = rng.randint(1, 3)
            rel = Path(*[rng.choice(names[:4]) for _ in range(depth - 1)], rng.choice(names))
            target = root / rel
            if any(p.is_file() for p in [*target.parents][:depth]) or target.is_dir():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("x")
        for folder in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
            if rng.random() < 0.6 and not (folder / ".gitignore").exists():
                (folder / ".gitignore").write_text("\n".join(rng.sample(patterns, rng.randint(1, 4))) + "\n")
        ours = sorted(_walk_files(root, ["."]))
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        listing = subprocess.run(["git", "-C", str(root), "ls-files", "--others", "--exclude-standard"],
                                 capture_output=True, text=True, check=True).stdout.split()
        assert ours == sorted(listing), (case, sorted(set(ours) ^ set(listing)))


def test_the_one_regex_of_a_gitignore_matches_wherever_pathspec_decides() -> None:
    """gitignore.any_match answers "no pattern matches" for most paths without asking pathspec:
    it must never say so for a path some pattern of the file decides (random files and paths)."""
    import random

    from singkit.gitignore import any_match

    rng = random.Random(7)
    patterns = ["*.log", "!keep*", "build/", "/a", "b/", "**/z.pyc", "!x.log", "*.md", "a/**/y.py", "[xy].*", "!b",
                "keep/", "*/y.py", "doc/*.txt", "\\#hash", "sp ace", "**/deep/**", "?.py", "/top/*.cfg", "*~",
                "!/a/keep", "x[!0-9].py", "# comment", "", "a/b/", "**/"]
    parts = ["a", "b", "keep", "build", "x.log", "y.py", "z.pyc", "doc", "deep", "top", "#hash", "sp ace", "x1.py",
             "xa.py", "q.py", "f.cfg", "n~", "d.md"]
    decided = 0
    for _ in range(300):
        spec = parse("\n".join(rng.sample(patterns, rng.randint(1, 8))))
        quick = any_match(spec)
        for _ in range(40):
            path = "/".join(rng.choice(parts) for _ in range(rng.randint(1, 4))) + rng.choice(["", "/"])
            if spec.check_file(path).include is not None:
                decided += 1
                assert quick is not None and quick.search(path) is not None, (spec.patterns, path)
    assert decided > 1000  # the random cases do reach pathspec's decisions
