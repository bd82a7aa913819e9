"""One YAML reader for the store and the reports: a broken job.yaml is one line naming the
file, with PyYAML installed or without it (ruamel's loader)."""

from __future__ import annotations

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
