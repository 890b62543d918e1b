"""``BgReplaceCallbackEventTrigger`` run directly under asyncio over real stored callbacks, and
its ``AssetWatcher`` as Airflow 3.3.2 parses, serializes and registers it.

Jobs are submitted to the sandbox with a callback URL to the real receiver; the trigger reads what
the receiver stored. A full scheduler + triggerer run is not part of this suite (see docs/webhooks.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_bgreplace.triggers.events import BgReplaceCallbackEventTrigger
from tests.airflow_support import EXAMPLES
from tests.conftest import StaticServer
from tests.webhooks.conftest import Submitter, WebhookAirflow


@pytest.fixture
def submit_job(
    webhook_airflow: WebhookAirflow, product_photo: Path, static_server: StaticServer, bgreplace_sandbox: Any
) -> Any:
    """Submit a job with a callback and wait until the receiver stored it: its job id."""
    submitter = Submitter(webhook_airflow.receiver, webhook_airflow.connections, product_photo, static_server)

    def submit(vendor: str = "fal", *, fail: bool = False) -> str:
        if fail:
            bgreplace_sandbox.inject_fault(vendor, "job_fail", code="image_load_error")
        job_id, _ = submitter(vendor)
        webhook_airflow.receiver.wait_for(vendor, job_id)
        return job_id

    return submit


async def take(events: AsyncIterator[TriggerEvent], count: int, timeout_s: float = 15.0) -> list[dict[str, Any]]:
    return [(await asyncio.wait_for(anext(events), timeout_s)).payload for _ in range(count)]


async def nothing_more(events: AsyncIterator[TriggerEvent], within_s: float = 0.4) -> bool:
    try:
        await asyncio.wait_for(anext(events), within_s)
    except TimeoutError:
        return True
    return False


def _trigger(**kwargs: Any) -> BgReplaceCallbackEventTrigger:
    return BgReplaceCallbackEventTrigger(check_interval=0.05, **kwargs)


class MemoryAssetState:
    """The part of Airflow's ``AssetStateStoreAccessors`` the trigger uses, kept in memory."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = value


def test_one_event_per_stored_job_event_in_store_order(webhook_airflow: WebhookAirflow, submit_job: Any) -> None:
    start = webhook_airflow.store.latest_sequence()
    jobs = [submit_job("fal"), submit_job("fal", fail=True), submit_job("fashn"), submit_job("fal")]
    stored = webhook_airflow.store.events_after(start)
    assert {event.job_id for event in stored} == set(jobs)

    async def run() -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
        every_vendor = _trigger(after_sequence=start).run()
        fal_only = _trigger(vendor="fal", after_sequence=start).run()
        all_events = await take(every_vendor, 4)
        fal_events = await take(fal_only, 3)
        return all_events, fal_events, await nothing_more(fal_only)

    all_events, fal_events, quiet = asyncio.run(run())

    assert [(e["vendor"], e["job_id"], e["state"], e["sequence"]) for e in all_events] == [
        (s.vendor, s.job_id, s.status.state.value, s.sequence) for s in stored
    ]
    assert [e["job_id"] for e in fal_events] == [s.job_id for s in stored if s.vendor == "fal"]
    assert quiet  # one event per stored job event: nothing fired twice
    failed = next(e for e in all_events if e["job_id"] == jobs[1])
    assert failed["state"] == "failed" and failed["error_code"] == "image_load_error" and not failed["result_urls"]
    assert all(e["result_urls"] for e in all_events if e["state"] == "succeeded")


def test_states_filter_fires_only_succeeded_jobs_and_moves_past_the_others(
    webhook_airflow: WebhookAirflow, submit_job: Any
) -> None:
    start = webhook_airflow.store.latest_sequence()
    ok_first, failed, ok_last = submit_job("fal"), submit_job("fal", fail=True), submit_job("fal")
    trigger = _trigger(vendor="fal", states=["succeeded"], after_sequence=start)

    async def run() -> tuple[list[dict[str, Any]], bool]:
        events = trigger.run()
        return await take(events, 2), await nothing_more(events)

    fired, quiet = asyncio.run(run())

    assert {e["job_id"] for e in fired} == {ok_first, ok_last} and quiet
    assert failed not in {e["job_id"] for e in fired}
    assert trigger.after_sequence == webhook_airflow.store.latest_sequence("fal")  # past the failed one too


def test_a_trigger_rebuilt_from_serialize_neither_replays_nor_skips(
    webhook_airflow: WebhookAirflow, submit_job: Any
) -> None:
    from airflow.sdk.module_loading import import_string
    from airflow.serialization.serialized_objects import BaseSerialization

    start = webhook_airflow.store.latest_sequence()
    first, second = submit_job(), submit_job()
    original = _trigger(vendor="fal", after_sequence=start)

    async def before_the_restart() -> list[dict[str, Any]]:
        events = original.run()
        taken = await take(events, 2)
        assert await nothing_more(events, 0.1)  # the triggerer is stopped while the trigger waits
        return taken

    assert {e["job_id"] for e in asyncio.run(before_the_restart())} == {first, second}
    classpath, kwargs = original.serialize()
    assert kwargs["after_sequence"] == webhook_airflow.store.latest_sequence("fal")
    rebuilt = import_string(classpath)(**BaseSerialization.deserialize(BaseSerialization.serialize(kwargs)))
    while_down = submit_job()

    async def after_the_restart() -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
        events = rebuilt.run()
        stored_while_down = await take(events, 1)
        later = asyncio.create_task(asyncio.to_thread(submit_job))
        arrived_later = await take(events, 1)
        return stored_while_down, arrived_later, await later

    stored_while_down, arrived_later, later_job = asyncio.run(after_the_restart())

    assert [e["job_id"] for e in stored_while_down] == [while_down]  # not skipped, and nothing replayed
    assert [e["job_id"] for e in arrived_later] == [later_job]


def test_the_position_in_the_asset_state_store_survives_a_triggerer_restart(
    webhook_airflow: WebhookAirflow, submit_job: Any
) -> None:
    """The triggerer rebuilds a watcher from the kwargs of the DAG file (no position): the asset
    state store Airflow 3.3 injects is what carries the position across the restart."""
    state = MemoryAssetState()
    submit_job()  # stored before the watcher ever ran: not its business

    def watcher() -> BgReplaceCallbackEventTrigger:
        trigger = _trigger(vendor="fal", states=["succeeded"])  # as in the DAG file
        trigger.asset_state_store = state  # type: ignore[assignment]
        return trigger

    async def first_run() -> list[dict[str, Any]]:
        events = watcher().run()
        pending = asyncio.ensure_future(take(events, 1))
        await asyncio.sleep(0.3)  # the watcher has started and noted where the store was
        await asyncio.to_thread(submit_job)
        taken = await pending
        assert await nothing_more(events, 0.1)  # the triggerer is stopped while the trigger waits
        return taken

    [seen] = asyncio.run(first_run())
    missed_while_down = submit_job()

    async def second_run() -> tuple[list[dict[str, Any]], bool]:
        events = watcher().run()
        return await take(events, 1), await nothing_more(events)

    [after_restart], quiet = asyncio.run(second_run())

    assert after_restart["job_id"] == missed_while_down != seen["job_id"] and quiet
    assert list(state.values) == ["bgreplace_callback_cursor:fal:succeeded"]


# --------------------------------------------------------------------------- the AssetWatcher in Airflow 3.3.2


def test_asset_watcher_accepts_the_trigger_and_rejects_a_plain_trigger() -> None:
    from airflow.sdk import AssetWatcher
    from airflow.triggers.testing import SuccessTrigger

    watcher = AssetWatcher(name="callbacks", trigger=BgReplaceCallbackEventTrigger(vendor="fal"))
    assert isinstance(watcher.trigger, BgReplaceCallbackEventTrigger)
    assert issubclass(SuccessTrigger, BaseTrigger)
    with pytest.raises(ValueError, match="BaseEventTrigger"):
        AssetWatcher(name="plain", trigger=SuccessTrigger())


def _dag_model(dag_id: str) -> Any:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.get(DagModel, dag_id)


def _asset_triggers(name: str) -> list[tuple[str, dict[str, Any]]]:
    from airflow.models.asset import AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        asset = session.scalars(select(AssetModel).where(AssetModel.name == name)).one()
        return [(trigger.classpath, dict(trigger.kwargs)) for trigger in asset.triggers]


def _sync(bag: Any) -> None:
    """What the DAG processor does after parsing: write DAGs, assets and watcher triggers."""
    from airflow.dag_processing.dagbag import sync_bag_to_db

    sync_bag_to_db(bag, "dags-folder", None)


def _set_paused(dag_id: str, paused: bool) -> None:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        session.get(DagModel, dag_id).is_paused = paused  # type: ignore[union-attr]


@pytest.mark.usefixtures("airflow_db")
def test_the_example_asset_watcher_is_parsed_serialized_and_registered_only_while_unpaused() -> None:
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.serialization.serialized_objects import DagSerialization

    DagBundlesManager().sync_bundles_to_db()  # the "dags-folder" bundle: the examples folder
    bag = BundleDagBag(
        dag_folder=str(EXAMPLES / "example_callback_asset.py"), bundle_path=EXAMPLES, bundle_name="dags-folder"
    )
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["example_callback_asset"]

    # Parsed: the DAG is scheduled on the asset, whose watcher holds our trigger.
    [asset] = dag.timetable.asset_condition.objects
    [watcher] = asset.watchers
    assert watcher.name == "fal_succeeded_callbacks"
    assert isinstance(watcher.trigger, BgReplaceCallbackEventTrigger)
    assert watcher.trigger.states == ["succeeded"]
    # Serialized as the DAG processor stores it: classpath and kwargs, rebuildable.
    assert "airflow_bgreplace.triggers.events.BgReplaceCallbackEventTrigger" in str(DagSerialization.to_dict(dag))

    expected = (
        "airflow_bgreplace.triggers.events.BgReplaceCallbackEventTrigger",
        {"vendor": "fal", "states": ["succeeded"], "check_interval": 2.0, "after_sequence": None},
    )
    _sync(bag)
    try:
        _set_paused("example_callback_asset", True)  # the default outside unit-test mode
        _sync(bag)
        assert _asset_triggers("bgreplace_fal_results") == []  # a paused DAG's watcher is not registered

        _set_paused("example_callback_asset", False)
        _sync(bag)
        [(classpath, kwargs)] = _asset_triggers("bgreplace_fal_results")
        assert (classpath, kwargs) == expected  # what the triggerer will instantiate
        assert isinstance(BgReplaceCallbackEventTrigger(**kwargs), BgReplaceCallbackEventTrigger)

        _set_paused("example_callback_asset", True)
        _sync(bag)
        assert _asset_triggers("bgreplace_fal_results") == []
    finally:
        _set_paused("example_callback_asset", True)


def test_inline_results_stay_out_of_the_event_payload(
    sqlite_webhook_airflow: WebhookAirflow, product_photo: Path
) -> None:
    """FASHN's ``return_base64`` puts the image itself in the callback: the asset event gets the
    job, not megabytes of base64 (the consumer reads the result from the vendor or the store)."""
    from airflow_bgreplace import settings
    from airflow_bgreplace.hooks import FashnHook

    start = sqlite_webhook_airflow.store.latest_sequence()
    hook = FashnHook()
    job = hook.submit(
        image=product_photo,
        prompt="studio",
        return_base64=True,
        webhook_url=hook.webhook_url(settings.webhook_base_url()),
    )
    stored = sqlite_webhook_airflow.receiver.wait_for("fashn", job.job_id)
    assert stored.status.result_urls[0].startswith("data:")

    async def run() -> list[dict[str, Any]]:
        return await take(_trigger(vendor="fashn", after_sequence=start).run(), 1)

    [event] = asyncio.run(run())

    assert event["job_id"] == job.job_id and event["state"] == "succeeded"
    assert event["result_urls"] == []
