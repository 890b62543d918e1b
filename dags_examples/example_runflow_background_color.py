"""Runflow background-color: the product onto a flat brand colour."""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import dag

from airflow_bgreplace.operators import RunflowBackgroundColorOperator

IMAGES = Path(__file__).resolve().parent / "images"  # sample photos shipped with the examples
PRODUCT = str(IMAGES / "mug.png")


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["bgreplace", "example"],
    params={"image_url": PRODUCT, "red": 238, "green": 232, "blue": 220},
)
def example_runflow_background_color() -> None:
    # [START howto_operator_runflow_background_color]
    RunflowBackgroundColorOperator(
        task_id="recolour",
        image_url="{{ params.image_url }}",
        color_red="{{ params.red }}",
        color_green="{{ params.green }}",
        color_blue="{{ params.blue }}",
    )
    # [END howto_operator_runflow_background_color]


example_runflow_background_color()
