"""Swept values reach the command and $SINGKIT_HP_* exactly as typed; run.log and the reports
keep them typed (so a sweep over lr sorts numerically)."""

from __future__ import annotations

import json
from pathlib import Path

from jobreaper import reaped  # noqa: F401  (autouse: every job ends with its test)
from jobtools import make_env, make_project, run_here, wait_done
from singkit.backends.runtime.variables import hp_environment
from singkit.jobs.spec import parse_hp, parse_hp_text, parse_value, run_command
from singkit.store import Store

AS_TYPED = ["ver=1.10,2.0", "flag=true,no", "name=007", "lr=1e-3"]


def test_text_is_kept_and_typed_values_are_only_for_the_record() -> None:
    assert parse_hp_text(AS_TYPED) == {"ver": ["1.10", "2.0"], "flag": ["true", "no"], "name": ["007"], "lr": ["1e-3"]}
    assert parse_hp(AS_TYPED) == {"ver": [1.1, 2.0], "flag": [True, "no"], "name": ["007"], "lr": [0.001]}
    assert [parse_value(v) for v in ("32", "-3", "0", "1_000", "nan", "inf", "0x10", " 7 ", "1e400", "-1e400", "1e308")] == \
        [32, -3, 0, "1_000", "nan", "inf", "0x10", 7, "1e400", "-1e400", 1e308]  # past float's range: text, as inf
    text = {"ver": "1.10", "flag": "true", "name": "007", "lr": "1e-3"}
    assert run_command("python t.py", text) == "python t.py --ver 1.10 --flag true --name 007 --lr 1e-3"
    env = hp_environment({"ver": 1.1, "flag": True, "name": "007", "lr": 0.001}, text)
    assert json.loads(env.pop("SINGKIT_HPARAMS")) == {"ver": 1.1, "flag": True, "name": "007", "lr": 0.001}
    assert env == {"SINGKIT_HP_VER": "1.10", "SINGKIT_HP_FLAG": "true", "SINGKIT_HP_NAME": "007", "SINGKIT_HP_LR": "1e-3"}


def test_a_sweep_reaches_the_command_as_typed(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    hp = [a for v in AS_TYPED for a in ("--hp", v)]
    cmd = 'echo "env $SINGKIT_HP_VER $SINGKIT_HP_FLAG $SINGKIT_HP_NAME $SINGKIT_HP_LR" args {hparams}'
    done = run_here(["job.submit", "--cmd", cmd, *hp, "--parallel=4"], project, env)
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    assert wait_done(env, job_id) == "completed"
    job = Store.of(env).job(job_id)
    outputs = [r.stdout_path.read_text() for r in job.runs]
    assert outputs[0] == "env 1.10 true 007 1e-3 args --ver 1.10 --flag true --name 007 --lr 1e-3\n"
    assert outputs[3] == "env 2.0 no 007 1e-3 args --ver 2.0 --flag no --name 007 --lr 1e-3\n"
    assert [r.state().hparams for r in job.runs][1] == {"ver": 1.1, "flag": "no", "name": "007", "lr": 0.001}
    table = json.loads(run_here(["report.list", "--json", "--sort=ver", "--columns=run,hparams.ver"], project, env).stdout)
    assert [row["hparams.ver"] for row in table] == [1.1, 1.1, 2.0, 2.0]  # numbers in the reports


def test_hparam_names_one_variable_each_and_no_empty_value() -> None:
    """`--hp LR=1 --hp lr=2` gave the command both flags but $SINGKIT_HP_LR only the second;
    `--hp lr=0.1,,0.2` dropped the empty value and made two runs (fresh-user findings)."""
    import pytest

    from singkit.exceptions import UsageError

    for specs, said in ((["LR=1", "lr=2"], "--hp LR and --hp lr are both $SINGKIT_HP_LR"),
                        (["batch-size=1", "batch_size=2"], "both $SINGKIT_HP_BATCH_SIZE"),
                        (["lr=0.1,,0.2"], "has an empty value"), (["lr=0.1,"], "has an empty value")):
        with pytest.raises(UsageError, match=said.replace("$", r"\$")):
            parse_hp_text(specs)
    assert parse_hp_text(["lr=0.1,0.2", "bs=1"]) == {"lr": ["0.1", "0.2"], "bs": ["1"]}
    assert set(hp_environment({"batch.size": 1, "lr": 2})) == {"SINGKIT_HPARAMS", "SINGKIT_HP_BATCH_SIZE", "SINGKIT_HP_LR"}
