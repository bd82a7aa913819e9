"""Start-up cost (issue 14): singkit's modules get bytecode under invoke, and a status or a
listing imports nothing it does not use. Speed itself is measured in bench/, not here."""

from __future__ import annotations

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
        out = subprocess.run([sys.executable, "-c", LISTING, "tabulate,tarfile,pandas,seaborn,docker,azure,ruamel,jinja2",
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
    env = {**os.environ, "SINGKIT_HOME": str(tmp_path / "store"), "NO_COLOR": "1"}
    out = subprocess.run([sys.executable, "-c", LISTING, "packaging,tabulate,docker,azure,pandas,jinja2", "config.validate"],
                         env=env, cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stderr.splitlines()[-1] == "", out.stderr


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
