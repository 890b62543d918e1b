"""Pattern (b) of bench/throughput_real.py: the vendor's deferrable operator, mapped per image."""

from __future__ import annotations

import json

import pendulum
from airflow.sdk import dag, task

from airflow_bgreplace.operators import FalReplaceBackgroundOperator


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["bgreplace", "bench"],
)
def bench_throughput_mapped() -> None:
    @task
    def image_urls(items_uri: str) -> list[str]:
        with open(items_uri) as lines:
            return [json.loads(line)["inputs"]["image_url"] for line in lines if line.strip()]

    FalReplaceBackgroundOperator.partial(task_id="replace", prompt="studio backdrop").expand(
        image_url=image_urls("{{ dag_run.conf['items_uri'] }}")
    )


bench_throughput_mapped()
