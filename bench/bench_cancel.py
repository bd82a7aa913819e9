"""Benchmark: wall time of `job.cancel` for a 20-run Singularity sweep vs for a one-run job.

Goal (issue 10): cancelling the sweep takes ≤ 2× cancelling one run — every cancel request is
sent first, then all are waited for at once (singkit/backends/singularity/cancel.py), so the
sweep costs about one run's round trips, not twenty.

Both are measured in the same run, on the real azure-ai-ml SDK against the tests' loopback
Azure ML stand-in (tests/azureml_standin) and Azurite, median of --repeat. The stand-in serves
from a process of its own, as the real service would: in this process its request handling
would compete with singkit's for one interpreter, and the figure would measure the stand-in.
Measured at each --poll interval (SINGKIT_POLL_INTERVAL, seconds between status reads; default
0.05 and 1): at 0.05 the sleeps are small and the figure is mostly singkit's own cost per run
(the requests, reading and recording them); singkit's default of 5 s makes both jobs wait about
the same sleeps and the ratio tends to 1.

    .venv/bin/python bench/bench_cancel.py [--runs 20] [--repeat 3] [--poll 0.05 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the stand-in, Azurite and the Singularity test project
GOAL = 2.0


SERVE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from azureml_standin import StandIn
si = StandIn(sys.argv[2], sys.argv[3], sys.argv[4], workdir=sys.argv[5]).start()
print(json.dumps({"environ": si.environ(), "url": si.url, "workspace": si.workspace,
                  "subscription_id": si.subscription_id, "resource_group": si.resource_group}), flush=True)
sys.stdin.read()  # serve until the benchmark closes our stdin
si.stop()
"""


class Remote:
    """What the tests' project() and sing_env() read of a stand-in, for one in another process."""

    def __init__(self, described: dict) -> None:
        self.__dict__.update(described)

    def credential(self):
        from azureml_standin import StandinCredential

        return StandinCredential()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--poll", type=float, nargs="+", default=[0.05, 1.0])
    args = parser.parse_args()

    import services
    from singtools import STORE_CONTAINER, project, sing_env

    from singkit.jobs import control
    from singkit.jobs.spec import SubmitRequest
    from singkit.jobs.submit import submit

    with tempfile.TemporaryDirectory(prefix="bench-cancel-") as tmp:
        azurite = services.start_azurite(Path(tmp) / "azurite")
        server = subprocess.Popen([sys.executable, "-c", SERVE, str(ROOT / "tests"), azurite.account_url, azurite.account_name,
                                   azurite.account_key, str(Path(tmp) / "standin")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        saved = dict(os.environ)
        try:
            si = Remote(json.loads(server.stdout.readline()))
            os.environ.update(si.environ)
            azurite.service_client().create_container(STORE_CONTAINER)
            root = project(Path(tmp), si, azurite)
            figures = []
            for poll in args.poll:
                env = sing_env(root, si, azurite, SINGKIT_POLL_INTERVAL=str(poll))

                def cancel_time(runs: int, env=env) -> float:  # this poll's env, bound now
                    job = submit(env, SubmitRequest(target="sing", command="python train.py", runs=runs))
                    start = time.perf_counter()
                    cancelled = control.cancel(env, job.id)
                    took = time.perf_counter() - start
                    assert len(cancelled) == runs and all(r.state().status == "cancelled" for r in job.runs)
                    return took

                cancel_time(1)  # warm the SDK and its connections once
                one = statistics.median(cancel_time(1) for _ in range(args.repeat))
                sweep = statistics.median(cancel_time(args.runs) for _ in range(args.repeat))
                figures.append((poll, one, sweep))
        finally:
            os.environ.clear()
            os.environ.update(saved)
            server.stdin.close()
            server.wait(timeout=60)
            azurite.stop()

    print(f"job.cancel wall time on the Azure ML stand-in, median of {args.repeat} (seconds)")
    print(f"{'poll (s)':>8} {'1 run':>8} {f'{args.runs} runs':>8} {'ratio':>6}  goal ≤ {GOAL:g}×")
    met = True
    for poll, one, sweep in figures:
        ratio = sweep / one
        met = met and ratio <= GOAL
        print(f"{poll:8g} {one:8.3f} {sweep:8.3f} {ratio:5.2f}×  {'MET' if ratio <= GOAL else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
