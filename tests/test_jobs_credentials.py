"""singkit's own credentials (the Azure token, a registry password, a storage connection string)
reach a local or docker job only when the job's config references them (issue 16, "Also")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jobreaper import reaped  # noqa: F401  (autouse: every job ends with its test)
from jobtools import make_env, make_project, wait_done
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit

SECRETS = {
    "SINGKIT_AZURE_TOKEN": "azure-token-7f3e",
    "SINGKIT_AZURE_ML_TOKEN": "ml-token-19ab",
    "REG_PW": "registry-pw-55c1",
    "STORE_CS": "DefaultEndpointsProtocol=http;AccountKey=storage-key-0d2a",
}

CONFIG = """\
general:
  experiment: test
external-services:
  reg:
    type: registry
    login-server: 127.0.0.1:5999
    username: me
    password: $env:REG_PW
  blobs:
    type: storage
    connection-string: $env:STORE_CS
    container: c
dockers:
  bb:
    image: {image}
setups:
  uses-registry:
    env:
      PUSH_PASSWORD: $env:REG_PW
compute-targets:
  local:
    service: local
  local-ref:
    service: local
    setup: uses-registry
  docker:
    service: docker
    docker: bb
  docker-ref:
    service: docker
    docker: bb
    setup: uses-registry
"""

PRINT_ENV = "env > \"$SINGKIT_OUTPUTS/env.txt\""


def job_env(env: Any, target: str) -> dict[str, str]:
    job = submit(env, SubmitRequest(target=target, command=PRINT_ENV))
    assert wait_done(env, job.id) == "completed"
    text = (job.runs[0].outputs_dir / "env.txt").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def leaked(seen: dict[str, str]) -> list[str]:
    return sorted(name for name, value in SECRETS.items() if any(value in v for v in seen.values()))


def test_a_local_job_does_not_inherit_singkits_credentials(tmp_path: Path) -> None:
    project = make_project(tmp_path, CONFIG.format(image="unused:1"))
    env = make_env(project, **SECRETS, SOMETHING_ELSE="kept")
    seen = job_env(env, "local")
    assert leaked(seen) == []
    assert seen["SOMETHING_ELSE"] == "kept"  # the rest of the environment still arrives
    # referenced by the job's config: given, under the name the config gives it, and nothing more
    seen = job_env(env, "local-ref")
    assert seen["PUSH_PASSWORD"] == SECRETS["REG_PW"] and "REG_PW" not in seen
    assert [n for n in leaked(seen) if n != "REG_PW"] == []


@pytest.mark.usefixtures("docker_host")
def test_a_docker_job_does_not_get_them_either(tmp_path: Path, busybox_image: Any) -> None:
    project = make_project(tmp_path, CONFIG.format(image=busybox_image.ref))
    env = make_env(project, **SECRETS)
    assert leaked(job_env(env, "docker")) == []
    seen = job_env(env, "docker-ref")
    assert seen["PUSH_PASSWORD"] == SECRETS["REG_PW"] and [n for n in leaked(seen) if n != "REG_PW"] == []


def test_job_yaml_names_the_withheld_variables_never_their_values(tmp_path: Path) -> None:
    project = make_project(tmp_path, CONFIG.format(image="unused:1"))
    env = make_env(project, **SECRETS)
    job = submit(env, SubmitRequest(target="local", command="true"))
    assert wait_done(env, job.id) == "completed"
    assert job.spec["withheld_env"] == ["REG_PW", "SINGKIT_AZURE_ML_TOKEN", "SINGKIT_AZURE_TOKEN", "STORE_CS"]
    text = job.spec_path.read_text()
    assert not [v for v in SECRETS.values() if v in text]


def test_a_rerun_of_a_job_from_before_withheld_env_withholds_them_too(tmp_path: Path) -> None:
    from singkit.jobs.submit import rerun
    from singkit.store.yamlio import dump_yaml

    project = make_project(tmp_path, CONFIG.format(image="unused:1"))
    env = make_env(project, **SECRETS)
    old = submit(env, SubmitRequest(target="local", command=PRINT_ENV))
    assert wait_done(env, old.id) == "completed"
    spec = dict(old.spec)
    del spec["withheld_env"]  # as an earlier singkit wrote it
    old.spec_path.write_text(dump_yaml(spec))
    again = rerun(env, old.id)
    assert wait_done(env, again.id) == "completed"
    text = (again.runs[0].outputs_dir / "env.txt").read_text()
    assert [name for name, value in SECRETS.items() if value in text] == []
