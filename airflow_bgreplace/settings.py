"""The provider's Airflow settings, section ``[bgreplace]`` (env ``AIRFLOW__BGREPLACE__<KEY>``).

======================  ==================================================================
``output_base``         where results go when an operator has no ``output_path``
                        (default ``file://$AIRFLOW_HOME/bgreplace/outputs``)
``webhook_base_url``    public base URL at which the webhook receiver is reachable by the
                        vendors, e.g. ``https://airflow.example.com`` (the api-server plugin
                        serves ``/bgreplace/webhooks/<vendor>``). Unset: operators poll.
``database_url``        SQLAlchemy URL of the provider's database: webhook store and catalog
                        state (default: SQLite file ``$AIRFLOW_HOME/bgreplace.db``;
                        ``postgresql://...`` works too)
``webhook_store_url``   the webhook store only, when it must live elsewhere (default:
                        ``database_url``)
======================  ==================================================================
"""

from __future__ import annotations

import os


def _get(key: str, fallback: str | None = None) -> str | None:
    from airflow.sdk.configuration import conf

    value = conf.get("bgreplace", key, fallback=fallback)
    return str(value) if value not in (None, "") else fallback


def airflow_home() -> str:
    from airflow.sdk.configuration import conf

    return str(conf.get("core", "airflow_home", fallback=None) or os.environ.get("AIRFLOW_HOME") or ".")


def output_base() -> str:
    return _get("output_base") or f"file://{airflow_home()}/bgreplace/outputs"


def webhook_base_url() -> str | None:
    return _get("webhook_base_url")


def database_url() -> str:
    """The provider's database (webhook store and catalog state)."""
    return _get("database_url") or f"sqlite:///{airflow_home()}/bgreplace.db"


def webhook_store_url() -> str:
    return _get("webhook_store_url") or database_url()
