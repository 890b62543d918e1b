"""Hook for the embedded ``local`` engine: no key, no network, no connection needed."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import httpx

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
    reads image URLs itself, so that connection's URL policy extras (``allow_http``,
    ``allow_private_addresses``, ``fetch_timeout_s``) and retry extras apply to those reads
    (default: https and public addresses only).
    """

    vendor_api = LocalApi
    conn_type = "bgreplace_local"
    default_conn_name = "bgreplace_local_default"
    hook_name = "Background replace: local engine"

    @functools.cached_property
    def client(self) -> VendorClient:
        extra = self._optional_extra()
        return VendorClient(
            LocalApi(work_dir=local_work_dir()),
            api_key="",
            retry=self.retry_from_extra(extra),
            url_policy=UrlPolicy.from_extra(extra),
        )

    async def aget_client(self, *, http_client: httpx.AsyncClient | None = None) -> AsyncVendorClient:
        return AsyncVendorClient(LocalApi(work_dir=local_work_dir()), api_key="", http_client=http_client)

    def _optional_extra(self) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            return dict(self.get_connection(self.conn_id).extra_dejson)
        except AirflowNotFoundException:
            return {}

    def webhook_url(self, public_base_url: str | None) -> str | None:
        return None  # local jobs end inside submit: nothing to call back
