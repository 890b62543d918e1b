"""Deferrable operators, one per vendor endpoint: ``<Vendor><Endpoint>Operator``."""

from __future__ import annotations

from airflow_bgreplace.operators.base import BgReplaceOperator
from airflow_bgreplace.operators.delivery import BgReplaceJobError
from airflow_bgreplace.operators.fal import FalReplaceBackgroundOperator
from airflow_bgreplace.operators.fashn import FashnBackgroundChangeOperator
from airflow_bgreplace.operators.imagepipeline import (
    ImagePipelineBackgroundChangeOperator,
    ImagePipelineBackgroundRemoveOperator,
)
from airflow_bgreplace.operators.local import (
    LocalBackgroundColorOperator,
    LocalBackgroundRemoveOperator,
    LocalBackgroundReplaceOperator,
)
from airflow_bgreplace.operators.runflow import RunflowBackgroundColorOperator, RunflowBackgroundReplaceOperator

__all__ = [
    "BgReplaceJobError",
    "BgReplaceOperator",
    "FalReplaceBackgroundOperator",
    "FashnBackgroundChangeOperator",
    "ImagePipelineBackgroundChangeOperator",
    "ImagePipelineBackgroundRemoveOperator",
    "LocalBackgroundColorOperator",
    "LocalBackgroundRemoveOperator",
    "LocalBackgroundReplaceOperator",
    "RunflowBackgroundColorOperator",
    "RunflowBackgroundReplaceOperator",
]
