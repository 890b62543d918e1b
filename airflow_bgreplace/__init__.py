"""Apache Airflow provider for AI product-photo background APIs."""

from __future__ import annotations

__version__ = "0.1.0"


def get_provider_info() -> dict[str, object]:
    """Provider metadata read by Airflow's providers manager (entry point ``apache_airflow_provider``)."""
    from airflow_bgreplace.provider_info import provider_info

    return provider_info()
