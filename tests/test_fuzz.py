"""Fuzzing (issue 15): the config loader and the run.log readers take any input and answer only
with singkit's own errors, never another exception.

hypothesis drives each reader a bounded number of examples (no deadline: the machine is shared),
with three kinds of input: YAML-ish text built from the characters and words YAML and singkit
care about, random structures dumped to YAML, and raw bytes.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from singkit.config import load_config, schema
from singkit.environment import Environment
from singkit.exceptions import SingkitError

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

FIELDS = sorted({*schema.SECTIONS, *schema.SECTION_ALIASES, *schema.TARGET_FIELDS, *schema.DOCKER_FIELDS,
                 *schema.SETUP_FIELDS, *schema.GENERAL_FIELDS, *schema.SKU_FIELDS, *schema.ALIASES, "type"})
WORDS = [*FIELDS, "local", "docker", "singularity", "registry", "storage", "aml", "virtual_cluster", "gpus",
         "$env:X", "$env:", "$vault", "<<", "~", "null", "true", "no", "1e9", ".nan", "-.inf", "0x1F", "2.0",
         "10**30", "ND40rs_v2", "python:3.11", "sha256:" + "a" * 64, "../..", "/etc", "FILL-IN"]
PUNCTUATION = [":", ": ", "- ", "[", "]", "{", "}", ",", "&a ", "*a", "&b ", "*b", "!", "!!str ", "!!binary ", "? ",
               "|", ">", "#", "'", '"', "\\", "%", "@", "`", "\n", "\n  ", "\n    ", "\n      ", "\t", " ", "---\n", "...\n"]
yamlish = st.lists(st.sampled_from(WORDS + PUNCTUATION) | st.text(max_size=4), max_size=80).map("".join)

scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
           | st.sampled_from(WORDS))
structures = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(WORDS) | st.text(max_size=6), inner, max_size=4),
    max_leaves=30,
)
configs = st.dictionaries(st.sampled_from([*schema.SECTIONS, *schema.SECTION_ALIASES]),
                          st.dictionaries(st.sampled_from(["a", "b", "local", "docker", "py", "ws", "general"]),
                                          structures, max_size=3) | structures,
                          max_size=4)


def dumped(data: Any) -> str:
    from ruamel.yaml import YAML

    buffer = io.StringIO()
    YAML(typ="safe", pure=True).dump(data, buffer)
    return buffer.getvalue()


def check_config(root: Path, content: bytes) -> None:
    """Load and check `content` as a project config, as config.validate does: only SingkitError may come out."""
    from singkit.configcheck import all_problems, kind_notes, target_kinds

    (root / "configs" / "singkit.yaml").write_bytes(content)
    env = Environment(project_root=root, environ={"HOME": str(root / "home"), "XDG_CACHE_HOME": str(root / "cache")})
    try:
        config = load_config(env)
        all_problems(config)
        kind_notes(config, target_kinds(config))
        for name in list(config.targets)[:3]:
            config.target(name)
    except SingkitError:
        pass


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "configs").mkdir()
    return tmp_path


@pytest.mark.timeout(600)
@FUZZ
@given(text=yamlish)
def test_yamlish_text_gives_only_config_errors(project: Path, text: str) -> None:
    check_config(project, text.encode("utf-8", "surrogatepass"))


@pytest.mark.timeout(600)
@FUZZ
@given(data=configs)
def test_random_structures_give_only_config_errors(project: Path, data: dict) -> None:
    check_config(project, dumped(data).encode())


@pytest.mark.timeout(600)
@FUZZ
@given(raw=st.binary(max_size=400) | yamlish.map(lambda t: t.encode("utf-16")))
def test_random_bytes_give_only_config_errors(project: Path, raw: bytes) -> None:
    check_config(project, raw)


# -- run.log ----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)
EVENTS = ["status", "metrics", "hparams", "exit", "log", ""]
STATUSES = ["queued", "running", "completed", "failed", "cancelled", "preempted", "weird"]
events = st.fixed_dictionaries(
    {"event": st.sampled_from(EVENTS)},
    optional={"t": json_values | st.floats(0, 2e9), "status": st.sampled_from(STATUSES) | json_values,
              "step": json_values, "metrics": json_values | st.dictionaries(st.text(max_size=5), json_values | st.floats()),
              "hparams": json_values, "exit_code": json_values, "reason": json_values, "node": json_values,
              "rank": json_values},
)
lines = st.lists(
    events.map(lambda e: json.dumps(e).encode())
    | st.binary(max_size=40)
    | st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n)  # nested past the recursion limit
    | st.just(b'{"event": "metrics", "metrics": {"loss": NaN}, "step": Infinity}'),
    max_size=12,
).map(lambda ls: b"\n".join(ls) + b"\n")


def read_run_log(path: Path) -> None:
    """Every reader of run.log over one file: only SingkitError may come out."""
    from singkit.reports import series, source
    from singkit.store import runlog
    from singkit.store.fold import RunState

    try:
        runlog.state(path)
        runlog.read(path, 0)
        events_, _end, _open = source.read_jsonl(path)
        RunState.from_json(json.loads(json.dumps(RunState().fold(events_).to_json())))
        evs = series.main_node(series.metric_events(path))
        series.columns(evs, "step")
        series.step_rows(evs, "job1.1")
        for x in ("step", "time", "loss"):  # the plot's reader: orjson over the whole file first
            series.columns(series.main_node(series.metric_events(path, as_floats=True)), x)
    except SingkitError:
        pass


@pytest.mark.timeout(600)
@FUZZ
@given(data=lines | st.binary(max_size=600))
def test_run_log_readers_take_any_bytes(tmp_path: Path, data: bytes) -> None:
    log = tmp_path / "run.log"
    log.write_bytes(data)
    read_run_log(log)


def test_the_fuzzers_reach_real_problems(project: Path) -> None:
    """The strategies are not vacuous: a generated-looking config with a mistake is refused."""
    with pytest.raises(SingkitError):
        (project / "configs" / "singkit.yaml").write_text("compute-targets:\n  a: {service: local, nodes: .nan}\n")
        env = Environment(project_root=project, environ={"HOME": str(project / "home")})
        from singkit.configcheck import require

        require(load_config(env), lambda _: None, "compute-targets", "a")


# Values of the wrong type where a record names another record (CI's hypothesis run found
# `external-services.a.type: []` raising TypeError from the reference check): each is reported as
# a problem, never another exception. Found by hypothesis on 2026-11-30; kept as plain cases.
WRONG_TYPES = [[], {}, ["a"], {"a": 1}, 1.5, True]
NAMING_KEYS = [
    lambda v: {"external-services": {"a": {"type": v}}},
    lambda v: {"compute-targets": {"t": {"service": v}}},
    lambda v: {"compute-targets": {"t": {"docker": v}}},
    lambda v: {"compute-targets": {"t": {"setup": v}}},
    lambda v: {"compute-targets": {"t": {"service": "s"}}, "external-services": {"s": {"type": v}}},
    lambda v: {"dockers": {"d": {"image": "x:1", "registry": v}}},
    lambda v: {"general": {"store": v}},
    lambda v: {"compute-targets": {"t": {"service": "s", "locations": v, "location": v}},
               "external-services": {"s": {"type": "singularity", "subscription-id": "x", "resource-group": "r",
                                           "workspace": "w"}}},
]


@pytest.mark.parametrize("make", NAMING_KEYS)
def test_a_reference_of_the_wrong_type_is_a_problem_not_a_crash(project: Path, make: Any) -> None:
    from singkit.configcheck import all_problems

    for value in WRONG_TYPES:
        (project / "configs" / "singkit.yaml").write_text(dumped(make(value)))
        env = Environment(project_root=project, environ={"HOME": str(project / "home")})
        try:
            problems = all_problems(load_config(env))
        except SingkitError:
            continue
        assert [p for p in problems if not p.warning], (make(value), problems)


def test_a_service_record_named_empty_is_not_every_targets_service(project: Path) -> None:
    """CI's hypothesis run: `external-services: {'': {...}}` beside a target without `service:` made
    the reference check look the empty name up and raise KeyError on the target's missing key."""
    from singkit.configcheck import all_problems

    for kind in (None, "registry", "local"):
        data = {"compute-targets": {"a": None, "b": {"docker": "d"}}, "external-services": {"": {"type": kind}}}
        (project / "configs" / "singkit.yaml").write_text(dumped(data))
        env = Environment(project_root=project, environ={"HOME": str(project / "home")})
        try:
            all_problems(load_config(env))
        except SingkitError:
            pass
