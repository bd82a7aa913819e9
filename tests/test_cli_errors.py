"""The command line's own mistakes and a reader that goes away: `singkit` parse errors are one
line, exit 2, with a hint; a closed pipe ends the command quietly (exit 141, like SIGPIPE)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jobreaper import reaped  # noqa: F401  (autouse: every job ends with its test)
from jobtools import make_env, make_project, run_here, wait_done
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit

SIGPIPE_EXIT = 141


@pytest.mark.parametrize("args, expected", [
    (["job.sumbit"], "error: no task `job.sumbit`; did you mean job.submit? (`singkit --list` lists the tasks)"),
    (["report.lsit", "--runs"], "error: no task `report.lsit`; did you mean report.list?"),
    (["report.metrics"], "error: report.metrics needs its job: `singkit report.metrics JOB`"),
    (["job.list", "--bogus"], "error: unknown option --bogus for job.list"),
    (["job.list", "--lats=3"], "error: unknown option --lats for job.list; did you mean --last?"),
    (["job.list", "--last"], "error: --last needs a value: --last=VALUE"),
    (["--bogus"], "error: unknown option --bogus"),
    (["job.status", "--bogus"], "error: unknown option --bogus"),
    (["job.status", "--bogus=1"], "error: unknown option --bogus"),
    # a repeatable option with nothing after it (invoke would give it its empty default and run)
    (["job.submit", "--hp"], "error: --hp needs a value: --hp=VALUE"),
    (["job.submit", "--hp", "--dry-run"], "error: --hp needs a value: --hp=VALUE"),
    (["job.submit", "--output"], "error: --output needs a value: --output=VALUE"),
    (["report.plot", "job1", "--filter"], "error: --filter needs a value: --filter=VALUE"),
])
def test_parse_errors_are_usage_errors_with_a_hint(tmp_path: Path, args: list[str], expected: str) -> None:
    project = make_project(tmp_path)
    done = run_here(args, project, make_env(project))
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(expected), done.stderr


def _closed_pipe_run(args: list[str], project: Path, env) -> subprocess.CompletedProcess:
    """Run with stdout on a pipe nobody reads any more (its read end closed before the start)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "singkit", *args], cwd=project, env=dict(env.environ),
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    # nothing on the run's stderr: `--follow` relays it from its own thread, which may legitimately
    # print before the stdout thread finds the pipe closed
    job = submit(env, SubmitRequest(command="echo out", hp=["k=1,2"]))
    assert wait_done(env, job.id) == "completed"
    for args in (["job.list"], ["job.status", job.id], ["job.logs", job.id], ["job.logs", job.id, "--follow"],
                 ["job.list", "--json"], ["report.list"], ["job.monitor", job.id]):
        done = _closed_pipe_run(args, project, env)
        # monitor's own progress line may reach stderr before its first stdout write fails
        progress = {f"{job.id}: 2 completed\n"} if args[0] == "job.monitor" else set()
        assert done.returncode == SIGPIPE_EXIT and done.stderr in {"", *progress}, (args, done.stderr)


@pytest.mark.parametrize("args", [["config.skus", "-h"], ["--list"], ["--help"]])
def test_invokes_own_output_to_a_closed_pipe_ends_quietly(tmp_path: Path, args: list[str]) -> None:
    project = make_project(tmp_path)
    done = _closed_pipe_run(args, project, make_env(project))
    assert done.returncode == SIGPIPE_EXIT and done.stderr == "", done.stderr


def test_head_dash_1_through_a_real_pipeline(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    job = submit(env, SubmitRequest(command="seq 1 200000"))  # far more than a pipe holds
    assert wait_done(env, job.id) == "completed"
    for args in (["job.logs", job.id], ["job.logs", job.id, "--follow"]):
        writer = subprocess.Popen([sys.executable, "-m", "singkit", *args], cwd=project, env=dict(env.environ),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        head = subprocess.Popen(["head", "-1"], stdin=writer.stdout, stdout=subprocess.PIPE)
        writer.stdout.close()  # only head reads it now
        first, _ = head.communicate(timeout=120)
        err = writer.stderr.read()
        assert writer.wait(timeout=120) == SIGPIPE_EXIT and err == b"", err
        assert first == b"1\n"


def test_usage_words_still_work(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    assert run_here(["--version"], project, env).returncode == 0
    assert run_here(["job.list"], project, env).returncode == 0
    helped = run_here(["job.status", "--help"], project, env)
    assert helped.returncode == 0 and "--job=JOB" in helped.stdout


# -- the `invoke` binary answers as `singkit` does (issue 13) --------------------------------------

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("args", [["job.sumbit"], ["job.list", "--lats=3"], ["job.list", "--status", "runing"],
                                  ["report.list", "--runs", "JOB=job404"], ["job.submit", "--runs=two"],
                                  ["report.metrics"], ["job.status", "-j"],
                                  # after a task word -c/-r/-l are that task's (unknown) options, not
                                  # invoke's collection options nor --list (tester's finding 5)
                                  ["job.list", "-c", "x"], ["job.list", "-r", "job1"], ["job.list", "-l", "2"],
                                  ["job.status", "JOB=job1", "--job", "job2"], ["job.status", "RUN=job3.2"]])
def test_the_invoke_binary_gives_singkits_answer_and_code(tmp_path: Path, args: list[str]) -> None:
    """invoke's own Program printed "No idea what 'job.sumbit' is!" and exited 1 (= "job failed")."""
    project = make_project(tmp_path)
    (project / "tasks.py").write_text((ROOT / "tasks.py").read_text())
    env = dict(make_env(project).environ)
    done = {name: subprocess.run([str(BIN / name), *args], cwd=project, env=env, capture_output=True, text=True,
                                 timeout=120) for name in ("invoke", "singkit")}
    assert done["singkit"].returncode == done["invoke"].returncode == 2, done
    assert done["invoke"].stderr == done["singkit"].stderr.replace("`singkit ", "`invoke "), done
    assert done["invoke"].stderr.count("\n") == 1 and done["invoke"].stderr.startswith("error: ")


def test_a_tasks_hint_names_the_program_the_user_typed(tmp_path: Path) -> None:
    """`singkit job.status job404` said "submit one with `invoke job.submit`", a binary that user may not have."""
    project = make_project(tmp_path)
    (project / "tasks.py").write_text((ROOT / "tasks.py").read_text())
    env = dict(make_env(project).environ)
    for name in ("invoke", "singkit"):
        done = subprocess.run([str(BIN / name), "job.status", "job404"], cwd=project, env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 2 and f"submit one with `{name} job.submit`" in done.stderr, (name, done.stderr)


@pytest.mark.parametrize("args, expected", [
    (["job.list", "-c", "x"], "error: unknown option -c for job.list"),
    (["job.list", "-r", "job1"], "error: unknown option -r for job.list"),
    (["job.list", "-l", "2"], "error: unknown option -l for job.list"),
    (["job.list", "--list"], "error: unknown option --list for job.list"),
])
def test_a_core_option_after_a_task_word_is_an_unknown_option_of_the_task(tmp_path: Path, args, expected) -> None:
    """`invoke job.list -c x` exited 0 ignoring -c; `job.list -l 2` was `--list=2` ("Sub-collection
    '2' not found!", exit 1) in both binaries."""
    project = make_project(tmp_path)
    done = run_here(args, project, make_env(project))
    assert done.returncode == 2 and done.stderr.startswith(expected) and done.stderr.count("\n") == 1, done


@pytest.mark.parametrize("core", [["-c", "tasks"], ["--collection=tasks"], ["-r", "."], ["--no-dedupe"]])
def test_invokes_collection_options_before_the_task_word_still_give_singkits_answer(tmp_path: Path, core) -> None:
    """-c/-r before the first task word are invoke's (they found tasks.py); what follows is answered
    as `singkit` answers it."""
    project = make_project(tmp_path)
    (project / "tasks.py").write_text((ROOT / "tasks.py").read_text())
    env = dict(make_env(project).environ)
    done = subprocess.run([str(BIN / "invoke"), *core, "job.lsit"], cwd=project, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done
    assert done.stderr == "error: no task `job.lsit`; did you mean job.list? (`invoke --list` lists the tasks)\n"
    listed = subprocess.run([str(BIN / "invoke"), *core, "job.list", "--json"], cwd=project, env=env,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and listed.stdout.strip() == "[]", listed


def test_tasks_py_imported_elsewhere_only_gives_the_namespace() -> None:
    done = subprocess.run([sys.executable, "-c", "import tasks; print(sorted(tasks.ns.collections))"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "['config', 'image', 'job', 'report']\n", done


def test_make_names_the_real_exit_code(tmp_path: Path) -> None:
    """Make ends every failure with its own exit 2; the line it prints names the command's code."""
    project = make_project(tmp_path)
    venv = BIN.parent
    done = subprocess.run(["make", "-s", "--no-print-directory", "-C", str(ROOT), f"VENV={venv}",
                           "-o", f"{venv}/.singkit-setup", "status", "JOB=job404"],
                          env=dict(make_env(project).environ), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines[0].startswith("error: no job `job404`") and re.search(r"\[Makefile:\d+: status\] Error 2$", lines[-1]), lines


# -- "did you mean" for option values --------------------------------------------------------------

@pytest.mark.parametrize("args, expected", [
    (["job.list", "--status", "runing"], "error: --status=runing is not one of queued, running, completed, failed, "
                                         "cancelled, preempted, dry-run, unknown; did you mean running?"),
    (["job.extract", "job1", "--dest=out", "--what", "output"], "error: --what=output is not one of code, logs, "
                                                                "outputs, all; did you mean outputs?"),
    (["report.plot", "job1", "--aggregate=meen"], "error: --aggregate=meen is not one of mean, median, none; did you mean mean?"),
    (["report.plot", "job1", "--band=sdt"], "error: --band=sdt is not one of std, sem, minmax; did you mean std?"),
    (["report.html", "job1", "--band=minmx"], "error: --band=minmx is not one of std, sem, minmax; did you mean minmax?"),
    (["report.summary", "job1", "--format=pgn"], "error: --format=pgn is not one of png, svg; did you mean png?"),
    (["report.plot", "job1", "--format=jpeg"], "error: --format=jpeg is not one of png, svg"),
    (["report.summary", "job1", "--use=bset"], "error: --use=bset is not one of best, last; did you mean best?"),
    (["report.log", "job1", "--event=status,metric"], "error: --event=metric is not one of status, hparams, metrics, "
                                                      "exit; did you mean metrics?"),
    (["report.list", "--sort", "accuracy"], "error: no column `accuracy`; did you mean metrics.acc?"),
    (["report.list", "--columns", "run,los"], "error: no column `los`; did you mean metrics.loss?"),
    (["report.list", "--job=job1", "--sort", "ac", "--reverse"], "error: no column `ac`; did you mean metrics.acc?"),
])
def test_enumerated_values_get_did_you_mean(tmp_path: Path, args: list[str], expected: str) -> None:
    import storegen

    project = make_project(tmp_path)
    env = make_env(project)
    storegen.write_job(env.home, "job1", [storegen.RunSpec(hparams={"lr": 0.1},
                                                           metrics=storegen.curve(5, 2.0, 0.5))])
    done = run_here(args, project, env)
    assert done.returncode == 2 and done.stderr == expected + "\n", done.stderr


def test_a_value_in_another_case_is_the_choice(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    done = run_here(["job.list", "--status", "Completed", "--json"], project, make_env(project))
    assert done.returncode == 0 and done.stdout.strip() == "[]", done


def test_choices_are_the_librarys_own() -> None:
    """The tasks list their choices without importing the library (CLI start); they must agree."""
    from singkit.backends.base import WHAT
    from singkit.store.status import STATUSES
    from singkit.tasks import job, report

    from singkit.store.status import DRY_RUN, LOG_MISSING

    assert job.STATUSES == (*STATUSES, DRY_RUN, LOG_MISSING) and job.WHAT == WHAT
    assert set(report.RUN_EVENTS) >= {"status", "hparams", "metrics", "exit"}


# -- job and run words (tester's finding 6) --------------------------------------------------------

@pytest.mark.parametrize("word_form, flag_form", [
    (["report.errors", "job1"], ["report.errors", "--job=job1"]),
    (["report.list", "--runs", "job1", "--json"], ["report.list", "--runs", "--job=job1", "--json"]),
    (["report.events", "job1", "--json"], ["report.events", "--job=job1", "--json"]),
    (["job.logs", "job1.2"], ["job.logs", "--job=job1", "--run=job1.2"]),
    (["job.logs", "RUN=job1.2"], ["job.logs", "--job=job1", "--run=job1.2"]),
    (["job.logs", "--run", "job1.2"], ["job.logs", "--job=job1", "--run=job1.2"]),
])
def test_a_job_or_run_word_names_the_job_and_run(tmp_path: Path, word_form, flag_form) -> None:
    """`report.errors job4` and `report.list --runs job1` answered "no task `job4`" though the job is
    optional there; a run word gives its job and run where the task has --run."""
    project = make_project(tmp_path)
    env = make_env(project)
    job = submit(env, SubmitRequest(command='echo "out of $SINGKIT_RUN"; exit $SINGKIT_HP_K', hp=["k=0,3"]))
    assert job.id == "job1" and wait_done(env, job.id) == "failed"
    as_word, as_flag = run_here(word_form, project, env), run_here(flag_form, project, env)
    assert (as_word.returncode, as_word.stdout, as_word.stderr) == (as_flag.returncode, as_flag.stdout, as_flag.stderr)
    assert as_word.returncode == 0 and as_word.stdout, as_word
    if word_form[0] == "job.logs":
        assert as_word.stdout == "out of job1.2\n"
    if word_form[0] == "report.errors":
        assert "job1.2" in as_word.stdout and "job1.1" not in as_word.stdout


@pytest.mark.parametrize("args, expected", [
    (["job.status", "JOB=job1", "--job", "job2"],
     "error: job.status: the job was given twice (`JOB=job1`, then `--job job2`); give it once"),
    (["job.status", "job1", "job2"], "error: job.status: the job was given twice (`job1`, then `job2`); give it once"),
    (["report.errors", "--job=job1", "job2"],
     "error: report.errors: the job was given twice (`--job=job1`, then `job2`); give it once"),
    (["job.logs", "job1", "--run=1", "RUN=2"],
     "error: job.logs: the --run was given twice (`--run=1`, then `RUN=2`); give it once"),
    (["job.status", "RUN=job3.2"], "error: job.status takes a whole job, not one run: `singkit job.status job3` "
                                   "(job3.2 is one of its runs; `singkit job.logs RUN=job3.2` prints that run's output)"),
    (["report.plot", "job3.2"], "error: report.plot takes a whole job, not one run: `singkit report.plot job3`"),
    (["job.status", "RUN=2"], "error: job.status takes no run (`RUN=2`); see `singkit job.status --help`"),
    (["job.list", "job1"], "error: job.list takes no job (`job1`); see `singkit job.list --help`"),
])
def test_a_job_given_twice_or_a_run_for_a_job_is_one_line(tmp_path: Path, args, expected) -> None:
    """`job.status JOB=job1 --job job2` answered "no task `job2`"; `job.status RUN=job3.2` "no job `job3.2`"."""
    project = make_project(tmp_path)
    done = run_here(args, project, make_env(project))
    assert done.returncode == 2 and done.stderr.startswith(expected) and done.stderr.count("\n") == 1, done
    assert not (project / ".singkit").exists()
