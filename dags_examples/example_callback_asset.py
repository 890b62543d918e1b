"""Schedule a DAG on vendor callbacks: an ``Asset`` watched by ``BgReplaceCallbackEventTrigger``.

The webhook receiver stores every verified callback; the event trigger (run by the triggerer)
reads the store and fires one asset event per callback, here: fal jobs that succeeded. Each event
starts a run of ``example_callback_asset`` whose ``triggering_asset_events`` carry the trigger's
payload ``{vendor, job_id, state, sequence, result_urls, error_code}``.

Airflow 3.3 accepts any ``BaseEventTrigger`` in an ``AssetWatcher`` and registers the watcher
only while this DAG is active and unpaused (new DAGs start paused: unpause it to start watching).
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Asset, AssetWatcher, dag, task

from airflow_bgreplace.triggers.events import BgReplaceCallbackEventTrigger

# [START howto_trigger_callback_asset]
FAL_RESULTS = Asset(
    "bgreplace_fal_results",
    watchers=[
        AssetWatcher(
            name="fal_succeeded_callbacks",
            trigger=BgReplaceCallbackEventTrigger(vendor="fal", states=["succeeded"]),
        )
    ],
)


@dag(
    schedule=[FAL_RESULTS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["bgreplace", "example", "webhooks"],
)
def example_callback_asset() -> None:
    @task
    def finished_jobs(triggering_asset_events: Any = None) -> list[dict[str, Any]]:
        """The callbacks that started this run (their result URLs may expire: fetch soon)."""
        payloads = [
            event.extra["payload"]
            for events in (triggering_asset_events or {}).values()
            for event in events
            if "payload" in (event.extra or {})
        ]
        for payload in payloads:
            print(f"{payload['vendor']} job {payload['job_id']} {payload['state']}: {payload['result_urls']}")
        return payloads

    finished_jobs()


example_callback_asset()
# [END howto_trigger_callback_asset]
