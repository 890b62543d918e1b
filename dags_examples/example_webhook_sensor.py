"""Submit in one task, wait for the vendor's webhook in another: ``BgReplaceWebhookSensor``.

For DAGs where something other than our operators submits the job (a ``@task`` with its own
logic, another system): the job carries a callback URL to the provider's receiver, and the
sensor waits for that callback in the webhook store, confirms the final state with one status
read and delivers the result with the operators' XCom.

Three DAGs show the sensor's modes: ``example_webhook_sensor`` (deferrable, the default: the wait
costs no worker slot), ``example_webhook_sensor_poke`` (holds a worker slot, reads the store every
``poke_interval``) and ``example_webhook_sensor_reschedule`` (frees the slot between pokes).

Runs offline against the sandbox like the other examples. With ``[bgreplace] webhook_base_url``
set (and the receiver running) the job calls back; without it no callback can come, so the
sensor polls the vendor from the start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, dag, task

from airflow_bgreplace import settings
from airflow_bgreplace.sensors import BgReplaceWebhookSensor

IMAGES = Path(__file__).resolve().parent / "images"  # sample photos shipped with the examples
PRODUCT = str(IMAGES / "mug.png")
#: Poll the vendor when no callback came within this many seconds (a lost callback loses nothing).
POLL_AFTER_S = 300.0 if settings.webhook_base_url() else 0.0


def webhook_sensor_example(dag_id: str, **sensor_mode: Any) -> DAG:
    @dag(
        dag_id=dag_id,
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        tags=["bgreplace", "example", "webhooks"],
        params={"image": PRODUCT, "prompt": "on a linen tablecloth, warm evening light"},
    )
    def webhook_sensor_dag() -> None:
        # [START howto_sensor_webhook]
        @task
        def submit(params: dict[str, Any] | None = None) -> dict[str, str]:
            from airflow_bgreplace.hooks import FalHook

            assert params is not None
            hook = FalHook()
            job = hook.submit(
                image_url=params["image"],
                prompt=params["prompt"],
                webhook_url=hook.webhook_url(settings.webhook_base_url()),  # None: no callback
            )
            return {"job_id": job.job_id, "endpoint": job.endpoint}

        wait_for_callback = BgReplaceWebhookSensor(
            task_id="wait_for_callback",
            vendor="fal",
            job_id="{{ ti.xcom_pull(task_ids='submit')['job_id'] }}",
            endpoint="{{ ti.xcom_pull(task_ids='submit')['endpoint'] }}",
            poll_after=POLL_AFTER_S,
            timeout=600,
            **sensor_mode,
        )
        submit() >> wait_for_callback
        # [END howto_sensor_webhook]

    return webhook_sensor_dag()


example_webhook_sensor = webhook_sensor_example("example_webhook_sensor")
example_webhook_sensor_poke = webhook_sensor_example(
    "example_webhook_sensor_poke", deferrable=False, mode="poke", poke_interval=0.5
)
example_webhook_sensor_reschedule = webhook_sensor_example(
    "example_webhook_sensor_reschedule", deferrable=False, mode="reschedule", poke_interval=1
)
