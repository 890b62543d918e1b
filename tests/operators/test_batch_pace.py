"""The batch's pace at a queueing vendor: a queue that covers the task's resume, concurrent submits
and deliveries, items refused with 429 in a concurrent round submitted later, exactly once."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_bgreplace.operators.batch import FIRST_RESUME_GAP_S, STATE_KEY, BatchState, BgReplaceBatchOperator
from airflow_bgreplace.triggers.batch import BgReplaceBatchTrigger
from airflow_bgreplace.vendors.assumptions import FAL
from tests.airflow_support import airflow_db  # noqa: F401 - fixture
from tests.conftest import make_product_photo, sandbox_connection
from tests.deferral_driver import MemoryTaskStateStore, drive


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "photos"
    folder.mkdir()
    paths = []
    for index in range(30):
        path = folder / f"sku-{index:02d}.png"
        path.write_bytes(make_product_photo(colour=(8 * index, 90, 160)))
        paths.append(path)
    return paths


def _items(photos: list[Path]) -> list[dict[str, Any]]:
    return [
        {"id": photo.stem, "endpoint": "bria/replace-background", "inputs": {"image_url": str(photo), "prompt": "p"}}
        for photo in photos
    ]


def _peak_in_flight(jobs: list[dict[str, Any]]) -> int:
    """Most jobs the vendor held at once (waiting or running), from their submit and end times."""
    edges = sorted([(job["submitted_at"], 1) for job in jobs] + [(job["finished_at"], -1) for job in jobs])
    peak = level = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


def test_a_slow_resume_gets_a_deeper_queue_and_every_item_once(
    airflow_db: None,  # noqa: F811
    bgreplace_sandbox: Any,
    photos: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bgreplace_sandbox.configure(latency_s=0.4, latency_distribution="fixed", concurrency={"fal": 2})
    monkeypatch.setenv("AIRFLOW_CONN_BGREPLACE_FAL_DEFAULT", sandbox_connection(bgreplace_sandbox, "fal"))
    operator = BgReplaceBatchOperator(
        task_id="paced", vendor="fal", items=_items(photos), output_base=str(tmp_path / "out"), poll_interval=0.1
    )
    # Nothing measured yet: the limit, and a queue for an assumed 10 s resume of 6 s jobs.
    assert operator.window() == FAL.concurrency + math.ceil(3 * FAL.concurrency / 6.0 * FIRST_RESUME_GAP_S)

    # One second between each trigger event and the resume stands in for a busy scheduler.
    store = MemoryTaskStateStore()
    driven = drive(operator, context={"task_state_store": store}, resume_delay_s=1.0)

    assert driven.result["succeeded"] == 30
    stats = bgreplace_sandbox.stats()
    assert stats["vendors"]["fal"]["submits_accepted"] == 30 and stats["vendors"]["fal"]["duplicate_submits"] == 0
    # The batch measured the vendor (0.4 s jobs, 0.9 of them on a slot) and its own resume (the
    # 1 s delay and more): a queue sized for them, not for the assumed 6 s jobs.
    state = BatchState.model_validate(store.get(STATE_KEY))
    assert state.job_s is not None and 0.3 <= state.job_s <= 0.5
    assert state.resume_gap_s is not None and state.resume_gap_s >= 1.0
    assert operator.window(state) > operator.window()
    assert _peak_in_flight(stats["jobs"]) > 2 * FAL.concurrency  # jobs waited at the vendor
    assert driven.deferrals < 15  # fewer resumes than one per two jobs
    outputs = sorted(path.stem for path in (tmp_path / "out").glob("sku-*"))
    assert outputs == [photo.stem for photo in photos]


def test_items_refused_in_a_concurrent_round_are_submitted_later_once(
    airflow_db: None,  # noqa: F811
    bgreplace_sandbox: Any,
    photos: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bgreplace_sandbox.configure(latency_s=0.2, latency_distribution="fixed")
    # No client-side retry: the 429s reach the batch, which puts those items back.
    extra: dict[str, object] = {"retry_max_attempts": 1}
    monkeypatch.setenv("AIRFLOW_CONN_BGREPLACE_FAL_DEFAULT", sandbox_connection(bgreplace_sandbox, "fal", extra))
    bgreplace_sandbox.inject_fault("fal", "429", route="submit", count=3)
    operator = BgReplaceBatchOperator(
        task_id="refused",
        vendor="fal",
        items=_items(photos[:12]),
        output_base=str(tmp_path / "out"),
        concurrency=4,
        poll_interval=0.1,
    )

    driven = drive(operator, with_state_store=True)

    assert driven.result["succeeded"] == 12
    fal = bgreplace_sandbox.stats()["vendors"]["fal"]
    assert fal["submits_accepted"] == 12 and fal["duplicate_submits"] == 0
    assert fal["submits_rejected"] == 3


def test_the_trigger_waits_for_min_finished_reading_only_the_oldest(
    bgreplace_sandbox: Any, photos: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_bgreplace.hooks.fal import FalHook

    bgreplace_sandbox.configure(latency_s=0.3, latency_distribution="fixed", concurrency={"fal": 2})
    monkeypatch.setenv("AIRFLOW_CONN_BGREPLACE_FAL_DEFAULT", sandbox_connection(bgreplace_sandbox, "fal"))
    hook = FalHook()
    jobs = []
    for photo in photos[:6]:
        job = hook.client.submit("bria/replace-background", image_url=str(photo), prompt="p")
        jobs.append({"id": photo.stem, "endpoint": job.endpoint, "job_id": job.job_id})
    trigger = BgReplaceBatchTrigger(
        vendor="fal",
        conn_id="bgreplace_fal_default",
        jobs=jobs,
        deadline_epoch=time.time() + 60,
        poll_interval=0.1,
        min_finished=4,
        poll_first=3,
    )

    async def first_event() -> Any:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    event = asyncio.run(first_event())

    assert len(event["finished"]) >= 4 and not event["timeout"]
    assert all(entry["job"]["state"] == "succeeded" for entry in event["finished"])
    # A FIFO queue of 2 slots ends its jobs oldest first: reading the 3 oldest unseen found them.
    assert [entry["id"] for entry in event["finished"]] == [job["id"] for job in jobs[: len(event["finished"])]]
    assert event["started_epoch"] <= event["fired_epoch"]


def test_the_trigger_fires_when_the_vendor_queue_runs_low(
    bgreplace_sandbox: Any, photos: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_bgreplace.hooks.fal import FalHook

    bgreplace_sandbox.configure(latency_s=0.3, latency_distribution="fixed", concurrency={"fal": 2})
    monkeypatch.setenv("AIRFLOW_CONN_BGREPLACE_FAL_DEFAULT", sandbox_connection(bgreplace_sandbox, "fal"))
    hook = FalHook()
    jobs = []
    for photo in photos[:12]:
        job = hook.client.submit("bria/replace-background", image_url=str(photo), prompt="p")
        jobs.append({"id": photo.stem, "endpoint": job.endpoint, "job_id": job.job_id})
    trigger = BgReplaceBatchTrigger(
        vendor="fal",
        conn_id="bgreplace_fal_default",
        jobs=jobs,
        deadline_epoch=time.time() + 60,
        poll_interval=0.1,
        min_finished=len(jobs),  # not the rule here: fal reports queue positions
        poll_first=3,
        fire_below_queued=4,
    )

    async def first_event() -> Any:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    event = asyncio.run(first_event())

    assert 1 <= len(event["finished"]) < len(jobs)
    # It fired with at most 4 waiting at fal: 12 jobs minus those ended and the 2 running.
    waiting_then = [job for job in bgreplace_sandbox.jobs("fal") if job["started_at"] is None]
    assert len(waiting_then) <= 4
