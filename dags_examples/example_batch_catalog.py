"""One batch task for a whole folder: the vendor kept at its concurrency limit, one trigger.

Compare ``example_mapped_catalog.py`` (one task per image). The batch writes a JSONL manifest of
per-item outcomes; XCom carries only the summary. ``vendor`` switches between the paid vendors
and ``local`` by configuration alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import dag, task

from airflow_bgreplace.operators.batch import BgReplaceBatchOperator

IMAGES = Path(__file__).resolve().parent / "images"  # sample photos shipped with the examples

#: Which endpoint and inputs restage an image from a prompt, per vendor.
PROMPT_JOBS: dict[str, tuple[str, str]] = {
    "fal": ("bria/replace-background", "image_url"),
    "fashn": ("background-change", "image"),
    "imagepipeline": ("background/change", "input_image"),
    "local": ("background/replace", "image"),
}


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["bgreplace", "example"],
    params={"folder": str(IMAGES), "vendor": "fal", "prompt": "on a light wooden shelf", "max_cost_usd": None},
)
def example_batch_catalog() -> None:
    @task
    def plan_jobs(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        assert params is not None
        endpoint, image_field = PROMPT_JOBS[params["vendor"]]
        images = sorted(p for p in Path(params["folder"]).glob("*") if p.suffix in {".png", ".jpg", ".jpeg"})
        return [
            {"id": image.stem, "endpoint": endpoint, "inputs": {image_field: str(image), "prompt": params["prompt"]}}
            for image in images
        ]

    # [START howto_operator_batch]
    BgReplaceBatchOperator(
        task_id="restage_folder",
        vendor="{{ params.vendor }}",
        items=plan_jobs(),
        max_cost_usd="{{ params.max_cost_usd }}",
    )
    # [END howto_operator_batch]


example_batch_catalog()
