"""Services that fail or hang (issues 15 and 16): the Docker Engine lost mid-build, a registry
that answers 429, an HTML page or nothing at all — each one line and exit 4, in bounded time.

Faults are injected at the real boundary (tests/faultnet.py): a relay in front of the real
engine that is killed, a tiny HTTP server with canned answers, a port that never answers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid

import pytest

import services
from faultnet import Canned, Relay, Silent
from images_helpers import StandIns, environ, make_standins, project_yaml, write_project

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def standins(docker_client, busybox_image, registry, registry_busybox):
    return make_standins(docker_client, busybox_image.id, registry)


def cli_env(root, docker_host: str, **extra: str) -> dict[str, str]:
    """images_helpers.environ, plus PYTHONPATH when set (to run these against another checkout)."""
    env = environ(root, docker_host, **extra)
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def start_cli(root, env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "singkit", *args], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# -- the Docker Engine --------------------------------------------------------------------------

def test_engine_lost_mid_build_is_one_line_exit_4(tmp_path, docker_host, registry, standins):
    """A relay in front of the engine dies while a RUN step runs: the build stream breaks with
    urllib3's ProtocolError — an engine outage (exit 4, naming the engine), not an internal error."""
    step = f"RUN echo {uuid.uuid4().hex} && sleep 5"  # unique: never a cache hit
    write_project(tmp_path, project_yaml(registry_host=registry.host, standins=standins,
                                         wrapped="wrapped/lost-engine:1", post_steps=[step]))
    relay = Relay(docker_host if docker_host.startswith(("unix://", "tcp://")) else "unix://" + docker_host)
    proc = start_cli(tmp_path, cli_env(tmp_path, relay.url), "image.wrap", "--docker=tiny")
    try:
        assert relay.wait_for(b"/build", timeout=120), "the build never started"
        relay.wait_for(b"never sent", timeout=2)  # let the build get going
        relay.kill()
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 4, err
    last = err.splitlines()[-1]
    assert last.startswith(f"error: lost the Docker Engine at {relay.url} ("), err
    assert "internal error" not in err and "Traceback" not in err


def test_engine_that_never_answers_is_bounded(tmp_path, registry, standins):
    """An engine socket that accepts and never answers: exit 4 after SINGKIT_HTTP_TIMEOUT, not an hour."""
    write_project(tmp_path, project_yaml(registry_host=registry.host, standins=standins, wrapped="wrapped/mute:1"))
    mute = Silent()
    try:
        proc = subprocess.run([sys.executable, "-m", "singkit", "image.build", "--docker=tiny"], cwd=tmp_path,
                              env=cli_env(tmp_path, f"tcp://{mute.host}", SINGKIT_HTTP_TIMEOUT="1"),
                              capture_output=True, text=True, timeout=60)
    finally:
        mute.stop()
    assert proc.returncode == 4, proc.stderr
    assert proc.stderr.splitlines()[-1].startswith(f"error: Docker Engine not reachable at tcp://{mute.host} ("), proc.stderr


def test_an_unwrapped_connection_fault_reaching_the_edge_is_exit_4(tmp_path):
    """A service call that no library code wrapped still ends as an outage (exit 4), one line."""
    import io

    import requests

    from singkit.environment import Environment
    from singkit.tasks._edge import describe

    port = services.free_port()
    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        requests.get(f"http://127.0.0.1:{port}/v2/?secret=x", timeout=5)
    env = Environment(project_root=tmp_path, environ={}, stdout=io.StringIO(), stderr=io.StringIO())
    message, code = describe(caught.value, env)
    assert code == 4 and "\n" not in message
    assert message.startswith(f"error: connection to http://127.0.0.1:{port}/v2/ failed: "), message
    assert "secret" not in message  # a query string may hold a SAS signature


# -- a registry that answers wrongly, or not at all ------------------------------------------------

HTML = {"Content-Type": "text/html; charset=utf-8"}


def registry_project(tmp_path, host: str):
    """A wrap whose base, installer and validator all live on `host` (the faulty registry)."""
    fake = StandIns(f"{host}/stand-in/installer:1", f"{host}/stand-in/broken:1", f"{host}/stand-in/validator:1")
    write_project(tmp_path, project_yaml(registry_host=host, standins=fake, wrapped="wrapped/x:1",
                                         base_image=f"{host}/singkit-test/busybox:1"))


def wrap_against(tmp_path, host: str, **extra: str) -> subprocess.CompletedProcess:
    registry_project(tmp_path, host)
    return subprocess.run([sys.executable, "-m", "singkit", "image.wrap", "--docker=tiny"], cwd=tmp_path,
                          env=cli_env(tmp_path, "unix:///nonexistent.sock", **extra), capture_output=True, text=True,
                          timeout=120)


def test_registry_answering_429_is_retried_after_retry_after_then_exit_4(tmp_path):
    busy = Canned((429, {"Retry-After": "1"}, b'{"errors": [{"code": "TOOMANYREQUESTS"}]}'))
    try:
        proc = wrap_against(tmp_path, busy.host)
    finally:
        busy.stop()
    assert proc.returncode == 4, proc.stderr
    assert len(busy.requests) == 3, busy.requests  # the first try and two retries, no more
    assert re.fullmatch(rf"error: registry {busy.host} answered 429 \(too many requests\) to (GET|HEAD) /v2/\S+ 3 times; "
                        r"try again later\n", proc.stderr), proc.stderr


def test_registry_asking_to_wait_an_hour_is_an_outage_at_once(tmp_path):
    busy = Canned((503, {"Retry-After": "3600"}, b""))
    try:
        proc = wrap_against(tmp_path, busy.host)
    finally:
        busy.stop()
    assert proc.returncode == 4, proc.stderr
    assert len(busy.requests) == 1, busy.requests
    assert proc.stderr.endswith("; it asks to wait 3600 s; try again later\n") and "\n" not in proc.stderr[:-1], proc.stderr


def test_429_twice_then_an_answer_is_the_answer():
    from singkit.imageref import Reference
    from singkit.images.registry import RegistryClient

    busy = Canned((429, {"Retry-After": "0"}, b""), (429, {}, b""),
                  (200, {"Content-Type": "application/json"}, b'{"name": "a/b", "tags": ["1", "2"]}'))
    try:
        assert RegistryClient(busy.host).tags(Reference.parse(f"{busy.host}/a/b:1")) == ["1", "2"]
    finally:
        busy.stop()
    assert len(busy.requests) == 3


@pytest.mark.parametrize("status", [200, 404])
def test_a_web_page_at_login_server_is_not_a_registry(tmp_path, status):
    """A portal or login page answering 200 (or 404) with HTML: exit 4, `not a registry v2 API at …`."""
    page = Canned((status, HTML, b"<html><body>Sign in to continue</body></html>"))
    try:
        proc = wrap_against(tmp_path, page.host)
    finally:
        page.stop()
    assert proc.returncode == 4, proc.stderr
    assert proc.stderr.startswith(f"error: not a registry v2 API at http://{page.host}: it answered ")
    assert proc.stderr.endswith("check login-server (a proxy or login page may be answering)\n")
    assert proc.stderr.count("\n") == 1


def test_a_200_that_is_not_json_is_not_a_registry(tmp_path):
    page = Canned((200, {"Content-Type": "text/plain"}, b"hello"))
    try:
        proc = wrap_against(tmp_path, page.host)
    finally:
        page.stop()
    assert proc.returncode == 4, proc.stderr
    assert proc.stderr.startswith(f"error: not a registry v2 API at http://{page.host}: it answered "), proc.stderr


def test_registry_that_never_answers_is_bounded(tmp_path):
    mute = Silent()
    try:
        proc = wrap_against(tmp_path, mute.host, SINGKIT_HTTP_TIMEOUT="1")
    finally:
        mute.stop()
    assert proc.returncode == 4, proc.stderr
    assert re.fullmatch(rf"error: registry {mute.host} did not answer (GET|HEAD) /v2/\S+ within 1 s \(3 tries\); "
                        r"check that it runs \(SINGKIT_HTTP_TIMEOUT sets the wait\)\n", proc.stderr), proc.stderr
    assert mute.accepted == 3


def test_a_bad_timeout_setting_is_a_usage_error(tmp_path):
    proc = wrap_against(tmp_path, "127.0.0.1:9", SINGKIT_HTTP_TIMEOUT="soon")
    assert proc.returncode == 2
    assert proc.stderr == "error: SINGKIT_HTTP_TIMEOUT=soon is not a number of seconds between 0 and 3600; e.g. SINGKIT_HTTP_TIMEOUT=60\n"


@pytest.mark.parametrize("answer, said", [
    ((429, {"Retry-After": "0", "Content-Type": "application/json"},
      b'{"errors": [{"code": "TOOMANYREQUESTS", "message": "slow down"}]}'), "429 (too many requests)"),
    ((200, HTML, b"<html>Sign in</html>"), "not a registry v2 API at"),
], ids=["429", "html"])
def test_an_engine_push_to_a_faulty_registry_is_exit_4(tmp_path, docker_client, docker_host, busybox_image, answer, said):
    """The engine pushes, and says in its own words what the registry answered: still exit 4."""
    faulty = Canned(answer)
    registry_project(tmp_path, faulty.host)
    tag = f"{faulty.host}/wrapped/x"
    import docker

    try:
        image = docker_client.images.get(busybox_image.id)
    except docker.errors.ImageNotFound:  # another test session re-imported the shared busybox
        image = docker_client.images.get(busybox_image.ref)
    image.tag(tag, "1")
    try:
        proc = subprocess.run([sys.executable, "-m", "singkit", "image.push", "--docker=tiny"], cwd=tmp_path,
                              env=cli_env(tmp_path, docker_host), capture_output=True, text=True, timeout=120)
    finally:
        faulty.stop()
        docker_client.images.remove(f"{tag}:1", noprune=True)
    assert proc.returncode == 4, proc.stderr
    assert said in proc.stderr.splitlines()[-1], proc.stderr


def test_the_engines_words_for_a_throttling_registry_are_an_outage():
    """Mid-push or mid-pull the engine reports the registry's 429/5xx in its own words."""
    from singkit.images.engine import pull_error
    from singkit.images.push import push_error
    from singkit.images.registry import Credentials
    from singkit.imageref import Reference

    ref = Reference.parse("127.0.0.1:5000/a/b:1")
    for error in (push_error(ref, Credentials(), "toomanyrequests: retry-after: 1.2s, allowed: 10/minute"),
                  pull_error(ref, "base", Credentials(), "received unexpected HTTP status: 503 Service Unavailable")):
        assert error.exit_code == 4 and "try again later" in str(error), error
