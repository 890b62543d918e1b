from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from airflow_bgreplace.catalog.outputs import (
    OutcomeStatus,
    OutputManifestWriter,
    OutputRow,
    current_fingerprints,
    format_summary,
    latest_outcomes,
    read_output_manifest,
    summarise,
)

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)
SPEC_KEYS = {
    "sku", "status", "vendor", "endpoint", "job_id", "input_uri", "output_uri", "width", "height", "duration_s",
    "cost_usd", "error", "fingerprint", "finished_at",
}


def row(sku: str | None, status: str, *, at: float = 0.0, **fields: object) -> OutputRow:
    return OutputRow.model_validate({"sku": sku, "status": status, "finished_at": T0 + timedelta(seconds=at), **fields})


def test_each_line_is_one_json_object_with_the_documented_keys(tmp_path: Path) -> None:
    target = tmp_path / "out" / "outputs.jsonl"
    with OutputManifestWriter(target) as writer:
        writer.write(row("A-1", "succeeded", vendor="fal", cost_usd=0.02, output_uri="s3://b/A-1.png"))
        writer.write({"sku": "A-2", "status": "invalid", "error": "row 3 (sku A-2): field 'color': bad"})

    lines = target.read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert set(first) >= SPEC_KEYS
    assert first["status"] == "succeeded" and first["output_uri"] == "s3://b/A-1.png"
    assert datetime.fromisoformat(first["finished_at"]) == T0


WRITE_THEN_DIE = """
import os, signal, sys
from airflow_bgreplace.catalog.outputs import OutputManifestWriter
writer = OutputManifestWriter(sys.argv[1])
for n in range(int(sys.argv[2])):
    writer.write({"sku": f"SKU-{n}", "status": "succeeded", "cost_usd": 0.01})
os.kill(os.getpid(), signal.SIGKILL)  # no close(), no flush at exit: the worker is gone
"""


def test_rows_written_survive_an_abrupt_stop(tmp_path: Path) -> None:
    target = tmp_path / "outputs.jsonl"

    done = subprocess.run([sys.executable, "-c", WRITE_THEN_DIE, str(target), "25"], check=False)

    assert done.returncode == -9
    rows = read_output_manifest(target)
    assert [r.sku for r in rows] == [f"SKU-{n}" for n in range(25)]


def test_a_retry_appends_after_a_line_cut_short(tmp_path: Path) -> None:
    target = tmp_path / "outputs.jsonl"
    with OutputManifestWriter(target) as writer:
        for n in range(3):
            writer.write(row(f"A-{n}", "succeeded"))
    with target.open("a") as handle:  # a crash in the middle of a write
        handle.write('{"sku": "A-3", "status": "succ')

    with OutputManifestWriter(target) as writer:
        writer.write(row("A-3", "succeeded"))
        writer.write(row("A-4", "failed", error="boom"))

    assert [r.sku for r in read_output_manifest(target)] == ["A-0", "A-1", "A-2", "A-3", "A-4"]


def test_writes_from_many_threads_stay_whole_lines(tmp_path: Path) -> None:
    target = tmp_path / "outputs.jsonl"
    with OutputManifestWriter(target, fsync=False) as writer:

        def work(worker: int) -> None:
            for n in range(100):
                writer.write(row(f"W{worker}-{n}", "succeeded", error="x" * 500))

        threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    rows = read_output_manifest(target)
    assert len(rows) == 800 and len({r.sku for r in rows}) == 800
    assert writer.rows_written == 800


def test_writing_after_close_is_an_error(tmp_path: Path) -> None:
    writer = OutputManifestWriter(tmp_path / "o.jsonl")
    writer.close()
    writer.close()  # closing twice is fine

    with pytest.raises(ValueError, match="closed"):
        writer.write(row("A", "succeeded"))


def test_missing_output_manifest(tmp_path: Path) -> None:
    assert read_output_manifest(tmp_path / "none.jsonl", missing_ok=True) == []
    with pytest.raises(FileNotFoundError):
        read_output_manifest(tmp_path / "none.jsonl")


def test_object_storage_target_is_spooled_and_uploaded() -> None:
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach("memory", fs=MemoryFileSystem())
    target = ObjectStoragePath("memory://bucket/runs/outputs.jsonl")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(row("OLD-1", "succeeded").model_dump_json() + "\n")

    writer = OutputManifestWriter("memory://bucket/runs/outputs.jsonl", upload_interval_s=0)
    writer.write(row("A-1", "succeeded"))
    # Uploaded after the write already (interval 0): another reader sees the row before close.
    assert [r.sku for r in read_output_manifest(target)] == ["OLD-1", "A-1"]
    writer.write(row("A-2", "failed"))
    writer.close()

    assert [r.sku for r in read_output_manifest(target)] == ["OLD-1", "A-1", "A-2"]
    assert not writer.local_path.exists()  # the spool is cleaned up


def test_summarise_counts_costs_and_times() -> None:
    rows = [
        row("A", "succeeded", at=10, duration_s=10, cost_usd=0.05, vendor="fal"),
        row("B", "failed", at=12, duration_s=4, cost_usd=0.01, vendor="runflow", error="boom"),
        row("C", "unchanged", at=1),
        row("D", "skipped", at=1),
        row(None, "invalid", at=0, error="row 9: field 'sku': missing"),
        row("B", "succeeded", at=30, duration_s=5, cost_usd=0.01, vendor="runflow"),  # B's retry
    ]

    summary = summarise(rows)

    assert summary["items"] == 5
    assert {key: summary[key] for key in ("succeeded", "failed", "skipped", "unchanged", "invalid")} == {
        "succeeded": 2, "failed": 0, "skipped": 1, "unchanged": 1, "invalid": 1,
    }
    assert summary["cost_usd"] == pytest.approx(0.07)  # the failed try was paid for too
    assert summary["failure_ratio"] == 0.0
    assert summary["wall_time_s"] == 30.0  # from A's start (finished 10 s after 0, took 10 s) to B's retry
    assert summary["processing_s"] == 19.0
    assert summary["by_vendor"]["runflow"] == {"succeeded": 1, "failed": 1, "cost_usd": 0.02}
    json.dumps(summary)  # fit for an XCom


def test_failure_ratio_is_of_attempted_items() -> None:
    rows = [row("A", "succeeded"), row("B", "failed"), row("C", "failed"), row("D", "unchanged"), row("E", "succeeded")]

    summary = summarise(rows)

    assert summary["failure_ratio"] == 0.5
    assert format_summary(summary) == (
        "5 items: 2 succeeded, 2 failed (50.0% of attempted), 1 unchanged; cost $0.00; wall 0.0s"
    )


def test_summary_of_nothing() -> None:
    summary = summarise([])

    assert summary["items"] == 0 and summary["failure_ratio"] == 0.0 and summary["wall_time_s"] == 0.0
    assert format_summary(summary) == "0 items: none; cost $0.00; wall 0.0s"


def test_invalid_rows_are_never_merged_with_the_item_they_duplicate() -> None:
    rows = [row("A", "succeeded"), row("A", "invalid", error="row 5 (sku A): field 'sku': 'A' repeats row 2")]

    assert [r.status for r in latest_outcomes(rows)] == [OutcomeStatus.succeeded, OutcomeStatus.invalid]


def test_current_fingerprints_are_the_last_success_or_unchanged() -> None:
    rows = [
        row("A", "succeeded", fingerprint="f1"),
        row("B", "succeeded", fingerprint="f2"),
        row("A", "failed", fingerprint="f3"),
        row("B", "unchanged", fingerprint="f2b"),
        row("C", "failed", fingerprint="f4"),
    ]

    current = current_fingerprints(rows)

    assert {sku: r.fingerprint for sku, r in current.items()} == {"A": "f1", "B": "f2b"}


def test_an_empty_run_still_leaves_a_remote_manifest() -> None:
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach("memory", fs=MemoryFileSystem())
    OutputManifestWriter("memory://bucket/empty-run/outputs.jsonl").close()

    assert ObjectStoragePath("memory://bucket/empty-run/outputs.jsonl").read_text() == ""
