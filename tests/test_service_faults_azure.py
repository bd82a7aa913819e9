"""Azure services that hang or are down (issues 15 and 16), against the Azure ML stand-in and
Azurite: a held Azure ML request, the workspace's Blob storage down at the code upload, the
Blob mirror's storage down at job.status — each bounded (a pytest timeout), one line, exit 4.
"""

from __future__ import annotations

import pytest
from azureml_standin.fixtures import azureml_standin  # noqa: F401  (the fixture)
from test_singularity_e2e import make_env, world  # noqa: F401  (world: the fixture)

import services
from singkit.exceptions import ServiceError
from singkit.jobs import control
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit


@pytest.mark.timeout(90)
def test_workspace_storage_down_at_the_code_upload_is_one_line_exit_4(world):
    """The SDK's own storage client used to retry each file 3 times after 15, 18 and 24 s (a
    submit took 423 s); bounded now, and the line names the storage, not Azure ML."""
    si, azurite, root = world
    env = make_env(root, si, azurite, SINGKIT_HTTP_TIMEOUT="2")
    si.storage_down()
    with pytest.raises(ServiceError) as caught:
        submit(env, SubmitRequest(target="sing", command="python train.py"))
    message = str(caught.value)
    assert "\n" not in message and caught.value.exit_code == 4
    assert "cannot reach the workspace's Azure Blob storage" in message, message
    assert "sig=" not in message
    assert not si.jobs  # no job was created without its code


def test_the_code_upload_patch_point_is_where_singkit_expects_it():
    """singkit bounds azure-ai-ml's code-upload storage client through this private name
    (client._bound_code_upload): when azure-ai-ml moves it, this fails rather than the bound."""
    from azure.ai.ml._artifacts import _blob_storage_helper as helper

    from singkit.backends.singularity.client import _bound_code_upload

    _bound_code_upload({"retry_total": 0, "connection_timeout": 1, "read_timeout": 1})
    client = helper.BlobStorageClient(credential=None, account_url="http://127.0.0.1:9/acct", container_name="c")
    assert getattr(type(client.service_client), "_singkit_bounded", False)
    assert client.service_client._config.retry_policy.total_retries == 0
    # a pending upload's SAS URL: no container name, the container client is built from the URL
    client = helper.BlobStorageClient(credential=None, account_url="http://127.0.0.1:9/acct/c?sv=x&sig=y")
    assert getattr(type(client.container_client), "_singkit_bounded", False)
    assert client.container_client._config.retry_policy.total_retries == 0


@pytest.mark.timeout(60)
def test_mirror_storage_down_keeps_job_status_quick(world):
    """job.status reads the Blob mirror first; with its storage down it took 82-89 s. Now a
    warning naming the storage, after bounded retries, and the status from Azure ML."""
    si, azurite, root = world
    env = make_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    dead = f"127.0.0.1:{services.free_port()}"
    down = make_env(root, si, azurite, SINGKIT_HTTP_TIMEOUT="2",
                    TEST_STORE_CONNECTION=azurite.connection_string.replace(azurite.host, dead))
    control.status(down, job.id)
    err = down.stderr.getvalue()
    assert err.count("warning:") == 1, err
    assert f"Azure Blob storage at http://{dead}" in err and "unreachable" in err, err
    assert job.runs[0].state().status == "queued"
