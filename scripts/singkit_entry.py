#!/usr/bin/env python3
"""singkit's in-job entry wrapper. Python standard library only: it runs in any image.

    python singkit_entry.py [--run-dir DIR] [--cwd DIR] [--tee] [--exit-event] -- COMMAND [ARG...]

It sets up the run's environment, runs COMMAND, captures its stdout/stderr into the run's
files, and writes the run's status lines into run.log (the JSONL protocol of
singkit_metrics / singkit.store.runlog):

    {"t": ..., "event": "status", "status": "running", "pid": 123, "host": "..."}
    {"t": ..., "event": "hparams", "hparams": {...}}          (from $SINGKIT_HPARAMS, if any)
    {"t": ..., "event": "status", "status": "completed", "exit_code": 0}
    {"t": ..., "event": "status", "status": "failed", "exit_code": 2, "reason": "exit code 2"}

--exit-event (or SINGKIT_EXIT_EVENT=1) replaces that final status line with a non-final

    {"t": ..., "event": "exit", "exit_code": 2, "reason": "exit code 2", "node": 1, "rank": 9}

for platforms where this process is one of many (every rank of a distributed Azure ML job
runs its own wrapper) and the platform, not one rank, decides the run's outcome: the
Singularity backend records `completed`/`failed`/`cancelled` from Azure ML's state. A rank
finishing first, or one killed by a cancel, must not end the run in the store.

--run-dir (or $SINGKIT_RUN_DIR) gives the defaults: DIR/run.log, DIR/stdout.log,
DIR/stderr.log, DIR/outputs/ (exported as $SINGKIT_RUN_LOG and $SINGKIT_OUTPUTS).
--tee also copies the job's output to this process's own stdout/stderr (for platforms that
collect the console, like Singularity). SIGTERM/SIGINT/SIGHUP are passed on to COMMAND.
The wrapper exits with COMMAND's exit code (128+N when killed by signal N).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time


def emit(path: str, event: str, **fields: object) -> None:
    record = {"t": round(time.time(), 3), "event": event}
    node = os.environ.get("SINGKIT_NODE")
    if node:
        record["node"] = int(node) if node.isdigit() else node
    record.update(fields)
    line = (json.dumps(record, default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def parse(argv: list[str]) -> tuple[dict[str, object], list[str]]:
    if "--" not in argv:
        sys.exit("usage: singkit_entry.py [--run-dir DIR] [--cwd DIR] [--tee] [--exit-event] -- COMMAND [ARG...]")
    split = argv.index("--")
    options: dict[str, object] = {"run_dir": os.environ.get("SINGKIT_RUN_DIR") or ".", "cwd": None, "tee": False,
                                  "exit_event": os.environ.get("SINGKIT_EXIT_EVENT", "") not in ("", "0")}
    flags = argv[:split]
    while flags:
        flag = flags.pop(0)
        if flag in ("--tee", "--exit-event"):
            options[flag[2:].replace("-", "_")] = True
        elif flag in ("--run-dir", "--cwd") and flags:
            options[flag[2:].replace("-", "_")] = flags.pop(0)
        else:
            sys.exit(f"singkit_entry.py: unknown option {flag}")
    command = argv[split + 1:]
    if not command:
        sys.exit("singkit_entry.py: no command after --")
    return options, command


def pump(source, *sinks) -> None:
    """Copy a pipe to files as it arrives (used with --tee only)."""
    for chunk in iter(lambda: source.read1(65536), b""):
        for sink in sinks:
            sink.write(chunk)
            sink.flush()


def describe(code: int, received: int | None) -> tuple[str, str | None]:
    if code == 0:
        return "completed", None
    if received is not None:
        return "failed", f"terminated: the run received {signal.Signals(received).name}"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return "failed", f"killed by {name}"
    return "failed", f"exit code {code}"


def finish(run_log: str, exit_event: bool, status: str, **fields: object) -> None:
    """The run's last line: its outcome, or (--exit-event) only this process's exit."""
    if exit_event:
        rank = os.environ.get("RANK")
        if rank and rank.isdigit():
            fields["rank"] = int(rank)
        emit(run_log, "exit", **fields)
    else:
        emit(run_log, "status", status=status, **fields)


def main(argv: list[str]) -> int:
    options, command = parse(argv)
    run_dir = os.path.abspath(str(options["run_dir"]))
    os.makedirs(os.path.join(run_dir, "outputs"), exist_ok=True)
    run_log = os.environ.setdefault("SINGKIT_RUN_LOG", os.path.join(run_dir, "run.log"))
    os.environ.setdefault("SINGKIT_OUTPUTS", os.path.join(run_dir, "outputs"))
    os.environ.setdefault("PYTHONUNBUFFERED", "1")  # lines reach the log as they are printed

    emit(run_log, "status", status="running", pid=os.getpid(), host=socket.gethostname())
    hparams = os.environ.get("SINGKIT_HPARAMS")
    if hparams and hparams not in ("{}", "null"):
        try:
            emit(run_log, "hparams", hparams=json.loads(hparams))
        except ValueError:
            pass

    received: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        received.append(signum)
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    child: subprocess.Popen | None = None
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)

    tee = bool(options["tee"])
    out = open(os.path.join(run_dir, "stdout.log"), "ab", buffering=0)
    err = open(os.path.join(run_dir, "stderr.log"), "ab", buffering=0)
    try:
        child = subprocess.Popen(command, cwd=options["cwd"] or None, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE if tee else out,
                                 stderr=subprocess.PIPE if tee else err)
    except OSError as error:
        err.write(f"singkit: cannot start {command[0]}: {error}\n".encode())
        finish(run_log, bool(options["exit_event"]), "failed", exit_code=127, reason=f"cannot start {command[0]}: {error.strerror}")
        return 127
    pumps = []
    if tee:
        pumps = [threading.Thread(target=pump, args=(child.stdout, out, sys.stdout.buffer), daemon=True),
                 threading.Thread(target=pump, args=(child.stderr, err, sys.stderr.buffer), daemon=True)]
        for thread in pumps:
            thread.start()
    code = child.wait()
    for thread in pumps:
        thread.join()
    out.close()
    err.close()
    status, reason = describe(code, received[0] if received else None)
    fields: dict[str, object] = {"exit_code": code if code >= 0 else 128 - code}
    if reason:
        fields["reason"] = reason
    finish(run_log, bool(options["exit_event"]), status, **fields)
    return int(fields["exit_code"])  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
