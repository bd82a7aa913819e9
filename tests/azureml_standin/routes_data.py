"""Dataplane routes (the "api" URL from workspace discovery): run history.

jobs.stream polls run details; jobs.download asks run data for named outputs.
Log files are blobs in Azurite (container "azureml", ExperimentRun/dcid.<job>/),
handed out as SAS URLs on the public blob host, as the service does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .routes_arm import ARTIFACT_CONTAINER
from .routing import HIST, Reply, Req, not_found, route
from .state import JobState, iso

if TYPE_CHECKING:
    from .server import StandIn


def log_blob(name: str, file: str) -> str:
    return f"ExperimentRun/dcid.{name}/{file}"


def _run(si: "StandIn", job: JobState) -> dict:
    props = job.resource["properties"]
    run = {
        "runId": job.name, "runUuid": job.name, "rootRunId": job.name, "name": job.name,
        "status": job.status, "displayName": props.get("displayName"), "description": props.get("description"),
        "experimentId": props.get("experimentName"), "target": props.get("computeId"),
        "createdUtc": iso(job.created), "tags": props.get("tags") or {},
        "properties": {k: str(v) for k, v in (props.get("properties") or {}).items()},
        "runType": "azureml.CommandJob" if props.get("jobType") == "Command" else props.get("jobType"),
        "outputs": {},
    }
    if job.started:
        run["startTimeUtc"] = iso(job.started)
    if job.ended:
        run["endTimeUtc"] = iso(job.ended)
    if job.error:
        run["error"] = {"error": job.error}
    return run


def _details(si: "StandIn", job: JobState) -> dict:
    run = _run(si, job)
    files = {f: si.azurite.public_url(ARTIFACT_CONTAINER, log_blob(job.name, f)) + "?"
             + si.azurite.blob_sas(ARTIFACT_CONTAINER, log_blob(job.name, f)) for f in sorted(job.logs)}
    details = {k: run[k] for k in ("runId", "runUuid", "status", "target", "tags", "properties",
                                   "startTimeUtc", "endTimeUtc", "error") if k in run}
    details.update({"createdTimeUtc": run["createdUtc"], "logFiles": files, "warnings": []})
    return details


@route("GET", HIST + r"/runs/(?P<name>[^/]+)/details")
def run_details(si: "StandIn", req: Req, m) -> Reply:
    job = si.state.observe(m["name"])
    if job is None:
        return not_found(f"Run {m['name']}")
    with si.state.lock:
        return Reply(200, _details(si, job))


@route("GET", HIST + r"/runs/(?P<name>[^/]+)")
def run_get(si: "StandIn", req: Req, m) -> Reply:
    job = si.state.observe(m["name"])
    if job is None:
        return not_found(f"Run {m['name']}")
    with si.state.lock:
        return Reply(200, _run(si, job))


@route("POST", HIST + r"/rundata")
def run_data(si: "StandIn", req: Req, m) -> Reply:
    name = (req.body or {}).get("runId", "")
    with si.state.lock:
        job = si.state.jobs.get(name)
        if job is None:
            return not_found(f"Run {name}")
        return Reply(200, {"runMetadata": _run(si, job)})


@route("GET", HIST + r"/runs/(?P<name>[^/]+)/children")
def run_children(si: "StandIn", req: Req, m) -> Reply:
    return Reply(200, {"value": []})


@route("PATCH", HIST + r"/experiments/(?P<exp>[^/]+)/runs/(?P<name>[^/]+)")
def run_patch(si: "StandIn", req: Req, m) -> Reply:
    """jobs.update / metadata-only create_or_update: tags, display name, description."""
    body = req.body or {}
    with si.state.lock:
        job = si.state.jobs.get(m["name"])
        if job is None:
            return not_found(f"Run {m['name']}")
        props = job.resource["properties"]
        if body.get("tags") is not None:
            props["tags"] = body["tags"]
        for src, dst in (("displayName", "displayName"), ("description", "description")):
            if body.get(src) is not None:
                props[dst] = body[src]
        return Reply(200, _run(si, job))
