"""The Azure ML compute-cluster project the aml tests write (test_aml_compute.py,
test_aml_cluster_kinds.py): an `aml` workspace, a Singularity workspace and VC, a pinned docker
record, and the compute targets a test gives."""

from __future__ import annotations

from pathlib import Path

from jobtools import make_env
from singkit.config import load_config

SUB = "00000000-0000-4000-8000-000000005ab5"
DIGEST = "cd" * 32


def write(root: Path, targets_yaml: str, *, sub: str = SUB, rg: str = "singkit-rg", ws: str = "singkit-ws") -> Path:
    (root / "configs").mkdir(parents=True, exist_ok=True)
    (root / "train.py").write_text("print('training')\n")
    (root / "configs" / "singkit.yaml").write_text(f"""\
general:
  experiment: clusters
external-services:
  ws:
    type: aml
    subscription-id: {sub}
    resource-group: {rg}
    workspace: {ws}
  sing-ws:
    type: singularity
    subscription-id: {sub}
    resource-group: {rg}
  msrvc:
    type: virtual_cluster
    subscription-id: {sub}
    resource-group: {rg}
  acr:
    type: registry
    login-server: singkit.azurecr.io
dockers:
  torch:
    image: research/torch:2.1
    registry: acr
    sha256: {DIGEST}
compute-targets:
{targets_yaml}""")
    return root


def config(root: Path):
    return load_config(make_env(root, home=root / "home", inherit=False))


CLUSTER = """\
  gpu:
    service: ws
    compute: gpu-cluster
    vm-size: Standard_NC6s_v3
    nodes: 2
    docker: torch
"""
