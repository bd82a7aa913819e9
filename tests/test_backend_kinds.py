"""The backend table (singkit.backendkinds) and the runner typed against the embedded interface
(issue 12): each kind names its class, config reads its kinds from the table, a job loads only
the backend it runs on, and the runner refuses a job no embedded backend runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import storegen
from storegen import RunSpec

from singkit.backendkinds import BACKENDS, BUILTIN_SERVICES, REMOTE_SERVICES
from singkit.backends.base import Backend, backend_class, backend_for
from singkit.backends.embedded import EmbeddedBackend
from singkit.environment import Environment
from singkit.exceptions import UsageError


@pytest.mark.parametrize("kind", sorted(BACKENDS))
def test_each_kind_names_the_backend_that_runs_it(kind):
    cls = backend_class(kind)
    assert issubclass(cls, Backend) and cls.name == ("singularity" if kind == "aml" else kind)
    # the built-in kinds run here, through the detached runner; the others run on their service
    assert issubclass(cls, EmbeddedBackend) == (kind in BUILTIN_SERVICES)


def test_config_reads_the_kinds_from_the_table():
    from singkit.config import schema

    assert set(BUILTIN_SERVICES) | set(REMOTE_SERVICES) == set(BACKENDS)
    assert schema.SERVICE_TYPES[:len(REMOTE_SERVICES)] == REMOTE_SERVICES
    assert not set(BUILTIN_SERVICES) & set(schema.SERVICE_TYPES)  # local/docker need no record


@pytest.mark.parametrize("kind", ["slurm", ["local"], None])
def test_a_kind_no_backend_runs_is_one_usage_error(kind, tmp_path):
    env = Environment(project_root=tmp_path, environ={})
    with pytest.raises(UsageError, match="a target runs on local, docker, or a singularity/aml service"):
        backend_for({"name": "t", "service": "s"}, env, service={"name": "s", "type": kind})


LOADED = """
import sys
from pathlib import Path
from singkit.backends.base import backend_for
from singkit.environment import Environment
backend = backend_for({"name": "local", "service": "local"}, Environment(project_root=Path("."), environ={}))
print(type(backend).__name__, sorted(m for m in sys.modules if m.startswith(("singkit.backends.", "docker", "azure"))))
"""


def test_a_local_job_loads_no_other_backend():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    out = subprocess.run([sys.executable, "-c", LOADED], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    name, loaded = out.stdout.split(" ", 1)
    assert name == "LocalBackend"
    assert not [m for m in eval(loaded) if m.startswith(("docker", "azure", "singkit.backends.docker",
                                                            "singkit.backends.singularity"))]


def test_the_runner_fails_the_queued_runs_of_a_job_no_embedded_backend_runs(tmp_path: Path):
    from singkit.backends.runtime.runner import run_job
    from singkit.store import Store

    home = tmp_path / "store"
    folder = storegen.write_job(home, "job1", [RunSpec(log=False), RunSpec(log=False)], target="sing",
                                service="sing", service_type="singularity")
    assert run_job(folder) == 1
    runs = Store(home).job("job1").runs
    assert [(r.state().status, r.state().reason) for r in runs] == \
        [("failed", "runner error: a singularity job does not run on this machine")] * 2
