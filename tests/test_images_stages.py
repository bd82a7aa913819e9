"""The installer and validator a wrap uses: the newest dated tag of each repository, resolved
through a real loopback Registry v2's tags list, recorded in the image's labels and inputs hash;
a tag pinned in the config wins."""

from __future__ import annotations

import uuid

import pytest

import docker_services
from images_helpers import StandIns, environ, images_env, make_standins, project_yaml, run_cli, write_project
from singkit.config import load_config, schema
from singkit.images import plan, wrap
from singkit.images.registry import RegistryClient, newest_dated
from singkit.images.render import INPUTS_LABEL, STAGE_LABELS
from singkit.imageref import Reference

OLD, NEWEST, MIDDLE = "20220218T112740648", "20240105T101010123", "20231231T235959999"


def test_newest_dated_orders_by_date_time_and_milliseconds():
    assert newest_dated([OLD, "latest", NEWEST, MIDDLE, "v9", "2025"]) == NEWEST
    # fewer millisecond digits are read as a shorter fraction, not a smaller number
    assert newest_dated(["20240105T1010101", "20240105T101010099"]) == "20240105T1010101"
    assert newest_dated(["20240105T101010", "20240105T101010001"]) == "20240105T101010001"
    assert newest_dated(["latest", "1.0"]) is None and newest_dated([]) is None


def test_defaults_name_repositories_not_2022_tags():
    for value in (schema.DEFAULT_INSTALLER, schema.DEFAULT_VALIDATOR):
        ref = Reference.parse(value)
        assert ref.host == "singularitybase.azurecr.io" and ref.tag is None and ref.digest is None


@pytest.fixture(scope="module")
def stages(docker_client, busybox_image, registry, registry_busybox):
    """Stand-in installer and validator repositories holding several dated tags (and others)."""
    made = make_standins(docker_client, busybox_image.id, registry)
    repo = f"stages-{uuid.uuid4().hex[:8]}"
    for source, name in ((made.installer, "installer"), (made.validator, "validator")):
        for tag in (OLD, MIDDLE, NEWEST, "latest", "v9"):
            docker_services.push_image(docker_client, source, registry, f"{repo}/{name}", tag)
    return made, f"{registry.host}/{repo}"


def test_tags_list_of_the_real_registry(registry, stages):
    _, base = stages
    client = RegistryClient(registry.host)
    assert sorted(client.tags(Reference.parse(f"{base}/installer"))) == sorted([OLD, MIDDLE, NEWEST, "latest", "v9"])
    assert client.tags(Reference.parse(f"{registry.host}/no-such/repo")) == []


def test_tags_list_follows_link_pages():
    """distribution 2.8 (the loopback registry) answers the whole list at once; ACR and
    distribution 3 page it: `?n=&last=` and `Link: </v2/<name>/tags/list?n=2&last=b>; rel="next"`
    (distribution spec, "Listing Tags"). A loopback server paging the same way."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlsplit

    every = sorted([OLD, MIDDLE, NEWEST, "latest", "v9"])
    asked = []

    class Pages(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            asked.append(query)
            n, last = int(query.get("n", 100)), query.get("last", "")
            page = [t for t in every if t > last][:n]
            body = json.dumps({"name": "stages/installer", "tags": page}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if page and page[-1] != every[-1]:
                self.send_header("Link", f'</v2/stages/installer/tags/list?n={n}&last={page[-1]}>; rel="next"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host = f"127.0.0.1:{server.server_address[1]}"
        assert RegistryClient(host).tags(Reference.parse(f"{host}/stages/installer"), page=2) == every
        assert [q.get("last") for q in asked] == [None, every[1], every[3]]
    finally:
        server.shutdown()


def test_wrap_uses_the_newest_dated_tags_and_records_them(tmp_path, docker_client, docker_host, registry, stages):
    made, base = stages
    untagged = StandIns(installer=f"{base}/installer", broken_installer=made.broken_installer, validator=f"{base}/validator")
    wrapped = f"{registry.host}/stages-wrapped-{uuid.uuid4().hex[:6]}/main:1"
    # AMD: its own build cache, so test_images_wrap still sees its CPU build run the installer
    config = write_project(tmp_path, project_yaml(registry_host=registry.host, standins=untagged, wrapped=wrapped)
                           .replace("accelerator: CPU", "accelerator: AMD"))

    env = images_env(tmp_path, docker_host)
    result = wrap(env, load_config(env), "tiny")
    said = env.stderr.getvalue()
    assert result.status == "wrapped"
    for name in ("installer", "validator"):
        assert f"{name}: {base}/{name}:{NEWEST} (the newest of 5 tag(s)" in said
        assert said.count(f"{name}: ") == 1  # said once, though the wrap plans twice
    dockerfile = (tmp_path / "dockerfiles" / "tiny.Dockerfile").read_text()
    assert f"FROM {base}/installer:{NEWEST} AS installer\n" in dockerfile
    assert f"FROM {base}/validator:{NEWEST} AS validator\n" in dockerfile
    labels = docker_client.images.get(Reference.parse(wrapped).tagged).labels
    assert labels[STAGE_LABELS["installer-image"]] == f"{base}/installer:{NEWEST}"
    assert labels[STAGE_LABELS["validator-image"]] == f"{base}/validator:{NEWEST}"
    first_hash = labels[INPUTS_LABEL]

    # a newer installer build appears: the inputs hash changes, so the next wrap rebuilds with it
    newer = "20250101T000000000"
    docker_services.push_image(docker_client, made.installer, registry, f"{base.split('/', 1)[1]}/installer", newer)
    env = images_env(tmp_path, docker_host)
    again = wrap(env, load_config(env), "tiny")
    assert again.status == "wrapped" and "inputs changed" in env.stderr.getvalue()
    assert again.inputs_hash != first_hash
    labels = docker_client.images.get(Reference.parse(wrapped).tagged).labels
    assert labels[STAGE_LABELS["installer-image"]] == f"{base}/installer:{newer}"

    # a tag pinned in the config wins over the newest one
    config.write_text(config.read_text().replace(f"installer-image: {base}/installer\n",
                                                 f"installer-image: {base}/installer:{OLD}\n"))
    env = images_env(tmp_path, docker_host)
    pinned = plan(env, load_config(env), "tiny")
    assert pinned.installer == f"{base}/installer:{OLD}" and pinned.validator == f"{base}/validator:{NEWEST}"
    assert "installer: " not in env.stderr.getvalue()  # nothing resolved, nothing to say
    assert f"FROM {base}/installer:{OLD} AS installer\n" in pinned.text


def test_a_repository_without_dated_tags_is_a_located_error(tmp_path, docker_client, docker_host, registry, stages):
    made, base = stages
    repo = f"{base.split('/', 1)[1]}/undated"
    docker_services.push_image(docker_client, made.installer, registry, repo, "latest")
    standins = StandIns(installer=f"{registry.host}/{repo}", broken_installer=made.broken_installer, validator=made.validator)
    config = write_project(tmp_path, project_yaml(registry_host=registry.host, standins=standins,
                                                  wrapped=f"{registry.host}/never/built:1"))
    done = run_cli(tmp_path, environ(tmp_path, docker_host), "image.render", "--docker=tiny")
    assert done.returncode == 2, done.stderr
    line = next(i for i, text in enumerate(config.read_text().splitlines(), 1) if "installer-image:" in text)
    assert done.stderr.strip().splitlines()[-1].startswith(f"configs/singkit.yaml:{line}:")
    assert "has no dated tag such as 20220218T112740648 (its tags: latest)" in done.stderr
    assert "Traceback" not in done.stderr
