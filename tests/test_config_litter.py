"""image.pin's write-back leaves nothing in the user's configs/ folder, not even when it is killed
with SIGKILL mid-write, and the config is always the old one or the new one (issue 16, "Also")."""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path


from singkit.config import load_config
from singkit.environment import Environment

ROOT = Path(__file__).resolve().parents[1]
DIGESTS = ["sha256:" + c * 64 for c in "0123456789abcdef"]
CONFIG = "# pinned by image.pin\r\ndockers:\r\n  py:   # the image\r\n    image: x\r\n    sha256: " + DIGESTS[0] + "\r\n"

# a writer that pins the digests in turn, for ever; `--stop-in-write` makes it stop (SIGSTOP) right
# after the new text is in its temp file, before the rename, so a kill lands mid-write for sure
WRITER = textwrap.dedent("""
    import io, itertools, os, signal, sys
    from pathlib import Path
    from singkit.config import load_config
    from singkit.environment import Environment
    root = Path(sys.argv[1])
    if len(sys.argv) > 2:
        real_fsync = os.fsync
        def fsync(fd):
            real_fsync(fd)
            if "/configs/." in os.readlink(f"/proc/self/fd/{fd}"):  # the config's temp, not a cache file
                os.kill(os.getpid(), signal.SIGSTOP)
        os.fsync = fsync
    env = Environment(project_root=root, environ={"HOME": str(root / "home")}, stdout=io.StringIO(), stderr=io.StringIO())
    digests = ["sha256:" + c * 64 for c in "0123456789abcdef"]
    print("ready", flush=True)
    for digest in itertools.cycle(digests[1:] + digests[:1]):
        load_config(env).write_back("dockers", "py", "sha256", digest)
""")


def env_for(root: Path) -> Environment:
    return Environment(project_root=root, environ={"HOME": str(root / "home")}, stdout=io.StringIO(), stderr=io.StringIO())


def start_writer(root: Path, *extra: str) -> subprocess.Popen:
    script = root / "writer.py"
    script.write_text(WRITER)
    child = subprocess.Popen([sys.executable, str(script), str(root), *extra], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert child.stdout.readline().strip() == "ready"
    return child


def assert_old_or_new(config: Path) -> None:
    raw = config.read_bytes()
    lines = raw.split(b"\r\n")
    assert lines[:4] == [b"# pinned by image.pin", b"dockers:", b"  py:   # the image", b"    image: x"], raw
    assert lines[4].decode().removeprefix("    sha256: ") in DIGESTS and lines[5:] == [b""], raw


def test_kill9_loop_leaves_no_litter_and_never_half_a_config(tmp_path):
    config = tmp_path / "configs" / "singkit.yaml"
    config.parent.mkdir()
    config.write_bytes(CONFIG.encode())
    rng = random.Random(16)
    littered = 0
    for _ in range(12):
        child = start_writer(tmp_path)
        try:
            child.wait(timeout=rng.uniform(0.05, 1.5))
        except subprocess.TimeoutExpired:
            pass
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL, "the writer ended before it was killed"
        assert_old_or_new(config)
        littered += len([p for p in config.parent.iterdir() if p.name != "singkit.yaml"])
    # a kill between writing the temp and renaming it, for sure: the writer stops itself there
    child = start_writer(tmp_path, "--stop-in-write")
    try:
        os.waitpid(child.pid, os.WUNTRACED)  # until it has stopped
        assert [p.name for p in config.parent.iterdir() if p.name.endswith(".tmp")], "no temp file mid-write"
    finally:
        child.kill()
        child.wait(timeout=30)
    assert_old_or_new(config)
    load_config(env_for(tmp_path))  # the next command sweeps what the killed writers left
    assert sorted(p.name for p in config.parent.iterdir()) == ["singkit.yaml"], f"{littered} litter seen during the loop"
    assert_old_or_new(config)


def test_write_back_leaves_no_lock_file_and_sweeps_an_old_one(tmp_path):
    config = tmp_path / "configs" / "singkit.yaml"
    config.parent.mkdir()
    config.write_bytes(CONFIG.encode())
    (config.parent / ".singkit.yaml.lock").write_text("")  # what earlier versions left
    load_config(env_for(tmp_path)).write_back("dockers", "py", "sha256", DIGESTS[3])
    assert sorted(p.name for p in config.parent.iterdir()) == ["singkit.yaml"]
    assert_old_or_new(config)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_snapshot_sweeps_the_temp_a_killed_submit_left(tmp_path):
    from singkit.snapshot import take

    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "train.py").write_text("print(1)\n")
    snapshots = tmp_path / "store" / "snapshots"
    snapshots.mkdir(parents=True)
    left = snapshots / f".{'e' * 64}.tar.gz.p{dead_pid()}.abcd1234.tmp"
    left.write_bytes(b"half a tar")
    live = snapshots / f".{'f' * 64}.tar.gz.p{os.getppid()}.abcd1234.tmp"  # a writer still at work
    live.write_bytes(b"being written")
    snap = take(tmp_path / "code", ["."], [], snapshots)
    assert sorted(p.name for p in snapshots.iterdir()) == sorted([snap.path.name, live.name])
