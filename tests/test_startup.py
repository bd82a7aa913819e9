"""Start-up cost (issue 14): singkit's modules get bytecode under invoke, and a status or a
listing imports nothing it does not use. Speed itself is measured in bench/, not here."""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import storegen

PROBE = """
import json, sys
from singkit.cli import make_program
program = make_program()
program.parse_core(['singkit', *sys.argv[1:], 'job.list'])
print(json.dumps(sys.dont_write_bytecode))
"""


def _bytecode_flag(*args: str, **environ: str) -> bool:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | environ
    out = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True,
                         check=True, timeout=60)
    return json.loads(out.stdout)


def test_singkit_writes_bytecode_although_invoke_turns_it_off():
    assert _bytecode_flag() is False


def test_pythons_own_switch_still_rules_bytecode():
    assert _bytecode_flag(PYTHONDONTWRITEBYTECODE="1") is True
    assert _bytecode_flag("--write-pyc", PYTHONDONTWRITEBYTECODE="1") is False


LISTING = """
import sys
from singkit.cli import main
try:
    main(['singkit', *sys.argv[2:]])
except SystemExit:
    pass
heavy = sorted(m for m in sys.modules if m.split('.')[0] in set(sys.argv[1].split(',')))
print(' '.join(heavy), file=sys.stderr)
"""


def test_status_and_listing_import_no_table_archive_or_service_library(tmp_path):
    storegen.sweep_job(tmp_path / "store", "job1")
    env = {**os.environ, "SINGKIT_HOME": str(tmp_path / "store"), "NO_COLOR": "1"}
    for words in (["job.list"], ["job.status", "job1"]):
        out = subprocess.run([sys.executable, "-c", LISTING, "tabulate,tarfile,pandas,seaborn,docker,azure,ruamel,jinja2,tempfile",
                              *words], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and out.stderr.splitlines()[-1] == "", (words, out.stderr)


MODULES = """
import sys
from singkit.cli import main
try:
    main(['singkit', *sys.argv[1:]])
except SystemExit:
    pass
print(' '.join(sorted(m for m in sys.modules if m.startswith('singkit.'))), file=sys.stderr)
"""


def test_a_look_at_finished_jobs_loads_no_backend(tmp_path):
    """job.status and job.list of jobs that ended ask no backend anything (issue 14 item 4): the
    local backend would bring the runtime, mounts and process modules."""
    storegen.sweep_job(tmp_path / "store", "job1")
    env = {**os.environ, "SINGKIT_HOME": str(tmp_path / "store"), "NO_COLOR": "1"}
    unused = ("singkit.backends.local", "singkit.backends.embedded", "singkit.backends.docker",
              "singkit.backends.runtime", "singkit.backends.singularity", "singkit.mounts", "singkit.procs",
              "singkit.store.events", "singkit.config", "singkit.snapshot")
    for words in (["job.list"], ["job.status", "job1"], ["job.status", "job1", "--json"]):
        out = subprocess.run([sys.executable, "-c", MODULES, *words], env=env, cwd=tmp_path, capture_output=True,
                             text=True, timeout=60)
        loaded = out.stderr.splitlines()[-1].split()
        assert out.returncode == 0 and "singkit.jobs.control" in loaded, (words, out.stderr)
        assert [m for m in loaded if m.startswith(unused)] == [], words


def test_validate_of_the_shipped_config_imports_no_requirement_parser_or_table_library(tmp_path):
    # a cache of its own, warmed first: a cold one is written (tempfile, shutil); a warm one only read
    env = {**os.environ, "SINGKIT_HOME": str(tmp_path / "store"), "NO_COLOR": "1", "XDG_CACHE_HOME": str(tmp_path)}
    root = Path(__file__).resolve().parents[1]
    warm = subprocess.run([sys.executable, "-m", "singkit", "config.validate"], env=env, cwd=root,
                          capture_output=True, text=True, timeout=60)
    assert warm.returncode == 0, warm.stderr
    out = subprocess.run([sys.executable, "-c", LISTING, "packaging,tabulate,docker,azure,pandas,jinja2,tempfile,shutil",
                          "config.validate"], env=env, cwd=root, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stderr.splitlines()[-1] == "", out.stderr


def test_the_sku_catalog_is_read_only_by_a_config_that_needs_it(tmp_path):
    # the shipped catalog is a YAML file; its parse is kept as JSON in the user's cache folder
    local = tmp_path / "local"
    (local / "configs").mkdir(parents=True)
    (local / "configs" / "singkit.yaml").write_text("compute-targets:\n  mine:\n    service: local\n")
    shipped_config = Path(__file__).resolve().parents[1]
    for project, cache, reads in ((local, tmp_path / "cache-local", False), (shipped_config, tmp_path / "cache", True)):
        env = {**os.environ, "SINGKIT_HOME": str(tmp_path / "store"), "NO_COLOR": "1", "XDG_CACHE_HOME": str(cache)}
        out = subprocess.run([sys.executable, "-m", "singkit", "config.validate"], env=env, cwd=project,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert bool(list(cache.glob("singkit/instance_types-*.json"))) is reads, project


def test_a_record_used_by_targets_of_both_gpu_vendors_still_warns(tmp_path):
    # the catalog is read only where a record has two Singularity users: this is that case
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "configs").mkdir()
    text = (root / "configs" / "singkit.yaml").read_text()
    assert "vm-size: ND96amrs_A100_v4" in text
    (tmp_path / "configs" / "singkit.yaml").write_text(text.replace("vm-size: ND96amrs_A100_v4", "vm-size: ND96isr_MI300X_v5"))
    env = {**os.environ, "SINGKIT_HOME": str(tmp_path / "store"), "NO_COLOR": "1", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-m", "singkit", "config.validate"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "both GPU vendors (AMD: wus3-a100x2; NVIDIA: eus-v100)" in out.stderr, out.stderr


def test_plain_pip_entries_pass_without_packaging_and_the_shortcut_accepts_only_what_pip_reads():
    from packaging.requirements import InvalidRequirement, Requirement

    from singkit.config import pipcheck

    def pip_reads(text: str) -> bool:
        try:
            Requirement(text)
        except InvalidRequirement:
            return False
        return True

    for plain in ("numpy", "torch>=2.1", "transformers[torch]==4.44.2", "apex==0.1.*", "torch >= 2.0, < 3",
                  "a==1.0rc1.post2.dev3", "scipy~=1.11"):
        assert pipcheck._PLAIN.fullmatch(plain), plain
    rng = random.Random(5)
    pieces = [*"aZ09._-[],=<>!~* .", "==", "torch", ">=", "1.2", "rc1", ".post1", ".dev2", ".*", "a1", "[x]", ", ", "~="]
    taken = 0
    for _ in range(60_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 9))).strip()
        if text and pipcheck._PLAIN.fullmatch(text):
            taken += 1
            assert pip_reads(text), text  # the shortcut never passes what pip would refuse
    assert taken > 1000
    for refused in ("xtlib==*", "x~=1", "x==1.dev2.*", "x[a-]"):
        assert pipcheck.problem(refused), refused


def test_a_command_line_builds_the_options_of_the_tasks_it_names_and_no_other(monkeypatch, capsys):
    # invoke builds (inspect.signature) and deep-copies every task's options on each parse: ~30
    # tasks were a third of `invoke --list` (issue 14). Completion still sees them all.
    from singkit.cli import make_program
    from singkit.tasks._surface import SingkitTask

    built: list[str] = []
    original = SingkitTask.get_arguments

    def counted(self, *args, **kwargs):
        built.append(self.name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SingkitTask, "get_arguments", counted)
    for argv, expected in ((["--list"], []), (["job.list", "--help"], ["list"]), (["--help", "job.status"], ["status"]),
                           (["job.status", "-h", "job1"], ["status"])):
        built.clear()
        with contextlib.suppress(SystemExit):
            make_program().run(["singkit", *argv])
        assert built == expected, argv
    assert "job.status" in capsys.readouterr().out
    built.clear()
    with contextlib.suppress(SystemExit):
        make_program().run(["singkit", "--complete", "--", "singkit", "job."])
    assert len(built) == len(make_program().namespace.task_names) > 20


EXTRA = """
compute-targets:
  base-target: &defaults {service: local, nodes: 2, priority: 'low'}
  merged:
    <<: *defaults
    setup: s1
    nodez: 3
setups:
  s1:
    pip: ["numpy", 'torch>=2.1']
    env: {A: "$env:HOME", B: 0x1F, C: 1.50, D: yes, E: ~}
"""


def _config_seen(cfg) -> tuple:
    problems = sorted((str(p.file), p.line, p.col, p.message) for p in cfg.layer_problems)
    return cfg.general, cfg.targets, cfg.dockers, cfg.setups, sorted(cfg._origins.items()), problems


def test_a_cached_config_reads_as_its_first_parse_and_without_ruamel(tmp_path):
    # the parse cache keeps Map/Seq (positions kept, scalars plain): what every reader sees is the
    # same whether the parse was cached, made now, or made without a cache (ruamel's own document)
    import io

    from singkit.config import load_config
    from singkit.config import layers as config_layers
    from singkit.environment import Environment

    (tmp_path / "configs").mkdir()
    shipped = (Path(__file__).resolve().parents[1] / "configs" / "singkit.yaml").read_text()
    (tmp_path / "configs" / "singkit.yaml").write_text(shipped)
    (tmp_path / "extra.yaml").write_text(EXTRA)
    environ = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path), "PATH": os.environ["PATH"],
               "SINGKIT_CONFIG": str(tmp_path / "extra.yaml")}

    def load():
        return load_config(Environment(tmp_path, environ, io.StringIO(), io.StringIO()))

    first, second = load(), load()
    assert list((tmp_path / "cache").glob("singkit/parsed/*.pickle")), "the parse was not cached"
    assert [type(layer.doc) for layer in second.layers] == [config_layers.Map] * 2
    original = config_layers.read_layer

    def uncached(path, committed=False, cache=None, raw=None):
        return original(path, committed, None, raw)

    config_layers.read_layer = uncached
    try:
        import singkit.config as config_package

        saved, config_package.read_layer = config_package.read_layer, uncached
        try:
            ruamels = load()
        finally:
            config_package.read_layer = saved
    finally:
        config_layers.read_layer = original
    assert [type(layer.doc).__name__ for layer in ruamels.layers] == ["CommentedMap"] * 2
    assert _config_seen(first) == _config_seen(second) == _config_seen(ruamels)
    assert any("nodez" in p.message for p in first.layer_problems)

    env = {**os.environ, **environ, "SINGKIT_HOME": str(tmp_path / "store"), "NO_COLOR": "1"}
    probe = LISTING.replace("m.split('.')[0] in", "m in")  # whole module names: `ruamel` itself is a namespace
    for _ in range(2):  # the first also caches the SKU catalog's parse (this cache folder is new)
        out = subprocess.run([sys.executable, "-c", probe, "ruamel.yaml", "config.validate"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert out.stderr.splitlines()[-1] == "", out.stderr  # a cached parse: ruamel.yaml is not even imported
