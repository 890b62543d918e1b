"""Every example DAG, end to end under ``dag.test()`` against the sandbox, deferrable and sync."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from airflow_bgreplace.hooks import REMOTE_HOOKS as HOOKS
from tests.airflow_support import run_dag, task_instances, task_states, xcom_values
from tests.conftest import StaticServer, make_product_photo, sandbox_connection

XCOM_KEYS = {"vendor", "job_id", "status", "output_uri", "input_uri", "width", "height", "duration_s", "cost_usd"}

EXAMPLES: dict[str, list[str]] = {
    "example_runflow_background_replace": ["restage_on_scene"],
    "example_runflow_background_color": ["recolour"],
    "example_fashn_background_change": ["restage_from_prompt"],
    "example_fal_replace_background": ["restage_from_prompt"],
    "example_imagepipeline_background": ["change_background", "remove_background"],
    "example_local_engine": ["remove", "recolour", "restage", "restage_prompt"],
}


@pytest.fixture
def sandbox_env(
    airflow_db: None,
    bgreplace_sandbox: Any,
    static_server: StaticServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """Default connections on the sandbox; outputs under a fresh folder, returned."""
    staging = static_server.staging_extra()
    for vendor, hook in HOOKS.items():
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{hook.default_conn_name.upper()}",
            sandbox_connection(bgreplace_sandbox, vendor, staging if vendor == "runflow" else {}),
        )
    outputs = tmp_path / "outputs"
    monkeypatch.setenv("AIRFLOW__BGREPLACE__OUTPUT_BASE", f"file://{outputs}")
    return outputs


def _check_result(result: dict[str, Any], vendor: str) -> None:
    assert set(result) == XCOM_KEYS
    assert result["vendor"] == vendor and result["status"] == "succeeded"
    output = Path(result["output_uri"].removeprefix("file://"))
    with Image.open(io.BytesIO(output.read_bytes())) as image:
        assert (image.width, image.height) == (result["width"], result["height"])
    assert result["cost_usd"] > 0 if vendor != "local" else result["cost_usd"] == 0


@pytest.mark.parametrize("dag_id", sorted(EXAMPLES))
def test_example_dag_succeeds_deferred(dag_id: str, sandbox_env: Path, bgreplace_sandbox: Any) -> None:
    run, _ = run_dag(dag_id)

    assert str(run.state) == "success", task_states(run)
    vendor = dag_id.split("_")[1]
    for task_id in EXAMPLES[dag_id]:
        [result] = xcom_values(run, task_id)
        _check_result(result, vendor)
    if vendor == "local":
        return  # the engine runs in the worker: no vendor was called
    stats = bgreplace_sandbox.stats()["vendors"][vendor]
    assert stats["submits_accepted"] == len(EXAMPLES[dag_id])
    assert stats["duplicate_submits"] == 0


def test_mapped_dag_over_20_images(sandbox_env: Path, bgreplace_sandbox: Any, tmp_path: Path) -> None:
    folder = tmp_path / "catalog"
    folder.mkdir()
    for index in range(20):
        (folder / f"sku-{index:02d}.png").write_bytes(make_product_photo(colour=(10 * index, 80, 200 - 5 * index)))

    run, seconds = run_dag("example_mapped_catalog", folder=str(folder), limit=20)

    assert str(run.state) == "success", task_states(run)
    results = xcom_values(run, "restage")
    assert len(results) == 20
    for result in results:
        _check_result(result, "fal")
    assert len({r["output_uri"] for r in results}) == 20
    stats = bgreplace_sandbox.stats()["vendors"]["fal"]
    assert stats["submits_accepted"] == 20 and stats["duplicate_submits"] == 0
    print(json.dumps({"mapped_20_wall_s": round(seconds, 2)}))


SYNC_TASKS = {
    "runflow_replace": "runflow",
    "runflow_color": "runflow",
    "fashn_change": "fashn",
    "fal_replace": "fal",
    "imagepipeline_change": "imagepipeline",
    "imagepipeline_remove": "imagepipeline",
}


def test_every_operator_in_sync_mode(sandbox_env: Path, bgreplace_sandbox: Any) -> None:
    run, _ = run_dag("example_sync_mode")

    assert str(run.state) == "success", task_states(run)
    for task_id, vendor in SYNC_TASKS.items():
        [result] = xcom_values(run, task_id)
        _check_result(result, vendor)
    stats = bgreplace_sandbox.stats()["vendors"]
    assert sum(stats[v]["submits_accepted"] for v in set(SYNC_TASKS.values())) == len(SYNC_TASKS)


def test_a_retry_reattaches_to_the_submitted_job_instead_of_paying_again(
    sandbox_env: Path, bgreplace_sandbox: Any
) -> None:
    # The first try submits, then its result download fails 8 times (4 attempts, and 4 more after a
    # fresh status read): the try fails after the vendor took the job.
    bgreplace_sandbox.inject_fault("fal", "5xx", route="file", count=8)

    run, _ = run_dag("example_fal_replace_background")

    assert str(run.state) == "success", task_states(run)
    [ti] = task_instances(run, "restage_from_prompt")
    assert ti.try_number == 2
    [result] = xcom_values(run, "restage_from_prompt")
    stats = bgreplace_sandbox.stats()["vendors"]["fal"]
    assert stats["submits_accepted"] == 1
    assert result["job_id"] == bgreplace_sandbox.jobs("fal")[0]["id"]
