"""The `docker` target: each run is a container of the target's docker record, on the local engine.

The image is the record's (the wrapped one when `sing-wrap: true`, by digest once the record is
pinned), as the submit pipeline's resolve_image step put it into job.yaml's `image.ref` (the
rule Singularity follows too), resolved to an image id at submit so every run uses the same bytes.
Nothing in singkit runs inside the container (the image needs no Python): the runner on the
host creates the container, streams its output into stdout.log/stderr.log, writes the status
lines, and removes the container once its logs are saved. Inside:

    /singkit/code          the job's code snapshot, read-only (the working directory)
    /singkit/lib           singkit_metrics.py (on PYTHONPATH), read-only
    /singkit/run/outputs   the run's outputs/ ($SINGKIT_OUTPUTS)
    /singkit/run/run.log   the run's run.log ($SINGKIT_RUN_LOG): metrics go straight there
    /singkit/data/inputs/NAME, /singkit/data/outputs/NAME   the target's inputs (read-only) and
                           this run's output folders (read-write), from `datastores:` (singkit.mounts)

No network unless the target says `network: true`; all GPUs when the engine has the NVIDIA
runtime; the container runs as the calling user so the files it writes are theirs.

With `processes-per-node` N > 1 (`gpus`: the GPUs the container gets) the one container runs
RANKS_SH instead: the setup once, then N ranks of the command with Azure ML's PyTorch
variables (MASTER_ADDR=127.0.0.1 inside the container, MASTER_PORT picked on the host), every
rank's output copied line by line (no line torn by another rank's), ranks above 0 prefixed
`[rank K] `. The container ends with the first failing rank's exit code (after the others got
SIGTERM and up to the target's `grace-seconds`), so the outcome, cancel and reconcile work on it
exactly as for one process. One process runs under ONE_SH. Both run in the job's shell
(workdir.shell_argv: bash where the image has it, else sh), and start the command in that same
shell ("$0"), so the setup and the command are bash wherever the image has bash.

Signals: a cancel sends SIGTERM to the container's PID 1 (RANKS_SH or ONE_SH, a shell that
traps it: PID 1 of a PID namespace gets no signal it has no handler for, pid_namespaces(7)
"Signals and the init process") and SIGKILL after `grace-seconds`; the
shell passes SIGTERM on to the container's whole process group, so the program gets it even
behind a shell of its own (the command ends in `exec PROGRAM` where it can), and waits for
what still runs up to the grace.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import math
import threading
import time

from singkit import mounts, procs
from singkit.backends.containersh import ONE_SH, RANKS_SH
from singkit.backends.dockerlogs import catch_up, copy_stream, lost_connection
from singkit.backends.embedded import EmbeddedBackend, free_port, gpu_count, processes, user_spec, world_variables
from singkit.backends.runtime.workdir import (RunPaths, grace_seconds, job_shell, max_run_seconds, program_command,
                                              run_command, run_environment, setup_command, shell_argv, timeout_reason)
from singkit.exceptions import Hint, SingkitError, UsageError
from singkit.store.jobspec import run_entry

if TYPE_CHECKING:
    from singkit.store import Job, Run

INSIDE = RunPaths(run_dir="/singkit/run", run_log="/singkit/run/run.log", outputs="/singkit/run/outputs",
                  code="/singkit/code", lib="/singkit/lib")

# A runner that lost the engine mid-run keeps trying to reach it this long (then refresh takes over).
ENGINE_RECONNECT = 600.0
STOP_MARGIN = 5.0  # seconds past the grace before the engine's SIGKILL: the shell's own SIGKILL and exit come first


class DockerBackend(EmbeddedBackend):
    name = "docker"

    def _client(self) -> Any:
        from singkit.images.engine import connect

        return connect(self.env)

    # -- submit side (in the CLI) ------------------------------------------------------------
    def image_kind(self) -> str | None:
        return "wrapped"  # the record's image as image.wrap makes it (imageref.run_digest)

    def prepare(self, job: Job) -> None:
        """Find (or pull) the image and pin the job to its id."""
        from singkit.images.engine import ensure_image, has_image

        spec = job.spec
        record = spec.get("docker")
        if not record:
            name = spec["target"]["name"]
            raise UsageError(f"target `{name}` runs on docker but names no image; add `docker: <record>` to compute-targets.{name}")
        known = (spec.get("image") or {}).get("id")  # a rerun keeps the image it ran in
        wanted = (spec.get("image") or {}).get("ref")  # the pipeline's resolve_image step chose it
        if not wanted:
            raise UsageError(f"{job.id}: no image was resolved for docker record `{record.get('name')}`")
        client = self._client()
        try:
            ref = next((c for c in (known, wanted) if c and has_image(client, c)), None)
            if ref is None:
                if self.cfg is None:
                    raise SingkitError(f"image {wanted} is not on this engine",
                                       hint=Hint.command("image.wrap", docker=record["name"], say="; pull it or run {}"))
                ref = wanted
                ensure_image(self.env, self.cfg, client, ref, "job")
            image_id = client.api.inspect_image(ref)["Id"]
        finally:
            client.close()
        spec["image"] = {"ref": ref, "id": image_id}
        job.write_spec(spec)

    # -- runner side ---------------------------------------------------------------------------
    def container_name(self, run: Run) -> str:
        store = hashlib.sha256(str(run.job.store.root.resolve()).encode()).hexdigest()[:8]
        return f"singkit-{store}-{run.id.replace('.', '-')}"

    def execute(self, job: Job, run: Run) -> None:
        import docker

        deadline = time.monotonic() + ENGINE_RECONNECT
        while True:  # the engine out of reach before the container exists is not the run's outcome either
            client = self._engine(run, deadline)
            if client is None:
                return  # cancelled while it waited for the engine
            try:
                container, count = self._create(client, job, run)
                break
            except lost_connection() as error:
                client.close()
                if time.monotonic() > deadline:
                    from singkit.images.engine import engine_error

                    raise engine_error(self.env, error) from None
                self.env.warn(f"lost the Docker Engine while creating {run.id}'s container ({error}); retrying")
            except docker.errors.APIError as error:
                client.close()
                raise SingkitError(f"the Docker Engine refused the run: {error.explanation or error}") from None
        try:
            run.write_backend_info({"kind": "container", "container": container.id, "name": container.name,
                                    "image": job.spec["image"]["id"], "processes": count})
            written = [0, 0]  # bytes of stdout, stderr saved so far: a re-attach skips them
            expired: threading.Event | None = None
            try:
                stream = container.attach(stdout=True, stderr=True, stream=True, logs=True, demux=True)
                run.set_status("running", container=container.short_id)
                if run.hparams:
                    run.append("hparams", hparams=run.hparams)
                container.start()
                expired = self._limit(run, container)
                copy_stream(run, stream, written)
                container.reload()
                if container.status in ("running", "restarting", "paused"):
                    raise ConnectionError("the output stream ended while the container runs on")
                self._finish(run, container, expired)
            except lost_connection() as error:
                # the engine went away, not the run: it goes on in its container (see _resume)
                self._resume(run, container.id, expired, written, error)
        except docker.errors.APIError as error:
            raise SingkitError(f"the Docker Engine refused the run: {error.explanation or error}") from None
        finally:
            client.close()

    def _resume(self, run: Run, container_id: str, expired: threading.Event | None, written: list[int],
                error: BaseException) -> None:
        """Follow a run again after the engine connection was lost: reconnect (with backoff),
        save the output its container wrote meanwhile, then record its real outcome and remove
        it. When the engine stays away past ENGINE_RECONNECT the run is left `running`: once
        this runner has exited, refresh settles it from the engine (run_alive)."""
        import docker

        from singkit.exceptions import ServiceError

        self.env.warn(f"lost the Docker Engine while following {run.id} ({type(error).__name__}: {error}); "
                      "reconnecting")
        lost_at, delay = time.monotonic(), 0.25
        while True:
            if time.monotonic() - lost_at > ENGINE_RECONNECT:
                self.env.warn(f"the Docker Engine is still unreachable; {run.id} is left running for "
                              "`job.status` to settle")
                return
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
            try:
                client = self._client()
            except ServiceError:
                continue
            try:
                container = client.containers.get(container_id)
                if run.state().status == "cancelled":  # cancelled while the engine was away: stop it now
                    if container.status == "created":
                        container.remove(force=True)
                        return
                    if container.status == "running":
                        with contextlib.suppress(docker.errors.APIError):  # it may be ending just now
                            container.kill(signal="SIGTERM")  # its shell passes it on and keeps the grace
                if container.status == "created":  # the connection went before or during start
                    if run.state().status == "queued":
                        run.set_status("running", container=container.short_id)
                    container.start()
                    expired = expired or self._limit(run, container)
                catch_up(client, run, container_id, written)
                container.reload()
                if container.status in ("running", "restarting", "paused"):
                    continue  # cut again
                self._finish(run, container, expired)
                return
            except docker.errors.NotFound:
                # removed meanwhile (by a cancel, or a refresh that saved its outcome)
                if not run.state().terminal:
                    run.set_status("failed", reason="its container was removed while the Docker Engine could not be reached")
                return
            except lost_connection():
                continue
            finally:
                client.close()

    def _engine(self, run: Run, deadline: float) -> Any | None:
        """A client of the engine, waiting for it (with backoff) until `deadline`
        (time.monotonic()); then the ServiceError saying it is out of reach. None when the run
        ended (a cancel) while it waited."""
        from singkit.exceptions import ServiceError

        delay, said = 0.25, False
        while True:
            try:
                return self._client()
            except ServiceError as error:
                if time.monotonic() > deadline:
                    raise
                if not said:
                    self.env.warn(f"waiting for the Docker Engine to start {run.id} ({error})")
                    said = True
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
            if run.state().terminal:
                return None

    def _create(self, client: Any, job: Job, run: Run) -> tuple[Any, int]:
        """Create (not start) the run's container; (container, processes). A container of the
        run's name left `created` by an attempt whose answer was lost is removed first."""
        import docker

        try:
            leftover = client.containers.get(self.container_name(run))
        except docker.errors.NotFound:
            leftover = None
        if leftover is not None and leftover.status == "created":
            leftover.remove(force=True)
        spec = job.spec
        environment = run_environment(run, INSIDE, {"HOME": "/tmp"}, self.env.environ)
        kwargs: dict[str, Any] = {}
        if not spec["target"].get("network"):
            kwargs["network_mode"] = "none"
        gpus = "nvidia" in (client.info().get("Runtimes") or {})
        if gpus:
            kwargs["device_requests"] = [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
        # `gpus`: the container gets them all, less what the job's CUDA_VISIBLE_DEVICES hides
        count = processes(run, lambda: gpu_count(self.env.environ.get("PATH"), environment.get("CUDA_VISIBLE_DEVICES"))
                          if gpus else 0)
        if count > 1:
            environment.update(world_variables(count, free_port()))
        if user_spec():
            kwargs["user"] = user_spec()
        volumes = {
            str(job.dir / "code"): {"bind": INSIDE.code, "mode": "ro"},
            str(job.dir / "lib"): {"bind": INSIDE.lib, "mode": "ro"},
            str(run.outputs_dir): {"bind": INSIDE.outputs, "mode": "rw"},
            str(run.log_path): {"bind": INSIDE.run_log, "mode": "rw"},
            # inputs read-only, this run's output folders read-write (singkit.mounts)
            **mounts.docker_volumes(spec, run_entry(spec, run.id), run.id),
        }
        container = client.containers.create(
            spec["image"]["id"], command=self._command(run, count), name=self.container_name(run),
            labels={"singkit.job": job.id, "singkit.run": run.id, "singkit.store": str(job.store.root)},
            environment=environment, working_dir=INSIDE.code, volumes=volumes, detach=True, **kwargs)
        return container, count

    @staticmethod
    def _command(run: Run, count: int) -> list[str]:
        """One process: ONE_SH around the setup's steps and the command; N: RANKS_SH. Both get
        the target's grace in whole seconds (rounded up: the shells count seconds)."""
        grace, shell = str(math.ceil(grace_seconds(run.job.spec))), job_shell(run.job.spec)
        if count == 1:
            return shell_argv(ONE_SH, run_command(run), grace, shell=shell)
        return shell_argv(RANKS_SH, setup_command(run), program_command(run), str(count), grace, shell=shell)

    @staticmethod
    def _limit(run: Run, container: Any) -> threading.Event:
        """The target's max-run-seconds: then the container is stopped as a cancel stops it
        (SIGTERM, SIGKILL after the grace). The event says it was."""
        expired = threading.Event()
        limit = max_run_seconds(run.job.spec)
        if limit:
            def stop() -> None:
                expired.set()
                with contextlib.suppress(Exception):  # it may have ended (and been removed) just now
                    container.stop(timeout=math.ceil(grace_seconds(run.job.spec)))
            timer = threading.Timer(limit, stop)
            timer.daemon = True
            timer.start()
        return expired

    def _finish(self, run: Run, container: Any, expired: threading.Event | None = None) -> None:
        """Remove the container (its logs are saved by now), then record its outcome: a job
        that reads as ended has nothing of it left on the engine."""
        result = container.wait()
        code = int(result.get("StatusCode", -1))
        container.reload()
        oom = (container.attrs.get("State") or {}).get("OOMKilled")
        try:
            container.remove(force=True)
        finally:
            if expired is not None and expired.is_set():
                run.set_status("failed", exit_code=code, reason=timeout_reason(max_run_seconds(run.job.spec) or 0))
            elif code == 0:
                run.set_status("completed", exit_code=0)
            elif oom:
                run.set_status("failed", exit_code=code, reason="killed: out of memory")
            else:
                reason = {137: "killed by SIGKILL", 143: "terminated by SIGTERM"}.get(code, f"exit code {code}")
                run.set_status("failed", exit_code=code, reason=ranks_reason(run, reason))

    # -- reconcile / cancel ----------------------------------------------------------------------
    def _container(self, client: Any, run: Run) -> Any | None:
        """The run's container: by the id in backend.json, else by its labels (backend.json is
        written after the engine created it: a runner cut off or killed in between left none)."""
        import docker

        info = run.backend_info()
        if info.get("container"):
            try:
                return client.containers.get(info["container"])
            except docker.errors.NotFound:
                return None
        store = str(run.job.store.root.resolve())
        for container in client.containers.list(all=True, filters={"label": [f"singkit.run={run.id}"]}):
            label = (container.labels or {}).get("singkit.store") or ""
            if label and str(Path(label).resolve()) == store:
                return container
        return None

    def _collect(self, run: Run, container: Any, record: bool = True) -> None:
        """Save the logs of a container its runner stopped following (it died part-way), then
        finish it (`record=False`: only remove it). The engine kept the whole output, so it
        replaces what the runner saved."""
        from singkit.fsutil import atomic_write

        for path, (out, err) in ((run.stdout_path, (True, False)), (run.stderr_path, (False, True))):
            atomic_write(path, container.logs(stdout=out, stderr=err))
        if record:
            self._finish(run, container)
        else:
            container.remove(force=True)

    def run_alive(self, job: Job, run: Run) -> bool:
        client = self._client()
        try:
            container = self._container(client, run)
            if container is None:
                return False
            if container.status in ("running", "restarting", "paused"):
                return True
            if container.status == "created":  # its runner died before starting it
                container.remove(force=True)
                return False
            if not run.log_missing():  # (no outcome is made up for a run whose run.log is gone)
                self._collect(run, container)  # exited while its runner was gone: read its outcome
            return False
        except lost_connection() as error:  # the engine went mid-call: one line, the run stays as it is
            from singkit.images.engine import engine_error

            raise engine_error(self.env, error) from None
        finally:
            client.close()

    def stop(self, job: Job, runs: list[Run]) -> None:
        import docker

        runner_alive = procs.alive(job.runner_info())
        client = self._client()
        try:
            found = [(run, self._container(client, run)) for run in runs]
            found = [(run, container) for run, container in found if container is not None]
            # every container gets SIGTERM first, then each is waited for until one shared
            # deadline: N runs take one grace, not N
            deadline = time.monotonic() + grace_seconds(job.spec) + STOP_MARGIN
            signalled = set()
            for _run, container in found:
                try:
                    if container.status == "running":
                        container.kill(signal="SIGTERM")
                        signalled.add(container.id)
                except docker.errors.APIError:
                    continue
            for run, container in found:
                try:
                    if container.id in signalled:
                        self._await_stop(container, deadline)
                    if not runner_alive:  # nobody will save its logs and remove it: do it here
                        container.reload()
                        self._collect(run, container, record=not run.log_missing())
                except docker.errors.APIError:
                    continue  # already gone or stopping: the cancel is recorded either way
        except lost_connection() as error:  # the cancel is recorded; what still runs is said in one line
            from singkit.images.engine import engine_error

            raise engine_error(self.env, error) from None
        finally:
            client.close()

    @staticmethod
    def _await_stop(container: Any, deadline: float) -> None:
        """Wait for a container sent SIGTERM to exit until `deadline` (time.monotonic()), then
        SIGKILL it. Raises docker.errors.APIError when it is gone."""
        import requests

        try:
            container.wait(timeout=max(1.0, deadline - time.monotonic()))
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            container.kill()


def ranks_reason(run: Run, reason: str) -> str:
    """A failed run's reason, told by RANKS_SH's `exit` line in run.log on runs of several
    processes: the first rank to fail (`rank 2: exit code 5`), or the setup that failed."""
    from singkit.store import runlog

    if int(run.backend_info().get("processes") or 1) == 1:
        return reason
    note = next((e for e in runlog.events(run.log_path) if e.get("event") == "exit"), None)
    if note is None:
        return reason
    if isinstance(note.get("rank"), int):
        return f"rank {note['rank']}: {reason}"
    return str(note.get("reason") or reason)
