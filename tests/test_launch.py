"""The console script's start path (singkit.launch): a no-op `singkit image.wrap` answered from the
local wrap record before invoke loads — in exactly the words of the full path — and every other
command line handed, untouched, to singkit.cli. Real processes, real engine and registry."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from images_helpers import environ, images_env, make_standins, own_cache, project_yaml, write_project
from singkit.config import load_config
from singkit.images import wrap

# What the check must not load. `ruamel` itself is only the namespace package the config's parse
# cache asks for ruamel.yaml's version with (config/layers.py); ruamel.yaml is the parser.
HEAVY = ("invoke", "requests", "urllib3", "http.client", "jinja2", "ruamel.yaml", "docker", "singkit.cli",
         "singkit.tasks")
PROBE = """
import os, sys
sys.argv[0] = 'singkit'
try:
    from singkit.{module} import main
    main()
finally:
    heavy = {heavy!r}
    with open(os.environ['SINGKIT_TEST_PROBE'], 'w') as out:
        out.write(' '.join(sorted(m for m in sys.modules if m in heavy or m.split('.')[0] in heavy)))
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory, docker_client, docker_host, busybox_image, registry, registry_busybox):
    """A project whose wrapped image was just built, pushed, pinned and recorded (base pinned by digest)."""
    root = tmp_path_factory.mktemp("launch")
    standins = make_standins(docker_client, busybox_image.id, registry)
    write_project(root, own_cache(project_yaml(registry_host=registry.host, standins=standins, wrapped="launch/wrapped:1",
                                               base_image=f"singkit-test/busybox:1@{registry_busybox.digest}")))
    env = images_env(root, docker_host)
    assert wrap(env, load_config(env), "tiny").status == "wrapped"
    load_config(images_env(root, docker_host))  # the pinned config parsed once, as any later command would
    return root


def run(root: Path, module: str, *words: str, docker_host: str = "unix:///nonexistent/docker.sock",
        **kw) -> tuple[subprocess.CompletedProcess, list[str]]:
    """`singkit WORDS` through singkit.<module>.main in a process of its own, in `root`: the
    process, and the HEAVY modules it had loaded when it ended. No engine: a no-op needs none."""
    probe = root / f".probe-{os.getpid()}"
    env = {**environ(root, docker_host), "SINGKIT_TEST_PROBE": str(probe)}
    options = {"capture_output": True, **kw}
    proc = subprocess.run([sys.executable, "-c", PROBE.format(module=module, heavy=HEAVY), *words], cwd=root, env=env,
                          text=True, timeout=120, **options)
    loaded = probe.read_text().split()
    probe.unlink()
    return proc, loaded


def test_the_console_script_starts_at_launch():
    assert [ep.value for ep in entry_points(group="console_scripts", name="singkit")] == ["singkit.launch:main"]


@pytest.mark.parametrize("words", [
    ["--docker=tiny"], ["--docker", "tiny"], ["DOCKER=tiny"], ["-d", "tiny"],
    ["--json", "--docker=tiny"], ["-d", "tiny", "--json"],
])
def test_an_up_to_date_wrap_answers_as_the_full_path_without_loading_it(project, words):
    fast, loaded = run(project, "launch", "image.wrap", *words)
    full, full_loaded = run(project, "cli", "image.wrap", *words)
    assert (fast.returncode, fast.stdout, fast.stderr) == (full.returncode, full.stdout, full.stderr)
    assert fast.returncode == 0 and " is up to date (sha256:" in fast.stderr
    assert loaded == [], loaded  # no invoke, HTTP stack, jinja2, ruamel.yaml, docker SDK or singkit.cli
    assert "invoke" in full_loaded


def test_a_reader_gone_ends_both_paths_alike(project):
    def closed_reader(module: str) -> tuple[int, str]:
        read, write = os.pipe()
        os.close(read)
        try:
            proc, _ = run(project, module, "image.wrap", "--docker=tiny", stdout=write, stderr=subprocess.PIPE,
                          capture_output=False)
        finally:
            os.close(write)
        return proc.returncode, proc.stderr

    assert closed_reader("launch") == closed_reader("cli")
    assert closed_reader("launch")[0] == 141


@pytest.mark.parametrize("words", [
    ["image.wrap", "--docker=tiny", "--force"],
    ["image.wrap", "--docker=tiny", "--no-cache"],
    ["image.wrap", "--docker=tiny", "--verbose"],
    ["image.wrap", "--docker=tiny", "-v"],
    ["image.wrap", "--docker=tiny", "--help"],
    ["image.wrap", "-h", "--docker=tiny"],
    ["image.wrap", "--docker=tiny", "--json", "--json"],
    ["image.wrap", "--docker=tiny", "--docker=tiny"],
    ["image.wrap", "--docker=tiny", "DOCKER=tiny"],
    ["image.wrap", "--docker=tiny", "job.list"],
    ["image.wrap", "--docker=tiny", "extra"],
    ["image.wrap", "docker=tiny"],
    ["image.wrap", "--docker"],
    ["image.wrap", "--docker="],
    ["image.wrap", "-d", "--json"],
    ["image.wrap"],
    ["image.wrap", "--docker=nosuch"],
    ["image.wrap", "--docker=DOCKER=tiny"],  # the full path reads it as tiny: still the full path's to say
    ["image.render", "--docker=tiny"],
    ["image.pin", "--docker=tiny"],
    ["--debug", "image.wrap", "--docker=tiny"],
    ["--version"],
    [],
])
def test_every_other_command_line_runs_the_full_path(project, words):
    _, loaded = run(project, "launch", *words)
    assert "invoke" in loaded and "singkit.cli" in loaded, (words, loaded)


def test_a_record_miss_runs_the_full_path_and_answers_the_same(project):
    memo = project / "home" / ".cache" / "singkit" / "wraps.json"
    kept = memo.read_bytes()
    memo.unlink()
    try:
        missed, loaded = run(project, "launch", "image.wrap", "--docker=tiny")
        assert "invoke" in loaded
        assert missed.returncode == 0 and " is up to date (sha256:" in missed.stderr
        hit, loaded = run(project, "launch", "image.wrap", "--docker=tiny")  # the full path recorded it again
        assert loaded == [] and (hit.stdout, hit.stderr) == (missed.stdout, missed.stderr)
    finally:
        memo.write_bytes(kept)


def test_a_config_warning_is_shown_by_the_full_path(project):
    """What require() would warn about (here: a problem in a record the wrap does not use) is the
    full path's to print: the fast path has no second printer of warnings."""
    config = project / "configs" / "singkit.yaml"
    good = config.read_text()
    config.write_text(good + "compute-targets:\n  broken:\n    service: nosuch\n")
    try:
        proc, loaded = run(project, "launch", "image.wrap", "--docker=tiny")
        full, _ = run(project, "cli", "image.wrap", "--docker=tiny")
        assert "invoke" in loaded and "warning:" in proc.stderr, proc.stderr
        assert (proc.returncode, proc.stdout, proc.stderr) == (full.returncode, full.stdout, full.stderr)
    finally:
        config.write_text(good)
