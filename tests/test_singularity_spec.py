"""Singularity job specs: golden YAML for two targets, the SDK's offline validation, and the
checks singkit makes that azure-ai-ml does not (vm-size, sla, priority, AISuperComputer keys).

Set SINGKIT_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from singkit.backends.singularity import aisc, skus, spec
from singkit.config import load_config
from singkit.environment import Environment
from singkit.exceptions import ConfigError, UsageError

GOLDEN = Path(__file__).resolve().parent / "golden" / "singularity"
DIGEST = "0123456789abcdef" * 4

CONFIG = f"""\
external-services:
  msrresrchws:                       # the Azure ML workspace the virtual clusters are attached to
    type: singularity
    subscription-id: 22da88f6-1210-4de2-a5a3-da4c7c2a1213
    resource-group: gcr-singularity-resrch
  msrresrchvc:                       # the virtual cluster lives in its own subscription
    type: virtual_cluster
    subscription-id: 11111111-2222-4333-8444-555555555555
    resource-group: gcr-singularity
  myacr:
    type: registry
    login-server: myacr.azurecr.io
dockers:
  pytorch:
    image: research/pytorch:2.1
    registry: myacr
    sha256: {DIGEST}
  unpinned:
    image: research/pytorch:2.1
    registry: myacr
setups:
  train:
    pip: [tqdm==4.66.1]
    pre-cmds: [nvidia-smi]
    env: {{OMP_NUM_THREADS: 4, SHARED: from-setup}}
compute-targets:
  eus-v100:
    service: msrresrchws
    compute: msrresrchvc
    vm-size: NC6s_v3
    location: eastus
    nodes: 1
    sla: premium
    setup: train
    docker: pytorch
    env: {{SHARED: from-target}}
  a100x2:
    service: msrresrchws
    compute: msrresrchvc
    vm-size: Singularity.ND96amsr_A100_v4
    nodes: 2
    sla: standard
    priority: high
    docker: pytorch
  beside-ws:
    service: msrresrchws
    compute: othervc
    vm-size: singularity.nd40rs_v2
    docker: pytorch
    scale-policy: {{maxInstanceCount: 4}}
  loose:
    service: msrresrchws
    compute: msrresrchvc
    vm-size: D4s_v3
    docker: unpinned
"""


@pytest.fixture
def cfg(tmp_path: Path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "singkit.yaml").write_text(CONFIG)
    env = Environment(project_root=tmp_path, environ={"HOME": str(tmp_path / "home")},
                      stdout=io.StringIO(), stderr=io.StringIO())
    return load_config(env)


def build(cfg, target: str, **kw):
    return spec.build_spec(cfg, cfg.target(target), job_id="job7", run_id="job7.1", command="python train.py --epochs 3",
                           name="singkit-job7-1-0f3a9c", extra_env={"SINGKIT_JOB": "job7", "SINGKIT_RUN": "job7.1"}, **kw)


def check_golden(written: Path, name: str) -> None:
    golden = GOLDEN / name
    if os.environ.get("SINGKIT_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(written.read_text())
    assert written.read_text() == golden.read_text(), f"{written} differs from {golden}"


@pytest.mark.parametrize("target, golden", [("eus-v100", "eus-v100.yaml"), ("a100x2", "a100x2.yaml")])
def test_golden_spec_loads_and_validates_with_the_sdk(cfg, tmp_path, target, golden):
    (tmp_path / "job" / "code").mkdir(parents=True)
    written = spec.write_spec(tmp_path / "job" / "job7.1.yaml", build(cfg, target))
    check_golden(written, golden)
    job = spec.load_spec(written)  # azure.ai.ml.load_job + _validate(), no network
    assert job._validate().passed


def test_one_node_one_gpu_target(cfg):
    s = build(cfg, "eus-v100")
    assert s["compute"] == ("/subscriptions/11111111-2222-4333-8444-555555555555/resourceGroups/gcr-singularity"
                            "/providers/Microsoft.MachineLearningServices/virtualclusters/msrresrchvc")
    assert s["resources"]["instance_type"] == "Singularity.NC6s_v3"
    assert s["resources"]["instance_count"] == 1
    block = s["resources"]["properties"]["AISuperComputer"]
    assert (block["slaTier"], block["priority"], block["interactive"]) == ("Premium", "Medium", False)
    assert block["scalePolicy"] == {"autoScaleIntervalInSec": 120, "maxInstanceTypeCount": 1, "minInstanceTypeCount": 1}
    assert s["queue_settings"] == {"job_tier": "premium", "priority": "medium"}
    assert "distribution" not in s  # one process on one GPU
    assert s["environment"] == {"image": f"myacr.azurecr.io/research/pytorch@sha256:{DIGEST}"}
    # setup env, then target env (wins), then singkit's own; all strings
    assert s["environment_variables"] == {"OMP_NUM_THREADS": "4", "SHARED": "from-target", "SINGKIT_JOB": "job7", "SINGKIT_RUN": "job7.1"}
    assert s["command"] == "nvidia-smi && python -m pip install --no-input -q tqdm==4.66.1 && python train.py --epochs 3"
    assert s["tags"]["singkit.job"] == "job7" and s["display_name"] == "job7.1"
    assert s["experiment_name"] == "singkit"


def test_two_nodes_of_eight_gpus_get_pytorch_distribution(cfg):
    s = build(cfg, "a100x2")
    assert s["resources"]["instance_count"] == 2
    assert s["resources"]["instance_type"] == "Singularity.ND96amsr_A100_v4"
    assert s["distribution"] == {"type": "pytorch", "process_count_per_instance": 8}
    assert s["resources"]["properties"]["AISuperComputer"]["scalePolicy"]["minInstanceTypeCount"] == 2
    assert s["queue_settings"] == {"job_tier": "standard", "priority": "high"}


def test_compute_beside_the_workspace_and_size_in_any_spelling(cfg):
    target = cfg.target("beside-ws")
    target["scale-policy"] = {"max-instance-type-count": 4, "autoScaleInstanceTypeCountSet": [1, 2, 4]}
    s = spec.build_spec(cfg, target, job_id="job1", run_id="job1.1", command="true", name="n")
    assert s["compute"].startswith("/subscriptions/22da88f6-1210-4de2-a5a3-da4c7c2a1213/resourceGroups/gcr-singularity-resrch/")
    assert s["compute"].endswith("/virtualclusters/othervc")
    assert s["resources"]["instance_type"] == "Singularity.ND40rs_v2"
    policy = s["resources"]["properties"]["AISuperComputer"]["scalePolicy"]
    assert policy["maxInstanceTypeCount"] == 4 and policy["autoScaleInstanceTypeCountSet"] == [1, 2, 4]
    assert s["distribution"]["process_count_per_instance"] == 8  # one node, 8 GPUs


def test_unknown_vm_size_names_the_closest(tmp_path):
    bad = CONFIG + "  bad-size:\n    service: msrresrchws\n    compute: msrresrchvc\n    vm-size: ND40r_v2\n    docker: pytorch\n"
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "singkit.yaml").write_text(bad)
    with pytest.raises(ConfigError) as caught:  # config.validate and every task that loads the config say so
        load_config(Environment(project_root=tmp_path, environ={"HOME": str(tmp_path)}))
    message = str(caught.value)
    assert "vm-size `ND40r_v2` is not in the SKU catalog; did you mean `ND40rs_v2`" in message
    assert "singkit.yaml:" in message  # located at the key in the user's file


def test_wrong_aisupercomputer_key_is_refused_with_a_suggestion(cfg):
    with pytest.raises(ConfigError, match=r"unknown key `maxInstanceCount` in scale-policy; did you mean `maxInstanceTypeCount`\?"):
        build(cfg, "beside-ws")
    target = cfg.target("a100x2")
    target["ai-super-computer"] = {"tensorboardLogDirectory": "/tb", "slaTeir": "Basic"}
    with pytest.raises(ConfigError, match=r"unknown key `slaTeir` in ai-super-computer; did you mean `slaTier`\?"):
        spec.build_spec(cfg, target, job_id="job1", run_id="job1.1", command="true", name="n")
    target["ai-super-computer"] = {"tensorboard_log_directory": "/tb", "enableAzmlInt": True}
    block = spec.build_spec(cfg, target, job_id="job1", run_id="job1.1", command="true", name="n")["resources"]["properties"]["AISuperComputer"]
    assert block["tensorboardLogDirectory"] == "/tb" and block["enableAzmlInt"] is True


def test_wrong_sla_and_priority_are_refused(cfg, tmp_path):
    target = cfg.target("a100x2")
    target.update(sla="premum", priority="urgent")
    with pytest.raises(ConfigError) as caught:
        spec.build_spec(cfg, target, job_id="job1", run_id="job1.1", command="true", name="n")
    assert "sla `premum` is not a Singularity SLA tier; did you mean `premium`?" in str(caught.value)
    assert "priority `urgent` is not a Singularity priority; expected low, medium or high" in str(caught.value)
    # and the config loader already refuses them in a file
    text = CONFIG.replace("sla: standard", "sla: premum")
    (tmp_path / "configs" / "singkit.yaml").write_text(text)
    with pytest.raises(ConfigError, match="premum"):
        load_config(Environment(project_root=tmp_path, environ={"HOME": str(tmp_path)}, stdout=io.StringIO(), stderr=io.StringIO()))


def test_unpinned_image_is_refused_unless_allowed(cfg):
    with pytest.raises(UsageError, match=r"not pinned by digest.*invoke image.wrap --docker=unpinned.*--allow-unpinned"):
        build(cfg, "loose")
    s = build(cfg, "loose", allow_unpinned=True)
    assert s["environment"]["image"] == "myacr.azurecr.io/research/pytorch:2.1"
    assert "distribution" not in s  # CPU, one node


def test_sku_catalog_lookup_and_catalog_contents(cfg):
    catalog = cfg.skus
    for name, gpus, kind in [("ND40rs_v2", 8, "V100"), ("NC24ads_A100_v4", 1, "A100"), ("ND96asr_v4", 8, "A100"),
                             ("ND96amsr_A100_v4", 8, "A100"), ("ND96isr_H100_v5", 8, "H100"), ("NC6s_v3", 1, "V100"),
                             ("NC12s_v3", 2, "V100"), ("NC24s_v3", 4, "V100"), ("ND40s_v3", 8, "V100")]:
        found = skus.find_sku(catalog, f"Singularity.{name.upper()}")
        assert found and found[0] == name and found[1]["gpus"] == gpus and found[1]["gpu-type"] == kind
        assert found[1]["price-per-hour"] > 0 and found[1]["memory-gb"] > 0
    assert skus.find_sku(catalog, "D4s_v3")[1]["gpus"] == 0
    assert skus.closest_sizes(catalog, "Standard_ND96asr_v4")[0] == "ND96asr_v4"
    assert skus.describe("ND40rs_v2", catalog["ND40rs_v2"]) == "ND40rs_v2: 8 x V100 32GB, 40 CPUs, 672 GB, ~$22.03/h"


def test_aisupercomputer_normalization():
    fixed, problems = aisc.normalize({"image_version": "pytorch-2", "SLATier": "premium", "scalePolicy": {"min-instance-type-count": 1}})
    assert problems == []
    assert fixed == {"imageVersion": "pytorch-2", "slaTier": "Premium", "scalePolicy": {"minInstanceTypeCount": 1}}
    _, problems = aisc.normalize({"interactive": "yes", "scalePolicy": {"minInstanceTypeCount": 3, "maxInstanceTypeCount": 2}})
    assert any("`interactive` in AISuperComputer must be true or false" in p for p in problems)
    assert any("minInstanceTypeCount (3) is above maxInstanceTypeCount (2)" in p for p in problems)


def test_compute_forms(cfg):
    ws = spec.workspace_for(cfg, cfg.target("a100x2"))
    full = "/subscriptions/s/resourceGroups/r/providers/Microsoft.MachineLearningServices/virtualclusters/v"
    assert spec.compute_id(cfg, {"compute": full}, ws) == full
    with pytest.raises(UsageError, match="full ARM id"):
        spec.compute_id(cfg, {"compute": "azureml://virtualclusters/v"}, ws)


def test_wrapped_images_are_the_ones_image_wrap_pushes(cfg):
    wrapped = {**cfg.docker("pytorch"), "sing-wrap": True}
    assert spec.image_reference(cfg, wrapped) == f"myacr.azurecr.io/research/pytorch@sha256:{DIGEST}"
    wrapped["wrapped-image"] = "research/pytorch-sing:v1"
    assert spec.image_reference(cfg, wrapped) == f"myacr.azurecr.io/research/pytorch-sing@sha256:{DIGEST}"
    with pytest.raises(UsageError, match="unpinned.*not pinned by digest"):
        spec.image_reference(cfg, {**cfg.docker("unpinned"), "sing-wrap": True})
    assert spec.image_reference(cfg, {**cfg.docker("unpinned"), "sing-wrap": True}, allow_unpinned=True) == \
        "myacr.azurecr.io/research/pytorch:2.1-sing"
