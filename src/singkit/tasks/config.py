"""`config` tasks: validate, show, schema, import-xt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from singkit.tasks._edge import task

SECTION_OF = {"target": "compute-targets", "docker": "dockers", "service": "external-services", "setup": "setups"}


@task(help={"secrets": "also check that every `$env:` variable the config names is set",
            "strict": "treat warnings (e.g. an instance type singkit does not know) as errors",
            "json": "print the problems as JSON on stdout (the exit code is the same)"})
def validate(c, env, secrets=False, strict=False, json_=False):
    """Check every record as submit would; one line per problem (file:line:col), exit 2 on errors.

    Warnings alone exit 0 (`--strict`: 2). A command that uses one target is blocked only by
    errors in that target and the records it references. `--json`: {"ok": bool, "problems":
    [{"file", "line", "col", "message", "severity": "error"|"warning", "records": [[section, name]]}],
    "targets": {name: "singularity"|"compute-cluster"} (each Azure ML target's kind of job)}."""
    from singkit.config import config_files, load_config
    from singkit.config.secrets import resolve_secret
    from singkit.configcheck import all_problems, kind_notes, target_kinds
    from singkit.exceptions import ConfigError

    try:
        config = load_config(env)
    except ConfigError as error:  # broken YAML: nothing else can be checked
        if json_:
            _problems_json(env, error.problems, strict=True)
        raise
    problems = all_problems(config)
    if secrets:
        for ref in config.env_refs():
            try:
                resolve_secret(ref, env)
            except ConfigError as error:
                problems.extend(error.problems)
    errors = [p for p in problems if strict or not p.warning]
    kinds = target_kinds(config)  # which Azure ML targets are compute-cluster jobs, which Singularity
    if json_:
        _problems_json(env, problems, strict, kinds)
    for problem in problems:
        if problem not in errors:
            env.err(f"warning: {problem}")
    for note in kind_notes(config, kinds):
        env.err(note)
    if errors:
        raise ConfigError([p.as_error() for p in errors])
    files = ", ".join(str(p) for p, _ in config_files(env)) or "no config files (built-in targets only)"
    warned = f" ({len(problems)} warning(s))" if problems else ""
    env.err(f"config ok{warned}: {files}")


def _problems_json(env, problems, strict: bool, kinds: dict | None = None) -> None:
    from singkit.exceptions import shown_path

    rows = [{"file": shown_path(p.file), "line": p.line, "col": p.col, "message": p.message,
             "severity": "warning" if p.warning and not strict else "error",
             "records": [list(r) for r in p.records]} for p in problems]
    out = {"ok": not any(r["severity"] == "error" for r in rows), "problems": rows}
    if kinds is not None:  # each Azure ML target: "singularity" or "compute-cluster"
        out["targets"] = kinds
    env.out(json.dumps(out, indent=2))


@task(help={
    "target": "show one compute target",
    "docker": "show one docker record",
    "service": "show one external-services record",
    "setup": "show one setup",
    "json": "print JSON only",
})
def show(c, env, target=None, docker=None, service=None, setup=None, json_=False):
    """Show the merged config (or one record) and the file each value came from; secrets masked."""
    from singkit.config import load_config

    config = load_config(env)
    chosen = {k: v for k, v in {"target": target, "docker": docker, "service": service, "setup": setup}.items() if v}
    if chosen:
        kind, name = next(iter(chosen.items()))
        record = getattr(config, kind)(name)  # unknown names fail here, with the closest ones
        views = {(SECTION_OF[kind], name): config.provenance(SECTION_OF[kind], name, record)}
    else:
        views = {("general", None): config.provenance("general", None)}
        for section, records in (("external-services", config.services), ("dockers", config.dockers),
                                 ("compute-targets", config.targets), ("setups", config.setups)):
            for name in records:
                views[(section, name)] = config.provenance(section, name)
    # a map inside a record (env, build-args) merges key by key across layers: each key shows its own file:line
    inner = {(where, k): config.map_provenance(*where, k, v) for where, keys in views.items() if where[1] is not None
             for k, (v, _src) in keys.items() if isinstance(v, dict)}
    titles = {where: ".".join(p for p in where if p is not None) for where in views}
    if json_:
        payload = {titles[where]: {k: _shown(v, src, inner.get((where, k))) for k, (v, src) in keys.items()}
                   for where, keys in views.items()}
        env.out(json.dumps(payload, indent=2, default=str))
        return
    from tabulate import tabulate

    from singkit import fmt

    for where, keys in views.items():
        env.out(f"{titles[where]}:")
        rows = []
        for k, (v, src) in keys.items():  # whole values, YAML's true/null
            if inner.get((where, k)):
                rows += [(f"{k}.{i}", fmt.scalar(iv), isrc) for i, (iv, isrc) in inner[(where, k)].items()]
            else:
                rows.append((k, fmt.scalar(v), src))
        env.out(tabulate(rows, headers=["key", "value", "from"], tablefmt="plain", disable_numparse=True))
        env.out("")


def _shown(value: Any, source: str, keys: dict[str, tuple[Any, str]] | None) -> dict[str, Any]:
    """One key in config.show's JSON: value and file:line; a map's keys each with their own."""
    out = {"value": value, "from": source}
    if keys is not None:
        out["keys"] = {k: {"value": v, "from": src} for k, (v, src) in keys.items()}
    return out


@task(help={"out": "write the schema to this file instead of stdout"})
def schema(c, env, out=None):
    """Print the JSON Schema of the config (editors validate configs/singkit.yaml with it)."""
    from singkit.config.schema import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if out:
        _write_out(env, Path(out), text)
    else:
        env.stdout.write(text)


@task(name="import-xt", positional=["path"], several="path", help={
    "path": "the XT config file; several (FACTORY.yaml MINE.yaml): merged in order, as XT merges them",
    "out": "write the singkit config here (default: print it)",
    "force": "overwrite --out if it exists",
    "xt-nodes": "what XT's `nodes: N` becomes: `job` (default: one N-node distributed job) or `runs` "
                "(nodes: 1, and the `job.submit --runs=N` command that runs N independent runs, as XT did)",
})
def import_xt(c, env, path, out=None, force=False, xt_nodes="job"):
    """Convert XT configs (2022 or 2024 spellings) into one singkit config: `$vault` becomes `$env:`,
    every key not carried is listed with why (here and atop the file). Several files merge as in XT."""
    from singkit.config.xt import import_xt as convert
    from singkit.exceptions import UsageError

    if out:
        _check_out(env, Path(out), "--out", say=False)  # refused before the work, said when written
    if out and Path(out).exists() and not force:
        raise UsageError(f"{out} exists; pass --force to replace it, or --out=another.yaml and add it to SINGKIT_CONFIG")
    # several files arrive comma-joined (tasks/_edge.py `several`)
    result = convert([Path(p.strip()) for p in str(path).split(",") if p.strip()], nodes=xt_nodes)
    if out:
        _write_out(env, Path(out), result.text)
    else:
        env.stdout.write(result.text)
    for line in [*result.notes, *(f"not carried: {s}" for s in result.skipped)]:
        env.err(f"note: {line}")
    for command in result.commands:
        env.err(f"submit as XT did: {command}")
    if not any(result.config.values()):
        env.err("warning: nothing singkit carries was found (no services, dockers, targets, setups or general keys): "
                "the config written is empty")
    if result.variables:
        env.err("export these before use: " + " ".join(f"{v}=…" for v in result.variables))


@task(help={
    "target": "a Singularity target: its size, and what its virtual cluster offers (asked online, cached a day)",
    "refresh": "ask the virtual cluster again instead of using the day-old answer",
    "json": "print JSON only",
})
def skus(c, env, target=None, refresh=False, json_=False):
    """Singularity instance types: singkit's catalog, or (--target) the virtual cluster's own list with quota per SLA tier."""
    from singkit.config import load_config
    from singkit.singularity import catalog

    cfg = load_config(env)
    if target:
        return _cluster_skus(env, cfg, target, refresh, json_)
    rows = [(name, catalog.gpus(r), r.get("gpu-type", ""), catalog.vendor(r), r.get("family", ""), r.get("evidence", "config"))
            for name, r in cfg.skus.items()]
    if json_:
        env.out(json.dumps([dict(zip(("name", "gpus", "gpu-type", "vendor", "family", "evidence"), row)) for row in rows], indent=2))
        return
    from tabulate import tabulate

    env.out(tabulate(rows, headers=["instance type", "GPUs", "GPU", "vendor", "family", "seen in"], tablefmt="plain"))
    env.err(f"{len(rows)} instance types (singkit's catalog + your `skus:`); `--target=T` asks T's virtual cluster for its own list")


def _cluster_skus(env, cfg, name, refresh, json_):
    from singkit.backends.base import backend_for, service_record
    from singkit.configcheck import require
    from singkit.exceptions import UsageError
    from singkit.singularity import target as targets

    record = cfg.target(name)
    if not targets.is_singularity(cfg, record):
        raise UsageError(f"target `{name}` is not a Singularity target; config.skus --target asks a virtual cluster")
    require(cfg, env.err, "compute-targets", name)
    resolved = targets.resolve(cfg, record)
    if resolved.is_cluster:
        raise UsageError(f"target `{name}` runs on Azure ML compute cluster `{resolved.compute}`, whose VM size is its own "
                         f"(`az ml compute show --name {resolved.compute}`); config.skus --target asks a Singularity virtual cluster")
    backend = backend_for(record, env, cfg, service=service_record(record, cfg))
    with backend.session() as ml:
        found = backend.cluster_offers(ml, resolved.compute, refresh=refresh)
    seen = {t for o in found.offers for t in o.quota}
    tiers = [t for t in ("Premium", "Standard", "Basic") if t in seen] + sorted(seen - {"Premium", "Standard", "Basic"})
    cluster = resolved.compute.rsplit("/", 1)[-1]
    if json_:
        env.out(json.dumps({"cluster": resolved.compute, "locations": found.locations, "fetched": found.fetched,
                            "target-size": resolved.vm_size, "offered": found.find(resolved.vm_size) is not None,
                            "offers": [vars(o) for o in found.offers]}, indent=2))
        return
    from tabulate import tabulate

    rows = [("*" if o.name.lower() == resolved.vm_size.lower() else "", o.name, o.gpus, o.series,
             *(o.quota.get(t, 0) for t in tiers)) for o in found.offers]
    env.out(tabulate(rows, headers=["", "instance type", "GPUs", "series", *(f"{t} quota" for t in tiers)], tablefmt="plain"))
    import time

    age = time.time() - found.fetched
    said = f"cached {age / 60:.0f} min ago; --refresh asks again" if found.from_cache else "asked just now"
    verdict = "offers" if found.find(resolved.vm_size) else "does NOT offer"
    env.err(f"virtual cluster {cluster} ({', '.join(found.locations)}; {said}) {verdict} `{resolved.vm_size}` (target {name})")


@task(name="import-amlt", positional=["path"], help={
    "path": "the Amulet (amlt) config file",
    "out": "write the singkit config here, and the jobs file beside the project root (default: print both)",
    "jobs-file": "where to write the jobs file (default: <project>/<amlt file name>.jobs.yaml)",
    "force": "overwrite --out and the jobs file if they exist",
})
def import_amlt(c, env, path, out=None, jobs_file=None, force=False):
    """Convert an Amulet config into a singkit config and a jobs file (`job.submit --from`).

    Everything not carried is said as `note:` lines (and in a comment block of the files);
    what must be filled in before a real submit as `fill in: FILE:LINE: what`."""
    from singkit.config.amlt_import import import_amlt as convert
    from singkit.exceptions import UsageError
    from singkit.fsutil import atomic_write

    source = Path(path)
    jobs_path = Path(jobs_file) if jobs_file else env.project_root / f"{source.stem}.jobs.yaml"
    if out:
        for target, flag in ((Path(out), "--out"), (jobs_path, "--jobs-file")):
            _check_out(env, target, flag)
            if target.exists() and not force:
                raise UsageError(f"{target} exists; pass --force to replace it (or --out / --jobs-file elsewhere)")
    shown = _relative(jobs_path, env.project_root)
    result = convert(source, env.project_root, jobs_file=shown)
    if out:
        atomic_write(Path(out), result.config_text)
        atomic_write(jobs_path, result.jobs_text)
        env.err(f"wrote {out} and {jobs_path}")
    else:
        env.stdout.write(result.config_text + "---\n" + result.jobs_text)
    for line in result.notes:
        env.err(f"note: {line}")
    for line in result.warnings:
        env.err(f"warning: {line}")
    for item in result.fill_in:
        env.err(f"fill in: {_where(Path(out), item) if out else ''}{item}")
    if result.variables:
        env.err("export these before submitting: " + " ".join(f"{v}=…" for v in result.variables))
    if out:
        env.err(f"next: invoke config.validate, then invoke job.submit --from {shown} --job NAME --dry-run")


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _where(file: Path, item: str) -> str:
    """`FILE:LINE: ` of the record (or key) a fill-in item names as `section.record.key: ...`."""
    from singkit.config.layers import locate, read_layer
    from singkit.exceptions import shown_path

    parts = item.split(": ", 1)[0].split(".")
    path = [parts[0], ".".join(parts[1:-1]), parts[-1]] if len(parts) >= 3 else parts
    line, _col = locate(read_layer(file).doc, path)
    return f"{shown_path(file)}:{line}: "


def _check_out(env, path: Path, flag: str = "--out", say: bool = True) -> None:
    """Refuse an --out that is a folder or device, or lies under a file; say which folder will be
    created for it (singkit.outpaths)."""
    from singkit.outpaths import output_file

    created = output_file(path, flag)
    if created is not None and say:
        env.err(f"{flag} {path}: the folder {created} does not exist; creating it")


def _write_out(env, path: Path, text: str, flag: str = "--out") -> None:
    """Write `text` to an --out file atomically (its folder created, and said), then say so."""
    from singkit.fsutil import atomic_write

    _check_out(env, path, flag)
    atomic_write(path, text)
    env.err(f"wrote {path}")
