"""One YAML reader for the store and the reports: a broken job.yaml is one line naming the
file, with PyYAML installed or without it (ruamel's loader)."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

import pytest

from jobtools import make_env, make_project
from singkit.exceptions import SingkitError
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit

BROKEN = "job: job1\nruns: [{run: job1.1\ncommand: true\n"
# `python -m singkit` with PyYAML hidden (None in sys.modules makes its import fail)
WITHOUT_PYYAML = "import runpy, sys; sys.modules['yaml'] = None; sys.argv[0] = 'singkit'; runpy.run_module('singkit', run_name='__main__')"


@pytest.fixture(params=["pyyaml", "ruamel"])
def loader(request, monkeypatch) -> str:
    if request.param == "ruamel":
        monkeypatch.setitem(sys.modules, "yaml", None)
    return request.param


def _broken_job(tmp_path: Path):
    project = make_project(tmp_path)
    env = make_env(project)
    job = submit(env, SubmitRequest(command="true", dry_run=True))
    job.spec_path.write_text(BROKEN)
    return project, env, job


def test_broken_job_yaml_is_one_line_naming_the_file(tmp_path: Path, loader: str) -> None:
    project, env, job = _broken_job(tmp_path)
    prefix = [sys.executable, "-c", WITHOUT_PYYAML] if loader == "ruamel" else [sys.executable, "-m", "singkit"]
    done = subprocess.run([*prefix, "job.status", job.id], cwd=project, env=dict(env.environ),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr  # a damaged store file is bad input, not a bug (issue 16)
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"error: {job.spec_path}:") and "not valid YAML" in done.stderr


def test_store_and_reports_read_through_the_same_helper(tmp_path: Path, loader: str) -> None:
    from singkit.reports.source import parse_job_yaml, plain_yaml
    from singkit.store import Store

    def read_yaml(path: Path) -> dict:  # as the reports read a job.yaml (SummaryCache.job_specs)
        return plain_yaml(parse_job_yaml(path))

    _project, env, job = _broken_job(tmp_path)
    with pytest.raises(SingkitError, match=r"job\.yaml:\d+: not valid YAML \(.+\); the store may be damaged") as from_store:
        Store.of(env).job(job.id).spec
    with pytest.raises(SingkitError) as from_reports:
        read_yaml(job.spec_path)
    assert str(from_reports.value) == str(from_store.value)
    job.spec_path.write_text("job: job1\nruns: []\ncreated: 2024-11-24 12:00:00\n")
    assert read_yaml(job.spec_path)["created"] == 1732449600.0  # reports still get epoch seconds
    with pytest.raises(SingkitError, match="`target` is missing"):  # the store checks what it reads (issue 16)
        Store.of(env).job(job.id).spec
    job.spec_path.write_text("job: job1\ntarget: {name: local}\nservice: {name: local}\nruns: []\n"
                             "created: 2024-11-24 12:00:00\n")
    assert Store.of(env).job(job.id).spec["created"] == 1732449600.0  # the same epoch seconds


def test_strings_read_back_as_written_by_either_parser(loader: str, tmp_path: Path) -> None:
    """`no`, `on`, `1:20` are booleans and numbers to a YAML 1.1 parser (PyYAML): written
    unquoted they came back as False, True, 80 (an --hp flag=no reached the run as `False`)."""
    from singkit.store.yamlio import dump_yaml, load_mapping

    data = {"text": ["no", "yes", "on", "Off", "y", "n", "1:20", "1_000", "010", "0o10", "007", "1.10", "1e-3",
                     "true", "null", "~", ".inf", "2024-01-01"],
            "typed": [True, False, None, 3, 0.001, 1.5e-07]}
    path = tmp_path / "job.yaml"
    path.write_text(dump_yaml(data))
    assert load_mapping(path) == data


PLAIN = {"job": "job3", "created": 1732450000.25, "runs": [{"run": "job3.1", "hparams": {"lr": 1e-05, "bs": 32, "on": "no", "huge": 1e20}},
                                                          {"run": "job3.2", "hparams": {"big": 2**64 - 1, "low": -(2**63)}}],
         "env": {"ü": "ünï ☃ 😀", "TAB": "a\tb\n\"c\\"}, "none": None, "flag": True, "zero": -0.0, "empty": [{}, []]}
# each is data JSON cannot hold exactly (or that a YAML reader would not give back from JSON text)
NOT_JSON = {"nan": float("nan"), "inf": float("-inf"), "date": datetime.date(2024, 1, 2), "tuple": (1, 2),
            "past 64 bits": 2**64, "below 64 bits": -(2**63) - 1, "int key": {1: "a"}, "line separator": "a\u2028b",
            "delete": "a\x7fb", "str subclass": type("Name", (str,), {})("x"),
            "long key": {"k" * 1025: 1}, "set": {1}}


def test_job_yaml_is_json_formatted_yaml_that_reads_back_exactly(tmp_path: Path, loader: str) -> None:
    """job.yaml is pretty JSON (issue 14: one orjson call, not libyaml's Python constructor), which
    YAML 1.2 readers open too; the data read back is the very data written, types and all."""
    from ruamel.yaml import YAML

    from singkit.store.yamlio import dump_yaml, load_mapping

    text = dump_yaml(PLAIN)
    assert text.startswith("{\n  \"job\": \"job3\",\n") and "%YAML" not in text
    path = tmp_path / "job.yaml"
    path.write_text(text)
    back = load_mapping(path)
    assert back == PLAIN and _types(back) == _types(PLAIN)
    assert YAML(typ="safe", pure=True).load(text) == PLAIN  # a YAML file still
    # NEL: a YAML reader folds it, in JSON text as in the block YAML ruamel writes; singkit's reader
    # gives it back from JSON
    path.write_text(dump_yaml({"nel": "a\x85b"}))
    assert load_mapping(path) == {"nel": "a\x85b"}


@pytest.mark.parametrize("name", sorted(NOT_JSON))
def test_data_json_cannot_hold_is_written_as_block_yaml(name: str, tmp_path: Path, loader: str) -> None:
    from singkit.store.yamlio import dump_yaml, load_mapping

    data = {"job": "job3", "value": NOT_JSON[name]}
    try:
        text = dump_yaml(data)
    except Exception:  # noqa: BLE001 - YAML cannot write it either (as before): never JSON that changes it
        assert name in ("str subclass", "set"), name
        return
    assert text.startswith("%YAML 1.1"), text
    path = tmp_path / "job.yaml"
    path.write_text(text)
    back = load_mapping(path)["value"]
    value = NOT_JSON[name]
    if name == "nan":
        assert back != back
    elif name == "tuple":
        assert back == [1, 2]  # (as YAML always read it back)
    else:
        assert back == value and type(back) is type(value)


def test_a_job_yaml_that_starts_with_a_brace_but_is_yaml_reads_as_before(tmp_path: Path, loader: str) -> None:
    from singkit.store.yamlio import load_mapping

    path = tmp_path / "job.yaml"
    path.write_text("{job: job1, created: 2024-11-24, runs: [], note: no}\n")  # flow style: YAML 1.2, as JSON is
    assert load_mapping(path) == {"job": "job1", "created": datetime.date(2024, 11, 24), "runs": [], "note": "no"}
    path.write_text('{"job": "job1", "loss": .nan}\n')
    assert load_mapping(path)["loss"] != load_mapping(path)["loss"]
    path.write_text('{"job": "job1", "runs": []}  # edited\n')
    assert load_mapping(path) == {"job": "job1", "runs": []}


def test_a_hand_edited_json_job_yaml_keeps_its_numbers(tmp_path: Path, loader: str) -> None:
    """A comment added to the JSON made the YAML 1.1 fallback read `1e-3` as text and `1.796166e9`
    as text (then "created is text"); an int past 64 bits came back a float from orjson."""
    from singkit.store.yamlio import load_mapping

    path = tmp_path / "job.yaml"
    path.write_text('{\n  "job": "job1",  # mine\n  "created": 1.796166e9,\n  "runs": [\n'
                    '    {"run": "job1.1", "hparams": {"lr": 1e-3, "seed": 18446744073709551617}},\n  ]\n}\n')
    data = load_mapping(path)
    assert data["created"] == 1796166000.0 and data["runs"][0]["hparams"] == {"lr": 0.001, "seed": 2**64 + 1}
    path.write_text('{"job": "job1", "seed": 18446744073709551617, "low": -9223372036854775809, "x": 1e-3}\n')
    data = load_mapping(path)
    assert (data["seed"], data["low"], data["x"]) == (2**64 + 1, -(2**63) - 1, 0.001)
    assert type(data["seed"]) is int and type(data["low"]) is int


def test_job_submit_writes_job_yaml_as_json(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    job = submit(make_env(project), SubmitRequest(command="true", hp=["lr=1e-3,0.1"], dry_run=True))
    text = job.spec_path.read_text()
    assert text.startswith("{\n") and json.loads(text)["runs"][0]["hparams"] == {"lr": 0.001}
    # a run is one line (grep finds all of it), and the top-level keys are one per line
    lines = [line for line in text.splitlines() if f'"run": "{job.id}.1"' in line]
    assert len(lines) == 1 and '"hparams": {"lr": 0.001}' in lines[0] and lines[0].startswith("    {"), text
    assert f'\n  "job": "{job.id}",\n' in text


def _types(value: object) -> object:
    if isinstance(value, dict):
        return {key: _types(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_types(item) for item in value]
    return type(value).__name__
