"""Azure services that hang or are down (issues 15 and 16), against the Azure ML stand-in and
Azurite: a held Azure ML request, the workspace's Blob storage down at the code upload, the
Blob mirror's storage down at job.status — each bounded (a pytest timeout), one line, exit 4.
"""

from __future__ import annotations

import pytest
from singtools import count, only_job, sing_env

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
    env = sing_env(root, si, azurite, SINGKIT_HTTP_TIMEOUT="2")
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
    env = sing_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    dead = f"127.0.0.1:{services.free_port()}"
    down = sing_env(root, si, azurite, SINGKIT_HTTP_TIMEOUT="2",
                    TEST_STORE_CONNECTION=azurite.connection_string.replace(azurite.host, dead))
    control.status(down, job.id)
    err = down.stderr.getvalue()
    assert err.count("warning:") == 1, err
    assert f"Azure Blob storage at http://{dead}" in err and "unreachable" in err, err
    assert job.runs[0].state().status == "queued"


@pytest.mark.timeout(60)
def test_an_azure_ml_put_held_unanswered_times_out_and_is_retried(world):
    """The job PUT is carried out but its answer never comes (it once held a submit 307 s):
    the read timeout (SINGKIT_HTTP_TIMEOUT) ends the wait, the retry finds the job created."""
    si, azurite, root = world
    env = sing_env(root, si, azurite, SINGKIT_HTTP_TIMEOUT="2")
    held = si.hold(r"^PUT .*/jobs/", handled=True)
    try:
        job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    finally:
        held.release()
    assert held.arrived.is_set()
    name = only_job(si)
    assert job.runs[0].backend_info()["azureml_name"] == name
    assert job.runs[0].state().status == "queued"


@pytest.mark.timeout(60)
def test_an_azure_ml_that_keeps_failing_ends_at_the_submit_deadline(world):
    """Every job PUT answered 503 (Retry-After 2): no retry starts after the submit's
    deadline — one line, exit 4, naming the deadline, the run failed and nothing half recorded."""
    si, azurite, root = world
    env = sing_env(root, si, azurite, SINGKIT_HTTP_TIMEOUT="1", SINGKIT_SUBMIT_DEADLINE="3",
                   SINGKIT_RETRY_BASE_DELAY="1")
    si.fail_next(r"^PUT .*/jobs/", 503, times=None, retry_after=2)
    with pytest.raises(ServiceError) as caught:
        submit(env, SubmitRequest(target="sing", command="python train.py"))
    message = str(caught.value)
    assert "\n" not in message and caught.value.exit_code == 4
    assert message.endswith("(gave up at the submit's deadline, SINGKIT_SUBMIT_DEADLINE)"), message
    assert count(si, "PUT", r"/jobs/") < 5  # not every retry the call allows


def test_a_bad_deadline_is_a_usage_error_before_anything_is_recorded(world):
    from singkit.exceptions import UsageError
    from singkit.store import Store

    si, azurite, root = world
    env = sing_env(root, si, azurite, SINGKIT_SUBMIT_DEADLINE="-1")
    with pytest.raises(UsageError, match=r"^SINGKIT_SUBMIT_DEADLINE=-1 is not a number of seconds between 0 and "):
        submit(env, SubmitRequest(target="sing", command="python train.py"))
    assert not si.jobs and Store.of(env).job_ids() == []
