"""Singularity job specs as the service takes them: real instance-type names, processes per node,
compute forms, registered environments, AMD sizes, AISuperComputer keys, identities — and a
config.validate that reports exactly what submit would refuse, scoped to the target used.

Inputs marked A–E are the issue's small inputs; the targets marked XT are XT's own factory
targets (xtlib 0.0.342, xtlib/helpers/factory_config.yaml). Set SINGKIT_UPDATE_GOLDEN=1 to
rewrite the golden YAML files after an intended change.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from singkit import configcheck
from singkit.backends.singularity import spec
from singkit.config import load_config
from singkit.environment import Environment
from singkit.exceptions import ConfigError
from singkit.singularity import accelerator as accelerators, aisc, catalog, target as targets

GOLDEN = Path(__file__).resolve().parent / "golden" / "singularity"
DIGEST = "0123456789abcdef" * 4
VC = "/subscriptions/11111111-2222-4333-8444-555555555555/resourceGroups/gcr-singularity/providers/Microsoft.MachineLearningServices/virtualclusters/msrresrchvc"

CONFIG = f"""\
general:
  experiment: sing-tests
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
  rocm:
    image: research/rocm:6.1
    registry: myacr
    sing-wrap: true
    sha256: {DIGEST}
  unpinned:
    image: research/pytorch:2.1
    registry: myacr
  sklearn-env:                       # E: a registered Azure ML environment
    image: "azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu:33"
    sing-wrap: false
setups:
  train:
    pip: [tqdm==4.66.1]
    pre-cmds: [nvidia-smi]
    env: {{OMP_NUM_THREADS: 4, SHARED: from-setup}}
compute-targets:
  eus-v100:
    service: msrresrchws
    compute: msrresrchvc
    vm-size: NC6_v3
    location: eastus
    nodes: 1
    sla: premium
    setup: train
    docker: pytorch
    env: {{SHARED: from-target}}
  a100x2:
    service: msrresrchws
    compute: msrresrchvc
    vm-size: Singularity.ND96amrs_A100_v4
    nodes: 2
    processes-per-node: gpus
    sla: standard
    priority: high
    docker: pytorch
  h100x2:                            # B: a launcher starts its own workers
    service: msrresrchws
    compute: myvc
    vm-size: ND96r_H100_v5
    nodes: 2
    docker: pytorch
  mi300:
    service: msrresrchws
    compute: msrresrchvc
    vm-size: ND96isr_MI300X_v5
    locations: [eastus2, westus3]
    docker: rocm
    group-policy: gp-research
    ai-super-computer: {{enableAzmlInt: false, mysteryKnob: 3}}
  sklearn:
    service: msrresrchws
    compute: "azureml://subscriptions/11111111-2222-4333-8444-555555555555/resourceGroups/gcr-singularity/virtualclusters/msrresrchvc"
    vm-size: D4_v3
    docker: sklearn-env
  loose:
    service: msrresrchws
    compute: msrresrchvc
    vm-size: D4_v3
    docker: unpinned
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "singkit.yaml").write_text(CONFIG)
    return tmp_path


def env_for(project: Path) -> Environment:
    return Environment(project_root=project, environ={"HOME": str(project / "home")},
                       stdout=io.StringIO(), stderr=io.StringIO())


def config_of(project: Path, text: str | None = None):
    if text is not None:
        (project / "configs" / "singkit.yaml").write_text(text)
    return load_config(env_for(project))


@pytest.fixture
def cfg(project: Path):
    return config_of(project)


def build(cfg, target: str, **kw):
    record = cfg.target(target)
    kw.setdefault("setup", cfg.setup(record["setup"]) if record.get("setup") else None)
    return spec.build_spec(cfg, record, job_id="job7", run_id="job7.1", command="python train.py --epochs 3",
                           name="singkit-job7-1-0f3a9c", extra_env={"SINGKIT_JOB": "job7", "SINGKIT_RUN": "job7.1"}, **kw)


def check_golden(written: Path, name: str) -> None:
    golden = GOLDEN / name
    if os.environ.get("SINGKIT_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(written.read_text())
    assert written.read_text() == golden.read_text(), f"{written} differs from {golden}"


@pytest.mark.parametrize("target, golden", [("eus-v100", "eus-v100.yaml"), ("a100x2", "a100x2.yaml"),
                                            ("mi300", "mi300.yaml"), ("sklearn", "sklearn.yaml")])
def test_golden_spec_loads_and_validates_with_the_sdk(cfg, tmp_path, target, golden):
    (tmp_path / "job" / "code").mkdir(parents=True)
    written = spec.write_spec(tmp_path / "job" / "job7.1.yaml", build(cfg, target))
    check_golden(written, golden)
    job = spec.load_spec(written)  # azure.ai.ml.load_job + _validate(), no network
    assert job._validate().passed


def test_one_node_one_gpu_target_has_no_distribution(cfg):
    s = build(cfg, "eus-v100")
    assert s["compute"] == VC
    assert s["resources"]["instance_type"] == "Singularity.NC6_v3"
    assert s["resources"]["instance_count"] == 1
    assert s["resources"]["locations"] == ["eastus"]  # the SDK's own field, not inside AISuperComputer
    block = s["resources"]["properties"]["AISuperComputer"]
    assert "locations" not in block
    assert (block["slaTier"], block["priority"], block["interactive"]) == ("Premium", "Medium", False)
    assert block["scalePolicy"] == {"autoScaleIntervalInSec": 120, "maxInstanceTypeCount": 1, "minInstanceTypeCount": 1}
    assert s["queue_settings"] == {"job_tier": "premium", "priority": "medium"}
    assert "distribution" not in s
    assert s["environment"] == {"image": f"myacr.azurecr.io/research/pytorch@sha256:{DIGEST}"}
    assert s["environment_variables"] == {"OMP_NUM_THREADS": "4", "SHARED": "from-target", "SINGKIT_JOB": "job7", "SINGKIT_RUN": "job7.1"}
    assert s["experiment_name"] == "sing-tests"
    assert s["command"] == "nvidia-smi && python -m pip install --no-input -q tqdm==4.66.1 && python train.py --epochs 3"


def test_processes_per_node_gpus_starts_one_per_gpu(cfg):
    s = build(cfg, "a100x2")
    assert s["resources"]["instance_type"] == "Singularity.ND96amrs_A100_v4"  # A: written as the service spells it
    assert s["distribution"] == {"type": "pytorch", "process_count_per_instance": 8}
    assert s["resources"]["properties"]["AISuperComputer"]["scalePolicy"]["minInstanceTypeCount"] == 2


def test_a_launcher_on_two_eight_gpu_nodes_gets_one_process_per_node(cfg):
    # B: `torchrun --nnodes 2 --nproc_per_node 8 train.py` starts its own 8 workers per node
    s = build(cfg, "h100x2")
    assert s["distribution"] == {"type": "pytorch", "process_count_per_instance": 1}
    assert s["resources"]["instance_count"] == 2
    target = {**cfg.target("h100x2"), "nodes": 1}
    one = spec.build_spec(cfg, target, job_id="j", run_id="j.1", command="python train.py", name="n")
    assert "distribution" not in one  # one node x one process: nothing to distribute


@pytest.mark.parametrize("value, expected", [(4, 4), ("gpus", 8), ("GPUS", 8), (1, None)])
def test_processes_per_node_values(cfg, value, expected):
    target = {**cfg.target("h100x2"), "nodes": 1, "processes-per-node": value}
    s = spec.build_spec(cfg, target, job_id="j", run_id="j.1", command="python train.py", name="n")
    assert (s.get("distribution") or {}).get("process_count_per_instance") == expected


def test_bad_processes_per_node_is_located(project):
    text = CONFIG.replace("    processes-per-node: gpus\n", "    processes-per-node: all\n")
    problems = configcheck.all_problems(config_of(project, text))
    line = text.splitlines().index("    processes-per-node: all") + 1
    bad = [p for p in problems if "processes-per-node" in p.message]
    assert [(p.line, p.warning) for p in bad] == [(line, False)]
    assert "whole number of at least 1 or `gpus`, not `all`" in bad[0].message


def test_gpus_on_a_size_singkit_does_not_know_asks_for_a_number(project):
    text = CONFIG.replace("vm-size: Singularity.ND96amrs_A100_v4", "vm-size: ND128_Z900_v9")
    cfg = config_of(project, text)
    problems = targets.resolve(cfg, cfg.target("a100x2")).problems
    assert any(not p.warning and "needs to know how many GPUs `ND128_Z900_v9` has" in p.message for p in problems)
    assert any(p.warning and "not in singkit's instance-type catalog" in p.message for p in problems)


# -- the catalog ---------------------------------------------------------------------------------------
# XT's factory targets (xtlib 0.0.342 factory_config.yaml) and names from public job files
REAL_SIZES = [("NC6_v3", 1, "V100", "NVIDIA"), ("ND5_v2g1", 1, "V100", "NVIDIA"), ("ND40s_v2g1", 8, "V100", "NVIDIA"),
              ("ND40rs_v2", 8, "V100", "NVIDIA"), ("ND96amrs_A100_v4", 8, "A100", "NVIDIA"),
              ("ND96amr_A100_v4", 8, "A100", "NVIDIA"), ("ND12am_A100_v4", 1, "A100", "NVIDIA"),
              ("ND48am_A100_v4", 4, "A100", "NVIDIA"), ("ND96_v4", 8, "A100", "NVIDIA"), ("ND96rs_v4", 8, "A100", "NVIDIA"),
              ("NC24ad_A100_v4", 1, "A100", "NVIDIA"), ("ND12_H100_v5", 1, "H100", "NVIDIA"),
              ("ND96_H100_v5", 8, "H100", "NVIDIA"), ("ND96r_H100_v5", 8, "H100", "NVIDIA"),
              ("ND96r_H200_v5", 8, "H200", "NVIDIA"), ("ND48as_MI200_v4", 8, "MI200", "AMD"),
              ("ND96isr_MI300X_v5", 8, "MI300X", "AMD"), ("ND96isr_MI300X_v5-n1", 8, "MI300X", "AMD"),
              ("ND96am_A100_v4-n1", 8, "A100", "NVIDIA"), ("D4_v3", 0, "none", "none")]


@pytest.mark.parametrize("name, gpus, kind, vendor", REAL_SIZES)
def test_real_singularity_names_are_in_the_catalog(cfg, name, gpus, kind, vendor):
    found = catalog.find(cfg.skus, f"Singularity.{name}")
    assert found and found[0] == name
    record = found[1]
    assert (record["gpus"], record["gpu-type"], catalog.vendor(record)) == (gpus, kind, vendor)
    assert record["source"] and record["family"]  # every family cites its public source


def test_every_catalog_family_cites_a_known_source():
    shipped = catalog.shipped()
    text = catalog.DATA.read_text()
    for name, record in shipped.items():
        assert record["evidence"] in ("job", "table"), name
        for source in record["source"]:
            assert f"#   {source}: " in text, f"{name} cites {source}, which the file's header does not define"


def test_azure_vm_spellings_are_not_singularity_names(cfg):
    # Singularity spells the 8 x A100 80GB size ND96amrs; the Azure VM is ND96amsr (HSPK/azure_jobs 71e5c15)
    for azure_name in ("ND96amsr_A100_v4", "ND96asr_v4", "NC6s_v3", "ND96isr_H100_v5"):
        assert catalog.find(cfg.skus, azure_name) is None


@pytest.mark.parametrize("typed, first", [
    ("ND12_H100_v6", "ND12_H100_v5"),          # a 1 x H100 size: never an 8-GPU one
    ("ND96isr_H100_v5", "ND96r_H100_v5"),      # the Azure VM spelling of the 8 x H100 IB size
    ("ND96isr_MI300X_v4", "ND96isr_MI300X_v5"),  # an AMD size: never an NVIDIA one
    ("ND48am_A100_v3", "ND48am_A100_v4"),
])
def test_hints_keep_the_gpu_count_and_vendor(cfg, typed, first):
    near = catalog.nearest(cfg.skus, typed)
    assert near[0] == first
    want = catalog.gpu_token(typed)
    assert all(catalog.gpu_token(n) == want for n in near)
    assert all(catalog.vendor(cfg.skus[n]) == catalog.vendor(None, typed) for n in near)


def test_unknown_size_is_a_warning_with_the_nearest_names(project):
    text = CONFIG.replace("vm-size: ND96r_H100_v5", "vm-size: ND12_H100_v6")
    problems = configcheck.all_problems(config_of(project, text))
    line = text.splitlines().index("    vm-size: ND12_H100_v6") + 1
    [warning] = [p for p in problems if "ND12_H100_v6" in p.message]
    assert warning.warning and warning.line == line and warning.col == 14
    assert "nearest known: `ND12_H100_v5`" in warning.message
    assert not [p for p in problems if not p.warning]


def test_config_skus_refine_the_catalog_field_by_field(project):
    text = CONFIG + "skus:\n  nd96r_h100_v5: {gpus: 4}\n  ND128_Z900_v9: {gpus: 16, gpu-type: Z900, vendor: AMD}\n"
    cfg = config_of(project, text)
    assert cfg.skus["ND96r_H100_v5"]["gpus"] == 4 and cfg.skus["ND96r_H100_v5"]["gpu-type"] == "H100"
    assert catalog.vendor(cfg.skus["ND128_Z900_v9"]) == "AMD"


# -- compute forms ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("compute, expected", [
    (VC, VC),
    ("azureml:" + VC, VC),
    ("azureml://subscriptions/11111111-2222-4333-8444-555555555555/resourceGroups/gcr-singularity/virtualclusters/msrresrchvc", VC),
    ("azureml://virtualclusters/msrresrchvc", VC),
    ("azureml:virtualClusters/msrresrchvc", VC),
    ("azureml:msrresrchvc", VC),  # CLI v2's spelling of a compute by name
    ("msrresrchvc", VC),
    ("othervc", "/subscriptions/22da88f6-1210-4de2-a5a3-da4c7c2a1213/resourceGroups/gcr-singularity-resrch/providers/"
                "Microsoft.MachineLearningServices/virtualclusters/othervc"),
])
def test_compute_forms_become_the_arm_id(cfg, compute, expected):
    resolved = targets.resolve(cfg, {**cfg.target("eus-v100"), "compute": compute})
    assert resolved.errors == [] and resolved.compute == expected


@pytest.mark.parametrize("compute, expected", [
    ("MsrResrchVC", VC.replace("msrresrchvc", "MsrResrchVC")),  # ARM matches names without regard to case
    ("azureml://virtualclusters/msrresrchvc/", VC),
    (VC + "/", VC),
])
def test_compute_spellings_that_name_the_same_cluster(cfg, compute, expected):
    resolved = targets.resolve(cfg, {**cfg.target("eus-v100"), "compute": compute})
    assert resolved.problems == [] and resolved.compute == expected


@pytest.mark.parametrize("compute, words", [
    ("myacr", "names a registry record; name a virtual_cluster record (msrresrchvc"),
    ("msrresrchvc?x=1", "is neither a virtual cluster's name"),
    ("azureml://virtualclusters/msrresrchvc/extra", "is not a virtual cluster form singkit reads"),
    ("azureml://locations/eastus/workspaces/ws/computes/myvc", "is not a virtual cluster form singkit reads"),
    ("azureml://subscriptions/notused/resourceGroups/rg/virtualclusters/vc", "must be a GUID"),
    ("/subscriptions/11111111-2222-4333-8444-555555555555/resourceGroups/rg/providers/Microsoft.MachineLearningServices/"
     "workspaces/ws", "is not a virtual cluster's ARM id"),
])
def test_compute_that_cannot_be_a_virtual_cluster_is_an_error(cfg, compute, words):
    resolved = targets.resolve(cfg, {**cfg.target("eus-v100"), "compute": compute})
    assert [words in p.message for p in resolved.errors] == [True], resolved.problems


def test_a_bare_name_with_no_record_warns_and_suggests(cfg):
    resolved = targets.resolve(cfg, {**cfg.target("eus-v100"), "compute": "msrresrchv"})
    [warning] = resolved.problems
    assert warning.warning and "did you mean `msrresrchvc`?" in warning.message
    assert "in the workspace's resource group, gcr-singularity-resrch" in warning.message
    elsewhere = targets.resolve(cfg, {**cfg.target("eus-v100"), "compute": "gpu-cluster-7"})
    assert elsewhere.problems == [] and elsewhere.compute.endswith("/gcr-singularity-resrch/providers/"
                                                                    "Microsoft.MachineLearningServices/virtualclusters/gpu-cluster-7")


def test_a_virtual_cluster_name_with_no_record_is_located(project):
    text = CONFIG.replace("compute: msrresrchvc\n    vm-size: NC6_v3", "compute: azureml://virtualclusters/vc\n    vm-size: NC6_v3")
    problems = configcheck.all_problems(config_of(project, text))
    line = text.splitlines().index("    compute: azureml://virtualclusters/vc") + 1
    [problem] = [p for p in problems if not p.warning]
    assert (problem.line, problem.col) == (line, 14)
    assert "names no virtual_cluster record; define `external-services.vc`" in problem.message
    assert "(virtual_cluster records: msrresrchvc)" in problem.message


# -- C and D: validate finds what submit would, at file:line:col ---------------------------------------
BROKEN = CONFIG + """\
  nodocker: {service: msrresrchws, compute: msrresrchvc, vm-size: ND40rs_v2}
  novmsize: {service: msrresrchws, compute: msrresrchvc, docker: pytorch}
  nocompute: {service: msrresrchws, vm-size: ND40rs_v2, docker: pytorch}
  viaxt: {service: msrresrchws, compute: vc2, vm-size: ND40rs_v2, docker: pytorch}
"""
BROKEN = BROKEN.replace("  myacr:\n", "  vc2: {type: virtual_cluster, subscription-id: notused, resource-group: notused}\n  myacr:\n")


def test_validate_reports_every_missing_piece_at_its_line(project):
    problems = [p for p in configcheck.all_problems(config_of(project, BROKEN)) if not p.warning]
    lines = BROKEN.splitlines()
    by_line = {p.line: p for p in problems}
    for name, words in [("nodocker", "has no `docker:` record and no `image-version:`"),
                        ("novmsize", "has no `vm-size`"), ("nocompute", "has no `compute`")]:
        line = next(i for i, text in enumerate(lines, 1) if text.startswith(f"  {name}:"))
        assert words in by_line[line].message, (name, by_line.get(line))
        assert by_line[line].records == (("compute-targets", name),)
    guid = next(p for p in problems if "subscription-id must be a GUID" in p.message)
    assert guid.line == next(i for i, text in enumerate(lines, 1) if text.startswith("  vc2:"))
    assert "not `notused`" in guid.message and guid.records == (("external-services", "vc2"),)
    assert all(p.line > 0 and str(p.file).endswith("singkit.yaml") for p in problems)  # never <config>:0:0


def test_a_target_is_blocked_only_by_its_own_records(project):
    cfg = config_of(project, BROKEN)
    said: list[str] = []
    configcheck.require(cfg, said.append, "compute-targets", "eus-v100")  # fine: others only warn
    assert any("nodocker" in line or "no `docker:` record" in line for line in said) is False  # not resolved: cost of one target
    assert any("subscription-id must be a GUID" in line and "does not affect this command" in line for line in said)
    with pytest.raises(ConfigError) as caught:
        configcheck.require(cfg, said.append, "compute-targets", "viaxt")  # its virtual cluster record is broken
    assert "subscription-id must be a GUID" in str(caught.value)
    with pytest.raises(ConfigError, match="has no `vm-size`"):
        configcheck.require(cfg, said.append, "compute-targets", "novmsize")


def test_submit_and_validate_agree(project):
    """Every target validate passes builds a spec; every target it fails, build_spec refuses."""
    cfg = config_of(project, BROKEN)
    failing = {r for p in configcheck.all_problems(cfg) if not p.warning for r in p.records}
    for name in cfg.targets:
        if not targets.is_singularity(cfg, cfg.target(name)):
            continue
        blocked = any(r in failing for r in configcheck.closure(cfg, "compute-targets", name))
        try:
            build(cfg, name, allow_unpinned=True)
            built = True
        except ConfigError:
            built = False
        assert built is not blocked or name == "viaxt", name  # viaxt: the GUID is only refused by the record check


def test_experiment_names_azure_ml_refuses(project, monkeypatch):
    # XT's `$username` is filled at submit (singkit.macros); `$run_id` has no value then
    monkeypatch.setenv("USER", "alice")
    assert not [p for p in configcheck.all_problems(config_of(project, CONFIG.replace(
        "experiment: sing-tests", 'experiment: "exp-$username"'))) if "experiment" in p.message]
    text = CONFIG.replace("experiment: sing-tests", 'experiment: "exp-$username-$run_id"')
    cfg = config_of(project, text)
    problems = [p for p in configcheck.all_problems(cfg) if "experiment" in p.message]
    assert problems and problems[0].line == 2 and "Azure ML refuses" in problems[0].message
    assert "(`exp-alice-$run_id` once XT's macros are expanded at submit)" in problems[0].message
    assert "singkit cannot fill $run_id at submit" in problems[0].message
    with pytest.raises(ConfigError, match="exp-\\$username"):
        configcheck.require(cfg, lambda _: None, "compute-targets", "eus-v100")


def test_broken_yaml_blocks_everything(project):
    (project / "configs" / "singkit.yaml").write_text(CONFIG + "  oops: {service: [\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(env_for(project))


def test_schema_problems_in_one_record_do_not_block_another(project):
    cfg = config_of(project, CONFIG.replace("    nodes: 2\n    processes-per-node: gpus", "    nodes: two\n    processes-per-node: gpus"))
    configcheck.require(cfg, lambda _: None, "compute-targets", "eus-v100")
    with pytest.raises(ConfigError, match="must be an integer"):
        configcheck.require(cfg, lambda _: None, "compute-targets", "a100x2")


# -- E: registered environments, and the curated image ------------------------------------------------
def test_registered_environment_is_written_as_is_and_never_pinned(cfg):
    s = build(cfg, "sklearn")
    assert s["environment"] == "azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu:33"
    assert s["compute"] == VC
    assert "distribution" not in s and s["resources"]["instance_type"] == "Singularity.D4_v3"


def test_a_malformed_environment_reference_is_located(project):
    text = CONFIG.replace('"azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu:33"', '"azureml:AzureML-sklearn"')
    problems = configcheck.all_problems(config_of(project, text))
    [problem] = [p for p in problems if "registered Azure ML environment" in p.message]
    assert problem.line == text.splitlines().index('    image: "azureml:AzureML-sklearn"') + 1
    assert "`azureml:NAME:VERSION`, `azureml:NAME@latest` or `azureml://registries/" in problem.message


@pytest.mark.parametrize("image", ["azureml://registries/azureml/environments/sklearn-1.5/versions/34",
                                   "azureml://registries/azureml/environments/acpt-pytorch-2.2-cuda12.1/labels/latest"])
def test_an_environment_in_an_azure_ml_registry_is_written_as_is(project, image):
    cfg = config_of(project, CONFIG.replace('"azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu:33"', f'"{image}"'))
    assert not [p for p in configcheck.all_problems(cfg) if "sklearn-env" in p.message or "environment" in p.message]
    assert build(cfg, "sklearn")["environment"] == image


def test_azureml_in_capitals_is_refused_at_its_line(project):
    text = CONFIG.replace('"azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu:33"', '"AzureML:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu:33"')
    problems = configcheck.all_problems(config_of(project, text))
    [problem] = [p for p in problems if "lower case" in p.message]
    assert not problem.warning and problem.line == text.splitlines().index(
        '    image: "AzureML:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu:33"') + 1


def test_image_version_without_docker_runs_in_the_curated_image(cfg):
    target = {k: v for k, v in cfg.target("eus-v100").items() if k not in ("docker", "setup")}
    target["image-version"] = "acpt-pytorch-2.0.1-py3.10-cuda11.8"
    s = spec.build_spec(cfg, target, job_id="j", run_id="j.1", command="python train.py", name="n")
    assert s["resources"]["properties"]["AISuperComputer"]["imageVersion"] == "acpt-pytorch-2.0.1-py3.10-cuda11.8"
    assert s["environment"] == {"image": spec.CURATED_PLACEHOLDER}


def test_unpinned_image_is_refused_unless_allowed(cfg):
    with pytest.raises(ConfigError, match=r"not pinned by digest.*invoke image.wrap --docker=unpinned.*--allow-unpinned") as caught:
        build(cfg, "loose")
    [problem] = caught.value.problems
    assert problem.line == CONFIG.splitlines().index("  unpinned:") + 2  # its image: line
    warned = [p for p in configcheck.all_problems(cfg) if "`unpinned` is not pinned by digest yet" in p.message]
    assert [(p.line, p.warning) for p in warned] == [(problem.line, True)]  # validate says so first
    assert build(cfg, "loose", allow_unpinned=True)["environment"]["image"] == "myacr.azurecr.io/research/pytorch:2.1"


# -- AISuperComputer, group policy, accelerator, identity ---------------------------------------------
def test_group_policy_locations_and_unknown_keys_pass_through(cfg):
    s = build(cfg, "mi300")
    block = s["resources"]["properties"]["AISuperComputer"]
    assert block["groupPolicyName"] == "gp-research"
    assert block["mysteryKnob"] == 3 and block["enableAzmlInt"] is False
    assert s["resources"]["locations"] == ["eastus2", "westus3"]
    warnings = [p for p in targets.resolve(cfg, cfg.target("mi300")).problems if p.warning]
    assert any("`mysteryKnob` in ai-super-computer is not an AISuperComputer key azure-ai-ml knows" in p.message for p in warnings)


def test_known_aisupercomputer_keys_are_still_checked(cfg):
    target = cfg.target("a100x2")
    target["ai-super-computer"] = {"interactive": "yes", "slaTier": "gold"}
    with pytest.raises(ConfigError) as caught:
        spec.build_spec(cfg, target, job_id="j", run_id="j.1", command="true", name="n")
    assert "`interactive` in ai-super-computer must be true or false" in str(caught.value)
    assert "`gold` is not a valid ai-super-computer.slaTier" in str(caught.value)
    fixed, errors, warnings = aisc.normalize({"image_version": "x", "SLATier": "premium", "slaTeir": "Basic"})
    assert fixed == {"imageVersion": "x", "slaTier": "Premium", "slaTeir": "Basic"} and errors == []
    assert warnings and warnings[0][0] == "slaTeir" and "did you mean `slaTier`?" in warnings[0][1]


def test_aisupercomputer_problems_point_at_their_own_key(project):
    text = CONFIG.replace("ai-super-computer: {{enableAzmlInt: false, mysteryKnob: 3}}".replace("{{", "{").replace("}}", "}"),
                          "ai-super-computer:\n      enableAzmlInt: false\n      slaTier: gold\n      interactive: maybe")
    assert text != CONFIG
    problems = configcheck.all_problems(config_of(project, text))
    lines = text.splitlines()
    for needle, words in (("      slaTier: gold", "`gold` is not a valid ai-super-computer.slaTier"),
                          ("      interactive: maybe", "must be true or false, not the quoted text `\"maybe\"`")):
        [problem] = [p for p in problems if words in p.message]
        assert (problem.line, problem.col) == (lines.index(needle) + 1, len(needle) - len(needle.split(": ")[1]) + 1)


def test_accelerator_follows_the_targets_that_use_the_image(project):
    cfg = config_of(project)
    assert accelerators.accelerator(cfg, "rocm") == "AMD"  # used by the MI300X target only
    assert accelerators.accelerator(cfg, "pytorch") == "NVIDIA"
    both = CONFIG.replace("    docker: rocm\n", "    docker: pytorch\n").replace("    registry: myacr\n    sha256:", "    registry: myacr\n    sing-wrap: true\n    sha256:")
    cfg = config_of(project, both)
    [warning] = [p for p in configcheck.all_problems(cfg) if "both GPU vendors" in p.message]
    assert warning.warning and "(AMD: mi300; NVIDIA: eus-v100, a100x2, h100x2)" in warning.message
    assert accelerators.accelerator(cfg, "pytorch") == "NVIDIA"  # mixed: NVIDIA, as the warning says


def test_user_identity_goes_where_singularity_reads_it(cfg):
    arm = "/subscriptions/22da88f6-1210-4de2-a5a3-da4c7c2a1213/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/trainer"
    assert spec.identity_variables(arm, None) == {spec.UAI_VARIABLE: arm}
    online = {"id": arm, "client_id": "0b1c2d3e-0000-4000-8000-000000000001"}
    assert spec.identity_variables("trainer", online) == {
        spec.UAI_VARIABLE: arm, "DEFAULT_IDENTITY_CLIENT_ID": online["client_id"], "AZURE_CLIENT_ID": online["client_id"]}
    assert spec.identity_variables(None, None) == {}


def test_a_malformed_identity_arm_id_is_located(project):
    text = CONFIG.replace("    resource-group: gcr-singularity-resrch\n",
                          "    resource-group: gcr-singularity-resrch\n    user-identity-id: /subscriptions/x/identities/y\n")
    [problem] = [p for p in configcheck.all_problems(config_of(project, text)) if "user-identity-id" in p.message]
    assert problem.line == text.splitlines().index("    user-identity-id: /subscriptions/x/identities/y") + 1


def test_wrong_sla_and_priority_are_refused_once(project):
    text = CONFIG.replace("    sla: standard\n    priority: high\n", "    sla: premum\n    priority: urgent\n", 1)
    assert text != CONFIG
    cfg = config_of(project, text)
    with pytest.raises(ConfigError) as caught:
        configcheck.require(cfg, lambda _: None, "compute-targets", "a100x2")
    said = [str(p) for p in caught.value.problems]
    assert [s.split(": ", 1)[1] for s in said] == ["`premum` is not a valid sla; did you mean `premium`?",
                                                   "`urgent` is not a valid priority; expected one of: `low`, `medium`, `high`"]


def test_wrapped_images_are_the_ones_image_wrap_pushes(cfg):
    wrapped = {**cfg.docker("pytorch"), "sing-wrap": True}
    assert spec.image_reference(cfg, wrapped) == f"myacr.azurecr.io/research/pytorch@sha256:{DIGEST}"
    wrapped["wrapped-image"] = "research/pytorch-sing:v1"
    assert spec.image_reference(cfg, wrapped) == f"myacr.azurecr.io/research/pytorch-sing@sha256:{DIGEST}"
    assert spec.image_reference(cfg, {**cfg.docker("unpinned"), "sing-wrap": True}, allow_unpinned=True) == \
        "myacr.azurecr.io/research/pytorch:2.1-sing"


def test_image_tasks_leave_a_registered_environment_alone(project):
    from clirunner import cli

    for task in ("image.pin", "image.wrap", "image.render"):
        result = cli([task, "--docker=sklearn-env"], cwd=project)
        assert result.returncode == 2, (task, result.stderr)
        assert result.stderr.strip() == ("error: docker record `sklearn-env` names a registered Azure ML environment "
                                         "(azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu:33): Azure ML versions it, "
                                         "so there is nothing to render, build, push or pin")


def test_validate_cli_lists_every_problem_and_the_dry_run_of_a_good_target_still_works(project):
    from clirunner import cli

    (project / "configs" / "singkit.yaml").write_text(BROKEN)
    (project / "train.py").write_text("print('hi')\n")
    checked = cli(["config.validate"], cwd=project)
    errors = [line for line in checked.stderr.splitlines() if not line.startswith("warning: ")]
    assert checked.returncode == 2 and len(errors) == 4, checked.stderr  # nodocker, novmsize, nocompute, vc2's GUID
    assert all(line.startswith("configs/singkit.yaml:") and ":0:0" not in line for line in errors)
    dry = cli(["job.submit", "--target=h100x2", "--cmd=torchrun --nnodes 2 --nproc_per_node 8 train.py", "--dry-run"],
                      cwd=project, env={"SINGKIT_HOME": str(project / ".singkit")})
    assert dry.returncode == 0, dry.stderr
    assert "(does not affect this command)" in dry.stderr  # the broken records are named, not blocking
    written = (project / ".singkit" / "jobs" / "job1" / "azureml" / "job1.1.yaml").read_text()
    assert "instance_type: Singularity.ND96r_H100_v5" in written and "process_count_per_instance: 1" in written
    refused = cli(["job.submit", "--target=nodocker", "--cmd=python train.py", "--dry-run"], cwd=project,
                          env={"SINGKIT_HOME": str(project / ".singkit")})
    assert refused.returncode == 2 and "has no `docker:` record" in refused.stderr and "Traceback" not in refused.stderr


def test_the_wrap_of_an_amd_image_says_amd(project):
    from singkit.images.render import plan

    env, cfg = env_for(project), config_of(project)
    stages = {"installer-image": "reg.io/installer:1", "validator-image": "reg.io/validator:1"}  # offline
    rendered = plan(env, cfg, "rocm", base_digest="sha256:" + "e" * 64, text=True, stages=stages)
    assert rendered.accelerator == "AMD" and "ENV SINGULARITY_IMAGE_ACCELERATOR=AMD" in rendered.text
    nvidia = CONFIG.replace("  rocm:\n    image: research/rocm:6.1\n", "  rocm:\n    image: research/rocm:6.1\n    accelerator: NVIDIA\n")
    assert plan(env, config_of(project, nvidia), "rocm", base_digest="sha256:" + "e" * 64, stages=stages).accelerator == "NVIDIA"


def test_more_processes_than_gpus_is_a_warning_at_that_line(project):
    text = CONFIG.replace("    processes-per-node: gpus\n", "    processes-per-node: 16\n")
    cfg = config_of(project, text)
    line = text.splitlines().index("    processes-per-node: 16") + 1
    said = [p for p in targets.resolve(cfg, cfg.target("a100x2")).problems if "processes-per-node" in p.message]
    assert [(p.line, p.warning) for p in said] == [(line, True)]
    assert "than `ND96amrs_A100_v4` has GPUs (8)" in said[0].message
    eight = config_of(project, CONFIG.replace("    processes-per-node: gpus\n", "    processes-per-node: 8\n"))
    assert not [p for p in targets.resolve(eight, eight.target("a100x2")).problems if "processes-per-node" in p.message]


def test_a_bad_credential_blocks_singularity_targets_only(project):
    text = CONFIG.replace("general:\n", "general:\n  credential: bogus\n", 1)
    assert text != CONFIG
    cfg = config_of(project, text)
    said: list[str] = []
    configcheck.require(cfg, said.append, "compute-targets", "local")
    assert any("`bogus` is not a valid credential" in s and "does not affect this command" in s for s in said)
    with pytest.raises(ConfigError, match="`bogus` is not a valid credential"):
        configcheck.require(cfg, said.append, "compute-targets", "eus-v100")


def test_conflicting_keys_are_said(cfg):
    base = cfg.target("eus-v100")
    both = targets.resolve(cfg, {**base, "location": "eastus", "locations": ["westus3"]})
    assert [p.warning for p in both.problems if "`location: eastus` is not used" in p.message] == [True]
    assert both.locations == ["westus3"]
    agreeing = targets.resolve(cfg, {**base, "location": "eastus", "locations": ["westus3", "eastus"]})
    assert not [p for p in agreeing.problems if "location" in p.message]
    sla = targets.resolve(cfg, {**base, "sla": "premium", "ai-super-computer": {"slaTier": "Basic"}})
    [said] = [p for p in sla.problems if "overrides" in p.message]
    assert said.warning and "ai-super-computer.slaTier: Basic overrides `sla: premium`" in said.message
    assert sla.aisc["slaTier"] == "Basic"
    same = targets.resolve(cfg, {**base, "sla": "premium", "ai-super-computer": {"slaTier": "Premium"}})
    assert not [p for p in same.problems if "overrides" in p.message]
    scale = targets.resolve(cfg, {**base, "nodes": 4, "scale-policy": {"maxInstanceTypeCount": 2}})
    assert [p.warning for p in scale.problems if "maxInstanceTypeCount (2) is below minInstanceTypeCount (4)" in p.message] == [False]
    fine = targets.resolve(cfg, {**base, "nodes": 4, "scale-policy": {"minInstanceTypeCount": 2, "maxInstanceTypeCount": 4}})
    assert fine.problems == []


def test_amulet_shorthand_is_an_error_and_a_doubled_prefix_is_one_prefix(cfg):
    base = cfg.target("eus-v100")
    amulet = targets.resolve(cfg, {**base, "vm-size": "G8"})
    assert [p.warning for p in amulet.problems if "Amulet's sku shorthand" in p.message] == [False]
    doubled = targets.resolve(cfg, {**base, "vm-size": "Singularity.Singularity.ND40rs_v2"})
    assert doubled.problems == [] and doubled.vm_size == "ND40rs_v2"


def test_an_env_reference_in_an_id_is_refused_at_its_line(project):
    text = CONFIG.replace("resource-group: gcr-singularity-resrch\n", "resource-group: $env:MY_RG\n", 1)
    assert text != CONFIG
    cfg = config_of(project, text)
    [problem] = [p for p in configcheck.all_problems(cfg) if "`resource-group` is read as written" in p.message]
    assert not problem.warning and problem.line == text.splitlines().index("    resource-group: $env:MY_RG") + 1
    arm = targets.resolve(cfg, {**cfg.target("eus-v100"), "compute": "azureml://subscriptions/$env:SUB/resourceGroups/rg/virtualclusters/vc"})
    assert [p for p in arm.errors if "must be a GUID" in p.message]


def test_gpus_on_a_size_without_a_gpu_count(project):
    text = CONFIG.replace("vm-size: Singularity.ND96amrs_A100_v4", "vm-size: NoCount_v1") + "skus:\n  NoCount_v1: {gpu-type: A100}\n"
    cfg = config_of(project, text)
    said = [p for p in targets.resolve(cfg, cfg.target("a100x2")).problems if "processes-per-node" in p.message]
    assert [(p.warning, "`NoCount_v1` under `skus:` has no `gpus:`" in p.message) for p in said] == [(False, True)]
    cpu = targets.resolve(cfg, {**cfg.target("a100x2"), "vm-size": "D4_v3"})
    assert [(p.warning, "which has no GPU: one process per node" in p.message) for p in cpu.problems] == [(True, True)]
    assert cpu.per_node == 1


def test_validate_and_submit_agree_on_what_is_pinned(project):
    """A wrapped record's run image is new bytes: a digest in its base `image:` does not pin it."""
    text = CONFIG.replace("  unpinned:\n    image: research/pytorch:2.1\n",
                          f"  unpinned:\n    image: research/pytorch:2.1@sha256:{DIGEST}\n    sing-wrap: true\n")
    assert text != CONFIG
    cfg = config_of(project, text)
    assert [p.warning for p in configcheck.all_problems(cfg) if "`unpinned` is not pinned by digest yet" in p.message] == [True]
    with pytest.raises(ConfigError, match="not pinned by digest"):
        build(cfg, "loose")
    plain = config_of(project, CONFIG.replace("  unpinned:\n    image: research/pytorch:2.1\n",
                                              f"  unpinned:\n    image: research/pytorch:2.1@sha256:{DIGEST}\n"))
    assert not [p for p in configcheck.all_problems(plain) if "`unpinned` is not pinned" in p.message]
    assert build(plain, "loose")["environment"]["image"].endswith(f"@sha256:{DIGEST}")
