"""Hook for FASHN's API (connection type ``bgreplace_fashn``)."""

from __future__ import annotations

from airflow_bgreplace.hooks.base import BgReplaceHook
from airflow_bgreplace.vendors.fashn import FashnApi


class FashnHook(BgReplaceHook):
    """FASHN ``background-change``; local images are sent inline as base64 data URIs."""

    vendor_api = FashnApi
    conn_type = "bgreplace_fashn"
    default_conn_name = "bgreplace_fashn_default"
    hook_name = "Background replace: FASHN"
