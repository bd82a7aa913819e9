"""A submit killed at the worst moment, a damaged job among good ones, and literal secrets
from the user's own config: the store stays listable and the secrets stay out of it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from jobreaper import reaped  # noqa: F401  (autouse: every job ends with its test)
from jobtools import age, make_env, make_project, run_here, wait_done
from singkit.exceptions import ConfigError
from singkit.jobs import control
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import rerun, submit
from singkit.store import Store

# Runs `singkit ARGS` and SIGKILLs itself at the first audited operation after job.yaml is
# renamed into place: the state a `kill -9` right after the commit point leaves behind.
KILL_AFTER_COMMIT = textwrap.dedent("""
    import os, signal, sys
    committed, killing = [], []
    def hook(event, args):
        if committed and not killing:
            killing.append(True)  # os.kill is audited too
            os.kill(os.getpid(), signal.SIGKILL)
        if event == "os.rename" and str(args[1]).endswith("job.yaml"):
            committed.append(True)
    sys.addaudithook(hook)
    sys.argv = ["singkit", *sys.argv[1:]]
    from singkit.cli import main
    main()
""")


def test_job_yaml_without_run_folders_is_listed_not_a_traceback(tmp_path: Path) -> None:
    """What a submit killed between job.yaml and the run folders left behind (older singkit)."""
    project = make_project(tmp_path)
    env = make_env(project)
    job = submit(env, SubmitRequest(command="true", hp=["k=1,2"], dry_run=True))
    spec = dict(job.spec)
    spec["dry_run"] = False
    job.write_spec(spec)
    age(job)
    Store.of(env).save(job)  # the index as the submit would have left it: queued
    assert not (job.dir / "runs").exists()
    listed = run_here(["job.list", "--json"], project, env)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    assert [(j["job"], j["status"]) for j in json.loads(listed.stdout)] == [(job.id, "failed")]
    runs = control.status(env, job.id)["runs"]
    assert [r["status"] for r in runs] == ["failed", "failed"]
    assert all("no runner was ever started" in r["reason"] for r in runs)


def test_submit_killed_right_after_job_yaml_leaves_a_whole_job(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_COMMIT, "job.submit", "--cmd", "true", "--runs=2"],
                            cwd=project, env=dict(env.environ), capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    job = Store.of(env).job("job1")
    assert [r.state().status for r in job.runs] == ["queued", "queued"]  # the folders came first
    assert not job.runner_path.exists()
    age(job)
    listed = run_here(["job.list", "--json"], project, env)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)[0]["status"] == "failed"
    assert "no runner was ever started" in control.status(env, job.id)["runs"][0]["reason"]


def test_list_skips_a_damaged_job_with_one_warning_line(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    good = submit(env, SubmitRequest(command="true"))
    wait_done(env, good.id)
    store = Store.of(env)
    for spec in ({"job": "job2", "runs": [{"hparams": {}}]},):  # valid YAML, not a job spec
        bad = store.allocate()
        bad.write_spec(spec)
    unparsable = store.allocate()
    unparsable.spec_path.write_text("job: [unclosed\nruns: {\n")
    (env.home / "index.sqlite").unlink()  # a fresh index: every folder is read again
    for suffix in ("-wal", "-shm"):
        Path(f"{env.home / 'index.sqlite'}{suffix}").unlink(missing_ok=True)
    listed = run_here(["job.list", "--json"], project, env)
    assert listed.returncode == 0, listed.stderr
    assert [j["job"] for j in json.loads(listed.stdout)] == [good.id]
    warnings = listed.stderr.splitlines()
    assert len(warnings) == 2 and "Traceback" not in listed.stderr, listed.stderr
    assert warnings[0].startswith("warning: skipped job2: ") and "job2/job.yaml: `target` is missing" in warnings[0]
    assert warnings[1].startswith("warning: skipped job3: ") and "job3/job.yaml:2: not valid YAML" in warnings[1]


USER_SECRETS = """\
compute-targets:
  local:
    env:
      HF_TOKEN: hf_literal_value_123
setups:
  s:
    env:
      API_KEY: ak_literal_456
      PLAIN: visible
"""
PROJECT = "general:\n  experiment: test\ncompute-targets:\n  local:\n    service: local\n    setup: s\n"
# prints digests, never the values: the command and stdout.log are store files too
CHECK = ('printf %s "$HF_TOKEN" | sha256sum; printf %s "$API_KEY" | sha256sum; '
         'echo "plain=$PLAIN"; env | grep -c "^SINGKIT_SECRET_" || true')
EXPECTED = "".join(f"{hashlib.sha256(v).hexdigest()}  -\n" for v in (b"hf_literal_value_123", b"ak_literal_456"))


@pytest.fixture
def secret_project(tmp_path: Path) -> Path:
    project = make_project(tmp_path, PROJECT)
    user = tmp_path / "home" / ".config" / "singkit" / "config.yaml"  # make_env's HOME
    user.parent.mkdir(parents=True)
    user.write_text(USER_SECRETS)
    return project


def _files_holding(home: Path, *secrets: bytes) -> list[str]:
    return [str(p.relative_to(home)) for p in sorted(home.rglob("*"))
            if p.is_file() and any(s in p.read_bytes() for s in secrets)]


def test_user_layer_literal_secrets_reach_the_run_but_no_store_file(secret_project: Path) -> None:
    env = make_env(secret_project)
    job = submit(env, SubmitRequest(command=CHECK))
    assert wait_done(env, job.id) == "completed"
    assert job.runs[0].stdout_path.read_text() == EXPECTED + "plain=visible\n0\n"
    assert _files_holding(env.home, b"hf_literal_value_123", b"ak_literal_456") == []
    spec = job.spec_path.read_text()
    assert '"HF_TOKEN": "$env:SINGKIT_SECRET_HF_TOKEN"' in spec and '"API_KEY": "$env:SINGKIT_SECRET_API_KEY"' in spec
    assert '"PLAIN": "visible"' in spec  # only secret-named variables are sealed (job.yaml: JSON-formatted YAML)


def test_rerun_without_the_secret_variable_fails_in_one_line(secret_project: Path) -> None:
    env = make_env(secret_project)
    job = submit(env, SubmitRequest(command=CHECK))
    wait_done(env, job.id)
    with pytest.raises(ConfigError, match="environment variable SINGKIT_SECRET_(HF_TOKEN|API_KEY) is not set"):
        rerun(env, job.id)  # a later shell: the literal was never stored anywhere
    done = run_here(["job.rerun", job.id], secret_project, env)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "job.yaml:" in done.stderr and "is not set; export SINGKIT_SECRET_" in done.stderr
    assert len(Store.of(env).job_ids()) == 1  # refused before anything was allocated
    again = make_env(secret_project, SINGKIT_SECRET_HF_TOKEN="hf_literal_value_123", SINGKIT_SECRET_API_KEY="ak_literal_456")
    second = rerun(again, job.id)
    assert wait_done(again, second.id) == "completed"
    assert second.runs[0].stdout_path.read_text().startswith(EXPECTED)


# A job can write anything into its own run.log; one line nested past Python's recursion limit
# made json raise RecursionError (not ValueError) in every reader (issue 16).
DEEP_LINE = ('python -c "import os, json; open(os.environ[\'SINGKIT_RUN_LOG\'], \'a\').write(\'[\' * 100000 + \']\' * 100000 + chr(10)); '
             'open(os.environ[\'SINGKIT_RUN_LOG\'], \'a\').write(json.dumps({\'event\': \'metrics\', \'step\': 1, '
             '\'metrics\': {\'loss\': 0.5}}) + chr(10))"')


def test_a_deeply_nested_line_in_run_log_is_skipped_by_every_reader(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    job = submit(env, SubmitRequest(command=DEEP_LINE))
    assert wait_done(env, job.id) == "completed"  # the runner's own fold skips the line
    for args in (["job.status", job.id, "--json"], ["job.list", "--json"], ["report.list", "--runs", "--json"],
                 ["report.metrics", job.id, "--json"], ["job.logs", job.id]):
        done = run_here(args, project, env)
        assert done.returncode == 0 and "Traceback" not in done.stderr and "RecursionError" not in done.stderr, (args, done.stderr)
    runs = json.loads(run_here(["report.list", "--runs", "--json"], project, env).stdout)
    assert [r["status"] for r in runs] == ["completed"] and runs[0]["metrics.loss"] == 0.5, runs


def test_extract_into_the_store_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    """Into a run's outputs it copied itself until RecursionError; into the store root it polluted it (issue 16)."""
    project = make_project(tmp_path)
    env = make_env(project)
    job = submit(env, SubmitRequest(command="mkdir -p $SINGKIT_OUTPUTS && echo ckpt > $SINGKIT_OUTPUTS/model.pt"))
    assert wait_done(env, job.id) == "completed"
    before = sorted(str(p) for p in env.home.rglob("*") if "index.sqlite" not in p.name)
    outputs = next(env.home.rglob("model.pt")).parent
    for dest in (outputs / "copy", env.home, env.home / "jobs" / "x", Path(".singkit") / "extracted"):
        done = run_here(["job.extract", job.id, f"--dest={dest}"], project, env)
        assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, (dest, done.stderr)
        assert "is inside the job store" in done.stderr, done.stderr
    assert sorted(str(p) for p in env.home.rglob("*") if "index.sqlite" not in p.name) == before
    done = run_here(["job.extract", job.id, "--dest=extracted"], project, env)  # outside: as before
    assert done.returncode == 0 and (project / "extracted").rglob("model.pt"), done.stderr
    assert any((project / "extracted").rglob("model.pt"))


def test_reports_follow_the_stores_rule_for_half_created_job_folders(tmp_path: Path) -> None:
    """A folder a killed submit left (runs/, no job.yaml) showed in report.list as queued forever
    while job.list hid it (issue 16): both now follow the store's one rule."""
    import os

    project = make_project(tmp_path)
    env = make_env(project)
    good = submit(env, SubmitRequest(command="true"))
    assert wait_done(env, good.id) == "completed"
    half = env.home / "jobs" / "job9"
    (half / "runs" / "job9.1").mkdir(parents=True)
    old = time.time() - 3600
    for path in (half / "runs" / "job9.1", half / "runs", half):
        os.utime(path, (old, old))
    listed = {args[-1]: json.loads(run_here(["report.list", *args, "--json"], project, env).stdout)
              for args in (["--jobs"], ["--runs"])}
    assert [j["job"] for j in listed["--jobs"]] == [good.id], listed
    assert {r["run"].rsplit(".", 1)[0] for r in listed["--runs"]} == {good.id}, listed
    assert [j["job"] for j in json.loads(run_here(["job.list", "--json"], project, env).stdout)] == [good.id]
