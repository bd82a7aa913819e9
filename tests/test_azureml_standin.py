"""The Azure ML stand-in, proven with the stock azure-ai-ml MLClient (no singkit code)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from azureml_standin.fixtures import azureml_standin  # noqa: F401  (until conftest registers it)

# The SDK's own marshmallow/storage deprecation noise, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

DIGEST_IMAGE = "singkitacr.azurecr.io/train@sha256:" + "ab" * 32


def make_job(si, code_dir: Path | None = None, **overrides):
    from azure.ai.ml import command
    from azure.ai.ml.entities import Environment

    args = dict(
        command="python train.py --lr 0.1", environment=Environment(image=DIGEST_IMAGE),
        compute=si.virtual_cluster_id(), instance_count=2, instance_type="Singularity.ND40rs_v2",
        distribution={"type": "pytorch", "process_count_per_instance": 8},
        environment_variables={"SINGKIT_RUN": "job1.1"}, tags={"singkit.job": "job1"},
        experiment_name="singkit-exp", display_name="job1",
    )
    if code_dir is not None:
        args["code"] = str(code_dir)
    args.update(overrides)
    job = command(**args)
    job.resources.properties = {"AISuperComputer": {"slaTier": "Premium", "priority": "High"}}
    return job


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    d = tmp_path / "code"
    d.mkdir()
    (d / "train.py").write_text("print('training')\n")
    (d / "util.py").write_text("X = 1\n")
    return d


def routes(si, start: int = 0) -> list[str]:
    """Route names the SDK hit (cloud metadata reads left out: the SDK re-reads it constantly)."""
    return [r.route or f"UNHANDLED {r.method} {r.path}" for r in si.state.request_log[start:]
            if r.route != "cloud_metadata"]


def test_workspace_get_through_cloud_metadata_env(azureml_standin):
    si = azureml_standin
    ws = si.ml_client().workspaces.get(si.workspace)
    assert (ws.name, ws.location) == (si.workspace, si.location)
    assert ws.discovery_url == f"{si.url}/discovery/workspaces/{si.workspace_guid}"
    metadata = [r for r in si.state.request_log if r.route == "cloud_metadata"]
    assert metadata, "the SDK should have read ARM_CLOUD_METADATA_URL"
    ws_get = [r for r in si.state.request_log if r.route == "workspace"][-1]
    assert ws_get.headers["authorization"].startswith("Bearer ")
    assert ws_get.query["api-version"]  # whatever the SDK chose; the stand-in accepts any
    assert si.state.unhandled == []


def test_cloud_kwargs_connect_without_metadata_url(azureml_standin, monkeypatch):
    si = azureml_standin
    monkeypatch.delenv("ARM_CLOUD_METADATA_URL")
    ml = si.ml_client(cloud=si.cloud_name, cloud_metadata=si.cloud_metadata)
    assert ml.workspaces.get(si.workspace).name == si.workspace
    assert not [r for r in si.state.request_log if r.route == "cloud_metadata"]


def test_credential_hands_out_a_jwt_with_the_claims_the_sdk_reads(azureml_standin):
    import jwt

    cred = azureml_standin.credential()
    token = cred.get_token(azureml_standin.url + "/.default")
    claims = jwt.decode(token.token, options={"verify_signature": False})
    assert claims["aud"] == azureml_standin.url
    assert claims["tid"] == azureml_standin.tenant_id and claims["oid"]
    assert token.expires_on > claims["iat"]


def test_submit_command_job_with_local_code(azureml_standin, code_dir):
    si = azureml_standin
    created = si.ml_client().jobs.create_or_update(make_job(si, code_dir))

    assert routes(si) == ["asset_list", "start_pending_upload", "asset_put", "asset_put", "job_put"]
    body = si.job_body(created.name)["properties"]
    assert body["jobType"] == "Command"
    assert body["computeId"] == si.virtual_cluster_id()
    assert body["resources"] == {"instanceCount": 2, "instanceType": "Singularity.ND40rs_v2",
                                 "properties": {"AISuperComputer": {"slaTier": "Premium", "priority": "High"}}}
    assert body["distribution"] == {"distributionType": "PyTorch", "processCountPerInstance": 8}
    assert body["environmentVariables"] == {"SINGKIT_RUN": "job1.1"}
    assert body["tags"] == {"singkit.job": "job1"}
    assert (body["experimentName"], body["displayName"]) == ("singkit-exp", "job1")
    assert body["command"] == "python train.py --lr 0.1"

    # The anonymous environment carries the image by digest.
    assert "/environments/CliV2AnonymousEnvironment/versions/" in body["environmentId"]
    [env_body] = si.state.bodies("PUT", r"/environments/CliV2AnonymousEnvironment/versions/")
    assert env_body["properties"]["image"] == DIGEST_IMAGE

    # The code went to Azurite through the SAS from startPendingUpload, then was registered.
    [code_body] = si.state.bodies("PUT", r"/codes/[^/]+/versions/[^/]+$")
    code_uri = code_body["properties"]["codeUri"]  # https://<account>.blob.<suffix>/<container>/code
    assert code_uri.startswith(f"https://{si.azurite.public_host}/upload-") and code_uri.endswith("/code")
    assert body["codeId"].lower() in {a["id"].lower() for a in si.state.assets.values()}
    container = code_uri.split("/")[3]
    assert si.azurite.names(container) == ["code/train.py", "code/util.py"]
    assert si.azurite.get(container, "code/train.py") == b"print('training')\n"

    assert created.status == "NotStarted" and created.name in si.jobs


def test_resubmitting_the_same_code_reuses_the_upload(azureml_standin, code_dir):
    si = azureml_standin
    ml = si.ml_client()
    ml.jobs.create_or_update(make_job(si, code_dir))
    start = len(si.state.request_log)
    second = ml.jobs.create_or_update(make_job(si, code_dir))
    assert routes(si, start) == ["asset_list", "asset_get", "asset_put", "job_put"]
    assert second.name in si.jobs and len(si.jobs) == 2


def test_get_and_list_follow_status_set_by_the_test(azureml_standin):
    si = azureml_standin
    ml = si.ml_client()
    a = ml.jobs.create_or_update(make_job(si)).name
    b = ml.jobs.create_or_update(make_job(si)).name
    for status in ("Queued", "Running", "Completed"):
        si.set_status(a, status.lower())
        assert ml.jobs.get(a).status == status
    si.set_status(b, "Failed", error="CUDA out of memory")
    listed = {j.name: j.status for j in ml.jobs.list()}
    assert listed == {a: "Completed", b: "Failed"}
    with pytest.raises(KeyError, match="no job 'nope'"):
        si.set_status("nope", "Running")


def test_stream_prints_logs_until_the_job_completes(azureml_standin, capsys):
    si = azureml_standin
    ml = si.ml_client()
    name = ml.jobs.create_or_update(make_job(si)).name
    si.append_log(name, "epoch 1 loss 0.9\n")
    si.script(name, ["Queued", ("Running", "epoch 2 loss 0.5\n"), "Running", ("Completed", "done\n")])
    ml.jobs.stream(name)
    out = capsys.readouterr().out
    assert "Streaming user_logs/std_log.txt" in out
    assert out.index("epoch 1 loss 0.9") < out.index("epoch 2 loss 0.5")
    assert "Execution Summary" in out and si.jobs[name].status == "Completed"


def test_stream_raises_when_the_job_fails(azureml_standin, capsys):
    from azure.ai.ml.exceptions import JobException

    si = azureml_standin
    ml = si.ml_client()
    name = ml.jobs.create_or_update(make_job(si)).name
    si.set_status(name, "Running")
    si.script(name, ["Running", "Failed"])
    with pytest.raises(JobException, match="The job failed"):
        ml.jobs.stream(name)


def test_begin_cancel_polls_until_canceled(azureml_standin):
    si = azureml_standin
    ml = si.ml_client()
    name = ml.jobs.create_or_update(make_job(si)).name
    si.set_status(name, "Running")
    si.jobs[name].cancel_polls = 2
    start = len(si.state.request_log)
    ml.jobs.begin_cancel(name).result()
    assert routes(si, start) == ["job_cancel"] + ["job_cancel_poll"] * 3
    assert ml.jobs.get(name).status == "Canceled"


def test_download_fetches_logs_and_outputs_from_azurite(azureml_standin, tmp_path):
    from azure.ai.ml.exceptions import JobException

    si = azureml_standin
    ml = si.ml_client()
    name = ml.jobs.create_or_update(make_job(si)).name
    si.append_log(name, "hello from the job\n")
    si.put_output(name, "outputs/metrics.json", '{"loss": 0.1}')
    with pytest.raises(JobException, match="Download is allowed only in states"):
        ml.jobs.download(name, download_path=tmp_path)
    si.set_status(name, "Completed")
    ml.jobs.download(name, download_path=tmp_path)
    art = tmp_path / "artifacts"
    assert (art / "user_logs/std_log.txt").read_text() == "hello from the job\n"
    assert (art / "outputs/metrics.json").read_text() == '{"loss": 0.1}'


def test_metadata_update_of_a_fetched_job_goes_through_run_history(azureml_standin):
    si = azureml_standin
    ml = si.ml_client()
    name = ml.jobs.create_or_update(make_job(si)).name
    fetched = ml.jobs.get(name)
    fetched.tags = {"singkit.job": "job1", "note": "retagged"}
    start = len(si.state.request_log)
    assert ml.jobs.create_or_update(fetched).tags == {"singkit.job": "job1", "note": "retagged"}
    assert "run_patch" in routes(si, start) and "job_put" not in routes(si, start)


def test_run_details_hand_out_log_urls_on_the_blob_host(azureml_standin):
    """What a client reading run history directly (not via jobs.stream) gets."""
    import requests

    si = azureml_standin
    name = si.ml_client().jobs.create_or_update(make_job(si)).name
    si.append_log(name, "rank 0 says hi\n", file="user_logs/std_log_process_0.txt")
    token = si.credential().get_token(si.url + "/.default").token
    details = requests.get(f"{si.url}/history/v1.0{si.workspace_id}/runs/{name}/details",
                           headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    assert details["status"] == "NotStarted"
    url = details["logFiles"]["user_logs/std_log_process_0.txt"]
    assert url.startswith(f"https://{si.azurite.public_host}/azureml/ExperimentRun/dcid.{name}/")
    assert requests.get(url, timeout=10).text == "rank 0 says hi\n"  # through HTTPS_PROXY to Azurite


@pytest.mark.parametrize("status, error", [
    (401, "ClientAuthenticationError"), (403, "HttpResponseError"), (404, "ResourceNotFoundError")])
def test_injected_client_errors_reach_the_caller(azureml_standin, status, error):
    import azure.core.exceptions as errors

    si = azureml_standin
    ml = si.ml_client()
    name = ml.jobs.create_or_update(make_job(si)).name
    si.fail_next(r"^GET .*/jobs/", status)
    with pytest.raises(getattr(errors, error)) as info:
        ml.jobs.get(name)
    assert info.value.status_code == status
    assert ml.jobs.get(name).name == name  # the fault was used up


def test_throttling_with_retry_after_then_success(azureml_standin):
    si = azureml_standin
    ml = si.ml_client()
    name = ml.jobs.create_or_update(make_job(si)).name
    si.fail_next(r"^GET .*/jobs/", 429, times=2, retry_after=0.05)
    start = len(si.state.request_log)
    assert ml.jobs.get(name).name == name
    gets = [r for r in si.state.request_log[start:] if r.route in ("fault", "job_get")]
    assert [r.status for r in gets] == [429, 429, 200]


def test_server_errors_forever_exhaust_the_sdk_retries(azureml_standin):
    from azure.core.exceptions import HttpResponseError

    si = azureml_standin
    ml = si.ml_client(retry_total=2, retry_backoff_factor=0.01)
    name = ml.jobs.create_or_update(make_job(si)).name
    si.fail_next(r"^GET .*/jobs/", 500, times=None)
    with pytest.raises(HttpResponseError) as info:
        ml.jobs.get(name)
    assert info.value.status_code == 500
    assert len([r for r in si.state.request_log if r.route == "fault"]) >= 2


def test_user_identity_job_sends_an_aml_token(azureml_standin):
    import jwt
    from azure.ai.ml.entities import UserIdentityConfiguration

    si = azureml_standin
    name = si.ml_client().jobs.create_or_update(make_job(si, identity=UserIdentityConfiguration())).name
    put = [r for r in si.state.request_log if r.route == "job_put"][-1]
    assert si.job_body(name)["properties"]["identity"] == {"identityType": "UserIdentity"}
    claims = jwt.decode(put.headers["x-azureml-token"], options={"verify_signature": False})
    assert claims["aud"].startswith("https://ml.azure.")


def test_long_azureml_virtual_cluster_form_is_resolved_over_management_azure_com(azureml_standin):
    si = azureml_standin
    si.add_virtual_cluster("vc2", {"NDv2": {"Standard": 8}})
    compute = f"azureml://subscriptions/{si.subscription_id}/resourceGroups/{si.resource_group}/virtualclusters/vc2"
    name = si.ml_client().jobs.create_or_update(make_job(si, compute=compute)).name
    assert si.job_body(name)["properties"]["computeId"] == si.virtual_cluster_id("vc2")
    [lookup] = [r for r in si.state.request_log if r.route == "virtual_cluster"]
    assert lookup.headers["host"] == "management.azure.com"  # reached through the stand-in's proxy


def test_unknown_routes_answer_404_and_are_logged(azureml_standin, caplog):
    import requests

    si = azureml_standin
    token = si.credential().get_token(si.url + "/.default").token
    with caplog.at_level(logging.WARNING, logger="azureml_standin"):
        reply = requests.get(f"{si.url}{si.workspace_id}/onlineEndpoints?api-version=1999-01-01",
                             headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "NoRoute"
    assert re.search(r"no route for GET /subscriptions/.*/onlineEndpoints", caplog.text)
    assert si.state.unhandled == [f"GET {si.workspace_id}/onlineEndpoints?api-version=1999-01-01"]
    ok = requests.get(f"{si.url}{si.workspace_id}?api-version=1999-01-01", timeout=10)
    assert ok.status_code == 200  # any api-version is accepted


# -- the stand-in says no where the service does ----------------------------------------------------
def test_a_second_put_of_a_job_name_is_refused_as_the_service_does(azureml_standin):
    from azure.core.exceptions import HttpResponseError

    si = azureml_standin
    ml = si.ml_client()
    name = ml.jobs.create_or_update(make_job(si, name="fixed-name")).name
    with pytest.raises(HttpResponseError) as caught:
        ml.jobs.create_or_update(make_job(si, name="fixed-name", command="python other.py"))
    assert caught.value.status_code == 400 and "A job with this name already exists" in str(caught.value)
    assert si.job_body(name)["properties"]["command"] == "python train.py --lr 0.1"  # not overwritten


def test_a_job_on_an_unknown_virtual_cluster_or_without_aisupercomputer_is_refused(azureml_standin):
    from azure.core.exceptions import HttpResponseError

    si = azureml_standin
    ml = si.ml_client()
    with pytest.raises(HttpResponseError, match="The virtual cluster does not exist"):
        ml.jobs.create_or_update(make_job(si, compute=si.virtual_cluster_id("nowhere")))
    job = make_job(si)
    job.resources.properties = {}
    with pytest.raises(HttpResponseError, match="needs resources.properties.AISuperComputer"):
        ml.jobs.create_or_update(job)
    assert si.jobs == {}


def test_an_instance_type_the_cluster_does_not_offer_fails_the_job(azureml_standin):
    si = azureml_standin
    si.add_virtual_cluster("v100only", {"NDv2": {"Premium": 16}, "NDH100v5": {"Premium": 0}})
    ml = si.ml_client()
    ok = ml.jobs.create_or_update(make_job(si, compute=si.virtual_cluster_id("v100only")))
    assert si.jobs[ok.name].status == "NotStarted"
    bad = ml.jobs.create_or_update(make_job(si, compute=si.virtual_cluster_id("v100only"), instance_type="Singularity.ND96r_H100_v5"))
    assert si.jobs[bad.name].status == "Failed" and "instanceType is invalid" in si.jobs[bad.name].error["message"]


def test_virtual_cluster_and_instance_type_series_answers(azureml_standin):
    import requests

    si = azureml_standin
    si.add_virtual_cluster("two-regions", {"NDAMv4": {"Premium": 8, "Basic": 32}}, locations=["eastus", "westus3"])
    token = si.credential().get_token(si.url + "/.default").token
    auth = {"Authorization": f"Bearer {token}"}
    vc = requests.get(f"{si.url}{si.virtual_cluster_id('two-regions')}?api-version=2021-03-01-preview",
                      headers=auth, timeout=10, verify=si.ca_bundle).json()
    managed = vc["properties"]["managed"]
    assert managed["locations"] == ["eastus", "westus3"]
    assert {(x["id"], x["slaTier"], x["limit"]) for x in managed["quotas"]["westus3"]["limits"]} == {
        ("NDAMv4", "Premium", 8), ("NDAMv4", "Basic", 32)}
    rows = requests.get(f"{si.url}/subscriptions/{si.subscription_id}/providers/Microsoft.MachineLearningServices/"
                        "locations/eastus/instanceTypeSeries?api-version=2021-03-01-preview",
                        headers=auth, timeout=10, verify=si.ca_bundle).json()["value"]
    assert {"name": "Singularity.ND96amrs_A100_v4", "instanceTypeSeriesId": "NDAMv4"}.items() <= next(
        r for r in rows if r["name"] == "Singularity.ND96amrs_A100_v4").items()


def test_a_run_time_limit_reaches_the_service_as_an_iso_duration_and_a_bare_number_is_refused(azureml_standin):
    """CommandJobLimits(timeout=seconds) → limits {jobLimitsType: Command, timeout: ISO 8601}
    (azure-ai-ml entities/_job/job_limits.py); the REST model says ISO 8601, so bare seconds are refused."""
    import requests
    from azure.ai.ml.entities import CommandJobLimits

    si = azureml_standin
    job = make_job(si)
    job.limits = CommandJobLimits(timeout=7200)
    name = si.ml_client().jobs.create_or_update(job).name
    assert si.job_body(name)["properties"]["limits"] == {"jobLimitsType": "Command", "timeout": "PT2H"}
    token = si.credential().get_token(si.url + "/.default").token
    body = dict(si.job_body(name), properties={**si.job_body(name)["properties"],
                                                "limits": {"jobLimitsType": "Command", "timeout": "7200"}})
    reply = requests.put(f"{si.url}{si.workspace_id}/jobs/other?api-version=2024-10-01", json=body,
                         headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert reply.status_code == 400 and "not an ISO 8601 duration" in reply.text
    assert "other" not in si.jobs
