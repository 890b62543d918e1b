"""Airflow hooks: one per vendor, thin adapters from an Airflow connection to a vendor client."""

from __future__ import annotations

from airflow_bgreplace.hooks.base import BgReplaceHook
from airflow_bgreplace.hooks.fal import FalHook
from airflow_bgreplace.hooks.fashn import FashnHook
from airflow_bgreplace.hooks.imagepipeline import ImagePipelineHook
from airflow_bgreplace.hooks.local import LocalHook
from airflow_bgreplace.hooks.runflow import RunflowHook

#: Hook class per paid vendor (each emulated by the sandbox).
REMOTE_HOOKS: dict[str, type[BgReplaceHook]] = {
    hook.vendor_api.vendor: hook for hook in (RunflowHook, FashnHook, FalHook, ImagePipelineHook)
}
#: Hook class per vendor name, the embedded ``local`` engine included.
HOOKS: dict[str, type[BgReplaceHook]] = {**REMOTE_HOOKS, LocalHook.vendor_api.vendor: LocalHook}

__all__ = [
    "HOOKS",
    "REMOTE_HOOKS",
    "BgReplaceHook",
    "FalHook",
    "FashnHook",
    "ImagePipelineHook",
    "LocalHook",
    "RunflowHook",
]
