"""The local wrap record (images/wrapmemo.py): a no-op wrap asks no registry, and anything the
record cannot vouch for asks it, as before. Against the real engine and a real loopback registry,
seen through a relay that records every byte a wrap sends to the registry."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from faultnet import Relay
from images_helpers import environ, images_env, make_standins, own_cache, project_yaml, write_project
from singkit.config import load_config
from singkit.images import render, wrap


@pytest.fixture(scope="module")
def standins(docker_client, busybox_image, registry, registry_busybox):
    return make_standins(docker_client, busybox_image.id, registry)


@pytest.fixture(scope="module")
def relay(registry):
    """127.0.0.1:<port> → the loopback registry; `.sent` holds what clients sent through it."""
    front = Relay(f"tcp://{registry.host}")
    yield front
    front.kill()


def host(relay: Relay) -> str:
    return f"127.0.0.1:{relay.port}"


def pinned_project(root: Path, relay: Relay, standins, base_digest: str, **kw) -> Path:
    """A project whose registry record is the relay, with the base pinned by digest (and the
    installer and validator by tag): what lets a no-op decide without any registry."""
    wrapped = f"memo-{uuid.uuid4().hex[:8]}/wrapped:1"  # each test its own image: no test moves another's tag
    return write_project(root, own_cache(project_yaml(registry_host=host(relay), standins=standins, wrapped=wrapped,
                                                      base_image=f"singkit-test/busybox:1@{base_digest}", **kw)))



def wrap_now(root: Path, docker_host: str, relay: Relay, **kw) -> tuple[object, str, bytes]:
    """(result, stderr, the bytes sent to the registry) of one library wrap."""
    env = images_env(root, docker_host)
    cfg = load_config(env)
    relay.sent.clear()
    result = wrap(env, cfg, "tiny", **kw)
    return result, env.stderr.getvalue(), bytes(relay.sent)


def memo_file(root: Path) -> Path:
    return root / "home" / ".cache" / "singkit" / "wraps.json"


def test_a_no_op_asks_no_registry_and_the_registry_path_records_its_answer(tmp_path, docker_host, relay, standins,
                                                                          registry_busybox):
    config = pinned_project(tmp_path, relay, standins, registry_busybox.digest)
    first, _, _ = wrap_now(tmp_path, docker_host, relay)
    assert first.status == "wrapped"
    entry = json.loads(memo_file(tmp_path).read_text())["images"][f"{first.reference.split('@')[0]}:1"]
    assert entry == {"inputs": first.inputs_hash, "digest": first.digest}
    pinned = config.read_text()

    again, err, sent = wrap_now(tmp_path, docker_host, relay)
    assert (again.status, again.digest, again.reference) == ("up to date", first.digest, first.reference)
    assert err == f"{first.reference.split('@')[0]}:1 is up to date ({first.digest})\n"
    assert sent == b"", sent[:200]  # not one request: the record answered
    assert config.read_text() == pinned

    # the record gone (another machine, a cleaned cache): the registry answers, and is recorded
    memo_file(tmp_path).unlink()
    checked, err2, sent = wrap_now(tmp_path, docker_host, relay)
    assert checked.status == "up to date" and err2 == err and sent != b""
    assert json.loads(memo_file(tmp_path).read_text())["images"] != {}
    _, _, sent = wrap_now(tmp_path, docker_host, relay)
    assert sent == b""


@pytest.mark.parametrize("key", ["sha256", "base-sha256"])
def test_a_pin_edited_by_hand_is_checked_with_the_registry(tmp_path, docker_host, relay, standins, registry_busybox, key):
    config = pinned_project(tmp_path, relay, standins, registry_busybox.digest)
    first, _, _ = wrap_now(tmp_path, docker_host, relay)
    good = config.read_text()
    line = next(l for l in good.splitlines() if l.strip().startswith(f"{key}:"))
    config.write_text(good.replace(line, line.split(":")[0] + ": sha256:" + "ab" * 32))

    result, err, sent = wrap_now(tmp_path, docker_host, relay)
    assert result.status == "pinned" and result.digest == first.digest, err
    assert sent != b""
    assert config.read_text() == good  # the registry's digests written back


def test_changed_inputs_rebuild(tmp_path, docker_host, relay, standins, registry_busybox):
    config = pinned_project(tmp_path, relay, standins, registry_busybox.digest)
    first, _, _ = wrap_now(tmp_path, docker_host, relay)
    config.write_text(config.read_text().replace("RUN echo post-step-ran > /post.txt", "RUN echo memo > /post.txt"))
    env = images_env(tmp_path, docker_host)
    render(env, load_config(env), "tiny")  # a look at the new Dockerfile first: it names the new inputs
    changed, err, _ = wrap_now(tmp_path, docker_host, relay)
    assert changed.status == "wrapped" and "inputs changed since it was built; rebuilding" in err
    assert changed.digest != first.digest and changed.inputs_hash != first.inputs_hash


def test_force_builds_although_the_record_says_up_to_date(tmp_path, docker_host, relay, standins, registry_busybox):
    pinned_project(tmp_path, relay, standins, registry_busybox.digest)
    wrap_now(tmp_path, docker_host, relay)
    forced, err, sent = wrap_now(tmp_path, docker_host, relay, force=True)
    assert forced.status == "wrapped" and "(cached)" in err and sent != b""


def test_a_stale_dockerfile_is_written_again_by_the_registry_path(tmp_path, docker_host, relay, standins, registry_busybox):
    pinned_project(tmp_path, relay, standins, registry_busybox.digest)
    first, _, _ = wrap_now(tmp_path, docker_host, relay)
    dockerfile = tmp_path / "dockerfiles" / "tiny.Dockerfile"
    text = dockerfile.read_text()
    dockerfile.unlink()
    again, _, sent = wrap_now(tmp_path, docker_host, relay)
    assert again.status == "up to date" and sent != b"" and dockerfile.read_text() == text


def _damage(path: Path, how: str) -> None:
    good = path.read_bytes()
    path.unlink()
    if how == "garbage":
        path.write_bytes(b"\x00{not json" + good[:20])
    elif how == "other shape":
        path.write_text(json.dumps({"format": 1, "images": [good.decode()]}))
    elif how == "fifo":
        os.mkfifo(path)
    elif how == "folder":
        path.mkdir()
    elif how == "link":  # to a copy that would answer: a link is not followed
        (path.parent / "elsewhere.json").write_bytes(good)
        path.symlink_to(path.parent / "elsewhere.json")


@pytest.mark.parametrize("how", ["garbage", "other shape", "fifo", "folder", "link"])
def test_a_damaged_record_is_no_record(tmp_path, docker_host, relay, standins, registry_busybox, how):
    """The console script (singkit.launch) and the library both read it as missing: the registry
    answers, in the same words; a FIFO is not waited on (the command would hang)."""
    pinned_project(tmp_path, relay, standins, registry_busybox.digest)
    first, _, _ = wrap_now(tmp_path, docker_host, relay)
    _damage(memo_file(tmp_path), how)
    relay.sent.clear()
    proc = subprocess.run([sys.executable, "-m", "singkit", "image.wrap", "--docker=tiny"], cwd=tmp_path,
                          env=environ(tmp_path, docker_host), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == first.reference + "\n"
    assert proc.stderr == f"{first.reference.split('@')[0]}:1 is up to date ({first.digest})\n"
    assert bytes(relay.sent) != b""  # the registry was asked


def test_a_base_named_by_tag_keeps_no_record(tmp_path, docker_host, relay, standins):
    """Its inputs hash needs the registry (the tag's digest now), so a record could never answer."""
    write_project(tmp_path, own_cache(project_yaml(registry_host=host(relay), standins=standins,
                                                   wrapped=f"memo-{uuid.uuid4().hex[:8]}/by-tag:1")))
    assert wrap_now(tmp_path, docker_host, relay)[0].status == "wrapped"
    again, _, sent = wrap_now(tmp_path, docker_host, relay)
    assert again.status == "up to date" and sent != b""
    assert not memo_file(tmp_path).exists()


@pytest.mark.parametrize("how", ["fifo", "link to a fifo", "folder"])
def test_a_dockerfile_that_is_no_regular_file_is_never_waited_on(tmp_path, docker_host, relay, standins,
                                                                 registry_busybox, how):
    """dockerfiles/<docker>.Dockerfile is generated: a FIFO (or a link to one, or to /dev/zero)
    there hung image.wrap for ever (fresh-user finding); now it is not current and is replaced,
    the link itself, never what it leads to (as root, writing through a link to /dev/zero
    replaced the device). A folder there is one line and exit 2 (it was `Is a directory: …`,
    exit 1). The link here leads to a FIFO of the test's own, so a fault cannot touch /dev."""
    pinned_project(tmp_path, relay, standins, registry_busybox.digest)
    first, _, _ = wrap_now(tmp_path, docker_host, relay)
    dockerfile = tmp_path / "dockerfiles" / "tiny.Dockerfile"
    text = dockerfile.read_text()
    dockerfile.unlink()
    if how == "fifo":
        os.mkfifo(dockerfile)
    elif how == "folder":
        dockerfile.mkdir()
    else:
        os.mkfifo(tmp_path / "elsewhere")
        dockerfile.symlink_to(tmp_path / "elsewhere")
    proc = subprocess.run([sys.executable, "-m", "singkit", "image.wrap", "--docker=tiny"], cwd=tmp_path,
                          env=environ(tmp_path, docker_host), capture_output=True, text=True, timeout=120)
    if how == "folder":
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "is a folder" in proc.stderr, proc.stderr
        assert dockerfile.is_dir()
    else:
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == first.reference + "\n"
        assert not dockerfile.is_symlink() and dockerfile.read_text() == text
        if how == "link to a fifo":
            assert stat.S_ISFIFO(os.lstat(tmp_path / "elsewhere").st_mode)  # not written through
