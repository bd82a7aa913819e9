"""image.wrap end to end against the real Docker Engine and a real loopback registry."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import docker_services
import services
from images_helpers import MARKER, environ, images_env, make_standins, project_yaml, run_cli, write_project
from singkit.config import load_config
from singkit.exceptions import ServiceError, SingkitError
from singkit.images import wrap
from singkit.imageref import Reference


@pytest.fixture(scope="module")
def standins(docker_client, busybox_image, registry, registry_busybox):
    # by id: concurrent test sessions re-import (and clean up) the shared busybox tag
    return make_standins(docker_client, busybox_image.id, registry)


def wrap_once(root: Path, docker_host: str, name: str = "tiny", **kw):
    env = images_env(root, docker_host)
    result = wrap(env, load_config(env), name, **kw)
    return result, env.stderr.getvalue()


def events(root: Path) -> list[str]:
    path = root / ".singkit" / "events.jsonl"
    return [json.loads(line)["event"] for line in path.read_text().splitlines()] if path.exists() else []


def comments(text: str) -> list[str]:
    return [line[line.index("#"):] for line in text.splitlines() if "#" in line]


def test_wrap_builds_validates_pushes_pins_then_skips(tmp_path, docker_client, docker_host, registry,
                                                      registry_busybox, standins):
    config = write_project(tmp_path, project_yaml(registry_host=registry.host, standins=standins,
                                                  wrapped="wrapped/main:1"))
    before = config.read_text()

    result, err = wrap_once(tmp_path, docker_host)

    # the rendered Dockerfile: pinned base with its tag in a comment, the seed's recipe, post step
    dockerfile = (tmp_path / "dockerfiles" / "tiny.Dockerfile").read_text()
    assert "# record: dockers.tiny (configs/singkit.yaml:" in dockerfile
    assert f"# inputs: {result.inputs_hash}" in dockerfile
    assert f"# base image {registry_busybox.ref}, pinned by digest\nFROM {registry_busybox.pinned} AS base\n" in dockerfile
    assert f"FROM {standins.installer} AS installer\nFROM {standins.validator} AS validator\n" in dockerfile
    assert "COPY --from=installer /installer /opt/microsoft/_singularity/installations/\n" in dockerfile
    assert "COPY --from=validator /validations /opt/microsoft/_singularity/validations/\n" in dockerfile
    assert "ENV SINGULARITY_IMAGE_ACCELERATOR=CPU\n" in dockerfile
    assert dockerfile.rstrip().endswith("RUN echo post-step-ran > /post.txt")
    # progress: steps, the running step's output, the validator's verdict, the push per layer
    assert re.search(r"Step \d+/\d+ : RUN /opt/microsoft/_singularity/installations/singularity/installer.sh", err)
    assert "| installing Singularity components for CPU" in err
    assert "validator passed" in err and "push " in err
    # the installer ran inside the final image, and so did the post step
    out = docker_client.containers.run(f"{registry.host}/wrapped/main:1", ["cat", MARKER, "/post.txt"],
                                       network_mode="none", remove=True).decode().split()
    assert out == ["CPU", "post-step-ran"]
    # the pinned digest is the registry's; comments and order survived the write-back
    registry_digest = registry.manifest_digest("wrapped/main", "1")
    assert result.status == "wrapped" and result.digest == registry_digest
    assert result.reference == f"{registry.host}/wrapped/main@{registry_digest}"
    after = config.read_text()
    assert f"sha256: {registry_digest}" in after
    assert f"base-sha256: {registry_busybox.digest}" in after
    assert comments(after) == comments(before)
    assert [l for l in after.splitlines() if "sha256" not in l] == before.splitlines()
    assert events(tmp_path) == ["build", "push", "pin"]

    # a second wrap is a no-op: no engine work, no write (it only puts back a deleted Dockerfile)
    (tmp_path / "dockerfiles" / "tiny.Dockerfile").unlink()
    again, err = wrap_once(tmp_path, docker_host)
    assert again.status == "up to date" and again.digest == registry_digest
    assert (tmp_path / "dockerfiles" / "tiny.Dockerfile").read_text() == dockerfile
    assert "up to date" in err and "Step " not in err
    assert config.read_text() == after
    assert events(tmp_path) == ["build", "push", "pin"]

    # a changed post step rebuilds, and the new digest is pinned
    config.write_text(after.replace("RUN echo post-step-ran > /post.txt", "RUN echo changed > /post.txt"))
    changed, err = wrap_once(tmp_path, docker_host)
    assert changed.status == "wrapped" and "inputs changed" in err
    new_digest = registry.manifest_digest("wrapped/main", "1")
    assert changed.digest == new_digest != registry_digest
    assert f"sha256: {new_digest}" in config.read_text()
    assert comments(config.read_text()) == comments(before)


NOOP_PROBE = """
import sys
from singkit.cli import main
code = 0
try:
    main(['singkit', 'image.wrap', '--docker=tiny'])
except SystemExit as done:
    code = done.code or 0
heavy = ('docker', 'jinja2', 'tarfile')
skipped = ('singkit.images.build', 'singkit.images.push', 'singkit.images.validate', 'singkit.images.engine')
print('probe:', code, *sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in skipped))
"""


def test_a_no_op_wrap_loads_nothing_the_check_does_not_need(tmp_path, docker_host, registry, standins):
    """Issue 14: "up to date" is decided before the docker SDK, jinja2, tarfile or the build,
    validate and push code is imported (the command line, as a user runs it)."""
    write_project(tmp_path, project_yaml(registry_host=registry.host, standins=standins, wrapped="wrapped/noop:1"))
    env = environ(tmp_path, docker_host)
    assert run_cli(tmp_path, env, "image.wrap", "--docker=tiny").returncode == 0
    out = subprocess.run([sys.executable, "-c", NOOP_PROBE], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert "is up to date" in out.stderr, out.stderr
    assert out.stdout.splitlines()[-1].split() == ["probe:", "0"], out.stdout


def test_each_step_as_its_own_task(tmp_path, docker_host, registry, registry_busybox, standins):
    config = write_project(tmp_path, project_yaml(registry_host=registry.host, standins=standins,
                                                  wrapped="wrapped/steps:1"))
    env = environ(tmp_path, docker_host)
    outputs = {}
    for task in ("render", "build", "validate", "push", "pin"):
        proc = run_cli(tmp_path, env, f"image.{task}", "--docker=tiny")
        assert proc.returncode == 0, (task, proc.stderr)
        outputs[task] = proc.stdout.strip()
    digest = registry.manifest_digest("wrapped/steps", "1")
    assert outputs["render"] == str(tmp_path / "dockerfiles" / "tiny.Dockerfile")
    assert outputs["build"] == f"{registry.host}/wrapped/steps:1"
    assert outputs["push"] == outputs["pin"] == f"{registry.host}/wrapped/steps@{digest}"
    assert f"sha256: {digest}" in config.read_text()
    assert f"base-sha256: {registry_busybox.digest}" in config.read_text()
    proc = run_cli(tmp_path, env, "image.wrap", "--docker=tiny", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"docker": "tiny", "status": "up to date", "digest": digest,
                                       "reference": outputs["pin"], "inputs-hash": json.loads(proc.stdout)["inputs-hash"],
                                       "dockerfile": outputs["render"]}
    # --force builds anyway; every layer is cached, so the registry ends up with the same digest
    proc = run_cli(tmp_path, env, "image.wrap", "--docker=tiny", "--force", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "wrapped" and json.loads(proc.stdout)["digest"] == digest
    assert "(cached)" in proc.stderr
    proc = run_cli(tmp_path, env, "image.wrap")
    assert proc.returncode == 2 and proc.stderr == "error: no docker record given: pass --docker=NAME (records: tiny)\n"


def test_failing_validator_in_build_leaves_yaml_unchanged(tmp_path, docker_host, registry, standins):
    config = write_project(tmp_path, project_yaml(registry_host=registry.host, standins=standins,
                                                  wrapped="wrapped/broken:1", installer=standins.broken_installer))
    before = config.read_text()
    env = environ(tmp_path, docker_host)
    proc = run_cli(tmp_path, env, "image.wrap", "--docker=tiny")
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: build of dockers.tiny failed at step ")
    assert "the Singularity installer or validator exited 3" in last
    assert "FAIL: Singularity components are not installed" in last
    assert config.read_text() == before
    assert registry.manifest_digest("wrapped/broken", "1") is None


def test_validate_failure_after_post_steps_leaves_yaml_unchanged(tmp_path, docker_host, registry, standins):
    # The build's own validator run passes (it runs before the post steps); image.validate of the
    # finished image catches what a post step broke.
    config = write_project(tmp_path, project_yaml(registry_host=registry.host, standins=standins,
                                                  wrapped="wrapped/post-broken:1",
                                                  post_steps=["RUN touch /etc/fail-validation"]))
    before = config.read_text()
    env = images_env(tmp_path, docker_host)
    with pytest.raises(SingkitError, match=r"validator failed in .*post-broken:1 \(exit 4\): .*/etc/fail-validation is present"):
        wrap(env, load_config(env), "tiny")
    assert config.read_text() == before
    assert registry.manifest_digest("wrapped/post-broken", "1") is None


def test_failing_run_step_names_the_step_and_its_output(tmp_path, docker_host, registry, standins):
    write_project(tmp_path, project_yaml(registry_host=registry.host, standins=standins, wrapped="wrapped/step:1",
                                         post_steps=["RUN echo first line && echo boom && exit 7"]))
    env = images_env(tmp_path, docker_host)
    with pytest.raises(SingkitError) as caught:
        wrap(env, load_config(env), "tiny")
    message = str(caught.value)
    assert "\n" not in message
    assert re.match(r"build of dockers.tiny failed at step \d+/\d+ `RUN echo first line && echo boom && exit 7`: "
                    r"the step exited 7; last output: first line \| boom$", message)
    # a failed build is in the audit log like a successful one, with its one-line reason
    assert events(tmp_path) == ["build-failed"]
    event = json.loads((tmp_path / ".singkit" / "events.jsonl").read_text())
    assert event["docker"] == "tiny" and event["image"].endswith("wrapped/step:1")
    assert event["error"] == message and event["inputs"]


def test_sing_wrap_false_resolves_and_pins_as_is(tmp_path, docker_host, registry, registry_busybox, standins):
    config = write_project(tmp_path, project_yaml(registry_host=registry.host, standins=standins, wrapped="x/y:1",
                                                  extra="  plain:   # used as it is\n"
                                                        "    image: singkit-test/busybox:1\n    registry: loop\n"))
    result, _ = wrap_once(tmp_path, docker_host, "plain")
    assert result.digest == registry_busybox.digest
    assert result.reference == registry_busybox.pinned
    assert f"    sha256: {registry_busybox.digest}\n" in config.read_text()
    assert "# used as it is" in config.read_text()
    again, err = wrap_once(tmp_path, docker_host, "plain")
    assert again.status == "up to date" and "up to date" in err


def test_missing_base_image_is_one_config_line(tmp_path, docker_host, registry, standins):
    write_project(tmp_path, project_yaml(registry_host=registry.host, standins=standins, wrapped="x/y:1",
                                         base_image="singkit-test/absent:1"))
    proc = run_cli(tmp_path, environ(tmp_path, docker_host), "image.wrap", "--docker=tiny")
    assert proc.returncode == 2
    assert re.fullmatch(r".*configs/singkit.yaml:\d+:\d+: base image \S+/singkit-test/absent:1 is not in registry "
                        r"\S+; push it there or fix `image:`\n", proc.stderr)


def test_engine_unreachable_is_exit_4(tmp_path, registry, standins):
    write_project(tmp_path, project_yaml(registry_host=registry.host, standins=standins, wrapped="wrapped/noengine:1"))
    env = environ(tmp_path, f"unix://{tmp_path}/no-such.sock")
    # render needs no engine ...
    proc = run_cli(tmp_path, env, "image.render", "--docker=tiny")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("dockerfiles/tiny.Dockerfile")
    # ... a build does
    proc = run_cli(tmp_path, env, "image.wrap", "--docker=tiny")
    assert proc.returncode == 4
    assert proc.stderr.splitlines()[-1] + "\n" == f"error: Docker Engine not reachable at unix://{tmp_path}/no-such.sock (no such file or directory); start dockerd or set DOCKER_HOST\n"


def test_registry_unreachable_is_exit_4(tmp_path, docker_host, standins):
    port = services.free_port()
    write_project(tmp_path, project_yaml(registry_host=f"127.0.0.1:{port}", standins=standins, wrapped="x/y:1"))
    proc = run_cli(tmp_path, environ(tmp_path, docker_host), "image.wrap", "--docker=tiny")
    assert proc.returncode == 4
    assert proc.stderr == (f"error: registry 127.0.0.1:{port} is unreachable (Connection refused); "
                           "check that it runs and that login-server is right\n")


# -- a registry behind htpasswd -------------------------------------------------------------------

@pytest.fixture(scope="module")
def auth_base(docker_client, busybox_image, auth_registry):
    return docker_services.push_image(docker_client, busybox_image.id, auth_registry, "singkit-test/busybox", "1")


def test_auth_registry_right_credentials_push(tmp_path, docker_host, auth_registry, auth_base, standins):
    config = write_project(tmp_path, project_yaml(registry_host=auth_registry.host, standins=standins,
                                                  wrapped="private/wrapped:1", username=auth_registry.username))
    proc = run_cli(tmp_path, environ(tmp_path, docker_host, TEST_REGISTRY_PASSWORD=auth_registry.password),
                   "image.wrap", "--docker=tiny")
    assert proc.returncode == 0, proc.stderr
    digest = auth_registry.manifest_digest("private/wrapped", "1")
    assert proc.stdout == f"{auth_registry.host}/private/wrapped@{digest}\n"
    assert f"sha256: {digest}" in config.read_text()
    assert auth_registry.password not in proc.stdout + proc.stderr + config.read_text()
    assert auth_registry.password not in (tmp_path / "dockerfiles" / "tiny.Dockerfile").read_text()
    assert auth_registry.password not in (tmp_path / ".singkit" / "events.jsonl").read_text()


def test_auth_registry_wrong_credentials_fail_in_one_line(tmp_path, docker_host, auth_registry, auth_base, standins):
    config = write_project(tmp_path, project_yaml(registry_host=auth_registry.host, standins=standins,
                                                  wrapped="private/wrong:1", username=auth_registry.username))
    before = config.read_text()
    wrong = "wrong-" + auth_registry.password
    proc = run_cli(tmp_path, environ(tmp_path, docker_host, TEST_REGISTRY_PASSWORD=wrong), "image.wrap", "--docker=tiny")
    assert proc.returncode == 4
    assert proc.stderr == (f"error: registry {auth_registry.host} refused the credentials of external-services.loop "
                           f"(username {auth_registry.username}, password from $TEST_REGISTRY_PASSWORD) for "
                           f"singkit-test/busybox; check the username and password\n")
    assert proc.stdout == ""
    assert config.read_text() == before
    assert auth_registry.password not in proc.stderr and wrong not in proc.stderr


def test_push_with_wrong_credentials_is_refused(tmp_path, docker_host, auth_registry, auth_base, standins):
    # Past the registry checks (right password), then the push itself with a wrong one.
    write_project(tmp_path, project_yaml(registry_host=auth_registry.host, standins=standins,
                                         wrapped="private/push-refused:1", username=auth_registry.username))
    from singkit.images import build, plan, push

    right = images_env(tmp_path, docker_host, TEST_REGISTRY_PASSWORD=auth_registry.password)
    cfg = load_config(right)
    rendered = plan(right, cfg, "tiny")
    build(right, cfg, "tiny", rendered=rendered)
    wrong = images_env(tmp_path, docker_host, TEST_REGISTRY_PASSWORD="not-" + auth_registry.password)
    with pytest.raises(ServiceError) as caught:
        push(wrong, cfg, "tiny", rendered=rendered)
    assert str(caught.value) == (f"registry {auth_registry.host} refused the credentials of external-services.loop "
                                 f"(username {auth_registry.username}, password from $TEST_REGISTRY_PASSWORD) "
                                 f"pushing {Reference.parse(auth_registry.host + '/private/push-refused:1').tagged}; check them")
    assert auth_registry.manifest_digest("private/push-refused", "1") is None


def test_validate_or_push_before_build_is_a_usage_error(tmp_path, docker_host, registry, standins):
    write_project(tmp_path, project_yaml(registry_host=registry.host, standins=standins, wrapped="wrapped/unbuilt:1"))
    env = environ(tmp_path, docker_host)
    for task in ("validate", "push"):
        proc = run_cli(tmp_path, env, f"image.{task}", "--docker=tiny")
        assert proc.returncode == 2, (task, proc.stderr)
        assert proc.stderr == f"error: no local image {registry.host}/wrapped/unbuilt:1; run `singkit image.build --docker=tiny` first\n"  # (as typed: `singkit`)
