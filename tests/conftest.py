"""Shared pytest fixtures. Real-service fixtures are built on tests/services.py
(require_service, registry, Azurite, Chromium) and tests/docker_services.py (engine, images).

A test that needs a service just asks for its fixture; with the service missing the test
skips (or fails under SINGKIT_REQUIRE_SERVICES=1), and the skips are said in one summary line
(tests/skipsummary.py). See tests/services.py for the classes.
"""

from __future__ import annotations

import os
import secrets
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

# `import services` must work whatever import mode pytest is configured with.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import docker_services  # noqa: E402
import services  # noqa: E402
from skipsummary import pytest_terminal_summary  # noqa: E402,F401  (service skips: one summary line)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """docker.DockerClient to the local engine (pinged). Create containers and images with
    labels=services.TEST_LABELS: this session's are removed when it ends, and leftovers of
    sessions that died are removed when the next one starts."""
    client = docker_services.docker_connect()
    docker_services.docker_cleanup(client, leftovers=True)
    yield client
    docker_services.docker_cleanup(client)
    client.close()


@pytest.fixture(scope="session")
def docker_host(docker_client: Any) -> str:
    """The engine's address as a DOCKER_HOST value, for a test Environment's environ."""
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


@pytest.fixture(scope="session")
def busybox_image(docker_client: Any) -> docker_services.BaseImage:
    """Local base image `singkit-test/busybox:1-<session>` (.ref, .id; str() is the ref) made from the
    host's static busybox with every applet linked; labelled singkit.test=1, so images built
    FROM it inherit the label and are cleaned up too. No network inside: run containers with
    network_mode="none"."""
    return docker_services.build_busybox_image(docker_client)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Registry]:
    """Open registry v2 on 127.0.0.1:<free port>: .host, .url, .ref(repo, tag),
    .manifest_digest(repo, tag), .tags(repo); .auth_config is None."""
    reg = services.start_registry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Registry]:
    """Registry v2 behind htpasswd basic auth: like `registry`, plus .username, .password and
    .auth_config ({"username", "password"} for the docker SDK)."""
    creds = ("singkit", "pw-" + secrets.token_urlsafe(12))
    reg = services.start_registry(tmp_path_factory.mktemp("auth-registry"), credentials=creds)
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def registry_busybox(docker_client: Any, busybox_image: docker_services.BaseImage,
                     registry: services.Registry) -> docker_services.PushedImage:
    """busybox_image pushed to `registry` as singkit-test/busybox:1:
    .ref, .digest ("sha256:..."), .pinned ("HOST/singkit-test/busybox@sha256:...").
    Use it where a base image must be pinnable by digest."""
    return docker_services.push_image(docker_client, busybox_image.ref, registry,
                               "singkit-test/busybox", "1")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Azurite]:
    """azurite-blob on 127.0.0.1:<free port>, in memory: .host, .account_name, .account_key,
    .account_url, .connection_string, .service_client(), .container_sas_url(container)."""
    az = services.start_azurite(tmp_path_factory.mktemp("azurite"))
    yield az
    az.stop()


@pytest.fixture
def azurite_container(azurite: services.Azurite) -> Iterator[Any]:
    """A fresh, uniquely named blob container (azure ContainerClient); deleted afterwards."""
    client = azurite.service_client()
    container = client.create_container(f"test-{uuid.uuid4().hex[:12]}")
    yield container
    try:
        container.delete_container()
    finally:
        client.close()


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> services.Chromium:
    """Headless Chromium: .path, .args(), .run(*flags), .screenshot(url, png), .dump_dom(url)."""
    return services.find_chromium(tmp_path_factory.mktemp("chromium"))

from azureml_standin.fixtures import azureml_standin  # noqa: E402,F401  (the Azure ML REST stand-in)


@pytest.fixture
def world(tmp_path: Path, azureml_standin: Any, azurite: services.Azurite) -> Iterator[tuple[Any, services.Azurite, Path]]:  # noqa: F811
    """(stand-in, azurite, root): the Azure ML stand-in, Azurite with the store mirror's container
    (emptied afterwards), and a Singularity project at root (singtools.project; its Environment:
    singtools.sing_env(root, si, azurite))."""
    import singtools

    azurite.service_client().create_container(singtools.STORE_CONTAINER)
    root = singtools.project(tmp_path, azureml_standin, azurite)
    yield azureml_standin, azurite, root
    azurite.service_client().delete_container(singtools.STORE_CONTAINER)
