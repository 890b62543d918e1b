"""Every operator with ``deferrable=False``: the job is polled from the worker, no triggerer needed.

The same polling loop and backoff as the deferred mode, and the same XCom; the worker slot is held
for the whole job, so prefer the default deferrable mode wherever a triggerer runs.
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import dag

from airflow_bgreplace.operators import (
    FalReplaceBackgroundOperator,
    FashnBackgroundChangeOperator,
    ImagePipelineBackgroundChangeOperator,
    ImagePipelineBackgroundRemoveOperator,
    RunflowBackgroundColorOperator,
    RunflowBackgroundReplaceOperator,
)

IMAGES = Path(__file__).resolve().parent / "images"  # sample photos shipped with the examples
PRODUCT = str(IMAGES / "mug.png")
SCENE = str(IMAGES / "scene_reference.jpg")


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["bgreplace", "example"],
    default_args={"deferrable": False, "poll_interval": 0.5},
)
def example_sync_mode() -> None:
    RunflowBackgroundReplaceOperator(task_id="runflow_replace", image=PRODUCT, reference=SCENE)
    RunflowBackgroundColorOperator(
        task_id="runflow_color", image_url=PRODUCT, color_red=240, color_green=240, color_blue=240
    )
    FashnBackgroundChangeOperator(task_id="fashn_change", image=PRODUCT, prompt="a linen tablecloth")
    FalReplaceBackgroundOperator(task_id="fal_replace", image_url=PRODUCT, prompt="a stone windowsill")
    ImagePipelineBackgroundChangeOperator(task_id="imagepipeline_change", input_image=PRODUCT, prompt="a garden")
    ImagePipelineBackgroundRemoveOperator(task_id="imagepipeline_remove", input_image=PRODUCT)


example_sync_mode()
