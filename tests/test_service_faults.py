"""Services that fail or hang (issues 15 and 16): the Docker Engine lost mid-build, a registry
that answers 429, an HTML page or nothing at all — each one line and exit 4, in bounded time.

Faults are injected at the real boundary (tests/faultnet.py): a relay in front of the real
engine that is killed, a tiny HTTP server with canned answers, a port that never answers.
"""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

import services
from faultnet import Canned, Relay, Silent
from images_helpers import environ, make_standins, project_yaml, write_project

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def standins(docker_client, busybox_image, registry, registry_busybox):
    return make_standins(docker_client, busybox_image.id, registry)


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
    proc = start_cli(tmp_path, environ(tmp_path, relay.url), "image.wrap", "--docker=tiny")
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
                              env=environ(tmp_path, f"tcp://{mute.host}", SINGKIT_HTTP_TIMEOUT="1"),
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
