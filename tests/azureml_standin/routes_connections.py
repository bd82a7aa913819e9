"""Workspace connections (ARM): list, get, create — what `ml_client.connections` calls.

azure-ai-ml 1.35.2 builds `ml_client.connections` on its arm_ml_service client pinned to
api-version 2024-04-01-preview (azure/ai/ml/_ml_client.py, ServiceClient042024PreviewArm), so
the routes follow that version of the REST API (Azure/azure-rest-api-specs,
specification/machinelearningservices/resource-manager/Microsoft.MachineLearningServices/preview/
2024-04-01-preview/workspaceRP.json and examples/WorkspaceConnection/{create,get}.json):
  GET {WS}/connections[?category=&target=&includeAll=]  -> {"value": [...]}
  GET {WS}/connections/<name>                           -> the connection, or 404
  PUT {WS}/connections/<name>                           -> 200 with the connection
The service refuses a name outside `^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$` (parameter ConnectionName)
and a body without `properties.authType` (WorkspaceConnectionPropertiesV2: required, the
discriminator), so does the stand-in. Reads never carry the credentials (the examples' answers
hold none; the SDK fetches secrets with a separate listsecrets call): the stand-in keeps them in
`si.connections[name]["properties"]["credentials"]` for tests to inspect, and answers without.
"""

from __future__ import annotations

import copy
import re
import time
from typing import TYPE_CHECKING

from .routes_arm import _check_ws, system_data
from .routing import WS, Reply, Req, arm_error, not_found, route

if TYPE_CHECKING:
    from .server import StandIn

NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$")
# ConnectionAuthType in workspaceRP.json 2024-04-01-preview
AUTH_TYPES = ("PAT", "ManagedIdentity", "UsernamePassword", "None", "SAS", "AccountKey", "ServicePrincipal",
              "AccessKey", "ApiKey", "CustomKeys", "OAuth2", "AAD")


def _answer(si: "StandIn", name: str) -> dict:
    """A stored connection as GET answers it: without its secrets."""
    body = copy.deepcopy(si.connections[name])
    body["properties"].pop("credentials", None)
    return body


@route("GET", WS + r"/connections")
def connections_list(si: "StandIn", req: Req, m) -> Reply:
    if (bad := _check_ws(si, m)) is not None:
        return bad
    category, target = req.query.get("category"), req.query.get("target")
    with si.state.lock:
        items = [_answer(si, n) for n, c in si.connections.items()
                 if (not category or c["properties"].get("category", "").lower() == category.lower())
                 and (not target or c["properties"].get("target") == target)]
    return Reply(200, {"value": items})


@route("GET", WS + r"/connections/(?P<name>[^/]+)")
def connection_get(si: "StandIn", req: Req, m) -> Reply:
    if (bad := _check_ws(si, m)) is not None:
        return bad
    with si.state.lock:
        if m["name"] not in si.connections:
            return not_found(f"Connection {m['name']}")
        return Reply(200, _answer(si, m["name"]))


@route("PUT", WS + r"/connections/(?P<name>[^/]+)")
def connection_put(si: "StandIn", req: Req, m) -> Reply:
    if (bad := _check_ws(si, m)) is not None:
        return bad
    name, body = m["name"], req.body if isinstance(req.body, dict) else {}
    if not NAME.match(name):
        return arm_error(400, "UserError", f"The connection name '{name}' must match ^[a-zA-Z0-9][a-zA-Z0-9_-]{{2,32}}$ "
                                           "(azureml-standin, after workspaceRP.json's ConnectionName).")
    props = body.get("properties")
    if not isinstance(props, dict) or props.get("authType") not in AUTH_TYPES:
        return arm_error(400, "UserError", "The connection needs properties.authType, one of "
                                           f"{', '.join(AUTH_TYPES)} (azureml-standin, after workspaceRP.json).")
    resource = {"id": f"{si.workspace_id}/connections/{name}", "name": name,
                "type": "Microsoft.MachineLearningServices/workspaces/connections",
                "systemData": system_data(time.time()), "properties": copy.deepcopy(props)}
    with si.state.lock:
        si.connections[name] = resource
        return Reply(200, _answer(si, name))
