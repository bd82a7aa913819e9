"""Can the job pull its image? Checked before anything is queued, with the real azure-ai-ml
MLClient against the loopback stand-in: the workspace's own ACR, a container registry
connection, the job identity declared to hold AcrPull — or a refusal naming the fixes, or the
connection created with --create-registry-connection (its password never shown or stored)."""

from __future__ import annotations

import re

import pytest
from singtools import assert_no_secret, only_job, sing_env

from singkit.backends.singularity.preflight import connection_name
from singkit.exceptions import ConfigError
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit
from singkit.store import Store

SECRET = "reg-pw-5f1c9e-never-shown"
HOST = "private.azurecr.io"


def use_registry(root, login_server: str, extra: str = "") -> None:
    """Point the project's registry record `acr` at another registry (the image stays pinned)."""
    config = root / "configs" / "singkit.yaml"
    config.write_text(config.read_text().replace("    login-server: singkit.azurecr.io\n",
                                                 f"    login-server: {login_server}\n{extra}"))


def connection_calls(si) -> list:
    return [r for r in si.state.request_log if "/connections" in r.path]


def test_the_workspace_acr_passes_without_asking_for_connections(world):
    si, azurite, root = world  # the stand-in's workspace ACR is `singkit`: singkit.azurecr.io
    env = sing_env(root, si, azurite)
    submit(env, SubmitRequest(target="sing", command="python train.py"))
    assert only_job(si) and connection_calls(si) == []
    si.container_registry = None  # the same image, a workspace without that ACR: refused
    with pytest.raises(ConfigError) as caught:
        submit(sing_env(root, si, azurite), SubmitRequest(target="sing", command="python train.py"))
    assert "cannot pull singkit.azurecr.io (it has no registry of its own yet)" in str(caught.value)


def test_a_connection_for_the_registry_passes(world):
    si, azurite, root = world
    use_registry(root, HOST)
    si.connections["acr-conn"] = {"name": "acr-conn", "id": f"{si.workspace_id}/connections/acr-conn",
                                  "type": "Microsoft.MachineLearningServices/workspaces/connections",
                                  "properties": {"category": "ContainerRegistry", "authType": "UsernamePassword",
                                                 "target": f"https://{HOST}/"}}
    env = sing_env(root, si, azurite)
    submit(env, SubmitRequest(target="sing", command="python train.py"))
    assert only_job(si)
    [listed] = connection_calls(si)
    # what azure-ai-ml 1.35.2 sends for connections.list(connection_type="container_registry")
    assert listed.method == "GET" and listed.query["category"] == "ContainerRegistry"
    assert listed.query["api-version"] == "2024-04-01-preview"


def test_a_connection_for_another_registry_does_not_count(world):
    si, azurite, root = world
    use_registry(root, HOST)
    si.connections["other"] = {"name": "other", "properties": {"category": "ContainerRegistry", "authType": "None",
                                                               "target": "https://other.azurecr.io"}}
    with pytest.raises(ConfigError):
        submit(sing_env(root, si, azurite), SubmitRequest(target="sing", command="python train.py"))


def test_the_job_identity_declared_to_pull_passes_and_is_said_unchecked(world):
    si, azurite, root = world
    use_registry(root, HOST, "    pull: identity\n")
    with pytest.raises(ConfigError) as caught:  # no identity to pull with
        submit(sing_env(root, si, azurite), SubmitRequest(target="sing", command="python train.py"))
    assert "says `pull: identity`, but workspace record" in str(caught.value)
    arm = si.add_user_identity("puller", "11111111-2222-4333-8444-555555555555")
    config = root / "configs" / "singkit.yaml"
    config.write_text(config.read_text().replace("    resource-group: singkit-rg\n  singkit-vc:",
                                                 f"    resource-group: singkit-rg\n    user-identity-id: {arm}\n  singkit-vc:"))
    env = sing_env(root, si, azurite)
    submit(env, SubmitRequest(target="sing", command="python train.py"))
    assert only_job(si)
    assert f"note: {HOST} is pulled with the job's identity puller; singkit cannot check it holds AcrPull" in env.stderr.getvalue()


def test_no_way_to_pull_is_refused_with_the_commands_that_fix_it(world):
    si, azurite, root = world
    use_registry(root, HOST, "    username: puller\n    password: $env:TEST_REG_PASSWORD\n")
    env = sing_env(root, si, azurite, TEST_REG_PASSWORD=SECRET)
    with pytest.raises(ConfigError) as caught:
        submit(env, SubmitRequest(target="sing", command="python train.py"))
    message = str(caught.value)
    assert caught.value.exit_code == 2 and len(message.splitlines()) == 1
    config = (root / "configs" / "singkit.yaml").read_text().splitlines()
    line = next(i for i, text in enumerate(config, 1) if text.strip() == "registry: acr")
    assert re.match(rf"^\S*singkit\.yaml:{line}:\d+: Azure ML workspace {si.workspace} cannot pull {HOST} "
                    r"\(its own registry is singkit\): no container registry connection targets it", message)
    assert "invoke job.submit --target=sing --create-registry-connection" in message
    assert (f"`az ml connection create --file conn.yml --set credentials.password=<password> -g {si.resource_group} "
            f"-w {si.workspace}` with conn.yml holding `name: singkit-acr`, `type: container_registry`, "
            f"`target: https://{HOST}`, `credentials: {{type: username_password, username: puller}}`") in message
    assert ("`az role assignment create --role AcrPull --assignee <principal id of <the job's identity>> --scope "
            "$(az acr show --name private --query id -o tsv)`, then `pull: identity`") in message
    assert SECRET not in message
    assert si.jobs == {} and Store.of(env).job_ids() == [] and si.connections == {}


def test_create_registry_connection_creates_it_and_keeps_the_password_out_of_everything(world):
    si, azurite, root = world
    use_registry(root, HOST, "    username: puller\n    password: $env:TEST_REG_PASSWORD\n")
    env = sing_env(root, si, azurite, TEST_REG_PASSWORD=SECRET)
    submit(env, SubmitRequest(target="sing", command="python train.py", create_registry_connection=True))
    assert only_job(si)
    name = connection_name({"name": "acr"}, HOST)
    created = si.connections[name]["properties"]
    assert created["category"] == "ContainerRegistry" and created["authType"] == "UsernamePassword"
    assert created["target"] == f"https://{HOST}"
    assert created["credentials"] == {"username": "puller", "password": SECRET}  # sent once, in the PUT body
    assert f"created workspace connection {name} for {HOST}" in env.stderr.getvalue()
    # the service's answers never carry it, and neither does anything singkit wrote or said
    puts = [r for r in connection_calls(si) if r.method == "PUT"]
    assert len(puts) == 1 and puts[0].query["api-version"] == "2024-04-01-preview"
    listed = si.ml_client().connections.list(connection_type="container_registry")
    assert [getattr(c.credentials, "password", None) for c in listed] == [None]
    assert_no_secret(env, SECRET, also=(root,))
    # the next submit finds the connection and creates nothing
    submit(sing_env(root, si, azurite, TEST_REG_PASSWORD=SECRET), SubmitRequest(target="sing", command="python train.py"))
    assert len(si.jobs) == 2 and len([r for r in connection_calls(si) if r.method == "PUT"]) == 1


def test_create_registry_connection_never_overwrites_a_connection_of_that_name(world):
    si, azurite, root = world
    use_registry(root, HOST, "    username: puller\n    password: $env:TEST_REG_PASSWORD\n")
    si.connections["singkit-acr"] = {"name": "singkit-acr", "properties": {"category": "Git", "authType": "None",
                                                                           "target": "https://example.com/repo.git"}}
    env = sing_env(root, si, azurite, TEST_REG_PASSWORD=SECRET)
    with pytest.raises(Exception) as caught:
        submit(env, SubmitRequest(target="sing", command="python train.py", create_registry_connection=True))
    assert "already has a connection named singkit-acr (target https://example.com/repo.git)" in str(caught.value)
    assert caught.value.exit_code == 2 and si.connections["singkit-acr"]["properties"]["category"] == "Git"


def test_a_public_image_and_the_stand_in_refusals(world):
    si, azurite, root = world
    use_registry(root, "docker.io")  # no credentials, not an ACR: a public image, nothing asked
    submit(sing_env(root, si, azurite), SubmitRequest(target="sing", command="python train.py"))
    assert only_job(si) and connection_calls(si) == []
    # the stand-in refuses what the service refuses: a name outside the pattern, no authType
    from azure.ai.ml.entities import WorkspaceConnection
    from azure.core.exceptions import HttpResponseError

    ml = si.ml_client(retry_total=0)
    for bad in (WorkspaceConnection(name="x", type="container_registry", target="https://a.azurecr.io", credentials=None),):
        with pytest.raises(HttpResponseError):
            ml.connections.create_or_update(bad)
    assert si.connections == {}


def test_from_the_command_line_refused_in_one_line_then_created(world):
    from clirunner import run_singkit

    si, azurite, root = world
    use_registry(root, HOST, "    username: puller\n    password: $env:TEST_REG_PASSWORD\n")
    environ = {k: v for k, v in sing_env(root, si, azurite, TEST_REG_PASSWORD=SECRET).environ.items()
               if k.startswith(("SINGKIT_", "TEST_", "HOME"))}
    refused = run_singkit(["job.submit", "--target=sing", "--cmd=python train.py"], cwd=root, env=environ)
    assert refused.returncode == 2 and refused.stdout == ""
    [line] = [text for text in refused.stderr.splitlines() if "cannot pull" in text]
    assert line.startswith("configs/singkit.yaml:") and "Traceback" not in refused.stderr
    made = run_singkit(["job.submit", "--target=sing", "--cmd=python train.py", "--create-registry-connection"],
                       cwd=root, env=environ)
    assert made.returncode == 0, made.stderr
    assert "created workspace connection singkit-acr" in made.stderr
    assert SECRET not in made.stdout + made.stderr + refused.stderr and only_job(si)


def test_a_connection_list_azure_ml_will_not_show_only_warns(world):
    si, azurite, root = world
    use_registry(root, HOST)
    si.fail_next(r"^GET .*/connections", 403)
    env = sing_env(root, si, azurite)
    submit(env, SubmitRequest(target="sing", command="python train.py"))
    assert only_job(si)
    assert f"submitting without checking that the job can pull {HOST}" in env.stderr.getvalue()


def test_a_registered_environment_needs_no_check(world):
    si, azurite, root = world
    si.container_registry = None  # were the image checked, nothing would let it pull
    config = root / "configs" / "singkit.yaml"
    config.write_text(config.read_text().replace("    image: research/torch:2.1\n    registry: acr\n",
                                                 "    image: azureml:torch-env:3\n    registry: acr\n"))
    si.state.assets["environments/torch-env/versions/3"] = {
        "id": f"{si.workspace_id}/environments/torch-env/versions/3", "name": "3",
        "properties": {"image": "private.azurecr.io/torch:3", "isAnonymous": False}}
    submit(sing_env(root, si, azurite), SubmitRequest(target="sing", command="python train.py"))
    assert only_job(si) and connection_calls(si) == []
