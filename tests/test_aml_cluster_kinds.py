"""A compute-cluster job runs the docker record's BASE image (XT's aml backend ignores sing_wrap:
xtlib 0.0.342 backends/backend_aml.py drops the record's sing_dict and sends `base_image:
docker_image`), pinned by the base's digest; the words for an unpinned image say what is true of
the record. A Singularity size on an `aml` workspace's bare compute name gets a note saying which
kind of job it is, and `processes-per-node: gpus` on an Azure VM size counts the GPUs of the
Singularity size it is (Microsoft Learn "Sizes for virtual machines in Azure"; singkit's catalog)."""

from __future__ import annotations

from pathlib import Path

from clirunner import cli
from ruamel.yaml import YAML
from amltools import CLUSTER, DIGEST, config, write

from singkit.singularity import target as targets

BASE = "ab" * 32
WRAPPED_TORCH = f"""  torch-wrapped:
    image: research/torch:2.1@sha256:{BASE}
    registry: acr
    sing-wrap: true
"""


def with_wrapped_record(root: Path, targets_yaml: str, record: str = WRAPPED_TORCH) -> None:
    write(root, targets_yaml)
    path = root / "configs" / "singkit.yaml"
    path.write_text(path.read_text().replace("compute-targets:\n", record + "compute-targets:\n"))


def spec_of(root: Path, job: str = "job1") -> dict:
    return YAML(typ="safe").load((root / ".singkit" / "jobs" / job / "azureml" / f"{job}.1.yaml").read_text())


def test_a_cluster_job_runs_the_base_image_of_a_wrapped_record(tmp_path):
    with_wrapped_record(tmp_path, CLUSTER.replace("docker: torch", "docker: torch-wrapped")
                        + "  eus:\n    service: sing-ws\n    compute: msrvc\n    vm-size: ND40rs_v2\n    docker: torch-wrapped\n")
    checked = cli(["config.validate"], cwd=tmp_path)
    # the Singularity target runs the wrapped image, not built yet; the cluster target's base is pinned
    assert checked.returncode == 0 and checked.stderr.count("is not pinned by digest yet") == 1, checked.stderr
    assert "a Singularity submit refuses it" in checked.stderr and "compute-cluster targets" not in checked.stderr
    done = cli(["job.submit", "--target=gpu", "--cmd=python train.py", "--dry-run"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert spec_of(tmp_path)["environment"] == {"image": f"singkit.azurecr.io/research/torch@sha256:{BASE}"}
    # the Singularity target refuses until image.wrap pins the wrapped image, and says why truly
    refused = cli(["job.submit", "--target=eus", "--cmd=python train.py", "--dry-run"], cwd=tmp_path)
    assert refused.returncode == 2 and "no sha256" not in refused.stderr
    assert refused.stderr.strip() == (
        "configs/singkit.yaml:26:12: docker record `torch-wrapped`: the wrapped image is not pinned by digest yet "
        "(`sha256:` is unset; the digest in `image:` pins the base it wraps); run `invoke image.wrap --docker=torch-wrapped` "
        "to build, push and pin it, or pass --allow-unpinned"), refused.stderr
    allowed = cli(["job.submit", "--target=eus", "--cmd=python train.py", "--dry-run", "--allow-unpinned"], cwd=tmp_path)
    assert spec_of(tmp_path, allowed.stdout.strip())["environment"] == {"image": "singkit.azurecr.io/research/torch:2.1-sing"}


def test_a_wrapped_records_sha256_does_not_pin_a_cluster_jobs_base(tmp_path):
    record = WRAPPED_TORCH.replace(f"@sha256:{BASE}", "") + f"    sha256: {DIGEST}\n"
    with_wrapped_record(tmp_path, CLUSTER.replace("docker: torch", "docker: torch-wrapped"), record)
    checked = cli(["config.validate"], cwd=tmp_path)
    assert checked.returncode == 0 and "is not pinned by digest yet for compute-cluster targets, which run its base image" \
        in checked.stderr, checked.stderr
    refused = cli(["job.submit", "--target=gpu", "--cmd=python train.py", "--dry-run"], cwd=tmp_path)
    assert refused.returncode == 2 and refused.stderr.strip() == (
        "configs/singkit.yaml:26:12: docker record `torch-wrapped`: the base image a compute cluster runs is not pinned by "
        "digest (`image:` carries none; `sha256:` would pin the wrapped image, which a compute cluster does not run); write "
        "`image: <name>:<tag>@sha256:<digest>`, or pass --allow-unpinned"), refused.stderr
    allowed = cli(["job.submit", "--target=gpu", "--cmd=python train.py", "--dry-run", "--allow-unpinned"], cwd=tmp_path)
    assert spec_of(tmp_path, allowed.stdout.strip())["environment"] == {"image": "singkit.azurecr.io/research/torch:2.1"}


def test_a_singularity_size_on_a_bare_aml_compute_name_says_it_is_a_singularity_job(tmp_path):
    write(tmp_path, "  vc:\n    service: ws\n    compute: gpu-cluster\n    vm-size: NC6_v3\n    docker: torch\n"
                    "  named:\n    service: ws\n    compute: msrvc\n    vm-size: ND40rs_v2\n    docker: torch\n")
    done = cli(["config.validate"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if line.startswith("note:")]
    assert notes == ["note: configs/singkit.yaml:27:5: compute-targets.vc is a Singularity job on virtual cluster "
                     "`gpu-cluster` (vm-size NC6_v3 is a Singularity instance type; the virtual cluster is taken in resource "
                     "group singkit-rg); to run on an Azure ML compute cluster named `gpu-cluster` instead, write "
                     "`vm-size: Standard_NC6s_v3`"]  # `msrvc` is a virtual_cluster record: nothing to say


def test_processes_per_gpu_on_an_azure_size_count_the_singularity_sizes_gpus(tmp_path):
    # a compute cluster and a Singularity target, each with an Azure VM size name singkit maps
    write(tmp_path, CLUSTER.replace("Standard_NC6s_v3", "Standard_NC24s_v3") + "    processes-per-node: gpus\n"
          "  a100:\n    service: sing-ws\n    compute: msrvc\n    vm-size: Standard_NC24ads_A100_v4\n    docker: torch\n"
          "    processes-per-node: gpus\n")
    cfg = config(tmp_path)
    gpu = targets.resolve(cfg, cfg.target("gpu"))
    assert gpu.errors == [] and gpu.per_node == 4  # NC24s_v3 is Singularity's NC24_v3: 4 x V100
    a100 = targets.resolve(cfg, cfg.target("a100"))
    assert a100.errors == [] and a100.per_node == 1  # NC24ads_A100_v4 is NC24ad_A100_v4: 1 x A100
    assert any("Singularity's instance type for that machine is `NC24ad_A100_v4`" in p.message for p in a100.problems)
