"""What each report filter keeps (reports.tables.parse_filter), operator by operator, for rows
that have the column, lack it, or hold NaN, text or a boolean. Written for the mutants
`make mutate` found alive: each assertion fails on a one-token change of the rule."""

from __future__ import annotations

import math

import pytest

from singkit.exceptions import UsageError
from singkit.reports.tables import parse_filter, split_filters

COLUMNS = ["run", "status", "metrics.acc", "hparams.opt", "hparams.flag"]
ROWS = {
    "acc": {"run": "a", "status": "completed", "metrics.acc": 0.9, "hparams.opt": "adam", "hparams.flag": True},
    "low": {"run": "b", "status": "failed", "metrics.acc": 0.1, "hparams.opt": "sgd", "hparams.flag": False},
    "nan": {"run": "c", "status": "completed", "metrics.acc": math.nan, "hparams.opt": "adamw"},
    "bare": {"run": "d", "status": "running"},
}


def kept(expr: str) -> set[str]:
    test = parse_filter(expr, COLUMNS)
    return {name for name, row in ROWS.items() if test(row)}


@pytest.mark.parametrize("expr, expected", [
    ("acc=0.9", {"acc"}), ("acc==0.9", {"acc"}), ("acc!=0.9", {"low", "nan", "bare"}),  # != keeps rows without it
    ("acc=nan", {"nan"}), ("acc!=nan", {"acc", "low", "bare"}),
    ("acc>0.5", {"acc"}), ("acc<=0.1", {"low"}),  # NaN and missing never satisfy an order
    ("opt=adam", {"acc"}), ("opt!=adam", {"low", "nan", "bare"}),
    ("opt>b", {"low"}), ("opt<b", {"acc", "nan"}), ("opt>=sgd", {"low"}),  # text orders text only
    ("acc=0.90", {"acc"}), ("opt~^$", set()), ("opt!~.*", {"bare"}),  # a missing value matches no pattern
    ("opt~^adam", {"acc", "nan"}), ("opt=~^adam", {"acc", "nan"}), ("opt!~^adam", {"low", "bare"}),  # !~ keeps missing
    ("opt=none", {"bare"}), ("opt==null", {"bare"}), ("opt!=", {"acc", "low", "nan"}),
    ("flag=true", {"acc"}), ("flag=True", {"acc"}), ("flag=false", {"low"}), ("flag!=true", {"low", "nan", "bare"}),
    ("opt='adam'", {"acc"}), ('opt="sgd"', {"low"}), ("opt=\"adam'", set()),
    ("opt='a'", set()), ("opt=''", {"bare"}), ("opt='", set()),
])
def test_each_operator_keeps_what_it_says(expr: str, expected: set[str]) -> None:
    assert kept(expr) == expected


def test_a_number_is_not_compared_as_text_nor_text_as_a_number() -> None:
    rows = [{"metrics.acc": "0.9"}, {"metrics.acc": 0.9}, {"metrics.acc": "high"}]
    assert [parse_filter("acc=0.9", COLUMNS)(r) for r in rows] == [True, True, False]
    assert [parse_filter("acc>0.5", COLUMNS)(r) for r in rows] == [False, True, False]
    assert [parse_filter("acc>a", COLUMNS)(r) for r in rows] == [False, False, True]
    assert parse_filter("acc=high", COLUMNS)({"metrics.acc": 5}) is False


@pytest.mark.parametrize("value", ["<1", ">1", "=1", "!1", "~x"])
def test_a_value_that_starts_with_an_operator_is_refused(value: str) -> None:
    with pytest.raises(UsageError, match="starts with an operator"):
        parse_filter(f"opt~{value}", COLUMNS)
    parse_filter(f"opt~'{value}'", COLUMNS)  # quoted, it is a value


def test_split_filters_keeps_a_comma_inside_a_value() -> None:
    assert split_filters(None) == [] and split_filters("") == []
    assert split_filters("acc>1,opt=adam") == ["acc>1", "opt=adam"]
    assert split_filters(["opt~a{2,3}", "acc<1, run=x"]) == ["opt~a{2,3}", "acc<1", " run=x"]
