"""pytest fixture ``azureml_standin``: a started stand-in, this process pointed at it.

Register it in tests/conftest.py (which puts tests/ on sys.path)::

    from azureml_standin.fixtures import azureml_standin  # noqa: F401

It builds on the session fixture ``azurite`` from conftest (skips, or fails under
SINGKIT_REQUIRE_SERVICES=1, when Azurite is missing).
"""

from __future__ import annotations

import logging
from typing import Any, Iterator

import pytest

from .server import StandIn

# azure-ai-ml sets its logger to INFO with its own stderr handler, and logs every
# "experimental class" at WARNING; tests want neither.
QUIET = {"azure.ai.ml": logging.WARNING, "azure.ai.ml._utils._experimental": logging.ERROR,
         "azure.core.pipeline.policies.http_logging_policy": logging.WARNING, "azure.identity": logging.WARNING}


@pytest.fixture
def azureml_standin(azurite: Any, monkeypatch: pytest.MonkeyPatch,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIn]:
    """A fresh stand-in workspace per test.

    Sets ARM_CLOUD_METADATA_URL, REQUESTS_CA_BUNDLE, SSL_CERT_FILE, HTTPS_PROXY and
    NO_PROXY (see ``StandIn.environ()``), so a stock ``MLClient(credential, sub, rg,
    ws)`` built in the test talks to it; ``azureml_standin.ml_client()`` builds one.
    AZUREML_CURRENT_CLOUD (which MLClient() writes) is removed afterwards, and
    jobs.stream's polling sleep is cut to zero.
    """
    standin = StandIn(azurite.account_url, azurite.account_name, azurite.account_key,
                      workdir=tmp_path_factory.mktemp("azureml-standin"))
    standin.start()
    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "unset")
    monkeypatch.delenv("AZUREML_CURRENT_CLOUD")  # recorded by setenv: undo removes what MLClient writes
    for name, value in standin.environ().items():
        monkeypatch.setenv(name, value)
    from azure.ai.ml.operations._run_history_constants import RunHistoryConstants

    monkeypatch.setattr(RunHistoryConstants, "_WAIT_COMPLETION_POLLING_INTERVAL_MIN", 0)
    levels = {name: logging.getLogger(name).level for name in QUIET}
    for name, level in QUIET.items():
        logging.getLogger(name).setLevel(level)
    try:
        yield standin
    finally:
        standin.stop()
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
