"""An event trigger for ``AssetWatcher``: schedule a DAG on arriving vendor callbacks.

Airflow 3.3 accepts any ``BaseEventTrigger`` subclass in an ``AssetWatcher`` (no allow-list),
and registers the watcher only while the consuming DAG is active and unpaused. The trigger reads
the provider's webhook store (written by the receiver) and fires one event per stored job event,
in the store's order (its ``sequence``). Its position, the last sequence it passed, is kept in
the asset state store that Airflow 3.3 injects, so a triggerer restart neither replays nor skips
callbacks; without one it starts after ``after_sequence``, or after the newest stored callback.
``serialize()`` carries the position too: a trigger rebuilt from it goes on where it was. A
callback counts as passed once the triggerer took its event and resumed the trigger; one stopped
in between fires that callback again (at least once, never skipped).

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
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

if TYPE_CHECKING:
    from airflow_bgreplace.webhooks.store import StoredJobEvent

#: Prefix of the asset-state key holding a trigger's position (one key per vendor and states, so
#: that two watchers of one asset with different filters keep separate positions).
CURSOR_KEY = "bgreplace_callback_cursor"


class BgReplaceCallbackEventTrigger(BaseEventTrigger):
    """Fires ``{vendor, job_id, state, sequence, result_urls, error_code}`` per stored callback.

    :param vendor: only this vendor's callbacks (None: every vendor).
    :param states: only callbacks in these common states (e.g. ``["succeeded"]``; None: all).
    :param check_interval: seconds between reads of the store.
    :param after_sequence: fire only callbacks stored after this sequence (None: after the newest
        one when the trigger starts). A position saved in the asset state store takes precedence.
    """

    #: Callbacks read from the store per query.
    batch_size = 100

    def __init__(
        self,
        *,
        vendor: str | None = None,
        states: list[str] | None = None,
        check_interval: float = 2.0,
        after_sequence: int | None = None,
        **_retired: Any,
    ) -> None:
        super().__init__()
        self.vendor = vendor
        self.states = list(states) if states is not None else None
        self.check_interval = check_interval
        self.after_sequence = after_sequence

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "vendor": self.vendor,
                "states": self.states,
                "check_interval": self.check_interval,
                "after_sequence": self.after_sequence,
            },
        )

    @property
    def cursor_key(self) -> str:
        states = ",".join(sorted(self.states)) if self.states is not None else "all"
        return f"{CURSOR_KEY}:{self.vendor or 'all'}:{states}"

    async def _start_after(self, store: Any) -> int:
        if self.asset_state_store is not None:
            try:
                saved = await self.asset_state_store.aget(self.cursor_key)
            except (ValueError, KeyError):  # more than one asset: nowhere unambiguous to keep it
                saved = None
            if saved is not None:
                return int(saved)  # type: ignore[arg-type]
        if self.after_sequence is not None:
            return self.after_sequence
        return int(await store.alatest_sequence(self.vendor))

    async def _save_position(self) -> None:
        if self.asset_state_store is not None and self.after_sequence is not None:
            with contextlib.suppress(ValueError, KeyError):  # more than one asset: see _start_after
                await self.asset_state_store.aset(self.cursor_key, self.after_sequence)

    def payload(self, event: StoredJobEvent) -> dict[str, Any]:
        status = event.status
        return {
            "vendor": event.vendor,
            "job_id": event.job_id,
            "state": status.state.value,
            "sequence": event.sequence,
            # Inline (data:) results stay out: the payload is stored with every asset event.
            "result_urls": [url for url in status.result_urls if not url.startswith("data:")],
            "error_code": status.error_code,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_bgreplace.webhooks.store import WebhookStore

        store = WebhookStore.shared()
        self.after_sequence = await self._start_after(store)
        await self._save_position()  # a restart goes on from here, not from a newer "newest"
        while True:
            batch = await store.aevents_after(self.after_sequence, self.vendor, limit=self.batch_size)
            for event in batch:
                wanted = self.states is None or event.status.state.value in self.states
                if wanted:
                    yield TriggerEvent(self.payload(event))
                # Passed only once the triggerer took the event and asked for the next: a trigger
                # stopped in between fires it again after a restart (at least once, never skipped).
                self.after_sequence = event.sequence
                if wanted:
                    await self._save_position()
            if batch:
                await self._save_position()  # past the callbacks filtered out too
            if len(batch) < self.batch_size:
                await asyncio.sleep(self.check_interval)
