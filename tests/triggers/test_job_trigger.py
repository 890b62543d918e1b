"""The job trigger run directly under asyncio against the sandbox: events, backoff, timeout, restarts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from airflow_bgreplace.hooks import FalHook, FashnHook
from airflow_bgreplace.operators import BgReplaceJobError, FalReplaceBackgroundOperator
from airflow_bgreplace.triggers import BgReplaceJobTrigger
from airflow_bgreplace.vendors.polling import PollSchedule
from tests.conftest import sandbox_connection

FAST_RETRIES = {"retry_base_delay_s": 0.05, "retry_max_attempts": 5}


@pytest.fixture
def fal(bgreplace_sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> FalHook:
    monkeypatch.setenv("AIRFLOW_CONN_BGREPLACE_FAL_DEFAULT", sandbox_connection(bgreplace_sandbox, "fal", FAST_RETRIES))
    return FalHook()


@pytest.fixture
def fashn(bgreplace_sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> FashnHook:
    monkeypatch.setenv(
        "AIRFLOW_CONN_BGREPLACE_FASHN_DEFAULT", sandbox_connection(bgreplace_sandbox, "fashn", FAST_RETRIES)
    )
    return FashnHook()


def _trigger(job_id: str, deadline_in_s: float = 30.0, vendor: str = "fal", **kwargs: Any) -> BgReplaceJobTrigger:
    return BgReplaceJobTrigger(
        vendor=vendor,
        conn_id=f"bgreplace_{vendor}_default",
        endpoint={"fal": "bria/replace-background", "fashn": "background-change"}[vendor],
        job_id=job_id,
        deadline_epoch=time.time() + deadline_in_s,
        poll_interval=0.1,
        **kwargs,
    )


async def _events(trigger: BgReplaceJobTrigger) -> list[dict[str, Any]]:
    return [event.payload async for event in trigger.run()]


def test_trigger_fires_exactly_one_success_event(fal: FalHook, product_photo: Path) -> None:
    job = fal.submit(image_url=product_photo, prompt="studio")

    events = asyncio.run(_events(_trigger(job.job_id)))

    assert len(events) == 1
    [event] = events
    assert event["status"] == "succeeded" and event["job_id"] == job.job_id and event["vendor"] == "fal"
    assert event["job"]["result_urls"]


def test_serialize_round_trips_through_airflow_serialization(fal: FalHook) -> None:
    from airflow.serialization.serialized_objects import BaseSerialization

    trigger = _trigger("abc-123", cancel_on_kill=False)
    classpath, kwargs = trigger.serialize()
    restored_kwargs = BaseSerialization.deserialize(BaseSerialization.serialize(kwargs))

    from airflow.sdk.module_loading import import_string

    rebuilt = import_string(classpath)(**restored_kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)


def test_a_rebuilt_trigger_resumes_the_same_job_without_a_second_submit(
    fal: FalHook, product_photo: Path, bgreplace_sandbox: Any
) -> None:
    bgreplace_sandbox.configure(latency_s={"fal": 1.5})
    job = fal.submit(image_url=product_photo, prompt="studio")
    first = _trigger(job.job_id)

    async def triggerer_dies_after_a_while() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(_events(first), timeout=0.4)  # cancelled mid-wait, like a killed triggerer

    asyncio.run(triggerer_dies_after_a_while())
    _, kwargs = first.serialize()
    events = asyncio.run(_events(BgReplaceJobTrigger(**kwargs)))

    assert [e["status"] for e in events] == ["succeeded"]
    stats = bgreplace_sandbox.stats()["vendors"]["fal"]
    assert stats["submits_accepted"] == 1
    assert stats["status_calls"] >= 2  # both trigger instances polled the one job


def test_timeout_event_when_the_deadline_passes(fal: FalHook, product_photo: Path, bgreplace_sandbox: Any) -> None:
    bgreplace_sandbox.configure(latency_s={"fal": 30})
    job = fal.submit(image_url=product_photo, prompt="studio")

    started = time.monotonic()
    [event] = asyncio.run(_events(_trigger(job.job_id, deadline_in_s=0.8)))

    assert event["status"] == "timeout"
    assert time.monotonic() - started < 5


def test_vendor_job_failure_is_an_event_with_the_vendor_code(
    fashn: FashnHook, product_photo: Path, bgreplace_sandbox: Any
) -> None:
    bgreplace_sandbox.inject_fault("fashn", "job_fail", code="ContentModerationError")
    job = fashn.submit(image=product_photo, prompt="studio")

    [event] = asyncio.run(_events(_trigger(job.job_id, vendor="fashn")))

    assert event["status"] == "failed"
    assert event["job"]["error_code"] == "ContentModerationError"


def test_5xx_bursts_and_429_storms_while_polling_are_ridden_out(
    fal: FalHook, product_photo: Path, bgreplace_sandbox: Any
) -> None:
    job = fal.submit(image_url=product_photo, prompt="studio")
    bgreplace_sandbox.inject_fault("fal", "5xx", route="status", count=3)
    bgreplace_sandbox.inject_fault("fal", "429", route="status", count=2, retry_after=0.1)

    [event] = asyncio.run(_events(_trigger(job.job_id)))

    assert event["status"] == "succeeded"
    assert bgreplace_sandbox.stats()["vendors"]["fal"]["submits_accepted"] == 1


def test_persistent_poll_failure_becomes_an_error_event(
    fal: FalHook, product_photo: Path, bgreplace_sandbox: Any
) -> None:
    job = fal.submit(image_url=product_photo, prompt="studio")
    bgreplace_sandbox.inject_fault("fal", "5xx", route="status", count=50)

    [event] = asyncio.run(_events(_trigger(job.job_id)))

    assert event["status"] == "error"
    assert event["error_type"] == "TransientError"


def test_poll_schedule_backs_off_from_the_first_interval_up_to_the_cap() -> None:
    schedule = PollSchedule(first_s=1.0, factor=2.0, cap_s=5.0)
    assert [schedule.delay_s(n) for n in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_timed_out_job_is_cancelled_at_the_vendor(fal: FalHook, product_photo: Path, bgreplace_sandbox: Any) -> None:
    bgreplace_sandbox.configure(latency_s={"fal": 30})
    operator = FalReplaceBackgroundOperator(
        task_id="restage", image_url=str(product_photo), prompt="studio", timeout=0.5, poll_interval=0.1
    )
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context={})
    [event] = asyncio.run(_events(deferred.value.trigger))
    assert event["status"] == "timeout"

    with pytest.raises(BgReplaceJobError, match="timed out"):
        operator.execute_complete(context={}, event=event)

    [job] = bgreplace_sandbox.jobs("fal")
    assert job["state"] in {"cancelled", "canceled"} or job.get("cancelled") is True, job


def test_failed_job_fails_the_task_naming_vendor_job_and_code(
    fal: FalHook, product_photo: Path, bgreplace_sandbox: Any
) -> None:
    bgreplace_sandbox.inject_fault("fal", "job_fail", code="content_policy_violation")
    operator = FalReplaceBackgroundOperator(task_id="restage", image_url=str(product_photo), prompt="x")
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context={})
    [event] = asyncio.run(_events(deferred.value.trigger))

    with pytest.raises(AirflowFailException) as failure:
        operator.execute_complete(context={}, event=event)
    message = str(failure.value)
    assert "fal" in message and event["job_id"] in message and "content_policy_violation" in message


def test_on_kill_cancels_the_fal_request(fal: FalHook, product_photo: Path, bgreplace_sandbox: Any) -> None:
    bgreplace_sandbox.configure(latency_s={"fal": 30})
    job = fal.submit(image_url=product_photo, prompt="studio")

    asyncio.run(_trigger(job.job_id).on_kill())

    assert fal.get_status(job.job_id).state.value == "cancelled"
    assert bgreplace_sandbox.stats()["vendors"]["fal"]["cancels"] == 1


def test_on_kill_leaves_vendors_without_cancel_alone(
    fashn: FashnHook, product_photo: Path, bgreplace_sandbox: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bgreplace_sandbox.configure(latency_s={"fashn": 30})
    job = fashn.submit(image=product_photo, prompt="studio")

    asyncio.run(_trigger(job.job_id, vendor="fashn").on_kill())

    assert fashn.get_status(job.job_id).state.value in {"queued", "running"}
    assert "cannot cancel" in capsys.readouterr().out  # Airflow logs through structlog to stdout


def test_on_kill_respects_cancel_on_kill_false(fal: FalHook, product_photo: Path, bgreplace_sandbox: Any) -> None:
    bgreplace_sandbox.configure(latency_s={"fal": 30})
    job = fal.submit(image_url=product_photo, prompt="studio")

    asyncio.run(_trigger(job.job_id, cancel_on_kill=False).on_kill())

    assert fal.get_status(job.job_id).state.value in {"queued", "running"}


def test_operator_on_kill_cancels_in_sync_mode(fal: FalHook, product_photo: Path, bgreplace_sandbox: Any) -> None:
    import threading

    bgreplace_sandbox.configure(latency_s={"fal": 30})
    operator = FalReplaceBackgroundOperator(
        task_id="restage", image_url=str(product_photo), prompt="studio", deferrable=False, poll_interval=0.1,
        timeout=20,
    )
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            operator.execute(context={})
        except BaseException as exc:  # the job ends cancelled: the task fails
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 10
    while not bgreplace_sandbox.jobs("fal") and time.monotonic() < deadline:
        time.sleep(0.05)
    operator.on_kill()  # what Airflow calls when the task is killed
    worker.join(timeout=15)

    [job] = bgreplace_sandbox.jobs("fal")
    assert job["state"] == "cancelled", job
    assert "cancelled" in str(outcome.get("error"))
