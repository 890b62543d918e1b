"""Sensors: wait for vendor jobs submitted elsewhere."""

from __future__ import annotations

from airflow_bgreplace.sensors.webhook import BgReplaceWebhookSensor

__all__ = ["BgReplaceWebhookSensor"]
