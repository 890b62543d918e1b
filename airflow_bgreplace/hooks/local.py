"""Hook for the embedded ``local`` engine: no key, no network, no connection needed."""

from __future__ import annotations

import functools
from pathlib import Path

from airflow_bgreplace import settings
from airflow_bgreplace.hooks.base import BgReplaceHook
from airflow_bgreplace.vendors.base import AsyncVendorClient, VendorClient
from airflow_bgreplace.vendors.local import LocalApi
from airflow_bgreplace.vendors.url_policy import UrlPolicy


def local_work_dir() -> Path:
    """Where local jobs keep their status and result: ``$AIRFLOW_HOME/bgreplace/local_jobs``."""
    return Path(settings.airflow_home()) / "bgreplace" / "local_jobs"


class LocalHook(BgReplaceHook):
    """The local engine as a vendor: ``submit`` runs the engine in this process and returns finished.

    A connection ``bgreplace_local_default`` is optional; nothing in it is required. The engine
    reads image URLs itself, so that connection's ``allow_http`` and ``allow_private_addresses``
    extras apply to them (default: https and public addresses only).
    """

    vendor_api = LocalApi
    conn_type = "bgreplace_local"
    default_conn_name = "bgreplace_local_default"
    hook_name = "Background replace: local engine"

    @functools.cached_property
    def client(self) -> VendorClient:
        return VendorClient(LocalApi(work_dir=local_work_dir()), api_key="", url_policy=self._url_policy())

    async def aget_client(self) -> AsyncVendorClient:
        return AsyncVendorClient(LocalApi(work_dir=local_work_dir()), api_key="")

    def _url_policy(self) -> UrlPolicy:
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            extra = self.get_connection(self.conn_id).extra_dejson
        except AirflowNotFoundException:
            return UrlPolicy()
        return UrlPolicy.from_extra(extra)

    def webhook_url(self, public_base_url: str | None) -> str | None:
        return None  # local jobs end inside submit: nothing to call back
