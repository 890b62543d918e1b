"""An event trigger for ``AssetWatcher``: schedule a DAG on arriving vendor callbacks.

Airflow 3.3 accepts any ``BaseEventTrigger`` subclass in an ``AssetWatcher`` (no allow-list),
and registers the watcher only while the consuming DAG is active and unpaused. The trigger reads
the provider's webhook store (written by the receiver) and fires one event per stored job event,
in the store's order. Its position (the last sequence it fired) is kept in the asset state store
that Airflow 3.3 injects, so a triggerer restart neither replays nor skips callbacks; without
one it starts from the newest callback.

Usage::

    from airflow.sdk import Asset, AssetWatcher, dag
    from airflow_bgreplace.triggers.events import BgReplaceCallbackEventTrigger

    callbacks = Asset(
        "bgreplace-callbacks",
        watchers=[AssetWatcher(name="fal_callbacks", trigger=BgReplaceCallbackEventTrigger(vendor="fal"))],
    )

    @dag(schedule=[callbacks])
    def on_callback(): ...
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

CURSOR_KEY = "bgreplace_callback_cursor"


class BgReplaceCallbackEventTrigger(BaseEventTrigger):
    """Fires ``{vendor, job_id, state, sequence, result_urls, error_code}`` per stored callback.

    :param vendor: only this vendor's callbacks (None: every vendor).
    :param states: only callbacks in these common states (e.g. ``["succeeded"]``; None: all).
    :param check_interval: seconds between reads of the store.
    """

    def __init__(
        self,
        *,
        vendor: str | None = None,
        states: list[str] | None = None,
        check_interval: float = 2.0,
        **_retired: Any,
    ) -> None:
        super().__init__()
        self.vendor = vendor
        self.states = states
        self.check_interval = check_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"vendor": self.vendor, "states": self.states, "check_interval": self.check_interval},
        )

    async def _load_cursor(self, store: Any) -> int:
        if self.asset_state_store is not None:
            try:
                saved = await self.asset_state_store.aget(CURSOR_KEY)
            except (ValueError, KeyError):  # more than one asset: nowhere unambiguous to keep it
                saved = None
            if saved is not None:
                return int(saved)  # type: ignore[arg-type]
        return int(await store.alatest_sequence(self.vendor))

    async def _save_cursor(self, cursor: int) -> None:
        if self.asset_state_store is not None:
            try:
                await self.asset_state_store.aset(CURSOR_KEY, cursor)
            except (ValueError, KeyError):
                pass

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_bgreplace.webhooks.store import WebhookStore

        store = WebhookStore.shared()
        cursor = await self._load_cursor(store)
        while True:
            for event in await store.aevents_after(cursor, self.vendor, limit=100):
                cursor = event.sequence
                if self.states is None or event.status.state.value in self.states:
                    yield TriggerEvent(
                        {
                            "vendor": event.vendor,
                            "job_id": event.job_id,
                            "state": event.status.state.value,
                            "sequence": event.sequence,
                            "result_urls": event.status.result_urls,
                            "error_code": event.status.error_code,
                        }
                    )
                await self._save_cursor(cursor)
            await asyncio.sleep(self.check_interval)
