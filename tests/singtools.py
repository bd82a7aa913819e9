"""Helpers for the Singularity tests against the Azure ML stand-in (tests/azureml_standin) and
Azurite: the project they submit from, its Environment, what a job's process sees, and an offline
Singularity config for the tests that never reach Azure ML. The `world` fixture (stand-in, Azurite,
project) is in conftest.py.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from jobtools import make_env
from singkit.environment import Environment

ROOT = Path(__file__).resolve().parents[1]
DIGEST = "ab" * 32
STORE_CONTAINER = "singkit-store"


def project(tmp_path: Path, si, azurite, *, nodes: int = 1, vm_size: str = "NC6_v3", per_node: str = "1") -> Path:
    root = tmp_path / "proj"
    (root / "configs").mkdir(parents=True)
    (root / "train.py").write_text("print('training')\n")
    (root / "configs" / "singkit.yaml").write_text(f"""\
general:
  experiment: standin-exp
  store: mirror
external-services:
  {si.workspace}:
    type: singularity
    subscription-id: {si.subscription_id}
    resource-group: {si.resource_group}
  singkit-vc:
    type: virtual_cluster
    subscription-id: {si.subscription_id}
    resource-group: {si.resource_group}
  mirror:
    type: storage
    connection-string: $env:TEST_STORE_CONNECTION
    container: {STORE_CONTAINER}
  acr:
    type: registry
    login-server: singkit.azurecr.io
dockers:
  torch:
    image: research/torch:2.1
    registry: acr
    sha256: {DIGEST}
setups:
  s:
    env: {{FROM_SETUP: "1", API_KEY: $env:TEST_API_KEY}}
compute-targets:
  sing:
    service: {si.workspace}
    compute: singkit-vc
    vm-size: {vm_size}
    nodes: {nodes}
    processes-per-node: {per_node}
    sla: premium
    priority: high
    docker: torch
    setup: s
""")
    return root


def sing_env(root: Path, si, azurite, **extra: str) -> Environment:
    """A test Environment (jobtools.make_env) for the project `project()` wrote at `root`: this
    process's variables (less SINGKIT_CONFIG), a token from the stand-in `si`, the store mirror's
    Azurite connection, short retry and poll intervals; `extra` adds or overrides."""
    token = si.credential().get_token(si.url + "/.default").token
    inherited = {k: v for k, v in os.environ.items() if k not in ("HOME", "SINGKIT_HOME", "SINGKIT_CONFIG")}
    environ = {**inherited, "SINGKIT_AZURE_TOKEN": token, "SINGKIT_RETRY_BASE_DELAY": "0.01",
               "SINGKIT_POLL_INTERVAL": "0.01", "TEST_STORE_CONNECTION": azurite.connection_string,
               "TEST_API_KEY": "s3cr3t-api-key", **extra}
    environ.pop("SINGKIT_CONFIG", None)
    return make_env(root, home=root / "home", inherit=False, **environ)


def assert_no_secret(env: Environment, *needles: str, also: tuple[Path, ...] = ()) -> None:
    """No needle (a secret, or `sig=`: any SAS signature) in any file of the store — job
    folders, code archives, index, events.jsonl — nor in `also` folders, nor on stderr."""
    import gzip

    assert (Path(env.home) / "events.jsonl").is_file()
    for folder in (Path(env.home), *also):
        for path in folder.rglob("*"):
            if not path.is_file():
                continue
            data = path.read_bytes()
            if path.suffix == ".gz":
                data += gzip.decompress(data)
            for needle in needles:
                assert needle.encode() not in data, f"{needle!r} in {path}"
    for needle in needles:
        assert needle not in env.stderr.getvalue(), f"{needle!r} on stderr"


def only_job(si) -> str:
    assert len(si.jobs) == 1, sorted(si.jobs)
    return next(iter(si.jobs))


def job_process(job, si, name: str, **extra: str) -> tuple[list[str], dict[str, str], Path]:
    """(argv, env, cwd) of the job's command as Azure ML runs it on one process."""
    body = si.job_body(name)["properties"]
    env = {**body["environmentVariables"], "SINGKIT_SYNC_INTERVAL": "0.05",
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"], **extra}
    return ["sh", "-c", body["command"]], env, job.dir / "code"


def count(si, method: str, pattern: str) -> int:
    return sum(1 for r in si.requests if r.method == method and re.search(pattern, r.path))


# Offline: a Singularity target whose service is never reached (dry runs, refusals).
SINGULARITY = f"""\
general:
  experiment: exp
external-services:
  ws:
    type: singularity
    subscription-id: 00000000-0000-4000-8000-00000000beef
    resource-group: rg
  vc:
    type: virtual_cluster
    subscription-id: 00000000-0000-4000-8000-00000000beef
    resource-group: rg
  acr:
    type: registry
    login-server: singkit.azurecr.io
dockers:
  torch:
    image: research/torch:2.1
    registry: acr
    sha256: {DIGEST}
compute-targets:
  sing:
    service: ws
    compute: vc
    vm-size: NC6_v3
    nodes: 1
    sla: premium
    priority: high
    docker: torch
"""
# Azure ML is unreachable: had anything tried to reach it, the command would fail (exit 4)
NOWHERE = {"ARM_CLOUD_METADATA_URL": "https://127.0.0.1:9/metadata/endpoints", "SINGKIT_AZURE_TOKEN": ""}
