"""ImagePipeline: a prompted background change, and a cut-out onto a flat colour with a shadow."""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import dag

from airflow_bgreplace.operators import (
    ImagePipelineBackgroundChangeOperator,
    ImagePipelineBackgroundRemoveOperator,
)

IMAGES = Path(__file__).resolve().parent / "images"  # sample photos shipped with the examples
PRODUCT = str(IMAGES / "mug.png")


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["bgreplace", "example"],
    params={"image": PRODUCT, "prompt": "on a sunlit marble kitchen counter", "recolor": "#F0F0F0"},
)
def example_imagepipeline_background() -> None:
    # [START howto_operator_imagepipeline_background_change]
    ImagePipelineBackgroundChangeOperator(
        task_id="change_background",
        input_image="{{ params.image }}",
        prompt="{{ params.prompt }}",
        subject_description="mug",
        output_format="png",
    )
    # [END howto_operator_imagepipeline_background_change]
    # [START howto_operator_imagepipeline_background_remove]
    ImagePipelineBackgroundRemoveOperator(
        task_id="remove_background",
        input_image="{{ params.image }}",
        recolor="{{ params.recolor }}",
        drop_shadow=True,
        output_format="png",
    )
    # [END howto_operator_imagepipeline_background_remove]


example_imagepipeline_background()
