"""The `local` target: each run is a process tree on this machine.

The runner starts `python lib/singkit_entry.py --run-dir RUN --cwd CODE -- /bin/sh -c CMD`
in a session of its own (so a run is cancelled as one process group), with the run's
environment; the wrapper records running/completed/failed in run.log. The interpreter's
folder comes first on PATH, so `python` in a command is the one singkit runs with.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

from singkit.backends.embedded import EmbeddedBackend, exit_reason, stop_processes
from singkit.jobs import procs
from singkit.jobs.spec import SECRET_PREFIX
from singkit.jobs.workdir import ENTRY_SCRIPT, host_paths, run_command, run_environment

if TYPE_CHECKING:
    from singkit.store import Job, Run


class LocalBackend(EmbeddedBackend):
    name = "local"

    def execute(self, job: Job, run: Run) -> None:
        paths = host_paths(run)
        # the runner's environment, less the literal secrets it carries for `$env:` references
        base = {k: v for k, v in self.env.environ.items() if not k.startswith(SECRET_PREFIX)}
        base["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), base.get("PATH", os.defpath)])
        environ = run_environment(run, paths, base, self.env.environ)
        argv = [sys.executable, os.path.join(paths.lib, ENTRY_SCRIPT), "--run-dir", paths.run_dir,
                "--cwd", paths.code, "--", "/bin/sh", "-c", run_command(run)]
        with open(run.stderr_path, "ab") as stderr:  # the wrapper's own complaints, if any
            popen = subprocess.Popen(argv, env=environ, stdin=subprocess.DEVNULL, stdout=stderr,
                                     stderr=stderr, start_new_session=True, close_fds=True)
        run.write_backend_info({"kind": "process", **procs.identity(popen.pid)})
        code = popen.wait()
        if not run.state().terminal:
            _status, reason, exit_code = exit_reason(code)
            run.set_status("failed", exit_code=exit_code,
                           reason=f"the entry wrapper ended ({reason or 'exit code 0'}) without recording an outcome")

    def run_alive(self, job: Job, run: Run) -> bool:
        return procs.alive(run.backend_info())

    def stop(self, job: Job, runs: list[Run]) -> None:
        stop_processes([r.backend_info() for r in runs if r.backend_info()])
