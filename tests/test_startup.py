"""Start-up cost (issue 14): singkit's modules get bytecode under invoke, and a status or a
listing imports nothing it does not use. Speed itself is measured in bench/, not here."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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
    main(['singkit', *sys.argv[1:]])
except SystemExit:
    pass
heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'tabulate', 'tarfile', 'pandas', 'seaborn', 'docker',
               'azure', 'ruamel', 'jinja2'})
print(' '.join(heavy), file=sys.stderr)
"""


def test_status_and_listing_import_no_table_archive_or_service_library(tmp_path):
    storegen.sweep_job(tmp_path / "store", "job1")
    env = {**os.environ, "SINGKIT_HOME": str(tmp_path / "store"), "NO_COLOR": "1"}
    for words in (["job.list"], ["job.status", "job1"]):
        out = subprocess.run([sys.executable, "-c", LISTING, *words], env=env, cwd=tmp_path, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0 and out.stderr.splitlines()[-1] == "", (words, out.stderr)
