"""Request/reply types and the route table shared by the stand-in's route modules."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .server import StandIn

# Path prefixes; (?i) because ARM paths are case-insensitive (the SDK spells
# "resourceGroups" but users write "resourcegroups").
RG = r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.MachineLearningServices"
WS = RG + r"/workspaces/(?P<ws>[^/]+)"
HIST = r"/history/v1\.0" + WS


@dataclass
class Req:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class Reply:
    status: int
    body: Any = None  # dict/list -> JSON, bytes/str -> as is, None -> empty
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[["StandIn", Req, "re.Match[str]"], Reply]
ROUTES: list[tuple[str, re.Pattern, str, Handler]] = []


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        ROUTES.append((method, re.compile("(?i)^" + pattern + "/?$"), fn.__name__, fn))
        return fn

    return register


def find(method: str, path: str) -> tuple[str, Handler, "re.Match[str]"] | None:
    for m, rx, name, fn in ROUTES:
        if m == method:
            match = rx.match(path)
            if match:
                return name, fn, match
    return None


def arm_error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


def not_found(what: str) -> Reply:
    return arm_error(404, "ResourceNotFound", f"{what} was not found (azureml-standin).")
