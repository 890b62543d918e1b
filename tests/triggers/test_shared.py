"""What the triggers of one event loop share: one client and one pace of status reads per
connection, one reader of the webhook store per vendor. Real sandbox, real store, real asyncio."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from airflow_bgreplace.hooks import FalHook
from airflow_bgreplace.sandbox.fal import SAMPLE_IMAGE_URL
from airflow_bgreplace.triggers import job as job_module
from airflow_bgreplace.triggers import shared
from airflow_bgreplace.triggers.batch import BgReplaceBatchTrigger
from airflow_bgreplace.triggers.job import BgReplaceJobTrigger
from airflow_bgreplace.triggers.shared import CallbackWatcher, StatusPace, status_reads_per_s
from airflow_bgreplace.vendors.status import JobState, JobStatus
from airflow_bgreplace.webhooks.store import WebhookStore
from tests.conftest import sandbox_connection

ENDPOINT = "bria/replace-background"
CONN = ("fal", "bgreplace_fal_default")


@pytest.fixture
def fal(bgreplace_sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> FalHook:
    monkeypatch.setenv(
        "AIRFLOW_CONN_BGREPLACE_FAL_DEFAULT",
        sandbox_connection(bgreplace_sandbox, "fal", {"retry_base_delay_s": 0.05}),
    )
    return FalHook()


@pytest.fixture
def store(tmp_path: Any) -> Iterator[WebhookStore]:
    opened = WebhookStore(f"sqlite:///{tmp_path}/webhooks.db")
    yield opened
    opened.dispose()


def submit_many(hook: FalHook, n: int) -> list[str]:
    return [hook.submit(image_url=SAMPLE_IMAGE_URL, prompt=f"scene {i}").job_id for i in range(n)]


def job_trigger(job_id: str, deadline_in_s: float = 30.0, **kwargs: Any) -> BgReplaceJobTrigger:
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("poll_interval_cap", 0.05)
    return BgReplaceJobTrigger(
        vendor="fal",
        conn_id="bgreplace_fal_default",
        endpoint=ENDPOINT,
        job_id=job_id,
        deadline_epoch=time.time() + deadline_in_s,
        **kwargs,
    )


async def first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


def status_calls(sandbox: Any) -> int:
    return int(sandbox.stats()["vendors"]["fal"]["status_calls"])


async def run_for(seconds: float, triggers: list[Any]) -> float:
    """Run the triggers for ``seconds``, then cancel them (a killed triggerer); the seconds it took."""
    started = time.monotonic()
    tasks = [asyncio.create_task(first_event(trigger)) for trigger in triggers]
    await asyncio.sleep(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return time.monotonic() - started


def record(store: WebhookStore, job_id: str, state: JobState) -> None:
    status = JobStatus(vendor="fal", endpoint=ENDPOINT, job_id=job_id, state=state)
    store.record("fal", job_id, b"{}", {}, status, "test")


# --------------------------------------------------------------------------- the pace


def test_pace_lets_a_second_of_calls_through_then_spaces_them() -> None:
    pace = StatusPace(4.0)
    delays = [pace.reserve(now=100.0) for _ in range(8)]
    assert delays == pytest.approx([0.0, 0.0, 0.0, 0.0, 0.25, 0.5, 0.75, 1.0])
    # An idle connection answers at once again.
    assert pace.reserve(now=200.0) == 0.0


def test_pace_is_the_documented_status_limit_with_a_margin_else_the_assumption() -> None:
    assert status_reads_per_s("fashn") == pytest.approx(50 / 10 * 0.9)
    assert status_reads_per_s("fal") == shared.STATUS_READS_PER_S


def test_job_triggers_of_one_connection_share_one_client(fal: FalHook, bgreplace_sandbox: Any) -> None:
    bgreplace_sandbox.configure(latency_s={"fal": 1.0})
    job_ids = submit_many(fal, 20)

    async def main() -> tuple[dict[Any, int], list[dict[str, Any]], int]:
        tasks = [asyncio.create_task(first_event(job_trigger(job_id))) for job_id in job_ids]
        clients = shared._loop_shared().clients
        for _ in range(500):  # until every trigger holds the client (10 s at most)
            if sum(entry.users for entry in clients.values()) >= len(job_ids):
                break
            await asyncio.sleep(0.02)
        users = {key: entry.users for key, entry in clients.items()}
        events = await asyncio.gather(*tasks)
        return users, events, len(clients)

    users, events, left = asyncio.run(main())

    assert users == {CONN: 20}
    assert [event["status"] for event in events] == ["succeeded"] * 20
    assert left == 0  # closed with its last trigger


def test_many_job_triggers_keep_to_the_connection_pace(
    fal: FalHook, bgreplace_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared, "STATUS_READS_PER_S", 10.0)
    bgreplace_sandbox.configure(latency_s={"fal": 60})
    job_ids = submit_many(fal, 30)
    before = status_calls(bgreplace_sandbox)

    elapsed = asyncio.run(run_for(2.0, [job_trigger(job_id) for job_id in job_ids]))

    calls = status_calls(bgreplace_sandbox) - before
    # On their own, 30 triggers reading every 0.05 s would read ~1,200 times in 2 s.
    assert 10 <= calls <= 10 + 10 * elapsed + 1


def test_batch_triggers_of_one_connection_share_the_pace(
    fal: FalHook, bgreplace_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared, "STATUS_READS_PER_S", 10.0)
    bgreplace_sandbox.configure(latency_s={"fal": 60})
    job_ids = submit_many(fal, 30)
    batches = [
        BgReplaceBatchTrigger(
            vendor="fal",
            conn_id="bgreplace_fal_default",
            jobs=[{"id": f"sku-{i}", "endpoint": ENDPOINT, "job_id": job_id} for i, job_id in enumerate(half)],
            deadline_epoch=time.time() + 60,
            poll_interval=0.05,
        )
        for half in (job_ids[:15], job_ids[15:])
    ]
    before = status_calls(bgreplace_sandbox)

    elapsed = asyncio.run(run_for(2.0, batches))

    calls = status_calls(bgreplace_sandbox) - before
    # Each batch alone would take the whole pace (a round of 15 every 1.5 s): together they share it.
    assert 10 <= calls <= 10 + 10 * elapsed + 1


def test_a_deadline_passes_while_reads_wait_their_turn(
    fal: FalHook, bgreplace_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared, "STATUS_READS_PER_S", 2.0)
    monkeypatch.setattr(job_module, "FINAL_READ_GRACE_S", 0.3)
    bgreplace_sandbox.configure(latency_s={"fal": 60})
    job_ids = submit_many(fal, 12)

    async def main() -> list[dict[str, Any]]:
        return await asyncio.gather(*(first_event(job_trigger(job_id, deadline_in_s=1.0)) for job_id in job_ids))

    started = time.monotonic()
    events = asyncio.run(main())

    assert [event["status"] for event in events] == ["timeout"] * 12
    assert time.monotonic() - started < 5  # the deadline holds though reads were queued
    never_read = [event for event in events if event["job"] is None]
    assert never_read and all("paced" in event["message"] for event in never_read)
    read = [event for event in events if event["job"] is not None]
    assert read and all(event["job"]["state"] in ("queued", "running") for event in read)


def test_a_job_trigger_logs_a_status_only_when_it_changes(
    fal: FalHook, bgreplace_sandbox: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bgreplace_sandbox.configure(latency_s={"fal": 1.0})
    [job_id] = submit_many(fal, 1)
    before = status_calls(bgreplace_sandbox)

    event = asyncio.run(first_event(job_trigger(job_id)))

    reads = status_calls(bgreplace_sandbox) - before
    logged = [line for line in capsys.readouterr().out.splitlines() if f"fal job {job_id}: " in line]
    assert event["status"] == "succeeded"
    assert reads >= 8  # read every 0.05 s for a 1 s job...
    assert 2 <= len(logged) <= 4  # ...logged once per state: queued, running, succeeded
    assert any(": succeeded" in line for line in logged)


# --------------------------------------------------------------------------- the webhook store


def test_one_store_read_per_interval_whatever_the_number_of_waiting_jobs(store: WebhookStore) -> None:
    statements: list[str] = []
    store.ensure_schema()

    def count_select(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", count_select)
    job_ids = [f"job-{i}" for i in range(200)]

    async def main() -> tuple[int, float, list[str]]:
        watcher = CallbackWatcher.for_vendor(store, "fal")
        tasks = {job_id: asyncio.create_task(watcher.wait(job_id, 0.05)) for job_id in job_ids}
        await asyncio.sleep(0.5)  # every job registered and looked up once
        counted_from = len(statements)
        quiet_started = time.monotonic()
        await asyncio.sleep(1.0)
        quiet_reads, quiet_s = len(statements) - counted_from, time.monotonic() - quiet_started
        await asyncio.to_thread(record, store, "job-7", JobState.succeeded)
        await asyncio.to_thread(record, store, "job-8", JobState.running)  # progress only
        done, _ = await asyncio.wait(tasks.values(), timeout=2.0, return_when=asyncio.FIRST_COMPLETED)
        ended = sorted(job_id for job_id, task in tasks.items() if task in done)
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        assert watcher.waiting == 0
        return quiet_reads, quiet_s, ended

    quiet_reads, quiet_s, ended = asyncio.run(main())

    # One events_after read per 0.05 s interval; a query per waiting job would be 200 per interval.
    assert quiet_reads <= quiet_s / 0.05 + 2
    assert ended == ["job-7"]


def test_a_callback_stored_before_the_wait_began_ends_it(store: WebhookStore) -> None:
    record(store, "early", JobState.failed)

    async def main() -> JobState:
        watcher = CallbackWatcher.for_vendor(store, "fal")
        event = await asyncio.wait_for(watcher.wait("early", 0.05), timeout=5)
        return event.status.state

    assert asyncio.run(main()) is JobState.failed


def test_a_progress_callback_then_the_final_one(store: WebhookStore) -> None:
    record(store, "slow", JobState.running)

    async def main() -> tuple[bool, JobState]:
        watcher = CallbackWatcher.for_vendor(store, "fal")
        waiting = asyncio.create_task(watcher.wait("slow", 0.05))
        await asyncio.sleep(0.3)
        still_waiting = not waiting.done()
        await asyncio.to_thread(record, store, "slow", JobState.succeeded)
        event = await asyncio.wait_for(waiting, timeout=5)
        return still_waiting, event.status.state

    assert asyncio.run(main()) == (True, JobState.succeeded)


def test_an_unreadable_store_fails_every_waiter() -> None:
    from airflow_bgreplace.sandbox.stack import free_port

    broken = WebhookStore(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2")

    async def main() -> tuple[Any, ...]:
        watcher = CallbackWatcher.for_vendor(broken, "fal")
        return await asyncio.wait_for(
            asyncio.gather(watcher.wait("a", 0.05), watcher.wait("b", 0.05), return_exceptions=True), timeout=5
        )

    outcomes = asyncio.run(main())
    assert len(outcomes) == 2 and all(isinstance(outcome, Exception) for outcome in outcomes)
    broken.dispose()
