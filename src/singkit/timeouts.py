"""How long singkit waits for the services it talks to, in one place (issue 15, "Services that hang").

Every call to Azure ML, a registry, the Docker Engine and Blob storage gets a connect timeout
and a read timeout (seconds one answer — or, in a stream, the next bytes — may take); a call
that times out is transient: retried a bounded number of times, then one line and exit 4.
A whole Singularity submit also has a deadline. The environment sets them (tests set them low):

  SINGKIT_HTTP_TIMEOUT     read timeout, default 60; the connect timeout is min(it, 10)
  SINGKIT_SUBMIT_DEADLINE  seconds a submit may spend talking to Azure ML, default 900

Long streams with legitimately silent stretches (a build's RUN step, a push's upload, a
validator's output) keep the engine's own long read timeout (images.engine.STREAM_TIMEOUT).
Standard library only: the CLI imports it at start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from singkit.exceptions import UsageError

HTTP_TIMEOUT_VAR = "SINGKIT_HTTP_TIMEOUT"
SUBMIT_DEADLINE_VAR = "SINGKIT_SUBMIT_DEADLINE"
DEFAULT_READ = 60.0
CONNECT_CAP = 10.0  # a loopback or cloud endpoint that has not accepted in 10 s is not going to
DEFAULT_SUBMIT_DEADLINE = 900.0


@dataclass(frozen=True)
class Timeouts:
    """connect: seconds to open a connection; read: seconds to wait for each answer."""

    connect: float
    read: float

    @property
    def pair(self) -> tuple[float, float]:
        """(connect, read), as requests and docker-py take a timeout."""
        return self.connect, self.read


def _seconds(environ: Mapping[str, str], name: str, default: float, upper: float) -> float:
    text = (environ.get(name) or "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= upper:  # nan fails this too
        raise UsageError(f"{name}={text} is not a number of seconds between 0 and {upper:g}; e.g. {name}={default:g}")
    return value


def http_timeouts(environ: Mapping[str, str]) -> Timeouts:
    """The connect and read timeouts of every service call (SINGKIT_HTTP_TIMEOUT).

    Raises UsageError (exit 2) for a value that is not a positive number of seconds (≤ 1 h)."""
    read = _seconds(environ, HTTP_TIMEOUT_VAR, DEFAULT_READ, 3600)
    return Timeouts(min(read, CONNECT_CAP), read)


def submit_deadline(environ: Mapping[str, str]) -> float:
    """Seconds a Singularity submit may spend on Azure ML calls and retries (SINGKIT_SUBMIT_DEADLINE)."""
    return _seconds(environ, SUBMIT_DEADLINE_VAR, DEFAULT_SUBMIT_DEADLINE, 24 * 3600)


def blob_client_options(environ: Mapping[str, str], retries: int = 2) -> dict[str, float | int]:
    """Keyword arguments for every azure-storage-blob client singkit builds: its timeouts, and
    `retries` quick retries instead of the SDK's default ExponentialRetry (3 retries after 15,
    18 and 24 s: a storage account that is down took 82-89 s to say so; issue 16).

    Sources: the azure-storage-blob README ("Optional Configuration": `connection_timeout`,
    default 20; `read_timeout`, "between consecutive read operations", default 60; `retry_total`,
    `retry_connect`, `retry_read`, `retry_status`, given when instantiating a client) and Microsoft
    Learn, "Implement a retry policy using the Azure Storage client library for Python"
    (learn.microsoft.com/azure/storage/blobs/storage-retry-policy-python: `initial_backoff`,
    `increment_base`, `random_jitter_range` passed to the client constructor reach its
    ExponentialRetry; azure/storage/blob/_shared/base_client.py builds
    `ExponentialRetry(**kwargs)` and `RequestsTransport(**kwargs)` from them)."""
    timeouts = http_timeouts(environ)
    return {"connection_timeout": timeouts.connect, "read_timeout": timeouts.read,
            "retry_total": retries, "retry_connect": retries, "retry_read": retries, "retry_status": retries,
            "initial_backoff": 1, "increment_base": 2, "random_jitter_range": 1}


def azure_ml_client_options(environ: Mapping[str, str]) -> dict[str, float]:
    """Keyword arguments that give every azure-core request of an MLClient its timeouts.

    azure-core's RequestsTransport takes `connection_timeout` and `read_timeout` (both default
    300 s: an Azure ML PUT held unanswered made a submit wait 307 s; issue 15) — azure-core
    README, "Configurations" (`connection_timeout`, `read_timeout`, keyword arguments of any
    client); MLClient hands its keyword arguments on to the service clients it builds, as it
    does `retry_total`."""
    timeouts = http_timeouts(environ)
    return {"connection_timeout": timeouts.connect, "read_timeout": timeouts.read}
