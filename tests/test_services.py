"""Sanity checks that each real-service fixture works (and that a missing one skips/fails)."""

from __future__ import annotations

import io
import json
import urllib.request
from pathlib import Path

import pytest

import docker_services
import services


def test_require_service_skips_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SINGKIT_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"bash \.ci/services\.sh"):
        services.require_service("thing", "not installed")


def test_require_service_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SINGKIT_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="thing unavailable: not installed"):
        services.require_service("thing", "not installed")


def test_docker_engine_answers(docker_client) -> None:
    assert docker_client.ping()
    assert docker_client.version()["ApiVersion"]


def test_busybox_image_runs_applets(docker_client, busybox_image) -> None:
    out = docker_client.containers.run(
        busybox_image.ref,
        ["sh", "-c", "echo hi > /tmp/f && cat /tmp/f && test -x /usr/bin/env && "
                     "ls /bin | grep -c . && printf '%s\\n' \"$PATH\""],
        network_mode="none", labels=services.TEST_LABELS, remove=True).decode()
    lines = out.split()
    assert lines[0] == "hi"
    assert int(lines[1]) > 50
    assert "/usr/bin" in lines[2]


def test_busybox_image_builds_multistage(docker_client, busybox_image) -> None:
    dockerfile = (
        f"FROM {busybox_image} AS first\n"
        "RUN mkdir /out && echo built > /out/x\n"
        f"FROM {busybox_image}\n"
        "ENV GREETING=hello\n"
        "COPY --from=first /out/x /x\n"
        'CMD ["sh", "-c", "cat /x; echo $GREETING"]\n')
    image, _ = docker_client.images.build(
        fileobj=io.BytesIO(dockerfile.encode()), tag="singkit-test/multistage:1", rm=True,
        forcerm=True, labels=services.TEST_LABELS)
    assert image.labels.get(services.TEST_LABEL) == "1"
    out = docker_client.containers.run(image.id, network_mode="none",
                                       labels=services.TEST_LABELS, remove=True).decode()
    assert out.split() == ["built", "hello"]


def test_registry_push_pull_digest(docker_client, registry, registry_busybox) -> None:
    assert registry_busybox.digest.startswith("sha256:")
    # The registry's own answer, the SDK's registry view and the push stream agree.
    assert registry.manifest_digest("singkit-test/busybox", "1") == registry_busybox.digest
    assert docker_client.images.get_registry_data(registry_busybox.ref).id == \
        registry_busybox.digest
    assert registry.tags("singkit-test/busybox") == ["1"]
    assert registry.manifest_digest("singkit-test/absent", "1") is None
    # Pull by digest after dropping the local tag (of a copy: registry_busybox is shared).
    copy = docker_services.push_image(docker_client, registry_busybox.ref, registry,
                                      "singkit-test/pull-check", "1")
    assert copy.digest == registry_busybox.digest  # same content, same manifest digest
    docker_client.images.remove(copy.ref)
    pulled = docker_client.images.pull(copy.pinned)
    assert copy.pinned in pulled.attrs["RepoDigests"]


def test_auth_registry_refuses_wrong_password(docker_client, busybox_image,
                                              auth_registry) -> None:
    assert auth_registry.username and auth_registry.password
    base = auth_registry.url + "/v2/"
    assert services.http_status(base) == 401
    wrong = services.Registry(auth_registry.host, auth_registry.root_dir,
                              auth_registry.log_path, auth_registry.username, "wrong")
    assert wrong.get("/v2/")[0] == 401
    assert auth_registry.get("/v2/")[0] == 200
    with pytest.raises(RuntimeError, match="(?i)auth"):
        docker_services.push_image(docker_client, busybox_image.ref, wrong, "private/busybox", "1")
    pushed = docker_services.push_image(docker_client, busybox_image.ref, auth_registry,
                                 "private/busybox", "1")
    assert auth_registry.manifest_digest("private/busybox", "1") == pushed.digest


def test_azurite_blob_roundtrip(azurite, azurite_container) -> None:
    from azure.storage.blob import ContainerClient

    data = b"0123456789" * 1000
    azurite_container.upload_blob("dir/a.bin", data, metadata={"k": "v"})
    names = [b.name for b in azurite_container.list_blobs(name_starts_with="dir/")]
    assert names == ["dir/a.bin"]
    blob = azurite_container.get_blob_client("dir/a.bin")
    assert blob.download_blob().readall() == data
    assert blob.download_blob(offset=10, length=5).readall() == b"01234"
    assert blob.get_blob_properties().metadata == {"k": "v"}
    # A container SAS URL (what a code upload is handed) works on its own.
    sas_client = ContainerClient.from_container_url(
        azurite.container_sas_url(azurite_container.container_name))
    sas_client.upload_blob("via-sas.txt", b"sas")
    assert azurite_container.download_blob("via-sas.txt").readall() == b"sas"


def test_azurite_connection_string_shape(azurite) -> None:
    assert azurite.account_url == f"http://{azurite.host}/devstoreaccount1"
    assert f"BlobEndpoint={azurite.account_url};" in azurite.connection_string


def test_chromium_renders_page(chromium, tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text("<html><body><h1 id=t>static</h1>"
                    "<script>document.getElementById('t').textContent = 'from-js'</script>"
                    "</body></html>")
    assert "from-js" in chromium.dump_dom(page.as_uri())
    png = chromium.screenshot(page.as_uri(), tmp_path / "shot.png", 400, 300)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fixture_servers_listen_on_loopback_only(registry, azurite) -> None:
    for host in (registry.host, azurite.host):
        assert host.startswith("127.0.0.1:")
    with urllib.request.urlopen(registry.url + "/v2/_catalog", timeout=5) as resp:
        assert "repositories" in json.loads(resp.read())
