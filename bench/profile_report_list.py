"""Where a cold `report.list --runs` spends its CPU (issue 15): the command run in this process,
with its stages wrapped to add up their CPU seconds (time.process_time; no profiler overhead).

    python bench/profile_report_list.py [--warm] STORE   # STORE: a store folder (…/.singkit), e.g.
                                                         # one bench_report_list.py --keep DIR generated

The store's index is removed first (cold: every run.log read and folded); --warm keeps it (and
fills it first, if it is not), and times the warm listing's stages instead. Stages nest: the
indented ones are parts of the one above. Not a goal: a map of what the goals measure."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import sys
import time
from typing import Any

STAGES = [  # (module, attribute, label)
    ("singkit.reports.cache", "SummaryCache.job_specs", "job.yaml of every job (parse_job_yaml)"),
    ("singkit.reports.cache", "SummaryCache.run_states", "run folds (run_states)"),
    ("singkit.store.runlog", "states", "  read, decode and fold every run.log"),
    ("singkit.store.runlog", "_by_orjson", "    decode"),
    ("singkit.store.runlog", "parse_lines", "    decode"),
    ("singkit.store.fold", "RunState.fold", "    fold"),
    ("singkit.store.fold", "RunState.to_json", "  folds as JSON for the index"),
    ("singkit.store.index", "Index.put_folds", "  index writes"),
    ("singkit.reports.rowsets", "run_table", "table rows"),
    ("singkit.tasks.report", "_emit_table", "render and print"),
]
WARM_STAGES = [  # (module, attribute, label), for --warm
    ("singkit.reports.cache", "SummaryCache.job_specs", "job.yaml of every job (from the index)"),
    ("singkit.reports.model", "StoreReader._run_ids", "run ids (job.yaml's runs, runs/ folders)"),
    ("singkit.reports.cache", "SummaryCache.run_listings", "listing rows (run_listings)"),
    ("singkit.store.index", "Index._rows", "  fetch the rows"),
    ("singkit.reports.cache", "Listed.from_texts", "  decode and check them"),
    ("singkit.reports.rowsets", "run_table", "table rows"),
    ("singkit.tasks.report", "_emit_table", "render and print"),
    ("singkit.reports.render", "column_texts", "  cells (column_texts)"),
    ("singkit.reports.render", "_table", "  lines (_table)"),
]


def main() -> int:
    warm = sys.argv[1:2] == ["--warm"]
    if len(sys.argv) != 2 + warm:
        raise SystemExit(__doc__)
    home = os.path.abspath(sys.argv[-1])
    if warm:
        import subprocess

        subprocess.run([sys.executable, "-m", "singkit", "report.list", "--runs"], stdout=subprocess.DEVNULL, check=True,
                       cwd=os.path.dirname(home), env={**os.environ, "SINGKIT_HOME": home})  # (the index filled)
    for name in () if warm else ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(home, name))
    os.environ["SINGKIT_HOME"] = home
    os.chdir(os.path.dirname(home))
    start = time.process_time()
    import importlib

    from singkit import cli

    imported = time.process_time() - start
    spent: dict[str, float] = {}
    stages = WARM_STAGES if warm else STAGES
    for module, attribute, label in stages:
        owner: Any = importlib.import_module(module)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, name, _timed(getattr(owner, name), label, spent))
    sys.argv = ["singkit", "report.list", "--runs"]
    begun = time.process_time()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        cli.main()
    command = time.process_time() - begun
    print(f"imports {imported:.3f} CPU s, command {command:.3f} CPU s (load average {os.getloadavg()[0]:.2f})")
    for _, _, label in dict.fromkeys((None, None, label) for _, _, label in stages):  # (a label timed twice: once)
        print(f"  {label:44} {spent.get(label, 0.0):7.3f}")
        if label.strip().startswith("read, decode"):  # read_stored yields file by file: what is left is its part
            rest = spent.get(label, 0.0) - spent.get("    decode", 0.0) - spent.get("    fold", 0.0)
            print(f"  {'    open (link checks) and read, the rest':44} {rest:7.3f}")
    return 0


def _timed(function: Any, label: str, spent: dict[str, float]) -> Any:
    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        begun = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] = spent.get(label, 0.0) + time.process_time() - begun

    return timed


if __name__ == "__main__":
    sys.exit(main())
