"""The bad-input corpus in whole batches: every bad item gets its own named error row, the good
ones still succeed beside them, and nothing bad reaches a paid vendor.

The real BgReplaceBatchOperator, driven in-process the way Airflow drives it (execute -> defer ->
trigger event -> execute_complete), on the local engine and on the fal sandbox; then the nightly
catalog DAG under ``dag.test()`` on the corpus manifest.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_bgreplace.operators.batch import BgReplaceBatchOperator
from airflow_bgreplace.vendors.inputs import MAX_INPUT_BYTES
from tests.airflow_support import run_dag, task_states, xcom_values
from tests.bad_input_corpus import (
    ACCEPTED,
    CORPUS,
    PRIVATE_TARGETS,
    REFUSED,
    HostileServer,
    closed_port,
    corpus,
    hostile_server,  # noqa: F401 - fixture
)
from tests.conftest import sandbox_connection

#: Image inputs no vendor model accepts, with the words of their error.
BAD_URLS = {
    "url-file": ("file:///etc/passwd", "unsupported URL scheme 'file'"),
    "url-ftp": ("ftp://files.example.com/mug.png", "unsupported URL scheme 'ftp'"),
    "url-javascript": ("javascript:alert(1)", "unsupported URL scheme 'javascript'"),
    "url-data-html": ("data:text/html,<script>alert(1)</script>", "data:image/<format>;base64"),
}


def drive(operator: BgReplaceBatchOperator) -> dict[str, Any]:
    """Run the operator to the end as Airflow would: each deferral runs its trigger to its first event."""

    async def first_event(trigger: Any) -> Any:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    try:
        return dict(operator.execute(context={}))
    except TaskDeferred as deferred:
        pending = deferred
    while True:
        event = asyncio.run(first_event(pending.trigger))
        try:
            return dict(operator.execute_complete({}, event, **(pending.kwargs or {})))
        except TaskDeferred as deferred:
            pending = deferred


def rows_of(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    path = Path(summary["manifest_uri"].removeprefix("file://"))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    by_sku = {row["sku"]: row for row in rows}
    assert len(by_sku) == len(rows), "one row per item"
    return by_sku


def assert_outcomes(rows: dict[str, dict[str, Any]], good: list[str], bad: dict[str, str]) -> None:
    """Good items succeeded with a file; each bad one failed, its error naming the item and the cause."""
    assert set(rows) == set(good) | set(bad)
    for sku in good:
        assert rows[sku]["status"] == "succeeded", rows[sku]
        assert Path(rows[sku]["output_uri"].removeprefix("file://")).is_file()
    for sku, words in bad.items():
        row = rows[sku]
        assert row["status"] == "failed", row
        assert row["error"].startswith(f"item '{sku}': ") and words in row["error"], (sku, row["error"])


def _local_item(sku: str, image: Any, endpoint: str = "background/remove", **inputs: Any) -> dict[str, Any]:
    return {"id": sku, "endpoint": endpoint, "inputs": {"image": image, **inputs}}


@pytest.fixture
def local_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AIRFLOW__BGREPLACE__ENGINE_MODEL_PATH", "none")  # input handling is what is tested
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))  # the local engine's job folder
    return tmp_path / "out"


def test_local_batch_every_bad_file_url_and_colour_gets_its_own_row(
    local_outputs: Path,
    hostile_server: HostileServer,  # noqa: F811
) -> None:
    """No local connection: the default URL policy (https, public addresses) applies to image URLs."""
    good = {f"good-{name}": _local_item(f"good-{name}", str(corpus(name))) for name in ACCEPTED}
    bad: dict[str, str] = {}
    items = list(good.values())
    for name, (words, _) in REFUSED.items():
        items.append(_local_item(f"file-{name}", str(corpus(name))))
        bad[f"file-{name}"] = words
    for sku, (url, words) in BAD_URLS.items():
        items.append(_local_item(sku, url))
        bad[sku] = words
    for kind, target in PRIVATE_TARGETS.items():
        items.append(_local_item(f"redirect-{kind}", hostile_server.redirect_to(target)))
        bad[f"redirect-{kind}"] = "127.0.0.1 is a loopback address"  # refused at the first hop already
    items.append(_local_item("direct-metadata", PRIVATE_TARGETS["link-local"]))
    bad["direct-metadata"] = "169.254.169.254 is a link-local address"
    items.append(_local_item("color-range", str(corpus("good.png")), "background/color", color=[300, 0, 0]))
    bad["color-range"] = "colour channels must be 0-255"
    items.append(_local_item("color-hex", str(corpus("good.png")), "background/color", color="#GG0000"))
    bad["color-hex"] = "'#GG0000' is not a colour"

    redirects_before = hostile_server.hits.count("/redirect")
    summary = drive(BgReplaceBatchOperator(task_id="b", vendor="local", items=items, output_base=str(local_outputs)))

    assert summary["succeeded"] == len(good) and summary["failed"] == len(bad)
    assert_outcomes(rows_of(summary), list(good), bad)
    assert hostile_server.hits.count("/redirect") == redirects_before  # refused before any connection


def test_local_batch_with_a_permissive_connection_still_bounds_every_fetch(
    local_outputs: Path,
    hostile_server: HostileServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An in-house image server on http://127.0.0.1 is allowed; size, time and redirects stay bounded."""
    extra = {
        "allow_http": True,
        "allow_private_addresses": True,
        "fetch_timeout_s": 1.5,
        "retry_max_attempts": 2,
        "retry_base_delay_s": 0.01,
    }
    connection = json.dumps({"conn_type": "bgreplace_local", "extra": extra})
    monkeypatch.setenv("AIRFLOW_CONN_BGREPLACE_LOCAL_DEFAULT", connection)
    cases = {
        "served-photo": (hostile_server.url("photo"), None),
        "same-photo-redirected": (hostile_server.redirect_to("/photo"), None),
        "endless-body": (hostile_server.url("endless"), f"larger than {MAX_INPUT_BYTES} bytes"),
        "declared-huge": (hostile_server.url("huge"), "Content-Length 10737418240"),
        "trickle": (hostile_server.url("trickle"), "download deadline"),
        "text-over-http": (hostile_server.url("file?name=text_named.png"), "not an image (it looks like text)"),
        "not-found": (hostile_server.url("nothing-here"), "HTTP 404"),
        "unreachable": (f"http://127.0.0.1:{closed_port()}/p.png", "ConnectError"),
        "redirect-to-file": (hostile_server.redirect_to("file:///etc/passwd"), "only http(s) URLs are fetched"),
        "redirect-loop": (hostile_server.url("loop"), "more than 3 redirects"),
    }
    items = [_local_item(sku, url) for sku, (url, _) in cases.items()]

    summary = drive(BgReplaceBatchOperator(task_id="b", vendor="local", items=items, output_base=str(local_outputs)))

    good = [sku for sku, (_, words) in cases.items() if words is None]
    assert_outcomes(rows_of(summary), good, {sku: words for sku, (_, words) in cases.items() if words})


@pytest.fixture
def fal_sandbox(airflow_db: None, bgreplace_sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AIRFLOW_CONN_BGREPLACE_FAL_DEFAULT", sandbox_connection(bgreplace_sandbox, "fal"))
    return bgreplace_sandbox


def _fal_item(sku: str, image: Any) -> dict[str, Any]:
    # The prompt differs per item: good.png and png_named.jpg are the same bytes, and the sandbox
    # counts two identical requests as a duplicate submit.
    return {"id": sku, "endpoint": "bria/replace-background", "inputs": {"image_url": image, "prompt": f"shelf {sku}"}}


def test_fal_batch_bad_items_cost_nothing_and_good_ones_succeed(fal_sandbox: Any, tmp_path: Path) -> None:
    good = [f"good-{name}" for name in ACCEPTED]
    items = [_fal_item(f"good-{name}", str(corpus(name))) for name in ACCEPTED]
    bad = {}
    for name, (words, _) in REFUSED.items():
        items.append(_fal_item(f"file-{name}", str(corpus(name))))
        bad[f"file-{name}"] = words
    for sku, (url, words) in BAD_URLS.items():
        items.append(_fal_item(sku, url))
        bad[sku] = words

    summary = drive(BgReplaceBatchOperator(task_id="b", vendor="fal", items=items, output_base=str(tmp_path / "o")))

    assert_outcomes(rows_of(summary), good, bad)
    stats = fal_sandbox.stats()["vendors"]["fal"]
    assert stats["submits_accepted"] == len(good) and stats["duplicate_submits"] == 0  # no bad item was paid for


def test_fal_batch_result_downloads_are_bounded_per_item(fal_sandbox: Any, tmp_path: Path) -> None:
    items = [_fal_item(f"sku-{index}", str(corpus("good.png"))) for index in range(3)]
    operator = BgReplaceBatchOperator(
        task_id="b", vendor="fal", items=items, output_base=str(tmp_path / "o"), max_download_bytes=200
    )
    summary = drive(operator)

    rows = rows_of(summary)
    assert summary["failed"] == 3 and summary["succeeded"] == 0
    for row in rows.values():
        assert row["error"].startswith("download: ") and "larger than 200 bytes" in row["error"], row
        assert row["job_id"]  # the vendor's job is named, so the paid result can still be fetched


# --------------------------------------------------------------------------- the catalog path


def test_the_nightly_dag_on_the_corpus_manifest(
    airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__BGREPLACE__ENGINE_MODEL_PATH", "none")
    monkeypatch.setenv("AIRFLOW__BGREPLACE__OUTPUT_BASE", f"file://{tmp_path / 'outputs'}")
    monkeypatch.setenv("AIRFLOW__BGREPLACE__DATABASE_URL", f"sqlite:///{tmp_path}/bgreplace.db")
    run, _ = run_dag(
        "nightly_catalog_refresh",
        manifest_uri=str(CORPUS / "manifest.csv"),
        catalog="bad-inputs",
        vendor="local",
        force_vendor=True,
        max_failure_ratio=1.0,
    )

    assert str(run.state) == "success", task_states(run)
    [summary] = xcom_values(run, "publish")
    rows = {
        row["sku"]: row
        for row in map(json.loads, Path(summary["output_manifest"].removeprefix("file://")).read_text().splitlines())
    }
    images = _manifest_images()
    assert set(rows) == set(images)  # one row per manifest row
    succeeded = {sku for sku, row in rows.items() if row["status"] == "succeeded"}
    assert succeeded == {sku for sku in images if sku.startswith("GOOD-")} and len(succeeded) == len(ACCEPTED)
    for sku, name in images.items():
        if name in REFUSED:  # caught by the vendor layer before the engine: one failed row each
            row = rows[sku]
            assert row["status"] == "failed" and row["error"].startswith(f"item '{sku}': "), row
            assert REFUSED[name][0] in row["error"], row
    invalid = {sku for sku, row in rows.items() if row["status"] == "invalid"}
    assert invalid == {sku for sku in rows if sku.startswith(("BAD-COLOR", "BAD-URL", "BAD-MISSING"))}
    for sku in invalid:
        assert f"(sku {sku}): field " in rows[sku]["error"]
    sheet = Path(summary["contact_sheet"].removeprefix("file://")).read_text()
    bomb_card = sheet[sheet.rindex("<article", 0, sheet.index("<h3>BAD-BOMB</h3>")) :].split("</article>", 1)[0]
    assert "not readable as an image (DecompressionBombError)" in bomb_card  # not thumbnailed either


def _manifest_images() -> dict[str, str]:
    import csv

    with (CORPUS / "manifest.csv").open() as handle:
        return {row["sku"]: row["image"] for row in csv.DictReader(handle)}
