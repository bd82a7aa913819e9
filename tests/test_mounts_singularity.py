"""Data inputs and checkpoint outputs on Singularity, through the real azure-ai-ml against the
Azure ML stand-in: the job body's `inputs`/`outputs` (uri_folder, ReadOnlyMount/ReadWriteMount),
the job's command run as Azure ML runs it with the mount paths it substitutes, a checkpoint that
`job.rerun --resume` finds, and a datastore the workspace does not have refused by the service.

The test plays Azure ML's mount: `${{inputs.X}}` / `${{outputs.X}}` in the command become the local
folder MOUNTS/<datastore>/<path> of the input's or output's URI (what blobfuse shows a job)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from singtools import job_process, sing_env

from singkit.exceptions import SingkitError
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import rerun, submit

TARGETS = """\
  sing-data:
    service: {ws}
    compute: singkit-vc
    vm-size: NC6_v3
    docker: torch
    inputs:
      data: azureml://datastores/training/paths/mnist
    outputs:
      ckpt: azureml://datastores/training/paths/checkpoints
  sing-nostore:
    service: {ws}
    compute: singkit-vc
    vm-size: NC6_v3
    docker: torch
    outputs:
      ckpt: azureml://datastores/trainingdata/paths/checkpoints
"""

TRAIN = """\
import os, pathlib
import singkit_metrics as sm
print(open(os.path.join(os.environ["SINGKIT_DATA_DIR"], "train.txt")).read().strip())
step = sm.outputs_dir() / "step"
n = int(step.read_text()) + 1 if step.exists() else 1
step.write_text(str(n))
print("step", n)
"""


def mounted(body: dict, mounts: Path) -> str:
    """The body's command with Azure ML's bindings replaced by the emulated mount folders."""
    props = body["properties"]

    def folder(match: re.Match) -> str:
        item = props[match["kind"]][match["name"]]
        found = re.match(r"^azureml://datastores/([^/]+)/paths/(.*)$", item["uri"])
        path = mounts / found[1] / found[2]
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    return re.sub(r"\$\{\{(?P<kind>inputs|outputs)\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}\}", folder, props["command"])


def run_mounted(job, si, name: str, mounts: Path) -> subprocess.CompletedProcess:
    argv, env, cwd = job_process(job, si, name)
    argv[-1] = mounted(si.job_body(name), mounts)
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_singularity_job_reads_its_data_and_resume_finds_its_checkpoint(world, tmp_path):
    si, azurite, root = world
    config = root / "configs" / "singkit.yaml"
    config.write_text(config.read_text() + TARGETS.format(ws=si.workspace))
    (root / "train.py").write_text(TRAIN)
    si.add_datastore("training")
    mounts = tmp_path / "mounts"
    (mounts / "training" / "mnist").mkdir(parents=True)
    (mounts / "training" / "mnist" / "train.txt").write_text("the training data\n")
    env = sing_env(root, si, azurite)

    first = submit(env, SubmitRequest(target="sing-data", command="python train.py"))
    [name] = list(si.jobs)
    props = si.job_body(name)["properties"]
    # azure-ai-ml 1.35.2 sends ro_mount / rw_mount as the REST enums ReadOnlyMount / ReadWriteMount
    assert props["inputs"] == {"data": {"jobInputType": "uri_folder", "mode": "ReadOnlyMount",
                                        "uri": "azureml://datastores/training/paths/mnist"}}
    assert props["outputs"]["ckpt"] == {"jobOutputType": "uri_folder", "mode": "ReadWriteMount",
                                        "uri": f"azureml://datastores/training/paths/checkpoints/{name}"}
    assert 'SINGKIT_DATA_DIR="${{inputs.data}}"' in props["command"]
    assert "SINGKIT_DATA_DIR" not in props["environmentVariables"]  # Azure ML substitutes the command only

    result = run_mounted(first, si, name, mounts)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == ["the training data", "step 1"]
    assert (mounts / "training" / "checkpoints" / name / "step").read_text() == "1"
    si.set_status(name, "Completed")

    again = rerun(env, first.id, resume=True)
    [second] = [n for n in si.jobs if n != name]
    assert si.job_body(second)["properties"]["outputs"]["ckpt"]["uri"].endswith(f"/checkpoints/{name}")
    result = run_mounted(again, si, second, mounts)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "step 2"  # the first run's checkpoint, found
    assert (mounts / "training" / "checkpoints" / name / "step").read_text() == "2"


def test_a_datastore_the_workspace_lacks_is_refused_before_it_queues(world):
    si, azurite, root = world
    config = root / "configs" / "singkit.yaml"
    # `training` is known here (for the local targets), `trainingdata` neither here nor in the workspace
    config.write_text(config.read_text() + TARGETS.format(ws=si.workspace) + "datastores:\n  training:\n    path: data\n")
    si.add_datastore("training")
    env = sing_env(root, si, azurite)
    with pytest.raises(SingkitError, match="Could not find datastore: trainingdata"):
        submit(env, SubmitRequest(target="sing-nostore", command="python train.py"))
    assert si.jobs == {}
    # offline, singkit could only guess (a workspace has datastores it never heard of): a close name warns
    assert "datastore `trainingdata` (compute-targets.sing-nostore.outputs.ckpt) is not in `datastores:` nor one " \
           "every workspace has; did you mean `training`?" in env.stderr.getvalue()
