"""Hook for fal.ai's queue API (connection type ``bgreplace_fal``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_bgreplace.hooks.base import BgReplaceHook
from airflow_bgreplace.vendors.base import VendorApi
from airflow_bgreplace.vendors.fal import DEFAULT_QUEUE_URL, DEFAULT_REST_URL, FalApi
from airflow_bgreplace.vendors.inputs import FalStorageStager


class FalHook(BgReplaceHook):
    """fal.ai ``bria/replace-background`` through fal's queue; local images are sent inline by default."""

    vendor_api = FalApi
    conn_type = "bgreplace_fal"
    default_conn_name = "bgreplace_fal_default"
    hook_name = "Background replace: fal.ai"

    def make_api(self, extra: Mapping[str, Any], base_url: str | None) -> VendorApi:
        if extra.get("use_vendor_upload"):
            # An overridden base URL (the sandbox) serves storage too; the public queue host does not.
            default_rest = DEFAULT_REST_URL if base_url in (None, DEFAULT_QUEUE_URL) else base_url
            return FalApi(stager=FalStorageStager(str(extra.get("rest_base_url") or default_rest)))
        return super().make_api(extra, base_url)
