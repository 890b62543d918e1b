"""The nightly, incremental catalog refresh: only new or changed photos cost money.

read + validate the manifest (bad rows reported, not fatal) -> diff against the last successful
state (image content + treatment parameters, kept in the provider database) -> one batch task per
vendor, each keeping its vendor at the concurrency limit -> output manifest, state, Asset event,
HTML contact sheet and a summary in the log. Failed items are retried the next night; the run
fails only past ``max_failure_ratio``.

Runs offline on the embedded ``local`` engine by default (``make demo``); ``vendor`` picks any
paid vendor instead (rows may name their own vendor unless ``force_vendor``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import Asset, dag, get_current_context, task

from airflow_bgreplace import settings
from airflow_bgreplace.catalog.pipeline import RunFolder, finish_run, prepare_run
from airflow_bgreplace.catalog.state import CatalogStateStore
from airflow_bgreplace.operators.batch import BgReplaceBatchOperator
from airflow_bgreplace.results import safe_path_part

SAMPLE_MANIFEST = str(Path(__file__).resolve().parent / "sample_catalog" / "manifest.csv")
CATALOG_UPDATED = Asset(name="bgreplace_catalog_refreshed")


def _run_folder(params: dict[str, Any], run_id: str) -> RunFolder:
    base = params.get("output_base") or f"{settings.output_base()}/catalog"
    return RunFolder(f"{base}/{params['catalog']}/{safe_path_part(run_id)}")


@dag(
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["bgreplace", "catalog"],
    params={
        "manifest_uri": SAMPLE_MANIFEST,
        "catalog": "sample",
        "vendor": "local",
        "force_vendor": False,
        "output_base": None,
        "max_cost_usd": None,
        "max_in_flight": None,
        "max_failure_ratio": 0.2,
    },
    doc_md=__doc__,
)
def nightly_catalog_refresh() -> None:
    @task
    def plan(params: dict[str, Any] | None = None, run_id: str | None = None) -> dict[str, Any]:
        assert params is not None and run_id is not None
        prepared = prepare_run(
            params["manifest_uri"],
            catalog=params["catalog"],
            default_vendor=params["vendor"],
            run_folder=_run_folder(params, run_id),
            state=CatalogStateStore.shared(),
            force_vendor=bool(params["force_vendor"]),
        )
        prepared["started_at"] = datetime.now(timezone.utc).isoformat()
        print(f"Catalog {params['catalog']}: {prepared['counts']}")
        return prepared

    @task
    def batches(prepared: Any, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """One batch per vendor; the run's budget is shared out by each vendor's planned cost."""
        assert params is not None
        budget = params["max_cost_usd"]
        planned = {batch["vendor"]: batch["planned_cost_usd"] for batch in prepared["batches"]}
        total = sum(planned.values())
        return [
            {
                **{key: batch[key] for key in ("vendor", "items_uri", "output_base", "manifest_uri")},
                "max_cost_usd": None if budget is None else float(budget) * planned[batch["vendor"]] / (total or 1),
            }
            for batch in prepared["batches"]
        ]

    @task(outlets=[CATALOG_UPDATED], trigger_rule="none_failed")
    def publish(prepared: Any, params: dict[str, Any] | None = None) -> dict[str, Any]:
        assert params is not None
        context = get_current_context()
        summary = finish_run(
            prepared,
            catalog=params["catalog"],
            run_folder=_run_folder(params, context["run_id"]),
            state=CatalogStateStore.shared(),
            run_id=context["run_id"],
            max_failure_ratio=float(params["max_failure_ratio"]),
            started_at=datetime.fromisoformat(prepared["started_at"]),
        )
        context["outlet_events"][CATALOG_UPDATED].extra = {
            "catalog": params["catalog"],
            "output_manifest": summary["output_manifest"],
            "succeeded": summary["succeeded"],
        }
        print(f"Contact sheet: {summary['contact_sheet']}")
        return summary

    prepared = plan()
    process = BgReplaceBatchOperator.partial(
        task_id="process", max_in_flight="{{ params.max_in_flight }}"
    ).expand_kwargs(batches(prepared))
    process >> publish(prepared)


nightly_catalog_refresh()
