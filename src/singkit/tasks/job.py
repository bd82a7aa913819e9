"""`job` tasks: submit, status, list, logs, monitor, cancel, extract, rerun.

Every task that takes a job accepts it as a word (`job3`, `JOB=job3`) or as `--job=job3`.
`--json` prints JSON alone on stdout. Exit codes: 0 ok/completed, 1 failed, 2 usage or
config error, 3 cancelled, 4 a service (e.g. the Docker Engine) is unavailable.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from invoke.exceptions import Exit

from singkit.gcpause import paused_gc
from singkit import fmt
from singkit.exceptions import ExitStatus
from singkit.tasks._edge import int_arg, job_arg, task
from singkit.tasks._hints import NO_JOBS_YET, detach_hint, next_steps

JOB_HELP = "the job: jobN (also JOB=jobN as a word)"
# Enumerated option values, spelled as singkit.store.status (STATUSES, DRY_RUN, LOG_MISSING) and
# backends.base.WHAT spell them (not imported: those modules are not needed to start the CLI; a
# test keeps them equal).
STATUSES = ("queued", "running", "completed", "failed", "cancelled", "preempted", "dry-run", "unknown")
WHAT = ("code", "logs", "outputs", "all")


def _dump(env: Any, data: Any) -> None:
    env.out(fmt.strict_json(data))


def _when(t: float | None) -> str:
    return fmt.when(t, seconds=True) if t else "-"


def _duration(start: float | None, end: float | None) -> str:
    """How long a job or run took (up to now while it runs), as every singkit table says it."""
    if not start:
        return "-"
    return fmt.duration((end or time.time()) - start)


def _cells() -> Any:
    """fmt.cell, remembering the text of each value: a sweep repeats its few values over all its runs."""
    known: dict[tuple[type, Any], str] = {}

    def cell(value: Any) -> str:
        key = (value.__class__, value)  # (1, 1.0 and True are equal keys, but other texts)
        try:
            return known[key]
        except KeyError:
            text = known[key] = fmt.cell(value)
            return text
        except TypeError:  # a list or a map: not remembered
            return fmt.cell(value)

    return cell


def _table(env: Any, rows: list[list[Any]], headers: list[str], wide: bool = False,
           keep: tuple[str, ...] = ("job", "run", "status"), columns: list[list[Any]] | None = None) -> str:
    """rows (or `columns`, one list per header) as tabulate's "simple" table, fitted to the
    terminal like report tables: long text cells (reason, sweep, target) are cut with an
    ellipsis before columns are left out."""
    from singkit.reports import layout, render

    if columns is not None:
        cells = [list(map(str, col)) for col in columns]
    else:  # column-wise, at C speed
        cells = [list(map(str, col)) for col in zip(*rows)] if rows else [[] for _ in headers]
    filled = [i for i, col in enumerate(cells) if any(col) or headers[i] in keep]  # an all-empty `reason`: no column
    headers, cells = [headers[i] for i in filled], [cells[i] for i in filled]
    right = [all(c.replace(".", "", 1).replace("/", "", 1).isdigit() or c == "-" for c in col) and any(c != "-" for c in col)
             for col in cells]
    fitted = layout.fit(headers, cells, right, None if wide else layout.terminal_width(env.stdout, env.environ),
                        keep=lambda i: headers[i] in keep)
    shown_headers, shown, right = layout.apply(fitted, headers, cells, right)
    if fitted.hidden:
        env.err(f"({', '.join(fitted.hidden)} left out to fit the terminal; --wide shows every column)")
    return render.text_table(shown_headers, [list(r) for r in zip(*shown)], right)


@task(iterable=["hp", "input", "output"], help={
    "target": "compute target from configs/ (default: local)",
    "cmd": "the command to run (default: python examples/train.py)",
    "runs": "repeats of each hparam set (default 1)",
    "hp": "sweep NAME=V1,V2 (repeatable; runs = product x --runs); each run gets `--NAME V` appended "
          "to the command (or put at {hparams}) and $SINGKIT_HP_NAME",
    "parallel": "runs at once (default: 1 on local/docker, all on Singularity)",
    "dry-run": "write the job folder and spec, do not run anything",
    "follow": "stay and follow the job like job.monitor (exit code = outcome)",
    "json": "print the job as JSON on stdout",
    "allow-unpinned": "Singularity: accept a docker image not pinned by digest (not reproducible)",
    "input": "NAME=URI: a data folder mounted read-only ($SINGKIT_INPUT_NAME), over the target's `inputs:` (repeatable)",
    "output": "NAME=URI: a folder mounted read-write, one sub-folder per run ($SINGKIT_OUTPUT_NAME), over the target's `outputs:`",
    "create-registry-connection": "Singularity: when the workspace cannot pull the image, create its container "
                                  "registry connection from the registry record (password never shown)",
    "from": "a jobs file (e.g. written by config.import-amlt): submit its named jobs, one after another",
    "job": "with --from: only this job of the file (default: every job in it)",
})
def submit(c, env, target="local", cmd=None, runs: int | None = None, hp=None, parallel: int | None = None, dry_run=False,
           follow=False, json=False, allow_unpinned=False, input=None, output=None, create_registry_connection=False,
           from_=None, job=None):
    """Submit a job: snapshot the code, start its runs (detached unless --follow).
    --from FILE: the jobs the file names (--job NAME: one of them), each as its own singkit job."""
    from singkit.exceptions import UsageError
    from singkit.jobs.spec import SubmitRequest

    if cmd is not None and not cmd.strip():  # an empty $(CMD) or "$VAR": running the default would surprise
        raise UsageError("--cmd is empty: give the command to run (e.g. --cmd='python train.py'), or leave "
                         "--cmd out for the default (python examples/train.py)")
    request = SubmitRequest(target=target or "local", command=cmd, runs=int_arg(runs, "runs", minimum=1) or 1,
                            hp=list(hp or []), parallel=int_arg(parallel, "parallel", minimum=1), dry_run=dry_run,
                            allow_unpinned=allow_unpinned, inputs=list(input or []), outputs=list(output or []),
                            create_registry_connection=create_registry_connection)
    if from_ or job:
        return _submit_from(env, request, from_, job, follow, json, given={"target": target != "local", "cmd": cmd,
                                                                            "runs": runs, "hp": hp})
    _submit_one(env, request, follow, json)


def _submit_from(env, request, path, name, follow, as_json, given) -> None:
    """Each named job of a jobs file (or the one --job names), submitted in file order; --json: a list."""
    import dataclasses

    from singkit.exceptions import UsageError
    from singkit.jobs import jobfile

    if not path:
        raise UsageError("--job names a job of a jobs file: pass --from=FILE too (e.g. --from=amlt.jobs.yaml)")
    clash = [f"--{k}" for k, v in given.items() if v]
    if clash:
        raise UsageError(f"{', '.join(clash)} and --from cannot be combined: the jobs file says them; edit it")
    jobs = jobfile.load(Path(path))
    if name and name not in jobs:
        import difflib

        close = difflib.get_close_matches(name, list(jobs), n=1)
        hint = f"did you mean `{close[0]}`? " if close else ""
        raise UsageError(f"no job `{name}` in {path}; {hint}it has: {', '.join(jobs)}")
    chosen = [jobs[name]] if name else list(jobs.values())
    if follow and len(chosen) > 1:
        raise UsageError(f"--follow follows one job; {path} has {len(chosen)}: add --job=NAME")
    ids = []
    for entry in chosen:
        one = dataclasses.replace(request, target=entry.target, command=entry.command, runs=entry.runs,
                                  env=dict(entry.env), sweep=entry.sweep,
                                  parallel=request.parallel if request.parallel is not None else entry.parallel)
        if len(chosen) > 1:
            env.err(f"{entry.name}:")
        ids.append(_submit_one(env, one, follow, as_json and len(chosen) == 1, quiet=as_json))
    if as_json and len(chosen) > 1:
        from singkit.jobs import control

        _dump(env, [control.status(env, job_id) for job_id in ids])


def _submit_one(env, request, follow: bool, json: bool, quiet: bool = False) -> str:
    """Submit one request; print its id (unless --json: `quiet`) and follow it if asked."""
    from singkit.jobs import control
    from singkit.jobs.submit import submit as submit_job

    dry_run = request.dry_run
    job = submit_job(env, request)
    spec = job.spec
    if not (json or quiet):
        env.out(job.id)
        what = "written (dry run, nothing started)" if dry_run else "submitted"
        env.err(f"{job.id} {what}: {len(spec['runs'])} run(s) on {spec['target']['name']}, "
                f"parallel {spec['parallel']}, code {spec['code']['sha256'][:12]} ({spec['code']['files']} files)")
        if not dry_run and not follow:
            env.err(next_steps(job.id))
    if follow and not dry_run:
        _follow(env, job.id, json)
    elif json:
        _dump(env, control.status(env, job.id))
    return job.id


def _follow(env, job_id: str, as_json: bool) -> None:
    from singkit.jobs import control

    try:
        final = control.monitor(env, job_id, live=not as_json, json_out=as_json)
    except KeyboardInterrupt:
        env.err(detach_hint(job_id))
        raise Exit(code=ExitStatus.INTERRUPTED) from None
    if as_json:
        _dump(env, control.status(env, job_id))
    control.outcome(final, job_id)


WIDE_HELP = "every column whole (default: fit the terminal's width)"


@task(positional=["job"], help={"job": JOB_HELP, "json": "print the job and its runs as JSON", "wide": WIDE_HELP})
def status(c, env, job=None, json=False, wide=False):
    """Show a job's status and each run's status, reason, exit code and hparams; a `preempted`
    column (times each run was preempted) when any run was. --json: `preemptions` per run."""
    with paused_gc():
        _status(env, job_arg(job), json, wide)


def _status(env: Any, job_id: str, json: bool, wide: bool) -> None:
    from singkit.jobs import control

    data = control.status(env, job_id)
    if json:
        _dump(env, data)
        return
    env.out(f"{data['job']}  {data['status']}  target {data['target']}  runs {data['runs_done']}/{data['runs_total']} done"
            f"  created {_when(data['created'])}  took {_duration(data['started'], data['ended'])}")
    runs, cell = data["runs"], _cells()
    # column by column: a 10,000-run sweep's table is 60,000 cells
    columns = [[r["run"] for r in runs], [r["status"] for r in runs],
               ["-" if (code := r.get("exit_code")) is None else code for r in runs],
               [_duration(r.get("started"), r.get("ended")) for r in runs],
               [" ".join([f"{k}={cell(v)}" for k, v in sweep.items()]) if (sweep := r.get("sweep")) else "-" for r in runs],
               [r.get("reason") or "" for r in runs]]
    header = ["run", "status", "exit", "took", "sweep", "reason"]
    if any(r.get("preemptions") for r in runs):  # times each run was preempted and requeued
        columns.insert(2, [r.get("preemptions") or 0 for r in runs])
        header.insert(2, "preempted")
    env.out(_table(env, [], header, wide=wide, columns=columns))
    from singkit.store.runlog import skipped_note

    for r in data["runs"]:
        if r.get("skipped_lines"):
            env.err(skipped_note(r["run"], r["skipped_lines"]))


@task(name="list", help={"status": "only jobs with this status", "target": "only jobs on this target",
            "last": "only the newest N jobs", "json": "print the jobs as JSON", "wide": WIDE_HELP},
      choices={"status": STATUSES})
def list_jobs(c, env, status=None, target=None, last: int | None = None, json=False, wide=False):
    """List jobs: target, status, runs done/total, created, duration."""
    with paused_gc():
        _list(env, status, target, int_arg(last, "last", minimum=1), json, wide)


def _list(env: Any, status: str | None, target: str | None, last: int | None, json: bool, wide: bool) -> None:
    from singkit.jobs import control

    jobs = control.list_jobs(env, status=status, target=target, last=last)
    if json:
        _dump(env, jobs)
        return
    if not jobs:
        env.err(control.nothing_listed(env, status=status, target=target) or NO_JOBS_YET)
        return
    rows = [[j["job"], j.get("target"), j["status"], f"{j['runs_done']}/{j['runs_total']}",
             _when(j.get("created")), _duration(j.get("started"), j.get("ended"))] for j in jobs]
    env.out(_table(env, rows, ["job", "target", "status", "runs", "created", "duration"], wide=wide))


@task(positional=["job"], help={"job": JOB_HELP, "run": "one run (jobN.K or K); default: every run",
                                "tail": "only the last N lines of each log", "follow": "keep printing until the runs end"})
def logs(c, env, job=None, run=None, tail: int | None = None, follow=False):
    """Print a run's output: its stdout on stdout, its stderr on stderr (prefixed when several runs)."""
    from singkit.backends.follow import JobFollower
    from singkit.jobs import control

    tail_n = int_arg(tail, "tail", minimum=0)
    _store, stored, backend = control.open_job(env, job_arg(job))
    runs = [stored.run(job_arg(run))] if run else stored.runs
    for note in control.link_notes(stored, runs):
        env.err(note)
    if stored.spec.get("dry_run"):
        env.err(control.dry_run_note(stored))
        return
    if follow:
        try:
            JobFollower(stored, backend, env.stdout, env.stderr, runs=runs, tail=tail_n).follow()
        except KeyboardInterrupt:
            env.err(detach_hint(stored.id))
            raise Exit(code=ExitStatus.INTERRUPTED) from None
        return
    several = len(runs) > 1
    for r in runs:
        for stream, sink in (("stdout", env.stdout), ("stderr", env.stderr)):
            for line in backend.logs(stored, r.id, follow=False, stream=stream, tail=tail_n):
                sink.write((f"[{r.id}] " if several else "") + line)
        env.stdout.flush()


@task(positional=["job"], help={"job": JOB_HELP})
def monitor(c, env, job=None):
    """Follow every run's output with a live status line; exit 0 completed, 1 failed, 3 cancelled.
    Ctrl-C detaches (the job keeps running)."""
    _follow(env, job_arg(job), False)


@task(positional=["job"], help={"job": JOB_HELP, "run": "cancel only this run (jobN.K or K)"})
def cancel(c, env, job=None, run=None):
    """Cancel a job (or one run): ends every process or container; safe to repeat."""
    from singkit.jobs import control

    from singkit.store import Store

    job_id = job_arg(job)
    cancelled = control.cancel(env, job_id, run=job_arg(run, required=False))
    if cancelled:
        env.err(f"cancelled {', '.join(cancelled)}")
    elif (stored := Store.of(env).job(job_id)).spec.get("dry_run"):
        env.err(f"nothing to cancel: {stored.id} is a dry run (nothing was started)")
    else:
        env.err(f"nothing to cancel: {'run ' + run if run else job_id} has already ended")


@task(positional=["job"], help={"job": JOB_HELP, "dest": "folder to extract into (created)",
                                "what": "what to copy (default all)"}, choices={"what": WHAT})
def extract(c, env, job=None, dest=None, what="all"):
    """Copy a job's code, logs and/or outputs out of the store into --dest (store layout)."""
    from singkit.exceptions import UsageError
    from singkit.jobs import control

    job_id = job_arg(job)
    if not dest:
        raise UsageError("no --dest given: pass --dest=DIR (the folder to extract into)")
    out, notes = control.extract(env, job_id, Path(dest), what or "all")
    for note in notes:
        env.err(f"note: {note}")
    env.err(f"extracted {what} of {job_id} into {out}")


@task(positional=["job"], help={"job": JOB_HELP, "parallel": "runs at once (default: as before)",
                                "follow": "stay and follow the new job", "json": "print the new job as JSON",
                                "resume": "each run writes the earlier run's output folders (its checkpoints are there)"})
def rerun(c, env, job=None, parallel: int | None = None, follow=False, json=False, resume=False):
    """Run a job again: same target, command, hparams and code snapshot, as a new job
    (--resume: in the earlier runs' output folders)."""
    from singkit.jobs import control
    from singkit.jobs.submit import rerun as rerun_job

    new = rerun_job(env, job_arg(job), parallel=int_arg(parallel, "parallel", minimum=1), resume=resume)
    if not json:
        env.out(new.id)
        resumed = " resuming from its output folders" if resume else ""
        env.err(f"{new.id} submitted: a rerun of {new.spec['rerun_of']}{resumed}")
        if not follow:
            env.err(next_steps(new.id))
    if follow:
        _follow(env, new.id, json)
    elif json:
        _dump(env, control.status(env, new.id))


@task(positional=["job"], help={"job": JOB_HELP, "run": "only this run (jobN.K or K)",
                                "browse": "open the page(s) in the web browser"})
def portal(c, env, job=None, run=None, browse=False):
    """Print the Azure ML studio URL of a Singularity job's runs; --browse opens them."""
    from singkit.backends.singularity.backend import portal_urls
    from singkit.exceptions import UsageError
    from singkit.store import Store

    stored = Store.of(env).job(job_arg(job))
    urls = portal_urls(stored)
    if run:
        wanted = stored.run(job_arg(run)).id
        if wanted not in urls:
            raise UsageError(f"{wanted} has no Azure ML job (its submit did not reach Azure ML)")
        urls = {wanted: urls[wanted]}
    for run_id, url in urls.items():
        env.out(f"{run_id}  {url}" if len(urls) > 1 else url)
    if browse:
        import webbrowser

        for url in urls.values():
            if not webbrowser.open(url):
                env.err(f"no web browser to open here; open {url} yourself")
