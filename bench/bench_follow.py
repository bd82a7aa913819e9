"""Benchmark: bytes downloaded per poll while following a Singularity run's logs.

Goal (issue 10): while a run's logs grow to 100 MB across 8 ranks, each poll of the follower
(singkit.backends.singularity.logs.follow_logs) downloads ≤ 1.1× the bytes the logs grew by
since the last poll: the cost of a poll is the new bytes, the same on day 7 as on day 1.

The run is a job in the loopback Azure ML stand-in (tests/azureml_standin); its 8 log files
(user_logs/std_log_process_<R>.txt) are append blobs in a real Azurite, written by the
stand-in's own log writer between polls. Bytes are counted at the stand-in's blob proxy:
everything Azurite sends the follower, headers included. Baseline, in the same run: what the
follower did before (and azure-ai-ml's jobs.stream does), a full GET of every log file per
poll (azure.ai.ml._utils.utils.download_text_from_url), measured on the first and last polls.

    source .ci/services.env  # (or /work/main/.ci/services.env): Azurite
    .venv/bin/python bench/bench_follow.py [--mb 100] [--ranks 8] [--polls 25]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the stand-in and the services helpers
GOAL = 1.1


def _lines(rank: int, first_step: int, size: int) -> str:
    """About `size` bytes of training-log lines (100 bytes each) for one rank."""
    out, step = [], first_step
    while size > 0:
        line = f"rank {rank} step {step:>9} loss {1.0 / (step + 1):.6f} lr 3.0e-04 ".ljust(99, ".") + "\n"
        out.append(line)
        size -= len(line)
        step += 1
    return "".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100.0, help="total log size at the end, MB (all ranks)")
    parser.add_argument("--ranks", type=int, default=8)
    parser.add_argument("--polls", type=int, default=25)
    args = parser.parse_args()

    import logging

    import services
    from azureml_standin import StandIn
    from azureml_standin.fixtures import QUIET
    from azureml_standin.state import JobState

    for name, level in QUIET.items():
        logging.getLogger(name).setLevel(level)
    tmp = Path(tempfile.mkdtemp(prefix="bench-follow-"))
    try:
        azurite = services.start_azurite(tmp / "azurite")
    except BaseException as missing:  # pytest's skip outcome: no Azurite on this machine
        if isinstance(missing, KeyboardInterrupt):
            raise
        print(f"SKIPPED: {missing} (source .ci/services.env after `bash .ci/services.sh`)")
        return 0
    si = StandIn(azurite.account_url, azurite.account_name, azurite.account_key, workdir=tmp / "standin").start()
    os.environ.update(si.environ())
    try:
        return _run(si, JobState, args)
    finally:
        si.stop()
        azurite.stop()


def _run(si, JobState, args) -> int:  # noqa: N803 - the stand-in's class, imported late
    from azure.ai.ml._utils.utils import download_text_from_url

    from singkit.backends.singularity.logs import follow_logs

    name = "bench-follow-run"
    with si.state.lock:
        si.state.jobs[name] = JobState(name, {"properties": {}}, {"properties": {"jobType": "Command", "experimentName": "bench"}})
    si.set_status(name, "Running")
    files = [f"user_logs/std_log_process_{r}.txt" for r in range(args.ranks)]
    per_poll = int(args.mb * 1e6 / args.ranks / args.polls)  # bytes per rank per poll
    ml = si.ml_client()
    steps = [0] * args.ranks
    rows: list[tuple[int, int, int]] = []  # (poll, new bytes, downloaded bytes)
    baseline: dict[int, tuple[int, int]] = {}  # poll -> (log size, bytes a full read downloads)
    state = {"poll": 0, "new": 0, "mark": si.blob_bytes_down, "size": 0}

    def grow() -> None:
        state["new"] = 0
        for rank, file in enumerate(files):
            text = _lines(rank, steps[rank], per_poll)
            steps[rank] += text.count("\n")
            si.append_log(name, text, file=file)
            state["new"] += len(text)
        state["size"] += state["new"]

    def full_read() -> int:
        """What the old follower downloaded in one poll: every file, whole (bytes on the wire)."""
        details = ml.jobs._runs_operations.get_run_details(name)
        mark = si.blob_bytes_down
        for url in (details.log_files or {}).values():
            download_text_from_url(url, ml.jobs._requests_pipeline, timeout=60)
        return si.blob_bytes_down - mark

    def between_polls(_: float) -> None:
        rows.append((state["poll"], state["new"], si.blob_bytes_down - state["mark"]))
        if state["poll"] in (1, args.polls):
            baseline[state["poll"]] = (state["size"], full_read())
        state["poll"] += 1
        if state["poll"] > args.polls:
            si.set_status(name, "Completed")
            state["new"] = 0
        else:
            grow()
        state["mark"] = si.blob_bytes_down

    lines = 0
    for _ in follow_logs(ml, name, follow=True, nodes=1, per_node=args.ranks, poll=0,
                         call=lambda what, fn: fn(), sleep=between_polls):
        lines += 1
    expected = sum(steps)
    print(f"followed {lines} lines ({expected} written), {state['size'] / 1e6:.1f} MB in {args.ranks} ranks "
          f"over {args.polls} polls of {per_poll * args.ranks / 1e6:.2f} MB new each")
    print(f"{'poll':>5} {'new bytes':>12} {'downloaded':>12} {'ratio':>7}")
    growing = [r for r in rows if r[1]]
    for poll, new, down in rows:
        if poll in (1, 2, args.polls // 2, args.polls) or not new:
            print(f"{poll:>5} {new:>12} {down:>12} {down / new if new else float('nan'):>7.4f}")
    worst = max(down / new for _, new, down in growing)
    first, last = growing[0], growing[-1]
    print(f"singkit: day-1 poll {first[2]} B, day-7 poll {last[2]} B: last/first {last[2] / first[2]:.3f}")
    for poll, (size, down) in sorted(baseline.items()):
        new = next(n for p, n, _ in rows if p == poll)
        print(f"baseline (full read per poll) at poll {poll}: log {size / 1e6:.1f} MB, downloads {down} B "
              f"= {down / new:.1f}x the new bytes")
    b1, b7 = baseline[1][1], baseline[args.polls][1]
    print(f"baseline: last/first {b7 / b1:.1f}; singkit saves {b7 / last[2]:.1f}x on the last poll")
    ok = worst <= GOAL and lines == expected
    print(f"worst poll: downloaded {worst:.4f}x its new bytes (goal <= {GOAL}x): {'MET' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
