"""Hook for Runflow's model API (connection type ``bgreplace_runflow``)."""

from __future__ import annotations

from airflow_bgreplace.hooks.base import BgReplaceHook
from airflow_bgreplace.vendors.runflow import RunflowApi


class RunflowHook(BgReplaceHook):
    """Runflow ``runflow/background-replace`` and ``runflow/background-color``.

    Runflow needs public https URLs: local images (and the replace zip the client builds) are
    published through the staging extras.
    """

    vendor_api = RunflowApi
    conn_type = "bgreplace_runflow"
    default_conn_name = "bgreplace_runflow_default"
    hook_name = "Background replace: Runflow"
