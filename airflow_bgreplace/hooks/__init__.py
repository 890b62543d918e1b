"""Airflow hooks: one per vendor, thin adapters from an Airflow connection to a vendor client."""

from __future__ import annotations

from airflow_bgreplace.hooks.base import BgReplaceHook
from airflow_bgreplace.hooks.fal import FalHook
from airflow_bgreplace.hooks.fashn import FashnHook
from airflow_bgreplace.hooks.imagepipeline import ImagePipelineHook
from airflow_bgreplace.hooks.runflow import RunflowHook

#: Hook class per vendor name.
HOOKS: dict[str, type[BgReplaceHook]] = {
    hook.vendor_api.vendor: hook for hook in (RunflowHook, FashnHook, FalHook, ImagePipelineHook)
}

__all__ = ["HOOKS", "BgReplaceHook", "FalHook", "FashnHook", "ImagePipelineHook", "RunflowHook"]
