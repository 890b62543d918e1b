"""The fault matrix: every vendor x every fault kind, through the real batch operator and trigger.

Each cell runs a small batch through :class:`BgReplaceBatchOperator` (driven like Airflow drives it:
execute -> defer -> trigger event -> execute_complete ...) against the sandbox with scripted faults,
then checks, from the output manifest and the sandbox's own counters, that

* every item has exactly one terminal row, with the expected status: ``succeeded`` where the fault
  is transient, ``failed`` naming the vendor's code where the job fails, ``uncertain`` where a
  submit may have been accepted (and the sandbox shows whether it was);
* no item was submitted twice (the sandbox's fingerprint counter, and at most one job per item);
* every succeeded item's output file exists and decodes as a whole image;
* no result is lost: every job the sandbox finished successfully is delivered, or its item is
  reported (uncertain submit, or expired result URL named as such);
* every scripted fault was consumed (a fault that never fired would prove nothing).

Each cell prints one ``FAULT_MATRIX`` line; the table of all cells is printed at the end of the
session (see ``conftest.py``).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from airflow_bgreplace.operators.batch import BgReplaceBatchOperator
from airflow_bgreplace.sandbox import fal as fal_sandbox
from airflow_bgreplace.sandbox import fashn as fashn_sandbox
from airflow_bgreplace.sandbox import imagepipeline as imagepipeline_sandbox
from airflow_bgreplace.sandbox import runflow as runflow_sandbox
from tests.conftest import StaticServer, make_product_photo, sandbox_connection
from tests.deferral_driver import MemoryTaskStateStore, TaskInstanceRef, drive
from tests.reliability.matrix import MatrixRow, record

VENDORS = ("fal", "fashn", "imagepipeline", "runflow")
ITEMS = 8
#: Client timeout of the "slow answer" cells; the slow answers take SLOW_S.
SHORT_TIMEOUT_S = 1.0
SLOW_S = 1.5
#: Every other cell: generous, so that a loaded machine never turns a normal answer into a fault.
NORMAL_TIMEOUT_S = 10.0

#: Each vendor's documented job failure codes, as the sandbox emulates them (its tables cite the
#: vendor docs in /work/shared/vendors/; the Runflow stages beyond the documented
#: INPUT_VALIDATION_FAILED and MODEL_UNAVAILABLE are marked assumptions there).
FAILURE_CODES: dict[str, tuple[str, ...]] = {
    "runflow": tuple(runflow_sandbox.FAILURE_STAGES),
    "fashn": tuple(fashn_sandbox.ERROR_MESSAGES),
    "fal": (*fal_sandbox.MODEL_ERRORS, *fal_sandbox.REQUEST_ERRORS),
    "imagepipeline": tuple(imagepipeline_sandbox.FAILURE_CODES),
}


def _item(vendor: str, index: int, photo: Path) -> dict[str, Any]:
    """One item of the vendor's main endpoint; each item's request differs (distinct fingerprints)."""
    prompt = f"studio shelf, variant {index}"
    endpoint, inputs = {
        "runflow": (
            "background-color",
            {"image_url": str(photo), "color_red": 10 * index, "color_green": 120, "color_blue": 200},
        ),
        "fashn": ("background-change", {"image": str(photo), "prompt": prompt}),
        "fal": ("bria/replace-background", {"image_url": str(photo), "prompt": prompt}),
        "imagepipeline": ("background/change", {"input_image": str(photo), "prompt": prompt}),
    }[vendor]
    return {"id": f"sku-{index:02d}", "endpoint": endpoint, "inputs": inputs}


@dataclass
class BatchRun:
    vendor: str
    items: list[dict[str, Any]]
    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    stats: dict[str, Any]
    jobs: list[dict[str, Any]]
    deferrals: int

    @property
    def by_sku(self) -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = {}
        for row in self.rows:
            grouped.setdefault(row["sku"], []).append(row)
        return grouped


@pytest.fixture
def connect(
    bgreplace_sandbox: Any, static_server: StaticServer, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., None]:
    """Points the vendor's default connection at the sandbox, with a given client timeout."""
    # Jobs end in 50 ms; the vendors' own concurrency, rate limits and URL semantics stay as documented.
    bgreplace_sandbox.configure(latency_s=0.05, latency_distribution="fixed")

    def set_connection(vendor: str, timeout_s: float = NORMAL_TIMEOUT_S) -> None:
        extra: dict[str, Any] = {
            "timeout_s": timeout_s,
            "retry_max_attempts": 4,
            "retry_base_delay_s": 0.02,
            "retry_deadline_s": 20,
        }
        if vendor == "runflow":
            extra.update(static_server.staging_extra())  # Runflow takes only public URLs
        monkeypatch.setenv(
            f"AIRFLOW_CONN_BGREPLACE_{vendor.upper()}_DEFAULT", sandbox_connection(bgreplace_sandbox, vendor, extra)
        )

    return set_connection


def _photos(folder: Path, count: int) -> list[Path]:
    folder.mkdir(exist_ok=True)
    photos = []
    for index in range(count):
        photo = folder / f"sku-{index:02d}.png"
        photo.write_bytes(make_product_photo(colour=(20 + 9 * index, 60, 160)))
        photos.append(photo)
    return photos


@pytest.fixture
def run_batch(bgreplace_sandbox: Any, connect: Callable[..., None], tmp_path: Path) -> Callable[..., BatchRun]:
    def run(
        vendor: str,
        *,
        items: int = ITEMS,
        timeout_s: float = NORMAL_TIMEOUT_S,
        resume_delay_s: float = 0.0,
        download_timeout_s: float = 30.0,
        settle_s: float = 0.0,
    ) -> BatchRun:
        batch = [_item(vendor, index, photo) for index, photo in enumerate(_photos(tmp_path / "photos", items))]
        connect(vendor, timeout_s)
        operator = BgReplaceBatchOperator(
            task_id=f"matrix_{vendor}",
            vendor=vendor,
            items=batch,
            output_base=str(tmp_path / "out"),
            poll_interval=0.05,
            timeout=120,
            download_timeout=download_timeout_s,
            parallel_io=1,  # one by one, in item order: scripted faults land on known items
        )
        started = time.monotonic()
        driven = drive(operator, with_state_store=True, resume_delay_s=resume_delay_s)
        time.sleep(max(0.0, started + settle_s - time.monotonic()))
        summary = driven.result
        manifest = Path(str(summary["manifest_uri"]).removeprefix("file://"))
        rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
        stats = bgreplace_sandbox.stats()
        return BatchRun(
            vendor=vendor,
            items=batch,
            summary=summary,
            rows=rows,
            stats=stats["vendors"][vendor],
            jobs=[job for job in stats["jobs"] if job["vendor"] == vendor],
            deferrals=driven.deferrals,
        )

    return run


def _row_status(row: dict[str, Any]) -> str:
    """The batch's own outcome: the manifest says failed for uncertain and timeout, the error says which."""
    error = row.get("error") or ""
    for detail in ("uncertain", "timeout"):
        if row["status"] == "failed" and error.startswith(f"{detail}:"):
            return detail
    return str(row["status"])


def _valid_image(path: Path) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(path.read_bytes())) as image:
            image.load()  # a truncated file fails here, not at open
            return image.width, image.height
    except (OSError, ValueError):
        return None


@dataclass
class Expected:
    #: sku -> succeeded | failed | uncertain (every other sku: succeeded)
    status: dict[str, str] = field(default_factory=dict)
    #: sku -> text its error must contain
    error_contains: dict[str, str] = field(default_factory=dict)
    #: uncertain skus whose submit the sandbox did accept
    accepted_uncertain: int = 0


def check(run: BatchRun, expected: Expected, cell: str, faults_scripted: int) -> None:
    """The invariants of every cell; records the cell's counts for the session table."""
    skus = [item["id"] for item in run.items]
    by_sku = run.by_sku
    missing = [sku for sku in skus if sku not in by_sku]
    assert not missing, f"items without a terminal row: {missing}"
    assert all(len(rows) == 1 for rows in by_sku.values()), {s: len(r) for s, r in by_sku.items() if len(r) > 1}
    assert set(by_sku) == set(skus)

    statuses = {sku: _row_status(by_sku[sku][0]) for sku in skus}
    wanted = {sku: expected.status.get(sku, "succeeded") for sku in skus}
    assert statuses == wanted, {sku: by_sku[sku][0].get("error") for sku in skus if statuses[sku] != wanted[sku]}
    for sku, text in expected.error_contains.items():
        assert text in (by_sku[sku][0].get("error") or ""), (sku, by_sku[sku][0].get("error"))
    counts = {status: list(wanted.values()).count(status) for status in ("succeeded", "failed", "uncertain")}
    assert {k: run.summary[k] for k in counts} == counts

    bad_outputs = []
    for sku in skus:
        row = by_sku[sku][0]
        if row["status"] != "succeeded":
            continue
        size = _valid_image(Path(str(row["output_uri"]).removeprefix("file://")))
        if size is None or size != (row["width"], row["height"]):
            bad_outputs.append(sku)
    assert not bad_outputs, f"succeeded without a whole image: {bad_outputs}"

    # The sandbox's side: one job per item at most, every job accounted for.
    stats, jobs = run.stats, run.jobs
    assert stats["duplicate_submits"] == 0
    assert stats["submits_accepted"] == len(jobs) <= len(skus)
    row_jobs = {row["job_id"] for row in run.rows if row.get("job_id")}
    sandbox_jobs = {job["id"] for job in jobs}
    assert row_jobs <= sandbox_jobs, row_jobs - sandbox_jobs
    orphans = [job for job in jobs if job["id"] not in row_jobs]
    assert len(orphans) == expected.accepted_uncertain, orphans
    for row in run.rows:
        if row["status"] == "succeeded":
            assert next(job for job in jobs if job["id"] == row["job_id"])["state"] == "succeeded"
    # No result lost: a job the vendor finished well is delivered unless its item says why not.
    rows_by_job = {row["job_id"]: row for row in run.rows if row.get("job_id")}
    undelivered = [
        rows_by_job[job["id"]]
        for job in jobs
        if job["state"] == "succeeded" and job["id"] in rows_by_job and rows_by_job[job["id"]]["status"] != "succeeded"
    ]
    unexplained = [row["sku"] for row in undelivered if "download" not in (row.get("error") or "")]
    assert not unexplained, f"finished at the vendor, not delivered, no reason given: {unexplained}"
    lost = len(missing) + len(bad_outputs) + len(unexplained)
    assert run.stats["faults_injected"] >= faults_scripted
    record(
        MatrixRow(
            vendor=run.vendor,
            cell=cell,
            items=len(skus),
            faults_injected=int(stats["faults_injected"]),
            succeeded=counts["succeeded"],
            failed=counts["failed"],
            uncertain=counts["uncertain"],
            uncertain_accepted=expected.accepted_uncertain,
            undelivered_named=len(undelivered),
            duplicates=int(stats["duplicate_submits"]),
            lost=lost,
            deferrals=run.deferrals,
        )
    )


def _no_pending_faults(sandbox: Any) -> None:
    pending = sandbox.stats()["pending_faults"]
    assert pending == [], f"scripted faults never fired: {pending}"


# --------------------------------------------------------------------------------------------
# the cells
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    kind: str
    route: str
    count: int
    options: dict[str, Any] = field(default_factory=dict)
    #: Only for these vendors (fal alone has a separate result route).
    vendors: tuple[str, ...] = VENDORS


@dataclass(frozen=True)
class TransientCell:
    """Faults the product must ride out: every item ends succeeded."""

    name: str
    faults: tuple[Fault, ...]
    timeout_s: float = NORMAL_TIMEOUT_S


TRANSIENT_CELLS = (
    TransientCell(
        "5xx_burst",
        (Fault("5xx", "status", 6), Fault("5xx", "file", 2), Fault("5xx", "result", 2, vendors=("fal",))),
    ),
    # Past the download's own 4 attempts: downloaded again after a fresh status read.
    TransientCell("download_5xx_past_client_retries", (Fault("5xx", "file", 5),)),
    TransientCell("429_retry_after", (Fault("429", "status", 1, {"retry_after": 0}), Fault("429", "submit", 1))),
    TransientCell(
        "429_no_retry_after", (Fault("429_no_retry_after", "status", 4), Fault("429_no_retry_after", "submit", 3))
    ),
    # Longer than the client's 4 attempts: the batch itself waits, then submits the same item again.
    TransientCell("429_past_client_retries", (Fault("429_no_retry_after", "submit", 6),)),
    TransientCell(
        "slow_past_client_timeout",
        (
            Fault("slow", "status", 2, {"slow_s": SLOW_S}),
            Fault("slow", "file", 1, {"slow_s": SLOW_S}),
            Fault("slow", "result", 1, {"slow_s": SLOW_S}, vendors=("fal",)),
        ),
        timeout_s=SHORT_TIMEOUT_S,  # each download attempt too; the download's own budget stays 30 s
    ),
    TransientCell(
        "dropped_connections",
        (
            Fault("drop", "status", 2),
            Fault("drop_mid_response", "status", 3),
            Fault("drop", "file", 1),
            Fault("drop_mid_response", "file", 1),
            Fault("drop_mid_response", "result", 1, vendors=("fal",)),
        ),
    ),
    TransientCell(
        "malformed_json",
        (
            Fault("malformed_json", "status", 3),
            Fault("malformed_json", "file", 1),  # on a file: a 200 with half the image; downloaded again
            Fault("malformed_json", "result", 1, vendors=("fal",)),
        ),
    ),
)


def _inject(sandbox: Any, vendor: str, faults: tuple[Fault, ...]) -> int:
    injected = 0
    for fault in faults:
        if vendor in fault.vendors:
            sandbox.inject_fault(vendor, fault.kind, route=fault.route, count=fault.count, **fault.options)
            injected += fault.count
    return injected


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("cell", TRANSIENT_CELLS, ids=lambda cell: cell.name)
def test_transient_faults_every_item_succeeds(
    cell: TransientCell, vendor: str, run_batch: Callable[..., BatchRun], bgreplace_sandbox: Any
) -> None:
    scripted = _inject(bgreplace_sandbox, vendor, cell.faults)

    run = run_batch(vendor, timeout_s=cell.timeout_s)

    _no_pending_faults(bgreplace_sandbox)
    check(run, Expected(), cell.name, scripted)


@dataclass(frozen=True)
class SubmitCell:
    """A fault on the submit: the first ``count`` items end uncertain and are never resent."""

    name: str
    kind: str
    count: int
    #: Whether the sandbox took the job before the answer went wrong.
    accepted: bool
    options: dict[str, Any] = field(default_factory=dict)
    timeout_s: float = NORMAL_TIMEOUT_S


SUBMIT_CELLS = (
    SubmitCell("submit_5xx_burst", "5xx", 2, accepted=False),
    SubmitCell("submit_5xx_after_accept", "5xx_after_accept", 2, accepted=True),
    SubmitCell("submit_drop_before_accept", "drop", 1, accepted=False),
    SubmitCell("submit_drop_after_accept", "drop_after_accept", 1, accepted=True),
    SubmitCell("submit_drop_mid_response", "drop_mid_response", 1, accepted=True),
    SubmitCell("submit_slow_past_client_timeout", "slow", 1, True, {"slow_s": SLOW_S}, timeout_s=SHORT_TIMEOUT_S),
    SubmitCell("submit_malformed_json", "malformed_json", 1, accepted=True),
)


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("cell", SUBMIT_CELLS, ids=lambda cell: cell.name)
def test_submit_faults_end_uncertain_and_are_never_resent(
    cell: SubmitCell, vendor: str, run_batch: Callable[..., BatchRun], bgreplace_sandbox: Any
) -> None:
    bgreplace_sandbox.inject_fault(vendor, cell.kind, route="submit", count=cell.count, **cell.options)

    # A slow submit is accepted only when the sandbox wakes up: wait for it before counting jobs.
    run = run_batch(vendor, timeout_s=cell.timeout_s, settle_s=SLOW_S + 0.3 if cell.kind == "slow" else 0.0)

    _no_pending_faults(bgreplace_sandbox)
    uncertain = {f"sku-{i:02d}": "uncertain" for i in range(cell.count)}
    expected = Expected(
        status=uncertain,
        error_contains={sku: "not resent" for sku in uncertain},
        accepted_uncertain=cell.count if cell.accepted else 0,
    )
    check(run, expected, cell.name, cell.count)


@pytest.mark.parametrize("vendor", VENDORS)
def test_every_documented_failure_code_fails_its_item_by_name(
    vendor: str, run_batch: Callable[..., BatchRun], bgreplace_sandbox: Any
) -> None:
    codes = FAILURE_CODES[vendor]
    # Scripts are taken in submit order, and the batch submits items in order: item i gets codes[i].
    for code in codes:
        bgreplace_sandbox.inject_fault(vendor, "job_fail", code=code)

    run = run_batch(vendor, items=len(codes) + 2)

    _no_pending_faults(bgreplace_sandbox)
    failed = {f"sku-{i:02d}": code for i, code in enumerate(codes)}
    expected = Expected(status=dict.fromkeys(failed, "failed"), error_contains=failed)
    check(run, expected, "job_failure_codes", 0)
    by_job = {job["id"]: job for job in run.jobs}
    for row in run.rows:
        if row["sku"] in failed:
            assert by_job[row["job_id"]]["error_code"] == failed[row["sku"]]


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_result_cut_short_twice_fails_its_item_by_name_and_stores_nothing(
    vendor: str, run_batch: Callable[..., BatchRun], bgreplace_sandbox: Any
) -> None:
    # The first download and the one after a fresh status read both arrive cut in half (HTTP 200).
    bgreplace_sandbox.inject_fault(vendor, "malformed_json", route="file", count=2)

    run = run_batch(vendor, items=4)

    _no_pending_faults(bgreplace_sandbox)
    expected = Expected(status={"sku-00": "failed"}, error_contains={"sku-00": "not a whole image"})
    check(run, expected, "download_cut_short_twice", 2)
    assert not list(Path(run.summary["output_base"]).glob("sku-00.*"))  # no half image left behind


EXPIRY_ITEMS = 3
#: Vendors that sign a fresh URL on every status read (runflow.md §6, imagepipeline.md §6).
RESIGNING_VENDORS = ("imagepipeline", "runflow")


@pytest.mark.parametrize("vendor", VENDORS)
def test_result_urls_that_expire_before_download(
    vendor: str, run_batch: Callable[..., BatchRun], bgreplace_sandbox: Any
) -> None:
    # URLs live 0.5-1.5 s; the task resumes 1.6 s after the trigger read them (a slow scheduler).
    bgreplace_sandbox.configure(result_url_ttl_s={vendor: 0.5})

    run = run_batch(vendor, items=EXPIRY_ITEMS, resume_delay_s=1.6)

    skus = [f"sku-{i:02d}" for i in range(EXPIRY_ITEMS)]
    assert run.stats["files_expired"] >= EXPIRY_ITEMS  # every first URL was stale
    if vendor in RESIGNING_VENDORS:
        check(run, Expected(), "expired_url_reissued", 0)  # a fresh status read signed new URLs
    else:
        # CDN URLs are fixed per file: once expired, nothing can fetch the result. Say so.
        expected = Expected(status=dict.fromkeys(skus, "failed"), error_contains=dict.fromkeys(skus, "expired"))
        check(run, expected, "expired_url_cdn", 0)


@pytest.mark.parametrize("vendor", VENDORS)
def test_result_urls_that_are_always_expired_fail_naming_expiry(
    vendor: str, run_batch: Callable[..., BatchRun], bgreplace_sandbox: Any
) -> None:
    bgreplace_sandbox.configure(result_expire_immediately=True)

    run = run_batch(vendor, items=EXPIRY_ITEMS)

    skus = [f"sku-{i:02d}" for i in range(EXPIRY_ITEMS)]
    expected = Expected(status=dict.fromkeys(skus, "failed"), error_contains=dict.fromkeys(skus, "expired"))
    check(run, expected, "expired_url_always", 0)
    assert run.stats["files_expired"] >= EXPIRY_ITEMS


# --------------------------------------------------------------------------------------------
# the single-job operators (operators/base.py): the same faults, one job, one task
# --------------------------------------------------------------------------------------------


def _single_job_operator(vendor: str, photo: Path, output: Path) -> Any:
    from airflow_bgreplace.operators import (
        FalReplaceBackgroundOperator,
        FashnBackgroundChangeOperator,
        ImagePipelineBackgroundChangeOperator,
        RunflowBackgroundColorOperator,
    )

    common: dict[str, Any] = {"task_id": f"single_{vendor}", "output_path": str(output), "poll_interval": 0.05}
    prompt = "on a marble kitchen counter"
    if vendor == "runflow":
        return RunflowBackgroundColorOperator(
            image_url=str(photo), color_red=30, color_green=120, color_blue=200, **common
        )
    if vendor == "fashn":
        return FashnBackgroundChangeOperator(image=str(photo), prompt=prompt, **common)
    if vendor == "fal":
        return FalReplaceBackgroundOperator(image_url=str(photo), prompt=prompt, **common)
    return ImagePipelineBackgroundChangeOperator(input_image=str(photo), prompt=prompt, **common)


SINGLE_JOB_FAULTS = (
    Fault("5xx", "status", 3),
    Fault("drop_mid_response", "status", 1),
    Fault("malformed_json", "status", 1),
    Fault("5xx", "result", 1, vendors=("fal",)),
    Fault("drop_mid_response", "file", 1),
    Fault("malformed_json", "file", 1),
)


@pytest.mark.parametrize("vendor", VENDORS)
def test_single_job_operator_rides_out_transient_faults(
    vendor: str, connect: Callable[..., None], bgreplace_sandbox: Any, tmp_path: Path
) -> None:
    connect(vendor)
    scripted = _inject(bgreplace_sandbox, vendor, SINGLE_JOB_FAULTS)
    [photo] = _photos(tmp_path / "photos", 1)
    operator = _single_job_operator(vendor, photo, tmp_path / "out" / "result")

    driven = drive(operator, with_state_store=True)

    _no_pending_faults(bgreplace_sandbox)
    result = driven.result
    assert result["status"] == "succeeded"
    output = Path(str(result["output_uri"]).removeprefix("file://"))
    assert _valid_image(output) == (result["width"], result["height"])
    stats = bgreplace_sandbox.stats()["vendors"][vendor]
    [job] = bgreplace_sandbox.jobs(vendor)
    assert (stats["submits_accepted"], stats["duplicate_submits"], job["id"]) == (1, 0, result["job_id"])
    record(
        MatrixRow(
            vendor, "single_job_transient", 1, int(stats["faults_injected"]), 1, 0, 0, 0, 0, 0, 0, driven.deferrals
        )
    )
    assert stats["faults_injected"] >= scripted


#: A code per vendor that the vendor marks not retryable (a retryable one hands the item to Airflow's retry).
SINGLE_JOB_FAILURE = {
    "runflow": "INPUT_VALIDATION_FAILED",
    "fashn": "ImageLoadError",
    "fal": "image_load_error",
    "imagepipeline": "INPUT_INVALID",
}


@pytest.mark.parametrize("vendor", VENDORS)
def test_single_job_operator_fails_naming_the_vendor_code(
    vendor: str, connect: Callable[..., None], bgreplace_sandbox: Any, tmp_path: Path
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    connect(vendor)
    code = SINGLE_JOB_FAILURE[vendor]
    bgreplace_sandbox.inject_fault(vendor, "job_fail", code=code)
    [photo] = _photos(tmp_path / "photos", 1)
    operator = _single_job_operator(vendor, photo, tmp_path / "out" / "result")

    with pytest.raises(AirflowFailException) as caught:  # not retried: a new submit would fail alike
        drive(operator, with_state_store=True)

    [job] = bgreplace_sandbox.jobs(vendor)
    assert code in str(caught.value) and job["id"] in str(caught.value)
    stats = bgreplace_sandbox.stats()["vendors"][vendor]
    assert (stats["submits_accepted"], stats["duplicate_submits"]) == (1, 0)
    record(MatrixRow(vendor, "single_job_failure_code", 1, 0, 0, 1, 0, 0, 0, 0, 0, 0))


@pytest.mark.parametrize("vendor", VENDORS)
def test_single_job_operator_never_resends_an_uncertain_submit(
    vendor: str, connect: Callable[..., None], bgreplace_sandbox: Any, tmp_path: Path
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    connect(vendor)
    bgreplace_sandbox.inject_fault(vendor, "5xx_after_accept", route="submit")
    [photo] = _photos(tmp_path / "photos", 1)
    operator = _single_job_operator(vendor, photo, tmp_path / "out" / "result")
    ti = TaskInstanceRef(task_id=operator.task_id)

    # The failed try, then a cleared re-run of the same task instance (a new try, a new state store).
    for try_number in (1, 2):
        ti.try_number = try_number
        with pytest.raises(AirflowFailException, match="may have been accepted"):
            drive(operator, context={"ti": ti, "task_state_store": MemoryTaskStateStore()})

    stats = bgreplace_sandbox.stats()["vendors"][vendor]
    assert (stats["submits_accepted"], stats["duplicate_submits"]) == (1, 0)  # the vendor did take it, once
    record(MatrixRow(vendor, "single_job_uncertain_submit", 1, int(stats["faults_injected"]), 0, 0, 1, 1, 0, 0, 0, 0))
