"""The nightly catalog refresh end to end under ``dag.test()``: incremental, budgeted, bad rows reported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_bgreplace.hooks import REMOTE_HOOKS
from tests.airflow_support import airflow_db, run_dag, task_states, xcom_values  # noqa: F401
from tests.conftest import make_product_photo, sandbox_connection

DAG_ID = "nightly_catalog_refresh"


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    """Five prompt scenes, one colour, one remove, and two bad rows."""
    folder = tmp_path / "catalog"
    (folder / "images").mkdir(parents=True)
    rows = ["sku,image,treatment,color,prompt,reference,vendor,output_format"]
    for index in range(5):
        (folder / "images" / f"p{index}.png").write_bytes(make_product_photo(colour=(40 * index, 60, 90)))
        rows.append(f"SKU-{index},images/p{index}.png,scene,,on a marble counter,,,")
    rows.append("SKU-BAD-COLOR,images/p0.png,color,#GG0000,,,,")
    rows.append("SKU-NO-FILE,images/missing.png,scene,,a beach,,,")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture
def sandbox_env(airflow_db: None, bgreplace_sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: F811
    for vendor, hook in REMOTE_HOOKS.items():
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{hook.default_conn_name.upper()}", sandbox_connection(bgreplace_sandbox, vendor)
        )
    outputs = tmp_path / "outputs"
    monkeypatch.setenv("AIRFLOW__BGREPLACE__OUTPUT_BASE", f"file://{outputs}")
    monkeypatch.setenv("AIRFLOW__BGREPLACE__DATABASE_URL", f"sqlite:///{tmp_path}/bgreplace.db")
    return outputs


def _run(catalog: Path, **params: Any) -> tuple[Any, dict[str, Any]]:
    run, _ = run_dag(DAG_ID, manifest_uri=str(catalog / "manifest.csv"), catalog="t", vendor="fal", **params)
    assert str(run.state) == "success", task_states(run)
    [summary] = xcom_values(run, "publish")
    return run, summary


def test_first_run_processes_everything_and_reports_bad_rows(
    sandbox_env: Path, catalog: Path, bgreplace_sandbox: Any
) -> None:
    _, summary = _run(catalog)

    assert summary["succeeded"] == 5 and summary["invalid"] == 2 and summary["failed"] == 0
    rows = [
        json.loads(line) for line in Path(summary["output_manifest"].removeprefix("file://")).read_text().splitlines()
    ]
    errors = {row["sku"]: row["error"] for row in rows if row["status"] == "invalid"}
    assert "'color'" in errors["SKU-BAD-COLOR"] and "'image'" in errors["SKU-NO-FILE"]
    assert Path(summary["contact_sheet"].removeprefix("file://")).is_file()
    assert bgreplace_sandbox.stats()["vendors"]["fal"]["submits_accepted"] == 5


def test_second_run_costs_nothing_and_one_change_costs_one_job(
    sandbox_env: Path, catalog: Path, bgreplace_sandbox: Any
) -> None:
    _run(catalog)
    bgreplace_sandbox.reset()

    _, second = _run(catalog)
    assert second["unchanged"] == 5 and second["succeeded"] == 0
    assert bgreplace_sandbox.stats()["vendors"]["fal"]["submits_accepted"] == 0

    (catalog / "images" / "p3.png").write_bytes(make_product_photo(colour=(250, 250, 0)))
    _, third = _run(catalog)
    assert third["succeeded"] == 1 and third["unchanged"] == 4
    assert bgreplace_sandbox.stats()["vendors"]["fal"]["submits_accepted"] == 1


def test_budget_caps_the_nights_spend(sandbox_env: Path, catalog: Path, bgreplace_sandbox: Any) -> None:
    _, summary = _run(catalog, max_cost_usd=0.08)  # fal: $0.04 a job

    assert summary["succeeded"] == 2 and summary["skipped"] == 3
    assert bgreplace_sandbox.stats()["vendors"]["fal"]["submits_accepted"] == 2


def test_failures_past_the_ratio_fail_the_run(sandbox_env: Path, catalog: Path, bgreplace_sandbox: Any) -> None:
    bgreplace_sandbox.inject_fault("fal", "job_fail", code="content_policy_violation", count=5)
    run, _ = run_dag(DAG_ID, manifest_uri=str(catalog / "manifest.csv"), catalog="t", vendor="fal")

    assert str(run.state) == "failed"
    assert task_states(run)["publish"] == ["failed"]
    # Failed items are not recorded: the next night retries them.
    _, retry = _run(catalog)
    assert retry["succeeded"] == 5


@pytest.fixture
def mixed_catalog(tmp_path: Path) -> Path:
    """One item per treatment: remove, colour, prompt scene, reference scene."""
    folder = tmp_path / "mixed"
    (folder / "images").mkdir(parents=True)
    for index in range(3):
        (folder / "images" / f"m{index}.png").write_bytes(make_product_photo(colour=(200, 30 * index, 40)))
    (folder / "images" / "scene.png").write_bytes(make_product_photo(size=(200, 150), colour=(90, 140, 90)))
    (folder / "manifest.csv").write_text(
        "sku,image,treatment,color,prompt,reference,vendor,output_format\n"
        "REMOVE-1,images/m0.png,remove,,,,,png\n"
        "COLOR-1,images/m1.png,color,#F0F0F0,,,,\n"
        "SCENE-1,images/m2.png,scene,,on a marble counter,,,\n"
    )
    return folder


@pytest.mark.parametrize("vendor", ["local", "imagepipeline"])
def test_every_treatment_on_the_local_engine_and_a_second_vendor(
    vendor: str, sandbox_env: Path, mixed_catalog: Path, bgreplace_sandbox: Any
) -> None:
    run, _ = run_dag(DAG_ID, manifest_uri=str(mixed_catalog / "manifest.csv"), catalog=f"m-{vendor}", vendor=vendor)

    assert str(run.state) == "success", task_states(run)
    [summary] = xcom_values(run, "publish")
    assert summary["succeeded"] == 3 and summary["failed"] == 0 and summary["invalid"] == 0
    rows = [
        json.loads(line) for line in Path(summary["output_manifest"].removeprefix("file://")).read_text().splitlines()
    ]
    assert {row["vendor"] for row in rows} == {vendor}
    for row in rows:
        assert Path(row["output_uri"].removeprefix("file://")).is_file()
    submits = bgreplace_sandbox.stats()["vendors"]["imagepipeline"]["submits_accepted"]
    assert submits == (3 if vendor == "imagepipeline" else 0)  # the local engine never calls a vendor
