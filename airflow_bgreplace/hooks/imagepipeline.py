"""Hook for ImagePipeline's API (connection type ``bgreplace_imagepipeline``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_bgreplace.hooks.base import BgReplaceHook
from airflow_bgreplace.vendors.base import VendorApi
from airflow_bgreplace.vendors.imagepipeline import ImagePipelineApi
from airflow_bgreplace.vendors.inputs import ImagePipelineUploadStager


class ImagePipelineHook(BgReplaceHook):
    """ImagePipeline ``background/change`` and ``background/remove``.

    ImagePipeline needs public URLs; local images go through its own upload endpoint unless a
    staging path is configured or ``use_vendor_upload`` is false.
    """

    vendor_api = ImagePipelineApi
    conn_type = "bgreplace_imagepipeline"
    default_conn_name = "bgreplace_imagepipeline_default"
    hook_name = "Background replace: ImagePipeline"

    def make_api(self, extra: Mapping[str, Any], base_url: str | None) -> VendorApi:
        stager = self.stager_from_extra(extra)
        if stager is None and extra.get("use_vendor_upload", True):
            stager = ImagePipelineUploadStager()
        return ImagePipelineApi(stager=stager)  # None: no staging, local images are refused
