"""Azure ML compute clusters (XT's `aml` targets): which targets are cluster jobs, what validate
says at each line, the spec a dry run writes, the preflight against the cluster, the stand-in's
refusals, and submit → status → logs → completed through the real azure-ai-ml SDK.

The values come from public sources (see singkit.singularity.amlcompute): `compute: azureml:NAME`
and `resources.instance_count` (Microsoft Learn, CLI v2 command job YAML schema), low priority as
the cluster's tier (AmlCompute `tier`; "Per-job configuration isn't possible", Microsoft Learn, low
priority VMs), Azure's VM size names (MicrosoftDocs/azure-compute-docs sizes/overview.md).
"""

from __future__ import annotations

import pytest
from amltools import CLUSTER, DIGEST, SUB, config, write
from clirunner import cli
from singtools import only_job, sing_env

from singkit.exceptions import ConfigError
from singkit.jobs import control
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit
from singkit.singularity import amlcompute
from singkit.singularity import target as targets


# -- which targets are compute-cluster jobs ---------------------------------------------------
@pytest.mark.parametrize("service, compute, size, kind", [
    ("ws", "gpu-cluster", "Standard_NC6s_v3", amlcompute.CLUSTER),           # XT's aml target
    ("ws", "azureml:gpu-cluster", "STANDARD_NC6S_V3", amlcompute.CLUSTER),    # CLI v2 form, Azure's any case
    ("ws", f"/subscriptions/{SUB}/resourceGroups/singkit-rg/providers/Microsoft.MachineLearningServices/"
           "workspaces/singkit-ws/computes/gpu-cluster", "ND40rs_v2", amlcompute.CLUSTER),  # a compute's ARM id
    ("ws", "gpu-cluster", "ND40rs_v2", amlcompute.VIRTUAL_CLUSTER),          # a Singularity size: a VC, as before
    ("ws", "msrvc", "Standard_NC6s_v3", amlcompute.VIRTUAL_CLUSTER),         # names a virtual_cluster record
    ("ws", "azureml:virtualclusters/msrvc", "Standard_NC6s_v3", amlcompute.VIRTUAL_CLUSTER),
    ("sing-ws", "gpu-cluster", "Standard_NC6s_v3", amlcompute.VIRTUAL_CLUSTER),  # a singularity record: always a VC
])
def test_the_kind_of_job_a_target_is(tmp_path, service, compute, size, kind):
    root = write(tmp_path, f"  t:\n    service: {service}\n    compute: {compute}\n    vm-size: {size}\n    docker: torch\n")
    cfg = config(root)
    resolved = targets.resolve(cfg, cfg.target("t"))
    assert resolved.kind == kind
    if kind == amlcompute.CLUSTER:
        assert resolved.compute == "gpu-cluster"


def test_no_vm_size_on_an_aml_record_names_both_kinds(tmp_path):
    root = write(tmp_path, "  t:\n    service: ws\n    compute: townsend1\n    docker: torch\n")  # as import-amlt leaves it
    cfg = config(root)
    [problem] = targets.resolve(cfg, cfg.target("t")).errors
    assert problem.message == ("target `t` has no `vm-size`; set a Singularity instance type, e.g. `vm-size: ND12_H100_v5` "
                               "(on an Azure ML compute cluster: its Azure VM size, e.g. `Standard_NC6s_v3`)")


@pytest.mark.parametrize("size, ok", [
    ("Standard_NC6s_v3", True), ("Standard_ND96amsr_A100_v4", True), ("Standard_E4-2s_v3", True),
    ("Standard_NC24ads_A100_v4", True), ("Basic_A0", True), ("standard_ds11_v2", True),
    ("Standard_NC", False), ("Standard_", False), ("NC6s_v3", False), ("Standard NC6", False), ("Standard_NC6s_v3_", False),
])
def test_azure_vm_size_grammar(size, ok):
    assert amlcompute.is_azure_vm_size(size) is ok


# -- validate: one line at the key, exit 2 on errors -------------------------------------------
def test_validate_refuses_a_size_outside_azure_grammar_at_its_line(tmp_path):
    write(tmp_path, CLUSTER.replace("Standard_NC6s_v3", "Standard_NC"))
    result = cli(["config.validate"], cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == ("configs/singkit.yaml:29:14: vm-size `Standard_NC` is not an Azure VM size: Azure writes "
                                     "Standard_<family><vCPUs><features>[_<accelerator>][_v<version>], e.g. Standard_NC6s_v3 "
                                     "or Standard_ND96amsr_A100_v4")


def test_validate_warns_at_each_singularity_key_of_a_cluster_target(tmp_path):
    write(tmp_path, CLUSTER + "    sla: premium\n    ai-super-computer: {slaTier: Premium}\n")
    result = cli(["config.validate"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("warning: configs/singkit.yaml:32:10: `sla` is Singularity's; compute-targets.gpu runs on "
                               "an Azure ML compute cluster"), lines
    assert lines[1].startswith("warning: configs/singkit.yaml:33:24: `ai-super-computer` is Singularity's") or \
        lines[1].startswith("warning: configs/singkit.yaml:33:5: `ai-super-computer` is Singularity's"), lines
    strict = cli(["config.validate", "--strict"], cwd=tmp_path)
    assert strict.returncode == 2


def test_low_pri_on_a_singularity_target_is_refused_with_the_sla_words(tmp_path):
    write(tmp_path, "  eus:\n    service: sing-ws\n    compute: msrvc\n    vm-size: ND40rs_v2\n    docker: torch\n"
                    "    low-pri: true\n")
    result = cli(["config.validate"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == ("configs/singkit.yaml:31:14: `low-pri` is for Azure ML compute clusters; "
                                     "compute-targets.eus is a Singularity target: use `sla: basic` (preemptible) and "
                                     "`priority: low` instead")


def test_low_pri_must_be_true_or_false(tmp_path):
    write(tmp_path, CLUSTER + "    low-pri: maybe\n")
    result = cli(["config.validate"], cwd=tmp_path)
    assert result.returncode == 2 and "configs/singkit.yaml:32:14: `compute-targets.gpu.low-pri` must be true or false" \
        in result.stderr, result.stderr


def test_a_cluster_target_needs_a_docker_record_and_its_own_workspace(tmp_path):
    other = (f"/subscriptions/{SUB}/resourceGroups/other-rg/providers/Microsoft.MachineLearningServices/"
             "workspaces/other-ws/computes/gpu-cluster")
    write(tmp_path, f"  gpu:\n    service: ws\n    compute: {other}\n    vm-size: Standard_NC6s_v3\n"
                    "    image-version: pytorch\n")
    result = cli(["config.validate"], cwd=tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if not line.startswith("warning:")]
    assert any("configs/singkit.yaml:28:14: compute `" in e and "belongs to workspace other-ws" in e for e in errors), errors
    assert any("names no `docker:` record" in e for e in errors), errors
    assert any("`image-version` is Singularity's" in line for line in result.stderr.splitlines())


def test_validate_says_which_kind_of_job_each_target_is(tmp_path):
    import json

    write(tmp_path, CLUSTER + "  eus:\n    service: ws\n    compute: msrvc\n    vm-size: ND40rs_v2\n    docker: torch\n")
    result = cli(["config.validate", "--json"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["targets"] == {"gpu": "compute-cluster", "eus": "singularity"}
    assert "note: configs/singkit.yaml:27:5: compute-targets.gpu is an Azure ML compute cluster job on `gpu-cluster` " \
           "(vm-size Standard_NC6s_v3)" in result.stderr
    assert "compute-targets.eus is" not in result.stderr


def test_processes_per_gpu_need_the_azure_size_under_skus(tmp_path):
    # a size singkit cannot map to one of Singularity's (those: test_aml_cluster_kinds.py)
    write(tmp_path, CLUSTER.replace("Standard_NC6s_v3", "Standard_NC64as_T4_v3") + "    processes-per-node: gpus\n")
    cfg = config(tmp_path)
    [problem] = targets.resolve(cfg, cfg.target("gpu")).errors
    assert "`processes-per-node: gpus` needs to know how many GPUs `Standard_NC64as_T4_v3` has" in problem.message
    text = (tmp_path / "configs" / "singkit.yaml").read_text()
    (tmp_path / "configs" / "singkit.yaml").write_text(text + "skus:\n  Standard_NC64as_T4_v3: {gpus: 4}\n")
    cfg = config(tmp_path)
    resolved = targets.resolve(cfg, cfg.target("gpu"))
    assert resolved.errors == [] and resolved.per_node == 4


def test_config_skus_says_a_cluster_is_not_a_virtual_cluster(tmp_path):
    write(tmp_path, CLUSTER)
    result = cli(["config.skus", "--target=gpu"], cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().endswith("config.skus --target asks a Singularity virtual cluster"), result.stderr


# -- the spec a dry run writes ------------------------------------------------------------------
def test_dry_run_writes_a_cluster_job_without_the_singularity_block(tmp_path):
    write(tmp_path, CLUSTER + "    processes-per-node: 4\n    low-pri: true\n")
    result = cli(["job.submit", "--target=gpu", "--cmd=python train.py", "--dry-run"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "note: gpu runs on Azure ML compute cluster gpu-cluster" in result.stderr
    assert "`low-pri: true` is checked against the cluster's tier" in result.stderr
    from ruamel.yaml import YAML

    spec = YAML(typ="safe").load((tmp_path / ".singkit" / "jobs" / "job1" / "azureml" / "job1.1.yaml").read_text())
    assert spec["compute"] == "azureml:gpu-cluster"
    assert spec["resources"] == {"instance_count": 2}  # no instance_type, locations, properties
    assert "queue_settings" not in spec
    assert spec["distribution"] == {"type": "pytorch", "process_count_per_instance": 4}
    assert spec["environment"] == {"image": f"singkit.azurecr.io/research/torch@sha256:{DIGEST}"}
    assert "_AZUREML_SINGULARITY_JOB_UAI" not in (spec.get("environment_variables") or {})


# -- through the real SDK against the stand-in ---------------------------------------------------
@pytest.fixture
def cluster_world(tmp_path, azureml_standin, azurite):  # noqa: F811
    si = azureml_standin
    root = write(tmp_path / "proj", CLUSTER, sub=si.subscription_id, rg=si.resource_group, ws=si.workspace)
    return si, azurite, root


def test_submit_status_logs_completed_on_a_compute_cluster(cluster_world):
    si, azurite, root = cluster_world
    si.add_compute("gpu-cluster", vm_size="Standard_NC6s_v3", max_nodes=2)
    env = sing_env(root, si, azurite)
    job = submit(env, SubmitRequest(target="gpu", command="python train.py"))
    name = only_job(si)
    body = si.job_body(name)["properties"]
    assert body["computeId"] == f"{si.workspace_id}/computes/gpu-cluster"  # the SDK's resolution of azureml:NAME
    assert body["resources"] == {"instanceCount": 2, "properties": {}}  # the SDK sends an empty properties map
    assert "queueSettings" not in body or not body["queueSettings"]
    assert not si.state.unhandled, si.state.unhandled
    asked = [(r.method, r.path, r.query.get("api-version")) for r in si.state.request_log if "/computes/" in r.path]
    assert asked == [("GET", f"{si.workspace_id}/computes/gpu-cluster", "2023-08-01-preview")]  # the preflight, once
    si.set_status(name, "Running")
    si.append_log(name, "epoch 1 loss 0.5\n", file="user_logs/std_log_process_0.txt")
    assert control.status(env, job.id)["runs"][0]["status"] == "running", env.stderr.getvalue()
    _, stored, backend = control.open_job(env, job.id)
    assert "epoch 1 loss 0.5\n" in "".join(backend.logs(stored, f"{job.id}.1"))
    si.set_status(name, "Completed")
    assert control.status(env, job.id)["runs"][0]["status"] == "completed"


@pytest.mark.parametrize("cluster, key, words", [
    (None, "compute", "Azure ML workspace singkit-ws has no compute `gpu-cluster`; create it (`az ml compute create "
                      "--type amlcompute --name gpu-cluster --size Standard_NC6s_v3 --max-instances 2"),
    ({"max_nodes": 1}, "nodes", "compute cluster `gpu-cluster` scales to at most 1 node(s)"),
    ({"vm_size": "Standard_ND96amsr_A100_v4"}, "vm-size", "compute cluster `gpu-cluster` runs Standard_ND96amsr_A100_v4, "
                                                          "not `Standard_NC6s_v3`"),
    ({"tier": "dedicated"}, "low-pri", "`low-pri: true` but compute cluster `gpu-cluster` runs dedicated VMs"),
])
def test_submit_checks_the_cluster_first_and_queues_nothing(cluster_world, cluster, key, words):
    si, azurite, root = cluster_world
    line = {"compute": 28, "vm-size": 29, "nodes": 30, "low-pri": 32}[key]
    (root / "configs" / "singkit.yaml").write_text((root / "configs" / "singkit.yaml").read_text() + "    low-pri: true\n")
    if cluster is not None:
        si.add_compute("gpu-cluster", **{"max_nodes": 4, "tier": "low_priority", **cluster})
    env = sing_env(root, si, azurite)
    with pytest.raises(ConfigError) as caught:
        submit(env, SubmitRequest(target="gpu", command="python train.py"))
    [problem] = caught.value.problems
    assert problem.line == line and words in problem.message, (problem, problem.message)
    assert si.jobs == {}


def test_a_low_priority_cluster_takes_low_pri(cluster_world):
    si, azurite, root = cluster_world
    (root / "configs" / "singkit.yaml").write_text((root / "configs" / "singkit.yaml").read_text() + "    low-pri: true\n")
    si.add_compute("gpu-cluster", max_nodes=2, tier="low_priority")
    submit(sing_env(root, si, azurite), SubmitRequest(target="gpu", command="python train.py"))
    body = si.job_body(only_job(si))["properties"]
    assert "lowPri" not in str(body) and "LowPriority" not in str(body)  # never sent: the cluster's tier decides


def test_the_stand_in_fails_what_the_service_fails(azureml_standin):  # noqa: F811
    """Through the SDK alone: a compute the workspace lacks, more nodes than the cluster's maximum;
    an AISuperComputer block on a cluster job is accepted and ignored (no public source shows a refusal)."""
    from azure.ai.ml import command
    from azure.ai.ml.entities import Environment as AmlEnvironment

    si = azureml_standin
    si.add_compute("small", max_nodes=1)
    ml = si.ml_client(retry_total=0)
    image = AmlEnvironment(image=f"singkit.azurecr.io/research/torch@sha256:{DIGEST}")

    def job(compute: str, nodes: int, properties: dict | None = None) -> str:
        made = command(command="echo hi", environment=image, compute=compute, instance_count=nodes)
        if properties:
            made.resources.properties = properties
        return ml.jobs.create_or_update(made).name

    missing = job("nowhere", 1)
    assert (si.jobs[missing].status, si.jobs[missing].error["message"]) == ("Failed", "AzureMLCompute cluster nowhere does not exist")
    too_many = job("small", 3)
    assert si.jobs[too_many].error["message"] == "Requested 3 nodes but AzureMLCompute cluster only has 1 maximum nodes."
    fine = job("small", 1, {"AISuperComputer": {"slaTier": "Premium"}})
    assert si.jobs[fine].status != "Failed"
    assert si.job_body(fine)["properties"]["resources"]["properties"] == {"AISuperComputer": {"slaTier": "Premium"}}
