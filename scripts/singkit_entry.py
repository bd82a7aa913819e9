#!/usr/bin/env python3
"""singkit's in-job entry wrapper. Python standard library only: it runs in any image.

    python singkit_entry.py [--run-dir DIR] [--cwd DIR] [--tee] [--exit-event]
                            [--setup CMD] [--procs N] [--grace SECONDS] [--timeout SECONDS] -- COMMAND [ARG...]

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

--setup CMD runs the shell command CMD once per node before COMMAND; what it exports and the
folder it ends in carry over to COMMAND, as when it was written `CMD && COMMAND`. It runs in
COMMAND's own shell: when COMMAND is a shell given its text with -c (singkit's `SHELL... -c ...
TEXT`, bash where there is bash, else sh), that argv with CMD in place of its last word; else sh. If it fails,
COMMAND never starts and the run fails with its exit code. Where the platform starts one
wrapper per process (Azure ML: LOCAL_RANK set), the one with LOCAL_RANK 0 runs CMD and the
others wait for it (a marker file in the node's temp dir, keyed by AZUREML_RUN_ID, SINGKIT_RUN
and the folder), then carry on or fail exactly as it did.

--procs N starts N copies of COMMAND on this machine, as Azure ML's PyTorch distribution does
on a node: RANK and LOCAL_RANK 0..N-1, WORLD_SIZE=N, NODE_RANK=0, MASTER_ADDR=127.0.0.1 and
MASTER_PORT (a free port). Rank 0's lines go to the run's files as a single process's would;
the other ranks' lines go to the same files prefixed `[rank K] `; each line is one write. The run completes when every
rank exits 0; when one fails, the others get SIGTERM, then SIGKILL after --grace seconds
(default 30, as torchrun), and the run fails with that rank's exit code.

--run-dir (or $SINGKIT_RUN_DIR) gives the defaults: DIR/run.log, DIR/stdout.log,
DIR/stderr.log, DIR/outputs/ (exported as $SINGKIT_RUN_LOG and $SINGKIT_OUTPUTS).
--tee also copies the job's output to this process's own stdout/stderr (for platforms that
collect the console, like Singularity). SIGTERM/SIGINT/SIGHUP are passed on to COMMAND's
whole process group (COMMAND, and each rank, runs in a group of its own), so a program behind a
shell that does not pass signals on still gets them; singkit composes COMMAND as
`SHELL -c '[SETUP &&] exec PROGRAM'` where it can, so no shell is left between. --grace seconds
after the first such signal, whatever still runs in those groups gets SIGKILL: the time a
program has to save its work on a cancel or a preemption.
The wrapper exits with COMMAND's exit code (128+N when killed by signal N); a run that received
signal N is recorded with 128+N whatever its program then exited with (it did not complete).
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

USAGE = ("usage: singkit_entry.py [--run-dir DIR] [--cwd DIR] [--tee] [--exit-event] [--setup CMD] [--procs N] "
         "[--grace SECONDS] [--timeout SECONDS] -- COMMAND [ARG...]")
GRACE = 30.0  # seconds between SIGTERM and SIGKILL (the other ranks, or on a signal): torchrun's default
LOG_UNWRITABLE = 2  # exit code when run.log cannot be written (singkit's exit code for a damaged store)
POLL = 0.2    # seconds between looks at a deadline while waiting for processes
DRAIN = 5.0   # seconds the ranks' output may still flow once all ended (a child they left may hold a pipe)
# Run after the setup in its shell: what the setup exported and where it ended, for the ranks
DUMP = "import json, os, sys; json.dump({'env': dict(os.environ), 'cwd': os.getcwd()}, open(sys.argv[1], 'w'))"
# Variables the shell and the dump set themselves: not the setup's doing, never carried over
NOT_SETUP = {"_", "SHLVL", "OLDPWD", "PWD", "PYTHONCOERCECLOCALE"}


def emit(path: str, event: str, **fields: object) -> None:
    record = {"t": round(time.time(), 3), "event": event}
    node = os.environ.get("SINGKIT_NODE")
    if node:
        record["node"] = int(node) if node.isdigit() else node
    record.update(fields)
    line = (json.dumps(record, default=str) + "\n").encode()
    # O_NONBLOCK: no effect on a regular file; a FIFO nobody reads fails at once (ENXIO)
    # instead of holding the run for ever. O_NOFOLLOW: a link put where the store keeps
    # run.log is not written through (ELOOP). The caller reports either.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NONBLOCK", 0)
                 | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def parse(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    if "--" not in argv:
        sys.exit(USAGE)
    split = argv.index("--")
    options: dict[str, Any] = {"run_dir": os.environ.get("SINGKIT_RUN_DIR") or ".", "cwd": None, "tee": False,
                                  "exit_event": os.environ.get("SINGKIT_EXIT_EVENT", "") not in ("", "0"),
                                  "setup": None, "procs": None, "grace": GRACE, "timeout": None}
    flags = argv[:split]
    while flags:
        flag = flags.pop(0)
        if flag in ("--tee", "--exit-event"):
            options[flag[2:].replace("-", "_")] = True
        elif flag in ("--run-dir", "--cwd", "--setup", "--procs", "--grace", "--timeout") and flags:
            options[flag[2:].replace("-", "_")] = flags.pop(0)
        else:
            sys.exit(f"singkit_entry.py: unknown option {flag}")
    command = argv[split + 1:]
    if not command:
        sys.exit("singkit_entry.py: no command after --")
    if options["procs"] is not None:
        procs = str(options["procs"])
        if not procs.isdigit() or int(procs) < 1:
            sys.exit(f"singkit_entry.py: --procs takes a whole number of at least 1, not {procs}")
        options["procs"] = int(procs)
    try:
        options["grace"] = float(options["grace"])
        options["timeout"] = None if options["timeout"] is None else float(options["timeout"])
    except ValueError:
        sys.exit(f"singkit_entry.py: --grace and --timeout take seconds, not {options['grace']} / {options['timeout']}")
    return options, command


def pump(source, prefix: bytes | None, *sinks) -> None:
    """Copy a pipe to files as it arrives; with a prefix (b"" for rank 0), whole lines, each one
    prefixed (a line is one write, so lines of several ranks in one file never tear each other)."""
    if prefix is not None:
        chunks = (prefix + line + (b"" if line.endswith(b"\n") else b"\n") for line in iter(source.readline, b""))
    else:
        chunks = iter(lambda: source.read1(65536), b"")
    try:
        for chunk in chunks:
            for sink in sinks:
                sink.write(chunk)
                sink.flush()
    except (OSError, ValueError):
        pass  # the run's files are closed: the run is over, and what a leftover child says goes nowhere


def describe(code: int, received: int | None) -> tuple[str, str | None]:
    """(status, reason) of a return code; a run that received a signal never completed."""
    if received is not None:
        said = ("; killed by SIGKILL after the grace" if code == -signal.SIGKILL
                else "" if code < 0 else f"; the command then exited with code {code}")
        return "failed", f"terminated: the run received {signal.Signals(received).name}{said}"
    if code == 0:
        return "completed", None
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return "failed", f"killed by {name}"
    return "failed", f"exit code {code}"


def exit_code(code: int) -> int:
    """A Popen return code as a shell reports it (128+N when killed by signal N)."""
    return code if code >= 0 else 128 - code


def finish(run_log: str, exit_event: bool, status: str, **fields: object) -> None:
    """The run's last line: its outcome, or (--exit-event) only this process's exit."""
    if exit_event:
        rank = os.environ.get("RANK")
        if rank and rank.isdigit():
            fields["rank"] = int(rank)
        event = "exit"
    else:
        event, fields = "status", {"status": status, **fields}
    try:
        emit(run_log, event, **fields)
    except OSError as error:  # the exit code still tells the outcome: said, not a traceback or a hang
        print(f"singkit: cannot record the outcome in the run log {run_log}: {error.strerror} (it must be a "
              "regular file, not a FIFO, folder, device or link)", file=sys.stderr)


class Children:
    """What runs now (the setup, or the ranks): signals received are passed on to all of it;
    `deadline` (time.monotonic()) is when, `grace` seconds after the first, all of it gets SIGKILL."""

    def __init__(self, grace: float = GRACE) -> None:
        self.received: list[int] = []
        self.running: list[tuple[subprocess.Popen, bool]] = []  # (process, leads a group of its own)
        self.grace = grace
        self.deadline: float | None = None
        self.timer: threading.Timer | None = None
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self.forward)

    def forward(self, signum: int, _frame: object) -> None:
        self.received.append(signum)
        if self.deadline is None:
            # a timer, not a polling loop: a job waits days in a blocking wait() for nothing
            self.deadline = time.monotonic() + self.grace
            self.timer = threading.Timer(self.grace, self.groups, args=(signal.SIGKILL,))
            self.timer.daemon = True
            self.timer.start()
        self.signal(signum)

    def signal(self, signum: int) -> None:
        """Send `signum` to every child not yet reaped (to its whole group when it has one)."""
        for child, grouped in list(self.running):
            if child.returncode is not None:
                continue  # reaped: its pid may belong to another process by now
            try:
                os.killpg(child.pid, signum) if grouped else child.send_signal(signum)
            except (ProcessLookupError, PermissionError):
                pass

    def groups(self, signum: int) -> bool:
        """Send `signum` (0: just look) to every rank's process group that still has members,
        also once its first process ended: what that started may not have. True if any had."""
        found = False
        for child, grouped in self.running:
            try:
                if grouped:
                    os.killpg(child.pid, signum)
                    found = True
            except (ProcessLookupError, PermissionError):
                pass
        return found


def own_group() -> dict[str, Any]:
    """Popen arguments for a process group of its own: a rank (or the setup) is stopped whole,
    even when its shell does not exec the last command; it stays in the wrapper's session, so
    a cancel that ends the session still reaches it."""
    if sys.version_info >= (3, 11):
        return {"process_group": 0}
    return {"preexec_fn": os.setpgrp}


def start(children: Children, command: list[str], cwd: str | None, env: dict[str, str] | None, files: tuple,
          tee: bool, rank: int | None = None) -> tuple[subprocess.Popen, list[threading.Thread]]:
    """Start one process, in a group of its own, writing to the run's files (`rank`: one of
    --procs, ranks above 0 have their lines prefixed); the threads that copy its pipes, if any."""
    out, err = files
    # every rank is copied line by line (rank 0 without a prefix), so no line is torn by another's
    prefix = None if rank is None else f"[rank {rank}] ".encode() if rank else b""
    piped = tee or prefix is not None
    child = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE if piped else out, stderr=subprocess.PIPE if piped else err,
                             **own_group())
    children.running.append((child, True))
    pumps = []
    if piped:
        console = (sys.stdout.buffer, sys.stderr.buffer) if tee else ()
        for source, sinks in ((child.stdout, (out, *console[:1])), (child.stderr, (err, *console[1:]))):
            pumps.append(threading.Thread(target=pump, args=(source, prefix, *sinks), daemon=True))
    for thread in pumps:
        thread.start()
    return child, pumps


# -- the setup, once per node ----------------------------------------------------------------
def marker_path() -> str:
    """Where local rank 0 leaves the setup's outcome for the other ranks of this node."""
    key = "|".join((os.environ.get("AZUREML_RUN_ID", ""), os.environ.get("SINGKIT_RUN", ""), os.getcwd(), node_epoch()))
    return os.path.join(tempfile.gettempdir(), f"singkit-setup-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json")


def node_epoch() -> str:
    """The boot and the start of this container's PID 1: the same for every rank of one node,
    new when a requeued job lands on a reused machine, so no rank reads an older marker."""
    parts = []
    for path in ("/proc/sys/kernel/random/boot_id", "/proc/1/stat"):
        try:
            with open(path) as handle:
                text = handle.read()
        except OSError:
            continue
        parts.append(text[text.rfind(")") + 2:].split()[19] if path.endswith("stat") else text.strip())
    return "|".join(parts)


def write_private(path: str, data: dict[str, object]) -> None:
    """Write JSON readable by this user only (the setup may export secrets), in one rename."""
    partial = f"{path}.{os.getpid()}.partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.replace(partial, path)


def setup_shell(command: list[str], script: str) -> list[str]:
    """argv running `script` in COMMAND's shell: COMMAND with `script` in place of its shell text
    (its last word) when COMMAND is `SHELL... -c ... TEXT`; else /bin/sh -c script."""
    if "-c" in command[:-1]:
        return [*command[:-1], script]
    return ["/bin/sh", "-c", script]


def run_setup(children: Children, setup: str, command: list[str], cwd: str | None, files: tuple,
              tee: bool) -> dict[str, Any]:
    """Run the setup in COMMAND's shell (setup_shell); {"exit_code", "env": what it changed, "unset", "cwd"}."""
    fd, state = tempfile.mkstemp(prefix="singkit-setup-", suffix=".json")
    os.close(fd)
    script = (f"{{ {setup}\n}} && PYTHONCOERCECLOCALE=0 {shlex.quote(sys.executable)} "
              f"-c {shlex.quote(DUMP)} {shlex.quote(state)}")
    try:
        try:
            child, pumps = start(children, setup_shell(command, script), cwd, None, files, tee, rank=0)
        except OSError as error:  # as a shell would say it; the other ranks must hear of it too
            files[1].write(f"singkit: cannot start the setup: {error}\n".encode())
            return {"exit_code": 127}
        code = child.wait()
        for thread in pumps:
            thread.join()
        children.running.clear()
        if code != 0:
            return {"exit_code": exit_code(code)}
        with open(state) as handle:
            after = json.load(handle)
    finally:
        os.unlink(state)
    changed = {k: v for k, v in after["env"].items() if k not in NOT_SETUP and os.environ.get(k) != v}
    unset = [k for k in os.environ if k not in after["env"] and k not in NOT_SETUP]
    return {"exit_code": 0, "env": changed, "unset": unset, "cwd": after["cwd"]}


def await_setup(children: Children, path: str, err) -> dict[str, Any] | None:
    """Wait for local rank 0's setup outcome (None: a signal ended the wait)."""
    err.write(b"singkit: waiting for the setup on local rank 0\n")
    while not os.path.exists(path):
        if children.received:
            return None
        time.sleep(0.1)
    with open(path) as handle:
        return json.load(handle)


def setup_outcome(children: Children, options: dict[str, Any], command: list[str], files: tuple,
                  tee: bool) -> dict[str, Any] | None:
    """The setup's outcome on this node: run here, or (another rank's wrapper runs it) awaited."""
    setup, local_rank = str(options["setup"]), os.environ.get("LOCAL_RANK")
    if options["procs"] is None and local_rank not in (None, "", "0"):
        return await_setup(children, marker_path(), files[1])
    outcome = run_setup(children, setup, command, options["cwd"] or None, files, tee)
    if options["procs"] is None and local_rank == "0":
        write_private(marker_path(), outcome)
    return outcome


def environment_after(outcome: dict[str, Any]) -> dict[str, str]:
    """This process's environment as the setup left it."""
    env = dict(os.environ)
    env.update(outcome.get("env") or {})
    for name in outcome.get("unset") or []:
        env.pop(name, None)
    return env


# -- the command: one process, or --procs ranks ------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rank_environment(base: dict[str, str], rank: int, procs: int, port: int) -> dict[str, str]:
    """What Azure ML's PyTorch distribution sets for a process, torch.distributed's env:// init reads."""
    return {**base, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(procs), "NODE_RANK": "0",
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}


def supervise(children: Children, ranks: list[subprocess.Popen], grace: float, err) -> tuple[int, int | None]:
    """Wait for every rank; on the first failure stop the others (SIGTERM, then SIGKILL after
    `grace`), as torchrun does. (the return code to report, the failing rank or None)."""
    ended: queue.Queue = queue.Queue()
    for rank, child in enumerate(ranks):
        threading.Thread(target=lambda r=rank, c=child: ended.put((r, c.wait())), daemon=True).start()
    codes: dict[int, int] = {}
    first: int | None = None
    kill_at: float | None = None
    killed = False
    while len(codes) < len(ranks):
        # a signal received (Children.deadline) also starts the grace, even if no rank fails
        due = min((d for d in (kill_at, children.deadline) if d is not None), default=None)
        if not killed and due is not None and time.monotonic() >= due:  # the grace is over
            children.groups(signal.SIGKILL)
            killed = True
        try:
            rank, code = ended.get(timeout=POLL)
        except queue.Empty:
            continue
        codes[rank] = code
        if code != 0 and first is None:
            first = rank
            if not children.received:  # (a cancel's signal reached every rank already)
                err.write(f"singkit: rank {rank} ended ({describe(code, None)[1]}); stopping the other ranks\n".encode())
            children.groups(signal.SIGTERM)
            kill_at = time.monotonic() + grace
    due = min((d for d in (kill_at, children.deadline) if d is not None), default=None)
    if due is not None:  # what the stopped ranks started gets the rest of the grace too
        end_stragglers(children, due)
    return (0, None) if first is None else (codes[first], first)


def wait_one(children: Children, child: subprocess.Popen) -> int:
    """Wait for a single COMMAND; once a signal was received, its group gets SIGKILL at
    Children.deadline (Children.timer), and what it started (a program behind a shell that
    died of the signal) gets the rest of the grace to end. Its return code."""
    code = child.wait()
    if children.deadline is not None:
        end_stragglers(children, children.deadline)
    return code


def end_stragglers(children: Children, kill_at: float) -> None:
    """What the stopped ranks started may outlive them (and hold their pipes): it gets the
    rest of the grace, then SIGKILL."""
    while children.groups(0) and time.monotonic() < kill_at:
        time.sleep(0.1)
    children.groups(signal.SIGKILL)


def run_command(children: Children, command: list[str], cwd: str | None, env: dict[str, str] | None,
                options: dict[str, Any], files: tuple) -> tuple[int, int | None]:
    """Run COMMAND (--procs: as that many ranks) to its end: (return code, failing rank)."""
    tee, procs = bool(options["tee"]), options["procs"]
    if procs is None:
        child, pumps = start(children, command, cwd, env, files, tee)
        code, failed = wait_one(children, child), None
    else:
        port, base = free_port(), env if env is not None else dict(os.environ)
        started = []
        try:
            for k in range(procs):
                started.append(start(children, command, cwd, rank_environment(base, k, procs, port), files, tee, rank=k))
        except OSError:
            children.signal(signal.SIGKILL)  # no half-started world left behind
            raise
        pumps = [t for _child, threads in started for t in threads]
        code, failed = supervise(children, [c for c, _t in started], options["grace"], files[1])
    drained = None if procs is None else time.monotonic() + DRAIN
    for thread in pumps:
        thread.join(None if drained is None else max(0.0, drained - time.monotonic()))
    return code, failed


def main(argv: list[str]) -> int:
    options, command = parse(argv)
    run_dir = os.path.abspath(str(options["run_dir"]))
    os.makedirs(os.path.join(run_dir, "outputs"), exist_ok=True)
    run_log = os.environ.setdefault("SINGKIT_RUN_LOG", os.path.join(run_dir, "run.log"))
    os.environ.setdefault("SINGKIT_OUTPUTS", os.path.join(run_dir, "outputs"))
    os.environ.setdefault("PYTHONUNBUFFERED", "1")  # lines reach the log as they are printed
    exit_event = bool(options["exit_event"])

    try:
        emit(run_log, "status", status="running", pid=os.getpid(), host=socket.gethostname())
    except OSError as error:  # nowhere to record an outcome: the command is not started
        print(f"singkit: cannot write the run log {run_log}: {error.strerror} (it must be a regular file, not a "
              "FIFO, folder, device or link); the command was not started", file=sys.stderr)
        return LOG_UNWRITABLE
    hparams = os.environ.get("SINGKIT_HPARAMS")
    if hparams and hparams not in ("{}", "null"):
        try:
            emit(run_log, "hparams", hparams=json.loads(hparams))
        except ValueError:
            pass

    children = Children(float(options["grace"]))
    expired = threading.Event()
    if options["timeout"]:  # --timeout: stopped as a cancel stops it (SIGTERM, the grace, SIGKILL)
        timer = threading.Timer(options["timeout"], lambda: (expired.set(), children.forward(signal.SIGTERM, None)))
        timer.daemon = True
        timer.start()
    files = (open(os.path.join(run_dir, "stdout.log"), "ab", buffering=0),
             open(os.path.join(run_dir, "stderr.log"), "ab", buffering=0))
    cwd = str(options["cwd"]) if options["cwd"] else None
    env: dict[str, str] | None = None  # None: this process's own environment, as before --setup
    try:
        if options["setup"]:
            outcome = setup_outcome(children, options, command, files, bool(options["tee"]))
            if outcome is None or children.received or outcome["exit_code"] != 0:
                return setup_failed(run_log, exit_event, outcome, children.received, options["timeout"] if expired.is_set() else None)
            env, cwd = environment_after(outcome), str(outcome.get("cwd") or cwd or os.getcwd())
        code, failed = run_command(children, command, cwd, env, options, files)
    except OSError as error:
        files[1].write(f"singkit: cannot start {command[0]}: {error}\n".encode())
        finish(run_log, exit_event, "failed", exit_code=127, reason=f"cannot start {command[0]}: {error.strerror}")
        return 127
    finally:
        for handle in files:
            handle.close()
    received = children.received[0] if children.received else None
    status, reason = describe(code, received)
    fields: dict[str, Any] = {"exit_code": exit_code(code) if received is None else 128 + received}
    if reason:
        fields["reason"] = reason if failed is None or children.received else f"rank {failed}: {reason}"
    if expired.is_set():
        fields["reason"] = timeout_reason(options["timeout"])
    finish(run_log, exit_event, status, **fields)
    return int(fields["exit_code"])


def timeout_reason(seconds: float) -> str:
    """singkit.backends.runtime.workdir.timeout_reason's words (this file runs without singkit installed)."""
    return f"timeout: the run passed the target's max-run-seconds ({seconds:g} s) and was stopped"


def setup_failed(run_log: str, exit_event: bool, outcome: dict[str, Any] | None, received: list[int],
                 timeout: float | None = None) -> int:
    """Record the end of a run whose setup failed (or whose wait for it was interrupted;
    `timeout`: by the run's --timeout)."""
    if timeout is not None:
        code, reason = 128 + signal.SIGTERM, timeout_reason(timeout)
    elif received:
        code, reason = 128 + received[0], f"terminated: the run received {signal.Signals(received[0]).name}"
    else:
        code = int(outcome["exit_code"]) if outcome else 1
        reason = f"the setup failed (exit code {code}); the command did not start"
    finish(run_log, exit_event, "failed", exit_code=code, reason=reason)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
