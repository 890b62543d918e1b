"""The batch operator against the sandbox: the window, the manifest, the budget, restarts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_bgreplace.operators.batch import BgReplaceBatchOperator
from airflow_bgreplace.triggers.batch import BgReplaceBatchTrigger
from tests.airflow_support import run_dag, task_states, xcom_values
from tests.conftest import make_product_photo, sandbox_connection


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    folder = tmp_path / "catalog"
    folder.mkdir()
    for index in range(12):
        (folder / f"sku-{index:02d}.png").write_bytes(make_product_photo(colour=(20 * index, 90, 160)))
    return folder


@pytest.fixture
def fal_env(airflow_db: None, bgreplace_sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AIRFLOW_CONN_BGREPLACE_FAL_DEFAULT", sandbox_connection(bgreplace_sandbox, "fal"))
    outputs = tmp_path / "outputs"
    monkeypatch.setenv("AIRFLOW__BGREPLACE__OUTPUT_BASE", f"file://{outputs}")
    return outputs


def _rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    path = Path(summary["manifest_uri"].removeprefix("file://"))
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_batch_dag_processes_every_item_once_within_the_vendor_limit(
    fal_env: Path, catalog: Path, bgreplace_sandbox: Any
) -> None:
    run, seconds = run_dag("example_batch_catalog", folder=str(catalog), vendor="fal")

    assert str(run.state) == "success", task_states(run)
    [summary] = xcom_values(run, "restage_folder")
    assert summary["items"] == 12 and summary["succeeded"] == 12
    rows = _rows(summary)
    assert sorted(r["sku"] for r in rows) == [f"sku-{i:02d}" for i in range(12)]
    assert all(Path(r["output_uri"].removeprefix("file://")).is_file() for r in rows)
    stats = bgreplace_sandbox.stats()["vendors"]["fal"]
    assert stats["submits_accepted"] == 12 and stats["duplicate_submits"] == 0
    print(json.dumps({"batch_12_wall_s": round(seconds, 2)}))


def test_budget_caps_the_submits(fal_env: Path, catalog: Path, bgreplace_sandbox: Any) -> None:
    run, _ = run_dag("example_batch_catalog", folder=str(catalog), vendor="fal", max_cost_usd=0.2)

    [summary] = xcom_values(run, "restage_folder")
    assert summary["succeeded"] == 5  # $0.04 each: the sixth would pass $0.20
    assert summary["skipped"] == 7 and summary["spent_usd"] == pytest.approx(0.2)
    assert bgreplace_sandbox.stats()["vendors"]["fal"]["submits_accepted"] == 5


def test_a_bad_item_is_reported_and_the_batch_goes_on(fal_env: Path, catalog: Path, tmp_path: Path) -> None:
    items = [
        {"id": "good", "endpoint": "bria/replace-background",
         "inputs": {"image_url": str(catalog / "sku-00.png"), "prompt": "desk"}},
        {"id": "missing-file", "endpoint": "bria/replace-background",
         "inputs": {"image_url": str(tmp_path / "nope.png"), "prompt": "desk"}},
        {"id": "bad-steps", "endpoint": "bria/replace-background",
         "inputs": {"image_url": str(catalog / "sku-01.png"), "prompt": "desk", "steps_num": 500}},
    ]
    operator = BgReplaceBatchOperator(
        task_id="batch", vendor="fal", items=items, deferrable=False, output_base=str(tmp_path / "out")
    )
    summary = operator.execute(context={})

    assert summary["succeeded"] == 1 and summary["failed"] == 2
    errors = {r["sku"]: r.get("error") or "" for r in _rows(summary)}
    assert "image_url" in errors["missing-file"] and "no such file" in errors["missing-file"]
    assert "steps_num" in errors["bad-steps"]


def test_a_rebuilt_batch_trigger_resumes_without_resubmitting(
    fal_env: Path, catalog: Path, bgreplace_sandbox: Any, tmp_path: Path
) -> None:
    bgreplace_sandbox.configure(latency_s={"fal": 1.0})
    items = [
        {"id": p.stem, "endpoint": "bria/replace-background", "inputs": {"image_url": str(p), "prompt": "shelf"}}
        for p in sorted(catalog.glob("*.png"))[:4]
    ]
    operator = BgReplaceBatchOperator(task_id="batch", vendor="fal", items=items, output_base=str(tmp_path / "o"))
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context={})
    trigger = deferred.value.trigger
    assert len(trigger.jobs) == 4  # twice fal's concurrency for new accounts: fal queues the rest

    async def killed_then_rebuilt() -> dict[str, Any]:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(trigger.run()), timeout=0.3)
        _, kwargs = trigger.serialize()
        return (await anext(BgReplaceBatchTrigger(**kwargs).run())).payload

    event = asyncio.run(killed_then_rebuilt())
    assert {entry["job_id"] for entry in event["finished"]} <= {job["job_id"] for job in trigger.jobs}
    assert bgreplace_sandbox.stats()["vendors"]["fal"]["submits_accepted"] == 4
