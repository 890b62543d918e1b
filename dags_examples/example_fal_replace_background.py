"""fal.ai bria/replace-background: a prompted scene, through fal's queue."""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import dag

from airflow_bgreplace.operators import FalReplaceBackgroundOperator

IMAGES = Path(__file__).resolve().parent / "images"  # sample photos shipped with the examples
PRODUCT = str(IMAGES / "mug.png")


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["bgreplace", "example"],
    params={"image": PRODUCT, "prompt": "on a marble kitchen counter, soft morning light"},
)
def example_fal_replace_background() -> None:
    # [START howto_operator_fal_replace_background]
    FalReplaceBackgroundOperator(
        task_id="restage_from_prompt",
        image_url="{{ params.image }}",
        prompt="{{ params.prompt }}",
        negative_prompt="text, watermark",
    )
    # [END howto_operator_fal_replace_background]


example_fal_replace_background()
