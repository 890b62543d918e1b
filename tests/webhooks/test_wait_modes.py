"""The operators' wait modes against the real sandbox and the real receiver (uvicorn on 127.0.0.1).

Every job here is submitted by an operator with a callback URL built from
``[bgreplace] webhook_base_url``; the sandbox delivers the vendor's real (signed) webhook to the
receiver, which stores it; the job trigger reads the store. "Through the callback" is checked
with the sandbox's own counter of status reads: the operator's one read before it defers, plus
the trigger's one confirmation read, and nothing while it waited.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred
from PIL import Image

from airflow_bgreplace.operators import (
    BgReplaceJobError,
    BgReplaceOperator,
    FalReplaceBackgroundOperator,
    FashnBackgroundChangeOperator,
    ImagePipelineBackgroundChangeOperator,
    LocalBackgroundColorOperator,
    RunflowBackgroundColorOperator,
)
from airflow_bgreplace.triggers import BgReplaceJobTrigger
from airflow_bgreplace.vendors import JobState
from tests.airflow_support import run_dag, task_states, xcom_values
from tests.conftest import StaticServer
from tests.webhooks.conftest import VENDORS, WebhookAirflow, job_inputs

XCOM_KEYS = {"vendor", "job_id", "status", "output_uri", "input_uri", "width", "height", "duration_s", "cost_usd"}
OPERATORS: dict[str, type[BgReplaceOperator]] = {
    "runflow": RunflowBackgroundColorOperator,
    "fashn": FashnBackgroundChangeOperator,
    "fal": FalReplaceBackgroundOperator,
    "imagepipeline": ImagePipelineBackgroundChangeOperator,
}
#: Long enough that the operator's read before deferring never sees the job finished.
JOB_LATENCY_S = 0.8


def operator_for(vendor: str, photo: Path, public: StaticServer, outputs: Path, **kwargs: Any) -> BgReplaceOperator:
    """An operator running the small job of ``job_inputs`` for ``vendor``."""
    _, inputs = job_inputs(vendor, photo, public)
    inputs = {name: str(value) if isinstance(value, Path) else value for name, value in inputs.items()}
    kwargs.setdefault("poll_interval", 0.2)
    return OPERATORS[vendor](task_id=f"{vendor}_job", output_path=str(outputs / vendor), **inputs, **kwargs)


async def first_event(trigger: BgReplaceJobTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


def defer_and_wait(operator: BgReplaceOperator) -> tuple[BgReplaceJobTrigger, dict[str, Any], float]:
    """``execute`` until it defers, then the trigger as the triggerer runs it (rebuilt from
    ``serialize()``, checking the store every 50 ms): (trigger, its event, seconds it took)."""
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context={})
    classpath, kwargs = deferred.value.trigger.serialize()
    assert classpath == "airflow_bgreplace.triggers.job.BgReplaceJobTrigger"
    trigger = BgReplaceJobTrigger(**{**kwargs, "store_check_s": 0.05})
    started = time.monotonic()
    event = asyncio.run(first_event(trigger))
    return trigger, event, time.monotonic() - started


def status_calls(sandbox: Any, vendor: str) -> int:
    return int(sandbox.stats()["vendors"][vendor]["status_calls"])


def check_result(result: dict[str, Any], vendor: str) -> None:
    assert set(result) == XCOM_KEYS
    assert result["vendor"] == vendor and result["status"] == "succeeded"
    output = Path(result["output_uri"].removeprefix("file://"))
    with Image.open(io.BytesIO(output.read_bytes())) as image:
        assert (image.width, image.height) == (result["width"], result["height"])


# --------------------------------------------------------------------------- webhook mode, under asyncio


@pytest.mark.parametrize("vendor", VENDORS)
def test_webhook_mode_completes_through_the_callback_without_polling(
    vendor: str,
    webhook_airflow: WebhookAirflow,
    bgreplace_sandbox: Any,
    product_photo: Path,
    static_server: StaticServer,
) -> None:
    bgreplace_sandbox.configure(latency_s={vendor: JOB_LATENCY_S})
    operator = operator_for(vendor, product_photo, static_server, webhook_airflow.outputs, wait_for="webhook")

    trigger, event, waited_s = defer_and_wait(operator)

    assert trigger.wait_for == "webhook"
    assert event["status"] == "succeeded" and event["vendor"] == vendor
    stored = webhook_airflow.store.get(vendor, event["job_id"])
    assert stored is not None and stored.status.state is JobState.succeeded
    # The read before deferring, then one confirmation: none while the job ran (0.2 s polling
    # would have read ~4 times more).
    assert status_calls(bgreplace_sandbox, vendor) == 2
    assert waited_s < JOB_LATENCY_S + 3
    # The URL the vendor called is the one the hook built from the connection (token included).
    job = bgreplace_sandbox.job(vendor, event["job_id"])
    assert job["webhook_url"].startswith(f"{webhook_airflow.receiver.server.base_url}/bgreplace/webhooks/{vendor}?")
    check_result(operator.execute_complete(context={}, event=event), vendor)


def test_status_calls_per_job_webhook_vs_poll(
    sqlite_webhook_airflow: WebhookAirflow, bgreplace_sandbox: Any, product_photo: Path, static_server: StaticServer
) -> None:
    """The number the webhook modes exist for: vendor status reads per job, same job, same polling."""
    bgreplace_sandbox.configure(latency_s={"fal": 1.5})
    calls: dict[str, int] = {}
    for mode in ("poll", "webhook_or_poll", "webhook"):
        before = status_calls(bgreplace_sandbox, "fal")
        operator = operator_for("fal", product_photo, static_server, sqlite_webhook_airflow.outputs, wait_for=mode)
        _, event, _ = defer_and_wait(operator)
        assert event["status"] == "succeeded"
        calls[mode] = status_calls(bgreplace_sandbox, "fal") - before

    assert calls["webhook"] == calls["webhook_or_poll"] == 2
    assert calls["poll"] >= 4  # 0.2 s growing by 1.5x over a 1.5 s job
    print(json.dumps({"status_calls_per_job_1_5s_job_0_2s_poll": calls}))


# --------------------------------------------------------------------------- lost callbacks


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_lost_callback_still_succeeds_through_the_poll_fallback(
    vendor: str,
    sqlite_webhook_airflow: WebhookAirflow,
    bgreplace_sandbox: Any,
    product_photo: Path,
    static_server: StaticServer,
) -> None:
    bgreplace_sandbox.configure(latency_s={vendor: JOB_LATENCY_S}, webhook_drop_rate={vendor: 1.0})
    operator = operator_for(vendor, product_photo, static_server, sqlite_webhook_airflow.outputs, webhook_grace=0.3)
    assert operator.effective_wait_mode() == "webhook_or_poll"  # chosen because webhook_base_url is set

    _, event, waited_s = defer_and_wait(operator)

    assert event["status"] == "succeeded"
    assert status_calls(bgreplace_sandbox, vendor) >= 3  # the pre-defer read, then polling after the grace
    assert waited_s < JOB_LATENCY_S + 3
    check_result(operator.execute_complete(context={}, event=event), vendor)
    assert bgreplace_sandbox.stats()["vendors"][vendor]["webhook_dropped"] == 1
    assert sqlite_webhook_airflow.store.get(vendor, event["job_id"]) is None


def test_webhook_mode_with_a_lost_callback_times_out_at_the_deadline(
    sqlite_webhook_airflow: WebhookAirflow, bgreplace_sandbox: Any, product_photo: Path, static_server: StaticServer
) -> None:
    bgreplace_sandbox.configure(latency_s={"fal": 0.3}, webhook_drop_rate={"fal": 1.0})
    operator = operator_for(
        "fal", product_photo, static_server, sqlite_webhook_airflow.outputs, wait_for="webhook", timeout=2.0
    )

    trigger, event, _ = defer_and_wait(operator)

    assert event["status"] == "timeout" and event["job"] is None
    assert "no callback" in event["message"]
    assert time.time() >= trigger.deadline_epoch  # not before the deadline...
    assert time.time() - trigger.deadline_epoch < 1.0  # ...and promptly at it
    # "webhook" never reads the vendor while it waits: only the operator's read before deferring.
    assert status_calls(bgreplace_sandbox, "fal") == 1
    with pytest.raises(BgReplaceJobError, match="timed out"):
        operator.execute_complete(context={}, event=event)


def test_a_progress_callback_does_not_end_the_wait(
    sqlite_webhook_airflow: WebhookAirflow, bgreplace_sandbox: Any, product_photo: Path, static_server: StaticServer
) -> None:
    """A stored non-terminal status (a vendor's progress webhook) is not the end of the job: the
    trigger keeps waiting for the terminal callback instead of switching to polling."""
    from airflow_bgreplace.vendors.status import JobStatus

    bgreplace_sandbox.configure(latency_s={"fal": 1.2})
    operator = operator_for("fal", product_photo, static_server, sqlite_webhook_airflow.outputs, wait_for="webhook")
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context={})
    trigger = deferred.value.trigger
    trigger.store_check_s = 0.05
    running = JobStatus(vendor="fal", endpoint=trigger.endpoint, job_id=trigger.job_id, state=JobState.running)
    sqlite_webhook_airflow.store.record("fal", trigger.job_id, b"{}", {}, running, "test")

    event = asyncio.run(first_event(trigger))

    assert event["status"] == "succeeded"
    assert sqlite_webhook_airflow.store.get("fal", trigger.job_id).delivery_count == 2  # type: ignore[union-attr]
    assert status_calls(bgreplace_sandbox, "fal") == 2


# --------------------------------------------------------------------------- choosing the mode


def test_poll_is_the_default_without_a_webhook_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__BGREPLACE__WEBHOOK_BASE_URL", raising=False)
    operator = FalReplaceBackgroundOperator(task_id="t", image_url="x.png", prompt="p")
    assert operator.effective_wait_mode() == "poll"
    monkeypatch.setenv("AIRFLOW__BGREPLACE__WEBHOOK_BASE_URL", "https://airflow.example.com")
    assert operator.effective_wait_mode() == "webhook_or_poll"
    assert (
        FalReplaceBackgroundOperator(task_id="t", image_url="x.png", prompt="p", deferrable=False).effective_wait_mode()
        == "poll"
    )


def test_webhook_modes_need_deferrable_and_a_known_mode() -> None:
    with pytest.raises(ValueError, match="deferrable"):
        FalReplaceBackgroundOperator(task_id="t", image_url="x", prompt="p", wait_for="webhook", deferrable=False)
    with pytest.raises(ValueError, match="wait_for"):
        FalReplaceBackgroundOperator(task_id="t", image_url="x", prompt="p", wait_for="callback")  # type: ignore[arg-type]


def test_explicit_webhook_mode_without_a_base_url_fails_before_submitting(
    bgreplace_sandbox: Any, monkeypatch: pytest.MonkeyPatch, product_photo: Path
) -> None:
    from tests.conftest import sandbox_connection

    monkeypatch.delenv("AIRFLOW__BGREPLACE__WEBHOOK_BASE_URL", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_BGREPLACE_FAL_DEFAULT", sandbox_connection(bgreplace_sandbox, "fal"))
    operator = FalReplaceBackgroundOperator(task_id="t", image_url=str(product_photo), prompt="p", wait_for="webhook")

    with pytest.raises(AirflowFailException, match="webhook_base_url"):
        operator.execute(context={})
    assert bgreplace_sandbox.stats()["vendors"]["fal"]["submits_accepted"] == 0


def test_the_local_engine_ignores_a_configured_webhook_base_url(
    monkeypatch: pytest.MonkeyPatch, product_photo: Path, tmp_path: Path
) -> None:
    """Local jobs end inside submit and have no callback: the default mode must not demand one."""
    monkeypatch.setenv("AIRFLOW__BGREPLACE__WEBHOOK_BASE_URL", "https://airflow.example.com")
    operator = LocalBackgroundColorOperator(
        task_id="local", image=str(product_photo), color="#F0F0F0", output_path=str(tmp_path / "local")
    )

    result = operator.execute(context={})

    assert result is not None and result["status"] == "succeeded"


# --------------------------------------------------------------------------- the example DAGs, under dag.test()

#: Example DAG -> (vendor, its tasks).
EXAMPLES = {
    "example_runflow_background_color": ("runflow", ["recolour"]),
    "example_fashn_background_change": ("fashn", ["restage_from_prompt"]),
    "example_fal_replace_background": ("fal", ["restage_from_prompt"]),
    "example_imagepipeline_background": ("imagepipeline", ["change_background", "remove_background"]),
}


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize("dag_id", sorted(EXAMPLES))
def test_example_dag_waits_for_the_callback_under_dag_test(
    dag_id: str, sqlite_webhook_airflow: WebhookAirflow, bgreplace_sandbox: Any
) -> None:
    vendor, task_ids = EXAMPLES[dag_id]
    bgreplace_sandbox.configure(latency_s={vendor: JOB_LATENCY_S})

    run, seconds = run_dag(dag_id)

    assert str(run.state) == "success", task_states(run)
    for task_id in task_ids:
        [result] = xcom_values(run, task_id)
        check_result(result, vendor)
        stored = sqlite_webhook_airflow.store.get(vendor, result["job_id"])
        assert stored is not None and stored.status.state is JobState.succeeded
    # Per task: the read before deferring and the trigger's confirmation; no polling.
    assert status_calls(bgreplace_sandbox, vendor) == 2 * len(task_ids)
    print(json.dumps({"dag_test_webhook_or_poll": dag_id, "wall_s": round(seconds, 2)}))
