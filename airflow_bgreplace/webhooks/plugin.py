"""Mounts the webhook receiver in the Airflow api-server at ``/bgreplace``.

Registered through the ``airflow.plugins`` entry point (pyproject.toml): with Airflow's default
lazy provider discovery, a plugin named only in the provider info is never loaded. Every process
that loads plugins imports this module, so the app is built without any I/O; its store opens at
the first delivery.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_bgreplace.vendors.webhooks import URL_PREFIX
from airflow_bgreplace.webhooks.app import create_app


class BgReplaceWebhooksPlugin(AirflowPlugin):
    """Vendor callbacks at ``POST /bgreplace/webhooks/{vendor}`` on the api-server (no Airflow auth:
    every delivery is checked against the vendor's signature or the connection's token)."""

    name = "bgreplace_webhooks"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "bgreplace webhooks"}]
