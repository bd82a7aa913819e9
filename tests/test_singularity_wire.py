"""Golden tests of the wire JSON: the job body the pinned azure-ai-ml PUTs to Azure ML, for the
shapes that matter on Singularity. The body is what changes across SDK versions, and what the
service judges; the stand-in records it as received.

Volatile parts are normalized: the code asset's id (a new UUID per upload), git properties the
SDK adds from the working folder, and the in-job wrapper command (asserted separately: it must hold
the user's command). Set SINGKIT_UPDATE_GOLDEN=1 to rewrite the files after an
intended change, and read the diff.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import pytest
from azureml_standin.fixtures import azureml_standin  # noqa: F401  (the fixture)

from singkit.environment import Environment
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit

GOLDEN = Path(__file__).resolve().parent / "golden" / "wire"
DIGEST = "cd" * 32

CASES = {
    # name: (target record lines, command)
    "one-node-one-gpu": ("vm-size: NC6_v3\n    sla: premium", "python train.py"),
    "two-nodes-eight-gpus-per-gpu": ("vm-size: ND96amrs_A100_v4\n    nodes: 2\n    processes-per-node: gpus\n    sla: standard\n    priority: high",
                                     "python train.py"),
    "launcher-one-process-per-node": ("vm-size: ND96r_H100_v5\n    nodes: 2\n    location: eastus",
                                      "torchrun --nnodes 2 --nproc_per_node 8 train.py"),
    "amd-mi300x": ("vm-size: ND96isr_MI300X_v5\n    docker: rocm\n    sla: basic", "python train.py"),
    "registered-environment": ("vm-size: D4_v3\n    docker: registered", "python train.py"),
    "registry-environment": ("vm-size: D4_v3\n    docker: curated", "python train.py"),
    "group-policy": ("vm-size: ND12_H100_v5\n    group-policy: gp-research\n    locations: [eastus, westus3]\n"
                     "    tensorboard-log-dir: /scratch/tensorboard_logs", "python train.py"),
    # singkit.mounts: CLI v2 inputs/outputs, uri_folder, ro_mount / rw_mount; one output folder per run
    # Azure ML compute clusters (singkit.singularity.amlcompute): compute azureml:NAME → the compute's ARM
    # id, instance_count only, no AISuperComputer block, no queue settings; low-pri is the cluster's tier
    "compute-cluster": ("service: aml-ws\n    compute: gpu-cluster\n    vm-size: Standard_NC6s_v3", "python train.py"),
    "compute-cluster-low-pri-two-nodes": ("service: aml-ws\n    compute: azureml:spot-cluster\n    vm-size: Standard_ND96amsr_A100_v4\n"
                                          "    nodes: 2\n    processes-per-node: 8\n    low-pri: true", "python train.py"),
    # max-run-seconds → CLI v2 `limits.timeout` (seconds) → the body's limits {jobLimitsType: Command,
    # timeout: ISO 8601} (azure-ai-ml entities/_job/job_limits.py CommandJobLimits._to_rest_object)
    "run-time-limit": ("vm-size: NC6_v3\n    max-run-seconds: 7200", "python train.py"),
    "data-inputs-outputs": ("vm-size: NC6_v3\n    inputs:\n      data: azureml://datastores/training/paths/mnist\n"
                            "      extra: https://singkitdata.blob.core.windows.net/corpora/wiki\n"
                            "    outputs:\n      ckpt: azureml://datastores/training/paths/checkpoints", "python train.py"),
}


def project(root: Path, si, case: str) -> Path:
    target, _ = CASES[case]
    if "docker:" not in target:
        target += "\n    docker: torch"
    if "service:" not in target:
        target = "service: ws\n    compute: singkit-vc\n    " + target
    (root / "configs").mkdir(parents=True)
    (root / "train.py").write_text("print('training')\n")
    (root / "configs" / "singkit.yaml").write_text(f"""\
general:
  experiment: wire
external-services:
  ws:
    type: singularity
    subscription-id: {si.subscription_id}
    resource-group: {si.resource_group}
    workspace: {si.workspace}
  aml-ws:
    type: aml
    subscription-id: {si.subscription_id}
    resource-group: {si.resource_group}
    workspace: {si.workspace}
  singkit-vc:
    type: virtual_cluster
    subscription-id: {si.subscription_id}
    resource-group: {si.resource_group}
  acr:
    type: registry
    login-server: singkit.azurecr.io
dockers:
  torch:
    image: research/torch:2.1
    registry: acr
    sha256: {DIGEST}
  rocm:
    image: research/rocm:6.1
    registry: acr
    sing-wrap: true
    sha256: {DIGEST}
  registered:
    image: azureml:research-torch:3
  curated:
    image: azureml://registries/azureml/environments/sklearn-1.5/versions/34
compute-targets:
  sing:
    {target}
""")
    return root


def normalized(body: dict, command: str) -> dict:
    props = body["properties"]
    assert command in props["command"], props["command"]
    props["command"] = "<singkit in-job wrapper> " + command
    if props.get("codeId"):
        props["codeId"] = re.sub(r"/codes/[^/]+/versions/", "/codes/<upload>/versions/", props["codeId"])
    props["properties"] = {k: v for k, v in (props.get("properties") or {}).items()
                           if not k.startswith(("mlflow.source.git", "azureml.git"))}
    for output in (props.get("outputs") or {}).values():  # a run's folder is named after its (random) job name
        output["uri"] = re.sub(r"/singkit-job\d+-\d+-[0-9a-f]{8}$", "/<job name>", output["uri"])
    return body


@pytest.mark.parametrize("case", list(CASES))
def test_wire_json(azureml_standin, tmp_path, case):  # noqa: F811
    si = azureml_standin
    si.add_datastore("training")
    si.add_compute("gpu-cluster", vm_size="Standard_NC6s_v3", max_nodes=4)
    si.add_compute("spot-cluster", vm_size="Standard_ND96amsr_A100_v4", max_nodes=2, tier="low_priority")
    root = project(tmp_path / "proj", si, case)
    token = si.credential().get_token(si.url + "/.default").token
    environ = {**os.environ, "HOME": str(root / "home"), "SINGKIT_HOME": str(root / ".singkit"),
               "SINGKIT_AZURE_TOKEN": token, "SINGKIT_RETRY_BASE_DELAY": "0.01"}
    environ.pop("SINGKIT_CONFIG", None)
    env = Environment(project_root=root, environ=environ, stdout=io.StringIO(), stderr=io.StringIO())
    _, command = CASES[case]
    submit(env, SubmitRequest(target="sing", command=command))
    [name] = list(si.jobs)
    assert si.jobs[name].status != "Failed", si.jobs[name].error  # the stand-in's cluster offers the size
    if "inputs:" in CASES[case][0]:  # the mount paths reach the program through the command, which Azure ML substitutes
        assert si.job_body(name)["properties"]["command"].startswith(
            'export SINGKIT_INPUT_DATA="${{inputs.data}}" SINGKIT_DATA_DIR="${{inputs.data}}" SINGKIT_INPUT_EXTRA="${{inputs.extra}}" '
            'SINGKIT_OUTPUT_CKPT="${{outputs.ckpt}}" SINGKIT_OUTPUT_DIR="${{outputs.ckpt}}" && ')
    body = json.dumps(normalized(si.job_body(name), command), indent=2, sort_keys=True) + "\n"
    golden = GOLDEN / f"{case}.json"
    if os.environ.get("SINGKIT_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(body)
    assert body == golden.read_text(), f"the body PUT for {case} differs from {golden}"
