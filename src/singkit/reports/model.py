"""Jobs and runs as reports see them: job.yaml joined with each run's folded run.log."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from singkit.environment import Environment
from singkit.reports.cache import Listed, SummaryCache
from singkit.reports.source import RunRef, StoreLayout, is_run_of, natural_key
from singkit.store.fold import RunState
from singkit.store.run import log_missing
from singkit.store.status import DRY_RUN, LOG_MISSING, RunStatus


@dataclass
class Run:
    job: str
    run: str
    ref: RunRef
    spec: dict[str, Any]           # the job's job.yaml (shared by its runs)
    hparams: dict[str, Any]
    state: RunState | None         # folded run.log (singkit.store.fold); None before the run wrote anything,
    # and in a listing (StoreReader.load(full=False)), which reads only `listed`
    status: str = "queued"
    started: float | None = None
    ended: float | None = None
    duration: float | None = None
    listed: Listed | None = None   # its listing columns (singkit.store.foldcache.listing); None: no run.log yet

    @property
    def metrics(self) -> dict[str, list]:
        """metric -> its stats (the fold's; in a listing, their first four: LAST, MIN, MAX hold)."""
        if self.state is not None:
            return self.state.metrics
        return self.listed.metrics if self.listed is not None else {}

    @property
    def cost(self) -> float | None:
        """price-per-hour × hours × nodes, when the job records a price (Singularity SKUs)."""
        return cost_of(price_and_nodes(self.spec), self.duration)


def price_and_nodes(spec: dict[str, Any]) -> tuple[float, int] | None:
    """A job's (price per hour, nodes) when its job.yaml records a price (Singularity SKUs)."""
    price = spec.get("price-per-hour")
    if price is None and isinstance(spec.get("target"), dict):
        price = spec["target"].get("price-per-hour")
    if isinstance(price, bool) or not isinstance(price, (int, float)):
        return None
    target = spec.get("target")
    nodes = spec.get("nodes")
    if nodes is None and isinstance(target, dict):
        nodes = target.get("nodes")
    return price, nodes if isinstance(nodes, int) and not isinstance(nodes, bool) and nodes > 0 else 1


def cost_of(price: tuple[float, int] | None, duration: float | None) -> float | None:
    """price-per-hour × hours × nodes (`price`: price_and_nodes of the run's job)."""
    if price is None or duration is None:
        return None
    return price[0] * duration / 3600.0 * price[1]


@dataclass
class Job:
    job: str
    spec: dict[str, Any]
    runs: list[Run] = field(default_factory=list)

    @property
    def target(self) -> str | None:
        return target_name(self.spec)


def target_name(spec: dict[str, Any]) -> str | None:
    target = spec.get("target")
    if isinstance(target, dict):
        return target.get("name") or target.get("compute")
    return None if target is None else str(target)


def service_name(spec: dict[str, Any]) -> str | None:
    """job.yaml keeps the resolved service record (a dict with its name) or just a name."""
    service = spec.get("service")
    if isinstance(service, dict):
        return service.get("name") or service.get("type")
    return None if service is None else str(service)


def sku(spec: dict[str, Any]) -> str | None:
    target = spec.get("target") if isinstance(spec.get("target"), dict) else {}
    value = spec.get("vm-size") or spec.get("sku") or target.get("vm-size")
    return None if value is None else str(value)


def _spec_runs(job: str, spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """run id -> hparams from job.yaml's `runs:` list (ids may be written as jobN.K or K)."""
    found: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(spec.get("runs") or [], start=1):
        if not isinstance(item, dict):
            continue
        run = item.get("run", i)
        run = f"{job}.{run}" if isinstance(run, int) or str(run).isdigit() else str(run)
        if not is_run_of(job, run):  # `../x` or `/abs` in job.yaml: never made into a path
            continue
        hparams = item.get("hparams")
        found[run] = dict(hparams) if isinstance(hparams, dict) else {}
    return found


class StoreReader:
    """Load jobs and runs from a store through the summary cache."""

    def __init__(self, env: Environment):
        self.env = env
        self.layout = StoreLayout(env.home)
        self.cache = SummaryCache(self.layout)
        self.warned: set[str] = set()

    def close(self) -> None:
        self.cache.close()

    def __enter__(self) -> "StoreReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def job_ids(self, job: str | None = None) -> list[str]:
        return [self.layout.check_job(job)] if job else self.layout.job_names()

    def load(self, job: str | None = None, now: float | None = None, full: bool = True) -> list[Job]:
        """Every job (or one), each with its runs in natural order, states folded (`full`: each
        Run's whole fold in `state`; else only its listing columns, in `listed`)."""
        return self._load_names(self.job_ids(job), now, whole_store=job is None, full=full)

    def load_newest(self, runs: int, job: str | None = None, now: float | None = None, full: bool = True) -> list[Job]:
        """The newest jobs (or `job`) holding the last `runs` runs in natural order, and only
        those runs: jobs are read newest first until enough runs are found, so the cost follows
        what is shown, not the store's history."""
        names: list[str] = []
        if job:
            names = self.job_ids(job)
        else:
            found, batch = 0, 1
            newest = self.layout.newest_job_names()
            while found < runs:
                more = [name for _, name in zip(range(batch), newest)]
                if not more:
                    break
                specs = self.cache.job_specs(more)  # one query per batch, not per job
                for name in more:
                    names.append(name)
                    found += len(self._run_ids(name, specs.get(name, {}))[0])
                # the next batch: as many jobs as the runs still missing need, at the runs per
                # job seen so far (so no job beyond the shown ones is read, unless sizes vary)
                batch = -(-(runs - found) * len(names) // found) if found else 2 * batch
            names.reverse()
        return [j for j in self._load_names(names, now, whole_store=False, last=runs, full=full) if j.runs]

    def _run_ids(self, name: str, spec: dict[str, Any]) -> tuple[list[str], dict[str, dict[str, Any]]]:
        """(run ids in natural order, run id -> hparams from job.yaml) of one job: those job.yaml
        lists, merged with run folders it does not list."""
        from_spec = _spec_runs(name, spec)
        run_ids = list(from_spec)
        extra = self.layout.run_names(name, from_spec)
        if extra:  # run folders job.yaml does not list: merge them in natural order
            run_ids = sorted(run_ids + extra, key=natural_key)
        return run_ids, from_spec

    def _load_names(self, names: list[str], now: float | None, whole_store: bool, last: int | None = None,
                    full: bool = True) -> list[Job]:
        """`names`' jobs with their runs (`last`: only the last N runs of them all are read;
        `full`: see load)."""
        now = time.time() if now is None else now
        specs = self.cache.job_specs(names)
        for name, why in self.cache.damaged.items():
            if name not in self.warned:  # once per command, however often it loads the store
                self.env.err(f"warning: {name} shown from its run folders only: {why}")
                self.warned.add(name)
        self.cache.damaged.clear()
        jobs: list[Job] = []
        refs: list[RunRef] = []
        pending: list[tuple[Job, str, dict[str, Any]]] = []
        for name in names:
            spec = specs.get(name, {})
            item = Job(name, spec)
            jobs.append(item)
            run_ids, from_spec = self._run_ids(name, spec)
            for run in run_ids:
                refs.append(self.layout.run_ref(name, run))
                pending.append((item, run, from_spec.get(run, {})))
        if last is not None:
            start = max(0, len(refs) - last)
            refs, pending = refs[start:], pending[start:]
        every_job = names if whole_store else None
        if full:
            states = self.cache.run_states(refs, every_job)
            listed = [None if state is None else Listed.of(ref.run, state) for ref, state in zip(refs, states)]
        else:
            listed = self.cache.run_listings(refs, every_job)
            states = [None] * len(refs)
        queued = RunStatus.QUEUED.value
        for (item, run, hparams), ref, state, row in zip(pending, refs, states, listed):
            if row is None:  # no run.log: not started yet, or deleted from its folder (as job.status says)
                started = ended = duration = None
                status: str = LOG_MISSING if log_missing(ref.log) else queued
            else:
                if row.hparams:
                    hparams = {**hparams, **row.hparams}  # what the run logged wins
                started, ended, duration = row.times(now)
                status = row.status
            if status == queued and item.spec.get("dry_run"):
                status = DRY_RUN  # as job.status says: nothing was started, nothing will be
            item.runs.append(Run(item.job, run, ref, item.spec, hparams, state, status, started, ended, duration, row))
        return jobs

    def runs(self, job: str | None = None) -> list[Run]:
        return [r for j in self.load(job) for r in j.runs]
