"""Issue 13 (point 7): `image.render` renders the shipped config with no registry reachable —
placeholder digests, clearly marked — and nothing ever builds, pushes or pins a placeholder."""

from __future__ import annotations

import io
import shutil
import socket
from pathlib import Path

import pytest

from clirunner import cli
from singkit.config import load_config
from singkit.environment import Environment
from singkit.exceptions import SingkitError
from singkit.images.build import build
from singkit.images.render import PLACEHOLDER_DIGEST, PLACEHOLDER_TAG, plan

REPO = Path(__file__).resolve().parent.parent
MARK = "# PLACEHOLDER: rendered offline; not buildable."


@pytest.fixture
def shipped(tmp_path):
    """A fresh clone's config, and an environment in which no registry answers: every HTTPS
    request goes to a proxy port nothing listens on (refused at once, whatever DNS says)."""
    (tmp_path / "configs").mkdir()
    shutil.copyfile(REPO / "configs" / "singkit.yaml", tmp_path / "configs" / "singkit.yaml")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: connecting is refused
    proxy = f"http://127.0.0.1:{port}"
    return tmp_path, {"https_proxy": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy, "HTTP_PROXY": proxy,
                      "no_proxy": "", "NO_PROXY": ""}


def check_placeholder_file(root: Path) -> str:
    text = (root / "dockerfiles" / "pytorch.Dockerfile").read_text()
    assert MARK in text.split("\n\n", 1)[0]  # in the header
    assert f"FROM myregistry.azurecr.io/pytorch@{PLACEHOLDER_DIGEST} AS base\n" in text
    assert f"singularity-installer:{PLACEHOLDER_TAG} AS installer\n" in text
    assert f"singularity-tests:{PLACEHOLDER_TAG} AS validator\n" in text
    return text


def test_render_falls_back_to_placeholders_when_no_registry_answers(shipped):
    root, offline_env = shipped
    config = (root / "configs" / "singkit.yaml").read_bytes()
    proc = cli(["image.render", "--docker=pytorch"], cwd=root, env=offline_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{root / 'dockerfiles' / 'pytorch.Dockerfile'}\n"
    warning, said = proc.stderr.splitlines()
    assert warning.startswith("warning: registry ") and "unreachable" in warning
    assert warning.endswith("rendering offline with placeholder digests instead (image.build asks again)")
    assert said.endswith("with placeholder digests: not buildable")
    check_placeholder_file(root)
    assert (root / "configs" / "singkit.yaml").read_bytes() == config  # nothing pinned


def test_render_offline_asks_no_registry_and_says_nothing_more(shipped):
    root, offline_env = shipped
    proc = cli(["image.render", "--docker=pytorch", "--offline"], cwd=root, env=offline_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("\n") == 1 and "warning" not in proc.stderr, proc.stderr
    check_placeholder_file(root)


def test_nothing_builds_wraps_or_pins_from_a_placeholder(shipped):
    root, offline_env = shipped
    env = Environment(project_root=root, environ={"HOME": str(root)}, stdout=io.StringIO(), stderr=io.StringIO())
    cfg = load_config(env)
    rendered = plan(env, cfg, "pytorch", offline=True)
    assert rendered.placeholder and rendered.base.digest == PLACEHOLDER_DIGEST
    with pytest.raises(SingkitError, match=r"rendered offline, with placeholder digests; it cannot be built"):
        build(env, cfg, "pytorch", rendered=rendered)  # refused before any engine is asked
    # a real plan is never a placeholder, and wrap never falls back: unreachable is exit 4
    assert not plan(env, cfg, "pytorch", base_digest="sha256:" + "1" * 64,
                    stages={"installer-image": "r/i:1", "validator-image": "r/v:1"}).placeholder
    config = (root / "configs" / "singkit.yaml").read_bytes()
    for task in ("image.wrap", "image.build", "image.pin"):
        proc = cli([task, "--docker=pytorch"], cwd=root, env=offline_env)
        assert proc.returncode == 4 and "placeholder" not in proc.stderr, (task, proc.stderr)
    assert (root / "configs" / "singkit.yaml").read_bytes() == config
    assert not (root / "dockerfiles").exists()
