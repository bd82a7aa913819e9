"""The task surface a newcomer meets: `invoke --list`, per-task help, Make-style JOB= words."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clirunner import run_singkit

ROOT = Path(__file__).resolve().parents[1]
INVOKE = str(Path(sys.executable).with_name("invoke"))


def test_invoke_list_shows_the_four_collections_each_task_with_help():
    result = subprocess.run([INVOKE, "--list"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("  ") and not ln.startswith("    ")]
    names = [ln.split()[0] for ln in lines]
    assert {n.split(".")[0] for n in names} == {"config", "image", "job", "report"}
    assert len(lines) == len([ln for ln in lines if len(ln.split()) > 1]), "a task without one line of help"
    for expected in ("image.wrap", "job.submit", "job.monitor", "job.cancel", "report.plot", "config.validate"):
        assert expected in names


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_of_a_task_with_a_positional_job(flag):
    result = subprocess.run([INVOKE, "job.status", flag], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Options:" in result.stdout and "-j JOB, --job=JOB" in result.stdout and result.stderr == ""


@pytest.mark.parametrize("form", [["JOB=job7"], ["--job=job7"], ["job7"]])
def test_a_job_is_named_as_a_make_word_or_a_flag(tmp_path, form):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "singkit.yaml").write_text("general: {experiment: x}\n")
    result = run_singkit(["job.status", *form], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: no job `job7`"), result.stderr


# -- issue 13: one surface for every task -------------------------------------------------------

from singkit.cli import make_program  # noqa: E402
from singkit.tasks import ns  # noqa: E402
from singkit.tasks._surface import CORE_SHORT_FLAGS, SHORT_FLAGS  # noqa: E402

CONTEXTS = {ctx.name: ctx for ctx in ns.to_contexts()}
TASKS = sorted(CONTEXTS)
SINGKIT = str(Path(sys.executable).with_name("singkit"))


def _project(tmp_path: Path) -> Path:
    (tmp_path / "configs").mkdir(exist_ok=True)
    (tmp_path / "configs" / "singkit.yaml").write_text("general: {experiment: x}\ncompute-targets:\n  local: {service: local}\n")
    return tmp_path


def test_short_flags_mean_the_same_in_every_task():
    """`-h` was `--hp` in job.submit (a help request started a job), `-j` was `--json` there and
    `--job` elsewhere, `-s` was `--json` in job.status and `--sort` in report.list."""
    meaning: dict[str, set[str]] = {}
    for name, ctx in CONTEXTS.items():
        for arg in ctx.args.values():
            longs = [n for n in arg.names if len(n) > 1]
            shorts = [n for n in arg.names if len(n) == 1]
            assert "h" not in arg.names, f"{name} binds -h"
            assert not set(arg.names) & CORE_SHORT_FLAGS, f"{name}: {arg.names} takes a core short flag"
            if longs and longs[0] in SHORT_FLAGS:  # every task with --job has -j, …
                assert shorts == [SHORT_FLAGS[longs[0]]], (name, arg.names)
            for short in shorts:
                meaning.setdefault(short, set()).add(longs[0] if longs else short)
    assert {k: v for k, v in meaning.items() if len(v) > 1} == {}
    assert meaning["j"] == {"job"} and meaning["t"] == {"target"} and meaning["x"] == {"x"}
    assert not any("json" in v for v in meaning.values()), "--json has a short flag"


@pytest.mark.parametrize("task", TASKS)
def test_dash_h_is_help_in_every_task_and_starts_nothing(tmp_path, task):
    project = _project(tmp_path)
    result = run_singkit([task, "-h"], cwd=project)
    assert result.returncode == 0, result.stderr
    positional = " ".join(a.name.upper() for a in CONTEXTS[task].positional_args)
    assert result.stdout.startswith(f"Usage: singkit {task} {positional}".rstrip() + " "), result.stdout[:200]
    assert "Options:" in result.stdout and result.stderr == ""
    assert not (project / ".singkit").exists(), "a help request touched the store"


@pytest.mark.parametrize("binary", [INVOKE, SINGKIT])
def test_submit_dash_h_through_both_binaries_is_help(tmp_path, binary):
    project = _project(tmp_path)
    (project / "tasks.py").write_text((ROOT / "tasks.py").read_text())
    result = subprocess.run([binary, "job.submit", "-h"], cwd=project, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith(f"Usage: {Path(binary).name} job.submit"), result
    assert not (project / ".singkit").exists()


def _help(task: str, capsys) -> str:
    make_program().run(["singkit", task, "--help"], exit=False)
    return capsys.readouterr().out


@pytest.mark.parametrize("task", TASKS)
def test_every_option_with_a_value_shows_a_placeholder(task, capsys):
    """`--hp` (a repeatable value) showed no placeholder; `--runs=STRING`, `--tail=STRING` for numbers."""
    text = _help(task, capsys)
    task_obj = ns[task]
    for arg in CONTEXTS[task].args.values():
        flag = f"--{arg.names[0]}" if len(arg.names[0]) > 1 else f"-{arg.names[0]}"
        line = next(ln for ln in text.splitlines() if f"{flag}=" in ln or f"{flag} " in ln or ln.rstrip().endswith(flag)
                    or f"{flag}," in ln)
        if not arg.takes_value:
            assert f"{flag}=" not in line, line
            continue
        shown = line.split(f"{flag}=", 1)[1].split()[0] if f"{flag}=" in line else line.split(f"{flag} ", 1)[1].split()[0]
        if arg.name in task_obj.ints:
            assert shown == "INT", line
        elif arg.name in task_obj.choices:
            assert shown.startswith("|".join(task_obj.choices[arg.name])), line
        else:
            assert shown and shown != "STRING", line


@pytest.mark.parametrize("task, flag", [("job.submit", "--runs"), ("job.submit", "--parallel"), ("job.list", "--last"),
                                        ("job.logs", "--tail"), ("report.errors", "--tail"), ("report.plot", "--dpi")])
def test_integer_options_show_int(task, flag, capsys):
    assert f"{flag}=INT" in _help(task, capsys)


@pytest.mark.parametrize("argv", [[], ["--help"]])
def test_bare_singkit_lists_no_invoke_shell_options(argv):
    result = subprocess.run([SINGKIT, *argv], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: singkit TASK [--options]")
    for meaningless in ("--pty", "--prompt-for-sudo-password", "--echo", "--warn-only", "--command-timeout",
                        "--hide", "--dry", "--config", "--write-pyc", "--core-opts"):
        assert meaningless not in result.stdout
    assert "--list" in result.stdout and "--version" in result.stdout and "  job.submit " in result.stdout


def test_a_task_typo_never_reaches_invokes_core_options(tmp_path):
    """`job.submit --dry` was invoke's core `--dry` ("echo commands"): a real job started."""
    project = _project(tmp_path)
    result = run_singkit(["job.submit", "--cmd", "true", "--dry"], cwd=project)
    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown option --dry for job.submit; did you mean --dry-run?")
    assert not (project / ".singkit" / "jobs").exists()
    pty = run_singkit(["--pty", "job.list"], cwd=project)
    assert pty.returncode == 2 and pty.stderr.startswith("error: unknown option --pty"), pty.stderr


# Every task with a --job (--run, --target, --docker) takes it as a Make-style word too; job.submit
# is left out because it may start a job.
ASSIGNED = [(task, [f"{word.upper()}={value}"], [f"--{word}={value}"], extra)
            for task in TASKS if task != "job.submit"
            for word, value, extra in (("job", "job404", ["--dest=out"] if task == "job.extract" else []),
                                       ("target", "nosuch", []), ("docker", "nosuch", []))
            if f"--{word}" in CONTEXTS[task].flags]
ASSIGNED += [("job.logs", ["JOB=job404", "RUN=2"], ["--job=job404", "--run=2"], []),
             ("report.list", ["--runs", "job=job404"], ["--runs", "--job=job404"], [])]


@pytest.mark.parametrize("task, words, flags, extra", ASSIGNED, ids=[f"{a[0]}-{a[1][-1]}" for a in ASSIGNED])
def test_make_style_words_mean_their_flags_in_every_task(tmp_path, task, words, flags, extra):
    """`invoke report.list --runs JOB=job1` answered "No idea what 'JOB=job1' is!" (exit 1)."""
    project = _project(tmp_path)
    as_word = run_singkit([task, *words, *extra], cwd=project)
    as_flag = run_singkit([task, *flags, *extra], cwd=project)
    assert (as_word.returncode, as_word.stderr, as_word.stdout) == (as_flag.returncode, as_flag.stderr, as_flag.stdout)
    assert "no task" not in as_word.stderr and "takes no" not in as_word.stderr


def test_a_word_for_an_option_the_task_lacks_says_so(tmp_path):
    result = run_singkit(["job.list", "JOB=job1"], cwd=_project(tmp_path))
    assert result.returncode == 2
    assert result.stderr == "error: job.list takes no job (`JOB=job1`); see `singkit job.list --help`\n"


def test_a_word_that_is_a_flags_value_is_left_alone(tmp_path):
    """`--hp job=1,2` is a sweep over an hparam named job, not the job."""
    project = _project(tmp_path)
    result = run_singkit(["job.submit", "--dry-run", "--cmd", "true", "--hp", "JOB=1,2", "--json"], cwd=project)
    assert result.returncode == 0, result.stderr
    assert '"JOB": "1"' in result.stdout or '"JOB": 1' in result.stdout, result.stdout[:400]


def test_a_listed_group_names_its_tasks_as_they_are_typed():
    result = subprocess.run([SINGKIT, "--list=job"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "\n  job.cancel " in result.stdout and "\n  .cancel" not in result.stdout, result.stdout


def test_value_placeholders_say_what_goes_there(capsys):
    """`--from=FROM` (the README says FILE), `--sort=SORT` and `--event=EVENT` said nothing."""
    assert "--from=FILE" in _help("job.submit", capsys)
    assert "--sort=COLUMN" in _help("report.list", capsys) and "--sort=COLUMN" in _help("report.metrics", capsys)
    events = _help("report.events", capsys)
    assert "--event=KIND,..." in events
    # every kind singkit records in the audit log is listed (the calls of events.record / audit)
    import re

    source = "\n".join(p.read_text() for p in (ROOT / "src" / "singkit").rglob("*.py"))
    kinds = set(re.findall(r'(?:events\.record|audit)\((?:\w+\.)?env, "([a-z-]+)"', source))
    kinds |= set(re.findall(r'event, reason = "([a-z-]+)"', source))
    assert {"build", "push", "pin", "submit", "cancel", "submit-refused"} <= kinds
    flat = " ".join(events.split())
    assert [k for k in sorted(kinds) if not re.search(rf"\b{re.escape(k)}\b(?!-)", flat)] == []
