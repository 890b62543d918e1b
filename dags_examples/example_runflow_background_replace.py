"""Runflow background-replace: the product photo onto a reference scene (zip built for you)."""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import dag

from airflow_bgreplace.operators import RunflowBackgroundReplaceOperator

IMAGES = Path(__file__).resolve().parent / "images"  # sample photos shipped with the examples
PRODUCT = str(IMAGES / "mug.png")
SCENE = str(IMAGES / "scene_reference.jpg")


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["bgreplace", "example"],
    params={"image": PRODUCT, "reference": SCENE, "prompt": ""},
)
def example_runflow_background_replace() -> None:
    # [START howto_operator_runflow_background_replace]
    RunflowBackgroundReplaceOperator(
        task_id="restage_on_scene",
        image="{{ params.image }}",
        reference="{{ params.reference }}",
        prompt="{{ params.prompt or None }}",
    )
    # [END howto_operator_runflow_background_replace]


example_runflow_background_replace()
