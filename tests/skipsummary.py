"""One terminal-summary line for every test skipped because a local service is missing.

Without it, `-ra` lists each skip with its reason: on a machine without the services that is
the same 200-character hint dozens of times. With it, those skips leave the short summary and
one line says how many were skipped, for want of which services, and the one command that
installs and starts them. The final count line (`N passed, M skipped`) still counts them; under
SINGKIT_REQUIRE_SERVICES=1 they are failures (services.require_service) and this says nothing.

tests/conftest.py imports `pytest_terminal_summary` from here, which registers it.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest

from services import ENABLE_HINT, SERVICES_SCRIPT


def is_service_skip(report: Any) -> bool:
    """Was this report a skip raised by services.require_service?"""
    longrepr = getattr(report, "longrepr", None)
    return isinstance(longrepr, tuple) and len(longrepr) == 3 and ENABLE_HINT in str(longrepr[2])


def service_name(report: Any) -> str:
    """`docker engine` from "Skipped: docker engine unavailable: …"."""
    message = str(report.longrepr[2]).removeprefix("Skipped: ")
    return message.split(" unavailable:", 1)[0]


def enable_command() -> str:
    """The one command that installs and starts the services, for whoever runs the tests."""
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    return f"{'' if root else 'sudo '}bash {SERVICES_SCRIPT}"


def summary_line(reports: list[Any]) -> str:
    """`48 tests skipped for want of docker engine (30), azurite (18): run `sudo bash …`, then make test again`."""
    counts = Counter(service_name(r) for r in reports)
    wanted = ", ".join(f"{name} ({n})" for name, n in counts.most_common())
    plural = "test" if len(reports) == 1 else "tests"
    return (f"{len(reports)} {plural} skipped for want of {wanted}: `{enable_command()}` installs and starts "
            f"them, then `make test` again")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: Any) -> Any:
    """Outermost around the terminal reporter's own summary: service skips are taken out of the
    `-ra` listing while it prints, put back for the final counts, and said once after it."""
    stats = terminalreporter.stats
    skipped = stats.get("skipped", [])
    service = [r for r in skipped if is_service_skip(r)]
    if service:
        stats["skipped"] = [r for r in skipped if not is_service_skip(r)]
    try:
        return (yield)
    finally:
        if service:
            stats["skipped"] = skipped
            terminalreporter.write_line(summary_line(service), yellow=True, bold=True)
