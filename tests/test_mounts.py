"""Data inputs and checkpoint outputs (singkit.mounts) on the local and docker targets, with real
processes and the real Docker Engine: a job reads its data through `datastores:` and leaves its
checkpoint where `job.rerun --resume` finds it; config.validate points at what cannot work."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from jobreaper import reaped  # noqa: F401  (autouse: every job ends with its test)
from jobtools import make_env, make_project, run_here, wait_done
from singkit.config import load_config
from singkit.exceptions import UsageError
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import rerun, submit
from singkit.store import Store

CONFIG = """\
general:
  experiment: test
datastores:
  training:
    path: store/training
dockers:
  bb:
    image: {image}
compute-targets:
  local:
    service: local
    inputs:
      data: azureml://datastores/training/paths/mnist
    outputs:
      ckpt: azureml://datastores/training/paths/checkpoints
  docker:
    service: docker
    docker: bb
    inputs:
      data: azureml://datastores/training/paths/mnist
    outputs:
      ckpt: azureml://datastores/training/paths/checkpoints
"""

# reads the data, then counts on from the checkpoint it finds (0 when there is none); POSIX sh
# only (busybox has no Python). The input must not be writable.
JOB = ('cat "$SINGKIT_DATA_DIR/train.txt"; [ "$SINGKIT_INPUT_DATA" = "$SINGKIT_DATA_DIR" ] || exit 7; '
       'touch "$SINGKIT_DATA_DIR/scribble" 2>/dev/null && echo data-writable; '
       'n=$(cat "$SINGKIT_OUTPUT_CKPT/step" 2>/dev/null || echo 0); n=$((n + 1)); '
       'echo "$n" > "$SINGKIT_OUTPUT_DIR/step"; echo "step $n"')


def project_with_data(tmp_path: Path, image: str = "unused:1") -> Path:
    project = make_project(tmp_path, CONFIG.format(image=image))
    data = project / "store" / "training" / "mnist"
    data.mkdir(parents=True)
    (data / "train.txt").write_text("the training data\n")
    return project


def ran(job: Any) -> list[str]:
    """The run's stdout lines; `data-writable` dropped where nothing can prevent it (a local
    process writes wherever its user may: only containers mount the input read-only)."""
    lines = job.runs[0].stdout_path.read_text().splitlines()
    return [line for line in lines if line != "data-writable"] if job.spec["target"]["service"] == "local" else lines


@pytest.mark.parametrize("target", ["local", "docker"])
def test_job_reads_its_data_and_resume_finds_its_checkpoint(tmp_path: Path, target: str, request: Any) -> None:
    image = request.getfixturevalue("busybox_image").ref if target == "docker" else "unused:1"
    if target == "docker":
        request.getfixturevalue("docker_host")
    project = project_with_data(tmp_path, image)
    env = make_env(project)
    first = submit(env, SubmitRequest(target=target, command=JOB))
    assert wait_done(env, first.id) == "completed", first.runs[0].stderr_path.read_text()
    assert ran(first) == ["the training data", "step 1"]  # in a container the input is read-only: no `data-writable`
    folder = project / "store" / "training" / "checkpoints" / f"{first.id}.1"
    assert (folder / "step").read_text() == "1\n"  # on the datastore's folder, not in the run's

    again = rerun(env, first.id, resume=True)
    assert wait_done(env, again.id) == "completed"
    assert ran(again) == ["the training data", "step 2"]  # found the first run's checkpoint
    assert (folder / "step").read_text() == "2\n" and again.spec["resumed_from"] == first.id

    fresh = rerun(env, again.id)  # a plain rerun starts over, in a folder of its own
    assert wait_done(env, fresh.id) == "completed"
    assert ran(fresh)[-1] == "step 1"
    assert (project / "store" / "training" / "checkpoints" / f"{fresh.id}.1" / "step").read_text() == "1\n"


def test_outputs_dir_is_the_mounted_output(tmp_path: Path) -> None:
    project = project_with_data(tmp_path)
    env = make_env(project)
    cmd = "python -c \"import singkit_metrics as sm; (sm.outputs_dir() / 'model.pt').write_text('w')\""
    job = submit(env, SubmitRequest(target="local", command=cmd))
    assert wait_done(env, job.id) == "completed", job.runs[0].stderr_path.read_text()
    assert (project / "store" / "training" / "checkpoints" / f"{job.id}.1" / "model.pt").read_text() == "w"
    assert not (job.runs[0].outputs_dir / "model.pt").exists()


def test_resume_needs_outputs(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    job = submit(env, SubmitRequest(target="local", command="true"))
    wait_done(env, job.id)
    with pytest.raises(UsageError, match="no outputs to resume from"):
        rerun(env, job.id, resume=True)


def problems(project: Path) -> list[str]:
    from singkit.configcheck import all_problems

    env = make_env(project)
    return [f"{Path(p.file).name}:{p.line}:{p.col}: {'warning: ' if p.warning else ''}{p.message}"
            for p in all_problems(load_config(env))]


def test_validate_points_at_unknown_datastores_and_missing_folders(tmp_path: Path) -> None:
    project = project_with_data(tmp_path)
    config = project / "configs" / "singkit.yaml"
    text = config.read_text().replace("datastores/training/paths/mnist", "datastores/trainig/paths/mnist", 1)
    text += ("  nodata:\n    service: local\n    inputs:\n      data: azureml://datastores/training/paths/absent\n"
             "      bad-name: azureml://datastores/training/paths/mnist\n      odd: /mnt/data\n"
             "    outputs:\n      ckpt: https://acct.blob.core.windows.net/cont/ckpt\n")
    config.write_text(text)
    found = problems(project)
    assert "singkit.yaml:13:13: datastore `trainig` (compute-targets.local.inputs.data) is not in `datastores:`; map it " \
           "to a local folder there; did you mean `training`?" in found
    assert any(p.startswith("singkit.yaml:26:13: input `data` (compute-targets.nodata.inputs.data) is ") and
               p.endswith("store/training/absent on this machine, which is not a folder; create it or correct `datastores:`")
               for p in found), found
    assert any(p.startswith("singkit.yaml:27:17: `bad-name`") for p in found), found
    assert any(p.startswith("singkit.yaml:28:12: `/mnt/data` (compute-targets.nodata.inputs.odd) is not ") for p in found), found
    assert any(p.startswith("singkit.yaml:30:13: compute-targets.nodata.outputs.ckpt is a blob URI") for p in found), found
    assert len(found) == 5, found
    # and a submit to the target is refused at that line, exit 2 from the CLI, one line, no traceback
    done = run_here(["job.submit", "--target", "nodata", "--cmd", "true"], project, make_env(project))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "singkit.yaml:26:13: input `data`" in done.stderr


def test_submit_options_and_resume_through_the_cli(tmp_path: Path) -> None:
    """`job.submit --input/--output` over and beside the target's own, then `job.rerun --resume`, as a user types them."""
    project = project_with_data(tmp_path)
    (project / "store" / "training" / "other").mkdir()
    (project / "store" / "training" / "other" / "train.txt").write_text("other data\n")
    env = make_env(project)
    # the target's own `ckpt` stays the first output ($SINGKIT_OUTPUT_DIR): this job keeps its step in `runs`
    cmd = JOB.replace("$SINGKIT_OUTPUT_CKPT", "$SINGKIT_OUTPUT_RUNS").replace("$SINGKIT_OUTPUT_DIR", "$SINGKIT_OUTPUT_RUNS")
    done = run_here(["job.submit", "--target", "local", "--cmd", cmd, "--follow",
                    "--input", "data=azureml://datastores/training/paths/other",
                    "--output", "runs=azureml://datastores/training/paths/runs"], project, env)
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.split()[0]
    job = Store.of(env).job(job_id)
    assert ran(job) == ["other data", "step 1"]  # --input over the target's own `data`
    assert os.listdir(project / "store" / "training" / "runs") == [f"{job_id}.1"]
    done = run_here(["job.rerun", job_id, "--resume", "--follow"], project, env)
    assert done.returncode == 0, done.stderr
    assert "resuming from its output folders" in done.stderr
    assert ran(Store.of(env).job(done.stdout.split()[0]))[-1] == "step 2"

    bad = run_here(["job.submit", "--cmd", "true", "--input", "data=azureml://datastores/trainin/paths/x"], project, env)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].endswith("is not in `datastores:`; map it to a local folder there; "
                                                         "did you mean `training`?")
    bad = run_here(["job.submit", "--cmd", "true", "--output", "ckpt"], project, env)
    assert bad.returncode == 2 and "--output ckpt is not NAME=URI" in bad.stderr


def test_a_datastore_without_its_folder(tmp_path: Path) -> None:
    project = project_with_data(tmp_path)
    config = project / "configs" / "singkit.yaml"
    config.write_text(config.read_text().replace("  training:\n    path: store/training\n",
                                                 "  training:\n    description: no path\n"))
    found = problems(project)
    assert "singkit.yaml:5:5: `datastores.training` needs `path:`: the local folder that stands for it on the local " \
           "and docker targets" in found
    assert "singkit.yaml:13:13: datastore `training` (compute-targets.local.inputs.data) has no `path:` under " \
           "`datastores:`" in found


def test_resume_refuses_a_live_job_and_a_dry_run(tmp_path: Path) -> None:
    project = project_with_data(tmp_path)
    env = make_env(project)
    dry = submit(env, SubmitRequest(target="local", command="true", dry_run=True))
    with pytest.raises(UsageError, match="was a dry run: it left no checkpoints"):
        rerun(env, dry.id, resume=True)
    live = submit(env, SubmitRequest(target="local", command="sleep 60"))
    with pytest.raises(UsageError, match=rf"{live.id} still runs \({live.id}\.1\): a resumed run would write"):
        rerun(env, live.id, resume=True)
    assert run_here(["job.cancel", live.id], project, env).returncode in (0, 3)
    wait_done(env, live.id)
    assert rerun(env, live.id, resume=True).spec["resumed_from"] == live.id  # ended: fine


def test_paths_that_climb_out_collide_or_hit_a_file_are_refused(tmp_path: Path) -> None:
    project = project_with_data(tmp_path)
    (project / "store" / "afile").write_text("x")
    config = project / "configs" / "singkit.yaml"
    text = config.read_text()
    config.write_text(text.replace("      ckpt: azureml://datastores/training/paths/checkpoints\n  docker:",
                                   "      ckpt: azureml://datastores/training/paths/../../../tmp/escaped\n"
                                   "      CKPT: azureml://datastores/training/paths/other\n"
                                   "      bad: azureml://datastores/file/paths/x\n  docker:", 1)
                      + "  # (datastore `file` points at a file)\n")
    config.write_text(config.read_text().replace("datastores:\n", "datastores:\n  file:\n    path: store/afile\n", 1))
    said = problems(project)
    assert any("climbs out of its datastore with `..`" in p for p in said), said
    assert any("`CKPT` and `ckpt` in compute-targets.local.outputs would both be $SINGKIT_OUTPUT_CKPT" in p for p in said), said
    assert any("but " in p and "afile is a file" in p for p in said), said
    env = make_env(project)
    with pytest.raises(UsageError, match="would both be \\$SINGKIT_INPUT_DATA"):
        submit(env, SubmitRequest(target="docker", command="true", dry_run=True, inputs=["DATA=azureml://datastores/training/paths/mnist"]))


def test_a_workspace_datastore_needs_no_record_on_singularity() -> None:
    from singkit import mounts

    assert mounts.item_problem("outputs", "ckpt", "azureml://datastores/workspaceblobstore/paths/ckpts", {}, Path("."),
                               False, "t") is None
    assert mounts.item_problem("outputs", "ckpt", "azureml://datastores/workspaceblobstor/paths/ckpts", {}, Path("."),
                               False, "t")[1] is True  # a near miss still warns
