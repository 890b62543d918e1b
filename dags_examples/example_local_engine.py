"""The embedded local engine: remove, recolour, restage, with no key and no network.

Same XCom as the paid vendors; the job runs in the worker (it never defers). The engine says in
its logs which segmentation path it used and whether its confidence was low.
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import dag

from airflow_bgreplace.operators import (
    LocalBackgroundColorOperator,
    LocalBackgroundRemoveOperator,
    LocalBackgroundReplaceOperator,
)

IMAGES = Path(__file__).resolve().parent / "images"  # sample photos shipped with the examples
PRODUCT = str(IMAGES / "mug.png")
SCENE = str(IMAGES / "scene_reference.jpg")


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["bgreplace", "example"],
    params={"image": PRODUCT},
)
def example_local_engine() -> None:
    # [START howto_operator_local]
    LocalBackgroundRemoveOperator(task_id="remove", image="{{ params.image }}")
    LocalBackgroundColorOperator(task_id="recolour", image="{{ params.image }}", color="#EFE8DC", drop_shadow=True)
    LocalBackgroundReplaceOperator(task_id="restage", image="{{ params.image }}", reference=SCENE)
    LocalBackgroundReplaceOperator(task_id="restage_prompt", image="{{ params.image }}", prompt="on white marble")
    # [END howto_operator_local]


example_local_engine()
