"""FASHN background-change: a prompted background around the detected product."""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import dag

from airflow_bgreplace.operators import FashnBackgroundChangeOperator

IMAGES = Path(__file__).resolve().parent / "images"  # sample photos shipped with the examples
PRODUCT = str(IMAGES / "mug.png")


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["bgreplace", "example"],
    params={"image": PRODUCT, "prompt": "a sunlit oak table by a window"},
)
def example_fashn_background_change() -> None:
    # [START howto_operator_fashn_background_change]
    FashnBackgroundChangeOperator(
        task_id="restage_from_prompt",
        image="{{ params.image }}",
        prompt="{{ params.prompt }}",
        output_format="png",
    )
    # [END howto_operator_fashn_background_change]


example_fashn_background_change()
