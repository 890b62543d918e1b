"""pytest fixtures that run the offline vendor sandbox (registered as the ``pytest11`` plugin).

Installing ``airflow-provider-bgreplace`` makes these fixtures available in any test suite:

``bgreplace_sandbox``
    Function-scoped. The shared sandbox server, reset before each test: jobs, counters, scripted
    faults and runtime settings go back to the session's defaults.
``bgreplace_sandbox_server``
    Session-scoped :class:`~airflow_bgreplace.sandbox.server.SandboxServer` on ``127.0.0.1`` with
    a free port, started once per test session.
``bgreplace_sandbox_settings``
    Session-scoped :class:`~airflow_bgreplace.sandbox.config.SandboxSettings` used to start the
    server. Defaults are fast for tests (fixed 0.3 s job latency, webhook retry delays x 0.01,
    seeded faults); override this fixture in your ``conftest.py`` to change them.

Example DAG test::

    def test_my_dag(bgreplace_sandbox, monkeypatch):
        monkeypatch.setenv(*bgreplace_sandbox.connection_env("fal", "fal_default").popitem())
        bgreplace_sandbox.inject_fault("fal", "5xx", route="status", count=2)
        ...  # run the DAG or the operator
        stats = bgreplace_sandbox.stats()
        assert stats["vendors"]["fal"]["duplicate_submits"] == 0

Within a test, ``bgreplace_sandbox.configure(concurrency={"fal": 1})`` changes settings at runtime,
``vendor_url("fal")`` gives the base URL to use instead of ``https://queue.fal.run`` and
``connection_uri(vendor)`` the JSON of an ``AIRFLOW_CONN_*`` variable for the matching hook.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_bgreplace.sandbox.config import SandboxSettings
    from airflow_bgreplace.sandbox.server import SandboxServer

#: Test defaults: jobs finish in ~0.3 s and webhook retries take hundredths of their real delays.
TEST_DEFAULTS: dict[str, object] = {
    "latency_s": 0.3,
    "latency_distribution": "fixed",
    "webhook_time_scale": 0.01,
    "seed": 1234,
}


@pytest.fixture(scope="session")
def bgreplace_sandbox_settings() -> SandboxSettings:
    # Imported here so that merely loading the plugin costs nothing in unrelated test runs.
    from airflow_bgreplace.sandbox.config import SandboxSettings

    return SandboxSettings.model_validate(TEST_DEFAULTS)


@pytest.fixture(scope="session")
def bgreplace_sandbox_server(bgreplace_sandbox_settings: SandboxSettings) -> Iterator[SandboxServer]:
    from airflow_bgreplace.sandbox.server import SandboxServer

    with SandboxServer(bgreplace_sandbox_settings) as server:
        yield server


@pytest.fixture
def bgreplace_sandbox(bgreplace_sandbox_server: SandboxServer) -> SandboxServer:
    bgreplace_sandbox_server.reset(restore_settings=True)
    return bgreplace_sandbox_server
