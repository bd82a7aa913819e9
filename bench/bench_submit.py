"""Benchmark: submit → the job's first output line in stdout.log, on `local` and on `docker`.

Goal (issue 4): ≤ 0.5 s on local. Measured two ways, each the median of --repeat jobs:
  cli     `python -m singkit job.submit --cmd 'echo first'` as a user runs it (interpreter start,
          task and config loading included), from process start to the line in the store;
  library `singkit.jobs.submit.submit()` in a warm process (what the pipeline itself costs).
The docker rows use the tests' busybox image on the real local engine (`bash .ci/services.sh`);
they are skipped when there is no engine.

    .venv/bin/python bench/bench_submit.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the tests' service helpers: one way to get the image
GOAL = 0.5

CONFIG = """\
general:
  experiment: bench
dockers:
  bb:
    image: {image}
compute-targets:
  local:
    service: local
  docker:
    service: docker
    docker: bb
"""


def first_line(store: Path, start: float, timeout: float = 60.0) -> float:
    """Seconds from `start` until some run's stdout.log has a complete line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for log in store.glob("jobs/*/runs/*/stdout.log"):
            if b"\n" in log.read_bytes():
                return time.perf_counter() - start
        time.sleep(0.002)
    raise RuntimeError(f"no output line within {timeout:.0f} s (see {store}/jobs/*/runner.log)")


def project(tmp: Path, image: str) -> Path:
    (tmp / "configs").mkdir(parents=True)
    (tmp / "configs" / "singkit.yaml").write_text(CONFIG.format(image=image))
    (tmp / "train.py").write_text("print('hello')\n")
    return tmp


def via_cli(proj: Path, target: str) -> float:
    store = proj.parent / "stores" / f"cli-{time.monotonic_ns()}"  # outside the code: not snapshotted
    env = {**os.environ, "SINGKIT_HOME": str(store), "HOME": str(proj)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "singkit", "job.submit", f"--target={target}", "--cmd", "echo first"],
                   cwd=proj, env=env, check=True, capture_output=True)
    return first_line(store, start)


def via_library(proj: Path, target: str) -> float:
    from singkit.environment import Environment
    from singkit.jobs.spec import SubmitRequest
    from singkit.jobs.submit import submit

    store = proj.parent / "stores" / f"lib-{time.monotonic_ns()}"
    environ = {**os.environ, "SINGKIT_HOME": str(store), "HOME": str(proj)}
    env = Environment(project_root=proj, environ=environ, stdout=io.StringIO(), stderr=io.StringIO())
    start = time.perf_counter()
    submit(env, SubmitRequest(target=target, command="echo first"))
    return first_line(store, start)


def wait_all(proj: Path) -> None:
    """Let every bench job finish so the next measurement has the machine to itself."""
    from singkit.procs import alive
    import json

    for runner in proj.parent.glob("stores/*/jobs/*/runner.json"):
        info = json.loads(runner.read_text())
        while alive(info):
            time.sleep(0.01)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    image, why_not = None, ""
    try:
        import docker_services

        client = docker_services.docker_connect()
        image = docker_services.build_busybox_image(client).ref
    except BaseException as skip:  # pytest's Skipped when there is no engine
        why_not = str(skip).splitlines()[0][:100]

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-submit-") as tmp:
        proj = project(Path(tmp) / "proj", image or "none:0")
        for target in ("local", "docker"):
            if target == "docker" and not image:
                rows.append((target, "-", "-", f"skipped: {why_not}"))
                continue
            results = {}
            for name, fn in (("cli", via_cli), ("library", via_library)):
                fn(proj, target)  # warm the page cache / image layers once
                wait_all(proj)
                times = []
                for _ in range(args.repeat):
                    times.append(fn(proj, target))
                    wait_all(proj)
                results[name] = statistics.median(times)
            note = f"goal ≤ {GOAL} s, ratio {results['cli'] / GOAL:.2f}" if target == "local" else "no goal (reported)"
            rows.append((target, f"{results['cli']:.3f}", f"{results['library']:.3f}", note))

    print(f"submit → first log line, median of {args.repeat} (seconds)")
    print(f"{'target':8} {'cli':>8} {'library':>8}  note")
    for target, cli, lib, note in rows:
        print(f"{target:8} {cli:>8} {lib:>8}  {note}")
    local = rows[0]
    ok = float(local[1]) <= GOAL
    print(f"local: cli {local[1]} s vs goal ≤ {GOAL} s -> {'MET' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
