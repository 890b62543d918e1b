"""The DAG whose deferred task instances ``bench/triggerer_footprint.py`` seeds (never run by a scheduler).

Its mapped tasks are what a catalog team would run for many images at once: one
``FalReplaceBackgroundOperator`` per image (one ``BgReplaceJobTrigger`` each), and
``BgReplaceBatchOperator`` tasks (one ``BgReplaceBatchTrigger`` per task for its whole window).
``wait_until`` (``DateTimeSensorAsync``) is the reference: a trigger that only sleeps, i.e. what
the triggerer costs with no provider code at all. The bench writes the task instances and their
trigger rows straight into the metadata database; the upstream tasks never run.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync
from airflow.sdk import dag, task

from airflow_bgreplace.operators import FalReplaceBackgroundOperator
from airflow_bgreplace.operators.batch import BgReplaceBatchOperator

DAG_ID = "bench_triggerer_footprint"


@dag(dag_id=DAG_ID, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False, tags=["bench"])
def bench_triggerer_footprint() -> None:
    @task
    def images() -> list[str]:
        return []

    @task
    def batches() -> list[list[dict[str, Any]]]:
        return []

    @task
    def moments() -> list[str]:
        return []

    FalReplaceBackgroundOperator.partial(task_id="restage", prompt="on a marble kitchen counter").expand(
        image_url=images()
    )
    BgReplaceBatchOperator.partial(task_id="batch", vendor="fal", max_in_flight=1000).expand(items=batches())
    DateTimeSensorAsync.partial(task_id="wait_until").expand(target_time=moments())


bench_triggerer_footprint()
