"""Offline emulator of the four background APIs (Runflow, FASHN, fal.ai, ImagePipeline).

One Starlette app serves every vendor under ``/<vendor>`` with the vendor's own paths, auth,
error shapes, states, result URLs and webhooks, plus a control API under ``/_sandbox``
(stats, faults, reset, runtime settings). It is written from ``shared/vendors/*.md`` and imports
nothing from Airflow and nothing from our vendor clients except ``vendors.assumptions``.

Entry points: :class:`SandboxServer` (a server in a background thread, for tests and scripts),
:func:`create_app` (the ASGI app), the ``bgreplace-sandbox`` console script, and the pytest
plugin :mod:`airflow_bgreplace.sandbox.pytest_plugin`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["SandboxClient", "SandboxServer", "SandboxSettings", "create_app"]

if TYPE_CHECKING:
    from airflow_bgreplace.sandbox.app import create_app
    from airflow_bgreplace.sandbox.config import SandboxSettings
    from airflow_bgreplace.sandbox.server import SandboxClient, SandboxServer

_LAZY = {
    "create_app": "airflow_bgreplace.sandbox.app",
    "SandboxSettings": "airflow_bgreplace.sandbox.config",
    "SandboxClient": "airflow_bgreplace.sandbox.server",
    "SandboxServer": "airflow_bgreplace.sandbox.server",
}


def __getattr__(name: str) -> Any:
    # Lazy so that the pytest plugin (loaded in every test run) stays cheap to import.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
