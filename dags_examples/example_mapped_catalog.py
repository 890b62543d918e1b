"""Dynamic task mapping: one deferrable task per image of a folder (fal.ai).

Fine for a few dozen images; for whole catalogs the batch operator keeps one task and one
trigger for thousands of jobs.
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import dag, task

from airflow_bgreplace.operators import FalReplaceBackgroundOperator

IMAGES = Path(__file__).resolve().parent / "images"  # sample photos shipped with the examples


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["bgreplace", "example"],
    params={"folder": str(IMAGES), "limit": 20, "prompt": "on a light wooden shelf"},
)
def example_mapped_catalog() -> None:
    @task
    def list_images(params: dict | None = None) -> list[str]:
        assert params is not None
        images = sorted(str(p) for p in Path(params["folder"]).glob("*") if p.suffix in {".png", ".jpg", ".jpeg"})
        return images[: int(params["limit"])]

    # [START howto_operator_mapped]
    FalReplaceBackgroundOperator.partial(
        task_id="restage",
        prompt="{{ params.prompt }}",
        max_active_tis_per_dag=16,
    ).expand(image_url=list_images())
    # [END howto_operator_mapped]


example_mapped_catalog()
