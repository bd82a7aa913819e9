"""A CLI test's command run in-process (tests/clirunner.cli) against the same command in a
`python -m singkit` subprocess (run_singkit), in one run (goal: ratio ≤ 0.5; issue 12 item 5:
the test suite is at CI's 20-minute limit and ~100 test call sites ran a subprocess each).

Both run in turn in the same throwaway project, so they see the same machine state; the median
of each is compared, per command and over all of them.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from clirunner import cli, run_singkit  # noqa: E402

GOAL = 0.5
ROUNDS = 9
CONFIG = "compute-targets:\n  local:\n    service: local\n  typo:\n    servce: local\n"
COMMANDS = (["config.validate"], ["job.list"], ["job.status", "job9"], ["job.list", "--lats=3"])


def wall(run, args: list[str], project: Path) -> float:
    start = time.perf_counter()
    run(args, project)
    return time.perf_counter() - start


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        (project / "configs").mkdir()
        (project / "configs" / "singkit.yaml").write_text(CONFIG)
        for args in COMMANDS:  # warm the page cache, .pyc files and this process's imports
            wall(run_singkit, args, project), wall(cli, args, project)
        times: dict[str, dict[str, list[float]]] = {" ".join(a): {"process": [], "in-process": []} for a in COMMANDS}
        for _ in range(ROUNDS):
            for args in COMMANDS:
                times[" ".join(args)]["process"].append(wall(run_singkit, args, project))
                times[" ".join(args)]["in-process"].append(wall(cli, args, project))
    met = True
    for name, t in times.items():
        sub, here = statistics.median(t["process"]), statistics.median(t["in-process"])
        print(f"{name:<22} process {sub * 1000:7.1f} ms  in-process {here * 1000:7.1f} ms  ratio {here / sub:.2f}")
    total_sub = sum(statistics.median(t["process"]) for t in times.values())
    total_here = sum(statistics.median(t["in-process"]) for t in times.values())
    ratio = total_here / total_sub
    met = ratio <= GOAL
    print(f"all {len(COMMANDS)} commands ({ROUNDS} rounds): ratio {ratio:.2f} (goal ≤ {GOAL})  {'MET' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
