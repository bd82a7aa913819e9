"""The `local` target: each run is a process tree on this machine.

The runner starts `python lib/singkit_entry.py --run-dir RUN --cwd CODE --grace G -- SHELL CMD`
(SHELL: workdir.shell_argv, bash where this machine has it, else sh) in a session of its own
(so a run is cancelled as one session), with the run's environment;
CMD ends in `exec PROGRAM` where it can (workdir.exec_form), and the wrapper runs it in a
process group of its own that every signal it receives is passed on to. A cancel sends SIGTERM
to the run's whole session and SIGKILL to what is left after the target's `grace-seconds` (G);
the wrapper does the same itself after the target's `max-run-seconds` (--timeout), reason `timeout`.
The wrapper records running/completed/failed in run.log. The interpreter's folder comes first
on PATH, so `python` in a command is the one singkit runs with.

With `processes-per-node` N > 1 (`gpus`: the GPUs visible here) the wrapper gets
`--procs N --setup SETUP`: it runs the setup once, then N ranks of CMD, as Azure ML would
on one node; they all stay in the run's session, so a cancel still ends every one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

from singkit import procs
from singkit.backends.embedded import EmbeddedBackend, exit_reason, gpu_count, processes, stop_processes
from singkit.backends.runtime.workdir import (ENTRY_SCRIPT, grace_seconds, host_environment, host_paths, job_shell,
                                              max_run_seconds, program_command, run_command, run_environment,
                                              setup_command, shell_argv)

if TYPE_CHECKING:
    from singkit.store import Job, Run


class LocalBackend(EmbeddedBackend):
    name = "local"

    def execute(self, job: Job, run: Run) -> None:
        paths = host_paths(run)
        base = host_environment(job.spec, self.env.environ)  # singkit's own credentials withheld
        base["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), base.get("PATH", os.defpath)])
        environ = run_environment(run, paths, base, self.env.environ)
        # `gpus`: those the run's own environment sees (its PATH's nvidia-smi, its CUDA_VISIBLE_DEVICES)
        count = processes(run, lambda: gpu_count(environ.get("PATH"), environ.get("CUDA_VISIBLE_DEVICES")))
        argv = [sys.executable, os.path.join(paths.lib, ENTRY_SCRIPT), "--run-dir", paths.run_dir,
                "--cwd", paths.code, "--grace", str(grace_seconds(job.spec)), *self._rank_options(run, count),
                *(["--timeout", str(limit)] if (limit := max_run_seconds(job.spec)) else []),
                "--", *shell_argv(run_command(run) if count == 1 else program_command(run), shell=job_shell(job.spec))]
        with open(run.stderr_path, "ab") as stderr:  # the wrapper's own complaints, if any
            popen = subprocess.Popen(argv, env=environ, stdin=subprocess.DEVNULL, stdout=stderr,
                                     stderr=stderr, start_new_session=True, close_fds=True)
        run.write_backend_info({"kind": "process", **procs.identity(popen.pid), "processes": count})
        code = popen.wait()
        if not run.state().terminal and not run.log_missing():  # (a run.log gone or no file: `unknown`, not made up)
            _status, reason, exit_code = exit_reason(code)
            run.set_status("failed", exit_code=exit_code,
                           reason=f"the entry wrapper ended ({reason or 'exit code 0'}) without recording an outcome")

    @staticmethod
    def _rank_options(run: Run, count: int) -> list[str]:
        """The wrapper's options for N ranks: none for one process (its setup stays a prefix of
        the command, as it always was), else --procs, and the setup to run once before them."""
        if count == 1:
            return []
        setup = setup_command(run)
        return ["--procs", str(count), *(["--setup", setup] if setup else [])]

    def run_alive(self, job: Job, run: Run) -> bool:
        return procs.alive(run.backend_info())

    def stop(self, job: Job, runs: list[Run]) -> None:
        # every run's tree gets SIGTERM at once, and the target's grace before SIGKILL
        stop_processes([r.backend_info() for r in runs if r.backend_info()], grace_seconds(job.spec))
