"""Jobs on the `local` target, end to end with real processes: sweeps, cancel, reconcile."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from jobreaper import reaped  # noqa: F401  (autouse: every job ends with its test)
from jobtools import make_env, make_project, pid_gone, read_pid, run_here, wait_done, wait_for
from singkit.exceptions import UsageError
from singkit.jobs import control
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import rerun, submit
from singkit.store import Store, events


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path, with_example=True)


def test_sweep_of_4_runs_two_at_a_time(project: Path) -> None:
    env = make_env(project)
    # a barrier: runs 1-2 wait until 2 runs have started, runs 3-4 until 4 have (so overlap is certain)
    cmd = ('touch "$SINGKIT_RUN_DIR/../$SINGKIT_RUN.started"; n=$(( (${SINGKIT_RUN##*.} + 1) / 2 * 2 )); i=0; '
           'while [ "$(ls "$SINGKIT_RUN_DIR"/../*.started | wc -l)" -lt $n ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; '
           'echo "$SINGKIT_RUN lr=$SINGKIT_HP_LR args: {hparams}"; echo done > "$SINGKIT_OUTPUTS/out.txt"')
    job = submit(env, SubmitRequest(command=cmd, hp=["lr=0.1,0.01"], runs=2, parallel=2))
    assert [r.id for r in job.runs] == [f"{job.id}.{i}" for i in range(1, 5)]
    assert [r.hparams for r in job.runs] == [{"lr": 0.1}, {"lr": 0.1}, {"lr": 0.01}, {"lr": 0.01}]
    assert wait_done(env, job.id) == "completed"
    data = control.status(env, job.id)
    assert [r["status"] for r in data["runs"]] == ["completed"] * 4
    # never more than 2 at once, and 2 at once did happen
    edges = sorted([(r["started"], 1) for r in data["runs"]] + [(r["ended"], -1) for r in data["runs"]])
    running = peak = 0
    for _t, step in edges:
        running += step
        peak = max(peak, running)
    assert peak == 2
    for run in job.runs:
        out = run.stdout_path.read_text()
        assert out.startswith(f"{run.id} lr={run.hparams['lr']} args:")
        assert f"--lr {run.hparams['lr']}" in out  # hparams arrive as arguments too
        assert (run.outputs_dir / "out.txt").read_text() == "done\n"
        assert run.state().hparams == run.hparams  # the wrapper logged them
    assert [e["event"] for e in events.read(env)] == ["submit"]


def test_default_example_through_the_cli(project: Path) -> None:
    """What `make submit` does, then `job.status JOB=<id> --json` (the example, shortened)."""
    env = make_env(project)
    cmd = "python examples/train.py --epochs 2 --step-time 0"
    done = run_here(["job.submit", "--cmd", cmd, "--follow"], project, env)
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.split()[0]
    assert job_id == "job1"
    assert "training:" in done.stdout and "wrote" in done.stdout
    status = run_here(["job.status", f"JOB={job_id}", "--json"], project, env)
    data = json.loads(status.stdout)
    assert data["status"] == "completed" and data["runs"][0]["exit_code"] == 0
    run = Store.of(env).job(job_id).runs[0]
    kinds = {e["event"] for e in __import__("singkit.store.runlog", fromlist=["x"]).events(run.log_path)}
    assert {"status", "hparams", "metrics"} <= kinds
    assert json.loads((run.outputs_dir / "model.json").read_text())["hparams"]["epochs"] == 2
    listed = json.loads(run_here(["job.list", "--json", "--last", "1"], project, env).stdout)
    assert [j["job"] for j in listed] == [job_id] and listed[0]["runs_done"] == 1


def test_failed_job_and_monitor_exit_codes(project: Path) -> None:
    env = make_env(project)
    failed = run_here(["job.submit", "--cmd", "echo bad >&2; exit 3", "--follow"], project, env)
    assert failed.returncode == 1
    assert "bad" in failed.stderr and "exit code 3" in failed.stderr
    again = run_here(["job.monitor", "--job=job1"], project, env)
    assert again.returncode == 1
    status = json.loads(run_here(["job.status", "job1", "--json"], project, env).stdout)
    assert status["runs"][0]["reason"] == "exit code 3" and status["runs"][0]["exit_code"] == 3
    logs = run_here(["job.logs", "JOB=job1"], project, env)
    assert logs.stderr == "bad\n"


def _family(job) -> dict[str, int]:
    run = job.runs[0]
    return wait_for(lambda: all((run.outputs_dir / n).exists() for n in ("sh.pid", "bg.pid", "escaped.pid"))
                    and {"runner": job.runner_info()["pid"], "wrapper": run.backend_info()["pid"],
                         **{n: read_pid(run.outputs_dir / f"{n}.pid") for n in ("sh", "bg", "escaped")}},
                    what="the run's processes")


SPAWNER = ('echo $$ > "$SINGKIT_OUTPUTS/sh.pid"; sleep 300 & echo $! > "$SINGKIT_OUTPUTS/bg.pid"; '
           'setsid sleep 301 & echo $! > "$SINGKIT_OUTPUTS/escaped.pid"; wait; :')


def test_cancel_ends_every_process(project: Path) -> None:
    env = make_env(project)
    job = submit(env, SubmitRequest(command=SPAWNER, runs=2, parallel=1))
    pids = _family(job)
    assert not any(pid_gone(p) for p in pids.values())
    cancelled = control.cancel(env, job.id)
    assert cancelled == [f"{job.id}.1", f"{job.id}.2"]
    assert [p for p in pids.values() if not pid_gone(p)] == []
    data = control.status(env, job.id)
    assert data["status"] == "cancelled" and {r["status"] for r in data["runs"]} == {"cancelled"}
    assert not job.runs[1].backend_info()  # the queued run never started
    assert control.cancel(env, job.id) == []  # idempotent
    done = run_here(["job.cancel", job.id], project, env)
    assert done.returncode == 0 and "nothing to cancel" in done.stderr
    assert run_here(["job.monitor", job.id], project, env).returncode == 3


def test_cancel_one_run_leaves_the_others(project: Path) -> None:
    env = make_env(project)
    job = submit(env, SubmitRequest(command=SPAWNER, hp=["k=1,2"], parallel=2))
    first = _family(job)
    second_run = job.runs[1]
    wait_for(lambda: (second_run.outputs_dir / "sh.pid").exists(), what="run 2")
    assert control.cancel(env, job.id, run="1") == [f"{job.id}.1"]
    assert all(pid_gone(first[n]) for n in ("wrapper", "sh", "bg", "escaped"))
    assert job.runs[1].state().status == "running" and not pid_gone(first["runner"])
    control.cancel(env, job.id)
    assert wait_done(env, job.id) == "cancelled"


def test_killed_runner_is_reconciled(project: Path) -> None:
    env = make_env(project)
    job = submit(env, SubmitRequest(command="sleep 300", runs=2, parallel=1))
    run1, run2 = job.runs
    wait_for(lambda: run1.state().status == "running" and run1.backend_info(), what="run 1 to start")
    runner = job.runner_info()["pid"]
    os.kill(runner, signal.SIGKILL)
    wait_for(lambda: pid_gone(runner), what="the runner to die")
    data = control.status(env, job.id)
    runs = {r["run"]: r for r in data["runs"]}
    # the queued run can never start now; the running one is still alive and left alone
    assert runs[run2.id]["status"] == "failed" and "runner" in runs[run2.id]["reason"]
    assert runs[run1.id]["status"] == "running"
    # then its process dies too, without a word (as after kill -9 / a machine restart)
    os.killpg(run1.backend_info()["pid"], signal.SIGKILL)
    wait_for(lambda: pid_gone(run1.backend_info()["pid"]), what="the run to die")
    listed = control.list_jobs(env)
    assert listed[0]["status"] == "failed"
    reason = control.status(env, job.id)["runs"][0]["reason"]
    assert "gone without recording an outcome" in reason
    assert [e["event"] for e in events.read(env)].count("reconcile") == 2


def test_20_concurrent_submits(project: Path) -> None:
    import subprocess
    import sys

    env = make_env(project)
    procs = [subprocess.Popen([sys.executable, "-m", "singkit", "job.submit", "--cmd", "echo $SINGKIT_JOB", "--json"],
                              cwd=project, env=dict(env.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(20)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 20, [err for _out, err in results]
    ids = [json.loads(out)["job"] for out, _err in results]
    assert sorted(ids, key=lambda j: int(j[3:])) == [f"job{i}" for i in range(1, 21)]
    store = Store.of(env)
    for job_id in ids:
        job = store.job(job_id)
        assert job.spec["job"] == job_id and job.runs[0].id == f"{job_id}.1"
    wait_for(lambda: all(j["status"] == "completed" for j in control.list_jobs(env)) and len(control.list_jobs(env)) == 20,
             what="20 jobs to complete")
    for job_id in ids:
        assert store.job(job_id).runs[0].stdout_path.read_text() == f"{job_id}\n"
    assert len(list(store.snapshots_dir.iterdir())) == 1  # the same code, stored once


def test_dry_run_rerun_extract(project: Path, tmp_path: Path) -> None:
    env = make_env(project)
    dry = submit(env, SubmitRequest(command="echo hi > $SINGKIT_OUTPUTS/o.txt; echo hi", dry_run=True))
    assert dry.spec_path.exists() and dry.code_archive.exists() and not (dry.dir / "runs").exists()
    assert control.status(env, dry.id)["status"] == "dry-run"
    job = rerun(env, dry.id)
    assert job.spec["rerun_of"] == dry.id and job.spec["code"] == dry.spec["code"]
    assert wait_done(env, job.id) == "completed"
    dest = tmp_path / "extracted"
    control.extract(env, job.id, dest, "all")
    assert (dest / "code" / "job.sh").read_text() == "echo job script\n"
    assert (dest / "runs" / f"{job.id}.1" / "stdout.log").read_text() == "hi\n"
    assert (dest / "runs" / f"{job.id}.1" / "outputs" / "o.txt").exists()
    with pytest.raises(UsageError, match="--what"):
        control.extract(env, job.id, dest, "everything")


def test_extract_refuses_escaping_member(project: Path, tmp_path: Path) -> None:
    import io
    import tarfile

    env = make_env(project)
    job = submit(env, SubmitRequest(command="true", dry_run=True))
    job.code_archive.unlink()  # a tampered store: the job's archive has a `../` member
    with tarfile.open(job.code_archive, "w:gz") as tar:
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    dest = tmp_path / "x" / "dest"
    done = run_here(["job.extract", job.id, f"--dest={dest}", "--what=code"], project, env)
    assert done.returncode == 2 and "outside" in done.stderr and "\n" == done.stderr[-1]  # store content: bad input
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "x" / "escaped.txt").exists()


def test_usage_errors_are_one_line(project: Path) -> None:
    env = make_env(project)
    for args, code in ((["job.status", "job9"], 2), (["job.submit", "--target=nope"], 2),
                       (["job.submit", "--hp", "lr"], 2), (["job.status", "--job="], 2), (["job.list", "--status=odd"], 2)):
        done = run_here(args, project, env)
        assert done.returncode == code, (args, done.stderr)
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error:"), done.stderr


def test_target_env_and_secrets_reach_the_run_but_not_the_store(tmp_path: Path) -> None:
    config = ("compute-targets:\n  local:\n    service: local\n    setup: s\n    env:\n      TOKEN: $env:MY_TOKEN\n"
              "      MODE: fast\nsetups:\n  s:\n    pre-cmds: ['echo pre']\n    env:\n      FROM_SETUP: yes-setup\n")
    project = make_project(tmp_path, config)
    env = make_env(project, MY_TOKEN="s3cret-value")
    job = submit(env, SubmitRequest(command='echo "$TOKEN $MODE $FROM_SETUP"'))
    assert wait_done(env, job.id) == "completed"
    assert job.runs[0].stdout_path.read_text() == "pre\ns3cret-value fast yes-setup\n"
    stored = b"".join(p.read_bytes() for p in job.dir.rglob("*") if p.is_file() and p.name != "stdout.log")
    assert b"s3cret-value" not in stored and b"$env:MY_TOKEN" in job.spec_path.read_bytes()


def test_a_run_past_max_run_seconds_is_stopped_with_reason_timeout(tmp_path: Path) -> None:
    """The target's max-run-seconds (Azure ML's limits.timeout) holds on this machine too: the run's
    processes get SIGTERM, then SIGKILL after grace-seconds; one under the limit completes."""
    from jobtools import LOCAL_CONFIG

    project = make_project(tmp_path, LOCAL_CONFIG + "  limited:\n    service: local\n    max-run-seconds: 1\n"
                                                    "    grace-seconds: 1\n")
    env = make_env(project)
    job = submit(env, SubmitRequest(target="limited", command='sleep 300 & echo $! > "$SINGKIT_OUTPUTS/bg.pid"; wait'))
    background = wait_for(lambda: (job.runs[0].outputs_dir / "bg.pid").exists() and read_pid(job.runs[0].outputs_dir / "bg.pid"),
                          what="the run's sleep")
    assert wait_done(env, job.id) == "failed"
    run = control.status(env, job.id)["runs"][0]
    assert run["reason"].startswith("timeout: ") and "max-run-seconds (1 s)" in run["reason"], run
    assert pid_gone(background)
    quick = submit(env, SubmitRequest(target="limited", command="echo done"))
    assert wait_done(env, quick.id) == "completed"
