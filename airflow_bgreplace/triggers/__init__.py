"""Async triggers run by Airflow's triggerer."""

from __future__ import annotations

from airflow_bgreplace.triggers.job import BgReplaceJobTrigger

__all__ = ["BgReplaceJobTrigger"]
