"""``BgReplaceWebhookSensor``: the example DAG in each mode under ``dag.test()``, and its edges.

A @task submits a fal job with a callback URL to the real receiver; the sensor waits for the
stored callback and delivers the result. The sandbox's status-read counter shows the sensor did
not poll: one read, the confirmation after the callback.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout, TaskDeferred

from airflow_bgreplace.hooks import FalHook
from airflow_bgreplace.sensors import BgReplaceWebhookSensor
from airflow_bgreplace.vendors import JobState
from tests.airflow_support import run_dag, task_instances, task_states, xcom_values
from tests.webhooks.conftest import WebhookAirflow
from tests.webhooks.test_wait_modes import check_result, first_event, status_calls

#: The fal job outlasts the gap between the submit task and the sensor's first look.
JOB_LATENCY_S = 2.0


def _reschedules(run: Any, task_id: str) -> int:
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    [ti] = task_instances(run, task_id)
    with create_session() as session:
        return int(session.scalar(select(func.count()).where(TaskReschedule.ti_id == ti.id)) or 0)


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize(
    "dag_id", ["example_webhook_sensor", "example_webhook_sensor_poke", "example_webhook_sensor_reschedule"]
)
def test_the_example_sensor_dag_delivers_the_called_back_job(
    dag_id: str, sqlite_webhook_airflow: WebhookAirflow, bgreplace_sandbox: Any
) -> None:
    bgreplace_sandbox.configure(latency_s={"fal": JOB_LATENCY_S})

    run, seconds = run_dag(dag_id)

    assert str(run.state) == "success", task_states(run)
    [submitted] = xcom_values(run, "submit")
    [result] = xcom_values(run, "wait_for_callback")
    check_result(result, "fal")
    assert result["job_id"] == submitted["job_id"]
    stored = sqlite_webhook_airflow.store.get("fal", submitted["job_id"])
    assert stored is not None and stored.status.state is JobState.succeeded
    assert status_calls(bgreplace_sandbox, "fal") == 1  # the confirmation after the callback, nothing before
    if dag_id.endswith("reschedule"):
        assert _reschedules(run, "wait_for_callback") >= 1  # it did give its slot back while waiting
    print(json.dumps({"dag_test": dag_id, "wall_s": round(seconds, 2)}))


def _submit(sandbox: Any, airflow: WebhookAirflow, photo: Path) -> str:
    from airflow_bgreplace import settings

    hook = FalHook()
    job = hook.submit(image_url=photo, prompt="studio", webhook_url=hook.webhook_url(settings.webhook_base_url()))
    return job.job_id


def test_deferred_webhook_only_sensor_times_out_as_a_sensor_and_leaves_the_job_alone(
    sqlite_webhook_airflow: WebhookAirflow, bgreplace_sandbox: Any, product_photo: Path, tmp_path: Path
) -> None:
    bgreplace_sandbox.configure(latency_s={"fal": 30})  # the job outlives the sensor
    job_id = _submit(bgreplace_sandbox, sqlite_webhook_airflow, product_photo)
    sensor = BgReplaceWebhookSensor(
        task_id="wait", vendor="fal", job_id=job_id, poll_after=None, timeout=1.0, output_path=str(tmp_path / "out")
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context={})
    trigger = deferred.value.trigger
    assert trigger.wait_for == "webhook" and trigger.cancel_on_kill is False

    event = asyncio.run(first_event(trigger))

    assert event["status"] == "timeout"
    with pytest.raises(AirflowSensorTimeout, match=job_id):
        sensor.execute_complete(context={}, event=event)
    # The sensor did not submit the job: it must not cancel it.
    assert bgreplace_sandbox.stats()["vendors"]["fal"]["cancels"] == 0
    assert bgreplace_sandbox.job("fal", job_id)["state"] in {"queued", "running"}


def test_poking_sensor_polls_after_poll_after_when_the_callback_is_lost(
    sqlite_webhook_airflow: WebhookAirflow, bgreplace_sandbox: Any, product_photo: Path, tmp_path: Path
) -> None:
    bgreplace_sandbox.configure(latency_s={"fal": 0.3}, webhook_drop_rate={"fal": 1.0})
    job_id = _submit(bgreplace_sandbox, sqlite_webhook_airflow, product_photo)
    sensor = BgReplaceWebhookSensor(
        task_id="wait",
        vendor="fal",
        job_id=job_id,
        deferrable=False,
        mode="poke",
        poke_interval=0.2,
        poll_after=1.0,
        timeout=20,
        output_path=str(tmp_path / "out"),
    )

    started = time.monotonic()
    result = sensor.execute(context={})  # no task state store here: the sensor keeps its first poke itself

    assert time.monotonic() - started >= 1.0
    check_result(result, "fal")
    assert bgreplace_sandbox.stats()["vendors"]["fal"]["webhook_dropped"] == 1
    assert status_calls(bgreplace_sandbox, "fal") == 1  # no reads before poll_after, then one sufficed


@pytest.mark.usefixtures("airflow_db")
def test_the_example_sensor_dag_runs_offline_without_a_receiver(
    connections: Any, bgreplace_sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No ``webhook_base_url``: the job is submitted without a callback and the sensor polls at once."""
    monkeypatch.delenv("AIRFLOW__BGREPLACE__WEBHOOK_BASE_URL", raising=False)
    monkeypatch.setenv("AIRFLOW__BGREPLACE__OUTPUT_BASE", f"file://{tmp_path / 'outputs'}")

    run, _ = run_dag("example_webhook_sensor")

    assert str(run.state) == "success", task_states(run)
    [result] = xcom_values(run, "wait_for_callback")
    check_result(result, "fal")
    assert bgreplace_sandbox.job("fal", result["job_id"])["webhook_url"] is None
