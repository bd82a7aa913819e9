"""The hparam grid, run expansion and run commands (pure functions)."""

from __future__ import annotations

import pytest

from singkit.exceptions import UsageError
from singkit.backends.runtime.variables import hp_environment
from singkit.jobs.spec import expand, parse_hp, run_command


def test_grid_values_are_typed_and_ordered() -> None:
    grid = parse_hp(["lr=0.1,0.01", "bs=32,64", "opt=adam", "flag=true"])
    assert grid == {"lr": [0.1, 0.01], "bs": [32, 64], "opt": ["adam"], "flag": [True]}
    assert parse_hp(["lr=0.1 bs=32"]) == {"lr": [0.1], "bs": [32]}  # Make's HP="a=1 b=2" as one word


def test_grid_times_repeats() -> None:
    runs = expand({"lr": [0.1, 0.01], "bs": [32]}, 2)
    assert runs == [({"lr": 0.1, "bs": 32}, 1), ({"lr": 0.1, "bs": 32}, 2),
                    ({"lr": 0.01, "bs": 32}, 1), ({"lr": 0.01, "bs": 32}, 2)]
    assert expand({}, 3) == [({}, 1), ({}, 2), ({}, 3)]


@pytest.mark.parametrize("bad, message", [
    (["lr"], "NAME=V1,V2"), (["lr="], "NAME=V1,V2"), (["lr=,"], "has no values"),
    (["lr=1", "lr=2"], "given twice"), (["l r=1"], "NAME=V1,V2"), (["1$=2"], "must be letters"),
])
def test_bad_hp_is_a_usage_error(bad: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_hp(bad)


def test_runs_must_be_positive() -> None:
    with pytest.raises(UsageError, match="--runs=0"):
        expand({}, 0)


def test_run_command_forms() -> None:
    hp = {"lr": 0.1, "name": "a b"}
    assert run_command("python train.py", hp) == "python train.py --lr 0.1 --name 'a b'"
    assert run_command("python train.py {hparams} && echo ok", hp) == "python train.py --lr 0.1 --name 'a b' && echo ok"
    assert run_command('python t.py --lr "$SINGKIT_HP_LR"', hp) == 'python t.py --lr "$SINGKIT_HP_LR"'
    assert run_command("python train.py", {}) == "python train.py"


def test_hp_environment() -> None:
    env = hp_environment({"lr": 0.1, "batch-size": 32})
    assert env == {"SINGKIT_HPARAMS": '{"lr": 0.1, "batch-size": 32}', "SINGKIT_HP_LR": "0.1", "SINGKIT_HP_BATCH_SIZE": "32"}
