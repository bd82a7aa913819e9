"""What singkit asks Azure before anything is queued, against the loopback stand-in: the virtual
cluster's own instance types (cached a day), the workspace's user-assigned identities, a lost
answer to a create, the credential a 401 names, and `config.skus --target`.
"""

from __future__ import annotations

import json

import pytest
from singtools import only_job, sing_env

from singkit.backends.singularity import offers
from singkit.exceptions import ConfigError, ServiceError
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit
from singkit.store import Store


def use_cluster(root, name: str) -> None:
    config = root / "configs" / "singkit.yaml"
    config.write_text(config.read_text().replace("    compute: singkit-vc\n", f"    compute: {name}\n"))


def test_a_size_the_cluster_does_not_offer_is_refused_before_anything_is_queued(world):
    si, azurite, root = world
    si.add_virtual_cluster("v100only", {"NDv2": {"Premium": 16}, "NCv3": {"Basic": 0}})
    use_cluster(root, "v100only")
    env = sing_env(root, si, azurite)
    with pytest.raises(ConfigError) as caught:  # the target asks for NC6_v3: its series has no quota there
        submit(env, SubmitRequest(target="sing", command="python train.py"))
    message = str(caught.value)
    assert "virtual cluster `v100only` does not offer `NC6_v3`; it offers: ND40rs_v2" in message
    assert message.startswith("configs/singkit.yaml:") or "singkit.yaml:" in message.split(":")[0] + ":"
    assert si.jobs == {} and Store.of(env).job_ids() == []  # nothing queued, no job left behind


def test_an_offered_size_is_submitted_and_the_answer_is_cached_a_day(world):
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    submit(env, SubmitRequest(target="sing", command="python train.py"))
    assert si.state.vc_reads == 1
    submit(env, SubmitRequest(target="sing", command="python train.py"))
    assert si.state.vc_reads == 1  # the second submit used the cached list
    found = offers.cached(env.environ, si.virtual_cluster_id(), offers.time.time())
    assert found is not None and found.find("Singularity.nc6_v3").series == "NCv3"
    assert offers.cached(env.environ, si.virtual_cluster_id(), found.fetched + offers.TTL + 1) is None  # a day later: asked again


def test_a_size_missing_from_an_old_list_is_asked_again(world):
    si, azurite, root = world
    si.add_virtual_cluster("growing", {"NDv2": {"Premium": 16}})
    use_cluster(root, "growing")
    env = sing_env(root, si, azurite)
    compute = si.virtual_cluster_id("growing")
    stale = offers.ClusterOffers(compute, ["eastus"], [offers.Offer("ND40rs_v2", "NDv2", 8, {"Premium": 16})],
                                 offers.time.time() - 2 * offers.RECHECK)
    offers.save(env.environ, stale)
    si.add_virtual_cluster("growing", {"NDv2": {"Premium": 16}, "NCv3": {"Standard": 4}})  # quota came meanwhile
    submit(env, SubmitRequest(target="sing", command="python train.py"))
    assert si.state.vc_reads == 1 and len(si.jobs) == 1


def test_an_unreadable_cluster_warns_and_submits(world):
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    si.fail_next(r"GET .*/virtualclusters/", 403)
    submit(env, SubmitRequest(target="sing", command="python train.py"))
    assert "warning: asking virtual cluster singkit-vc which instance types it offers: access denied (403" in env.stderr.getvalue()
    assert len(si.jobs) == 1


def test_a_user_identity_name_becomes_its_arm_id_and_client_id(world):
    si, azurite, root = world
    arm = si.add_user_identity("trainer", "0b1c2d3e-0000-4000-8000-000000000001")
    config = root / "configs" / "singkit.yaml"
    config.write_text(config.read_text().replace("    type: singularity\n", "    type: singularity\n    user-identity-id: trainer\n", 1))
    env = sing_env(root, si, azurite)
    submit(env, SubmitRequest(target="sing", command="python train.py"))
    variables = si.job_body(only_job(si))["properties"]["environmentVariables"]
    assert variables["_AZUREML_SINGULARITY_JOB_UAI"] == arm
    assert variables["DEFAULT_IDENTITY_CLIENT_ID"] == variables["AZURE_CLIENT_ID"] == "0b1c2d3e-0000-4000-8000-000000000001"
    assert "identity" not in si.job_body(only_job(si))["properties"] or not si.job_body(only_job(si))["properties"]["identity"]


def test_an_unknown_user_identity_name_is_refused_naming_the_known_ones(world):
    si, azurite, root = world
    si.add_user_identity("trainer", "0b1c2d3e-0000-4000-8000-000000000001")
    config = root / "configs" / "singkit.yaml"
    config.write_text(config.read_text().replace("    type: singularity\n", "    type: singularity\n    user-identity-id: trainr\n", 1))
    env = sing_env(root, si, azurite)
    with pytest.raises(Exception, match="user-identity-id `trainr` names no user-assigned identity of workspace singkit-ws "
                                        r"\(its identities: trainer\)"):
        submit(env, SubmitRequest(target="sing", command="python train.py"))
    assert si.jobs == {}


def test_a_create_whose_answer_was_lost_is_followed_not_withdrawn(world):
    """The PUT landed, its answer was lost (500); the retried PUT gets Azure ML's 400 "already
    exists": that job is this run's, so the submit succeeds and nothing is cancelled."""
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    si.fail_next(r"PUT .*/jobs/", 500, times=1, handled=True)
    job = submit(env, SubmitRequest(target="sing", command="python train.py"))
    name = only_job(si)
    assert si.jobs[name].cancel_requests == 0
    run = Store.of(env).job(job.id).runs[0]
    assert run.backend_info()["azureml_name"] == name and not run.backend_info().get("withdrawn")
    assert run.state().status == "queued"
    assert "created by an earlier attempt whose answer was lost" in env.stderr.getvalue()


def test_a_401_names_the_credential_that_was_used(world):
    si, azurite, root = world
    env = sing_env(root, si, azurite)
    si.fail_next(r"GET .*/workspaces/", 401, times=None)
    with pytest.raises(ServiceError, match=r"\(401, the token in SINGKIT_AZURE_TOKEN\)"):
        submit(env, SubmitRequest(target="sing", command="python train.py"))


def test_config_skus_shows_the_clusters_own_list_with_quota(world):
    from clirunner import run_singkit

    si, azurite, root = world
    si.add_virtual_cluster("mixed", {"NDAMv4": {"Premium": 8, "Basic": 64}, "NDH100v5": {"Standard": 16}, "NDv2": {"Premium": 0}})
    use_cluster(root, "mixed")
    env = sing_env(root, si, azurite)
    environ = {k: v for k, v in env.environ.items() if k != "HOME"}
    shown = run_singkit(["config.skus", "--target=sing", "--json"], cwd=root, env=environ)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    names = {o["name"]: o for o in data["offers"]}
    assert set(names) == {"ND12am_A100_v4", "ND96amrs_A100_v4", "ND12_H100_v5", "ND96r_H100_v5"}
    assert names["ND96amrs_A100_v4"]["quota"] == {"Premium": 8, "Basic": 64}
    assert data["target-size"] == "NC6_v3" and data["offered"] is False
    table = run_singkit(["config.skus", "--target=sing"], cwd=root, env=environ)
    assert table.returncode == 0 and "Premium quota" in table.stdout and "does NOT offer `NC6_v3`" in table.stderr
    assert "cached" in table.stderr and si.state.vc_reads == 1  # the second call used the cache
    offline = run_singkit(["config.skus"], cwd=root, env=environ)
    assert offline.returncode == 0 and "ND96amrs_A100_v4" in offline.stdout and "MI300X" in offline.stdout


def test_the_private_mlclient_attributes_arm_get_reads_are_still_there(azureml_standin):  # noqa: F811
    """client.arm_get is the one place reading MLClient._base_url and ._credential: when an SDK
    release moves them, this fails (and the instance-type check would only warn)."""
    from singkit.backends.singularity.client import arm_get

    si = azureml_standin
    ml = si.ml_client()
    assert str(ml._base_url).rstrip("/") == si.url and ml._credential is not None
    body = arm_get(ml, si.virtual_cluster_id(), offers.API_VERSION)
    assert body["properties"]["managed"]["locations"] == [si.location]
