"""The nightly catalog refresh, as plain functions the DAG's tasks call (and tests call directly).

``prepare_run``: read and validate the manifest (bad rows reported, not fatal), diff every item
against the catalog state (fingerprint of image content + treatment parameters), and write one
JSONL plan per vendor holding only the new or changed items (files, not XCom: a catalog may
hold 100,000 rows). ``finish_run``: merge the batch manifests with the unchanged and invalid
rows into the run's output manifest, record the successes in the state, write the HTML contact
sheet, and fail the run only past the allowed failure ratio. Failed items are not recorded, so
the next night retries them.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow_bgreplace.catalog import locations
from airflow_bgreplace.catalog.contact_sheet import write_contact_sheet
from airflow_bgreplace.catalog.fingerprint import content_hash, item_fingerprint
from airflow_bgreplace.catalog.manifest import CatalogItem, read_manifest
from airflow_bgreplace.catalog.outputs import (
    OutcomeStatus,
    OutputManifestWriter,
    OutputRow,
    format_summary,
    read_output_manifest,
    summarise,
)
from airflow_bgreplace.catalog.plan import UnsupportedTreatment, plan_job, price_usd
from airflow_bgreplace.catalog.state import CatalogStateStore, ItemState


class FailureRatioExceeded(RuntimeError):
    """More items failed tonight than the run allows."""


@dataclass(frozen=True)
class RunFolder:
    """Where one run writes: ``<base>/<run>/`` holds plans, images, manifests and the sheet."""

    root: str

    def path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def thumbnail_cache(self) -> Path | None:
        """Beside the catalog's runs, shared by them: the contact sheets' thumbnails (local runs only)."""
        local = locations.local_path(self.root.rstrip("/"))
        return None if local is None else local.parent / ".thumbnail_cache"


def _image_key(location: str) -> str | None:
    """Path, size and mtime of a local file: unchanged means the stored content hash still holds."""
    # Manifest images are normalised to absolute paths or URIs: a plain string needs no Path
    # object (this runs once per row, 100,000 times on a large catalog).
    path: str | Path | None = location if locations.scheme_of(location) is None else locations.local_path(location)
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return f"{path}|{stat.st_size}|{stat.st_mtime_ns}"


def _hash(location: str, previous: ItemState | None, key: str | None) -> str:
    if previous is not None and key is not None and previous.image_key == key:
        return previous.image_hash
    return content_hash(location)


def prepare_run(
    manifest_uri: str,
    *,
    catalog: str,
    default_vendor: str,
    run_folder: RunFolder,
    state: CatalogStateStore,
    force_vendor: bool = False,
) -> dict[str, Any]:
    """Validate, diff and plan. Returns ``{"batches": [...], "preliminary_uri", "counts"}`` (small)."""
    read = read_manifest(manifest_uri)
    known = state.load(catalog)
    preliminary: list[OutputRow] = [
        OutputRow(sku=error.sku, status=OutcomeStatus.invalid, error=str(error)) for error in read.errors
    ]
    plans: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in read.items:
        previous = known.get(item.sku)
        key = _image_key(item.image)
        try:
            image_hash = _hash(item.image, previous, key)
            reference_hash = content_hash(item.reference) if item.reference else None
        except OSError as exc:
            preliminary.append(_row(item, OutcomeStatus.invalid, default_vendor, error=f"cannot read: {exc}"))
            continue
        if force_vendor:
            item = item.model_copy(update={"vendor": default_vendor})
        fingerprint = item_fingerprint(item, image_hash, reference_hash=reference_hash, default_vendor=default_vendor)
        if previous is not None and previous.fingerprint == fingerprint:
            preliminary.append(
                _row(
                    item,
                    OutcomeStatus.unchanged,
                    previous.vendor or default_vendor,
                    fingerprint=fingerprint,
                    output_uri=previous.output_uri,
                    job_id=previous.job_id,
                )
            )
            continue
        try:
            vendor, endpoint, inputs = plan_job(item, default_vendor, force_vendor=force_vendor)
        except UnsupportedTreatment as exc:
            preliminary.append(_row(item, OutcomeStatus.invalid, default_vendor, error=str(exc)))
            continue
        plans[vendor].append(
            {
                "id": item.sku,
                "endpoint": endpoint,
                "inputs": inputs,
                "meta": {
                    "fingerprint": fingerprint,
                    "treatment": item.treatment.value,
                    "input_uri": item.image,
                    "image_key": key,
                    "image_hash": image_hash,
                },
            }
        )
    preliminary_uri = run_folder.path("preliminary.jsonl")
    with OutputManifestWriter(preliminary_uri, fsync=False) as writer:
        for row in preliminary:
            writer.write(row)
    batches = []
    for vendor, items in sorted(plans.items()):
        plan_uri = run_folder.path("plans", f"{vendor}.jsonl")
        _write_jsonl(plan_uri, items)
        batches.append(
            {
                "vendor": vendor,
                "items_uri": plan_uri,
                "output_base": run_folder.path("images", vendor),
                "manifest_uri": run_folder.path("manifests", f"{vendor}.jsonl"),
                "planned_cost_usd": round(sum(price_usd(vendor, item["endpoint"]) for item in items), 4),
            }
        )
    counts = {
        "rows": read.rows,
        "invalid": sum(row.status is OutcomeStatus.invalid for row in preliminary),
        "unchanged": sum(row.status is OutcomeStatus.unchanged for row in preliminary),
        "to_process": sum(len(items) for items in plans.values()),
        "by_vendor": {vendor: len(items) for vendor, items in plans.items()},
    }
    return {"batches": batches, "preliminary_uri": preliminary_uri, "counts": counts}


def finish_run(
    prepared: dict[str, Any],
    *,
    catalog: str,
    run_folder: RunFolder,
    state: CatalogStateStore,
    run_id: str,
    max_failure_ratio: float,
    started_at: datetime | None = None,
) -> dict[str, Any]:
    """Merge, record successes, write the output manifest and the contact sheet; returns the summary."""
    rows = read_output_manifest(prepared["preliminary_uri"])
    metas = _plan_metas(prepared)
    for batch in prepared["batches"]:
        rows.extend(read_output_manifest(batch["manifest_uri"], missing_ok=True))
    successes = []
    for row in rows:
        meta = metas.get(row.sku or "")
        if row.status is OutcomeStatus.succeeded and meta and row.fingerprint:
            successes.append(
                ItemState(
                    sku=row.sku or "",
                    fingerprint=row.fingerprint,
                    image_key=meta.get("image_key"),
                    image_hash=meta["image_hash"],
                    output_uri=row.output_uri,
                    vendor=row.vendor,
                    job_id=row.job_id,
                )
            )
    state.record_successes(catalog, successes)
    manifest_uri = run_folder.path("output_manifest.jsonl")
    with OutputManifestWriter(manifest_uri, fsync=False) as writer:
        for row in rows:
            writer.write(row)
    summary = summarise(rows, started_at=started_at)
    sheet = write_contact_sheet(
        rows,
        run_folder.path("contact_sheet.html"),
        title=f"Catalog refresh: {catalog}",
        run_id=run_id,
        summary=summary,
        cache=run_folder.thumbnail_cache(),
    )
    summary.update({"output_manifest": manifest_uri, "contact_sheet": sheet.uri, "recorded": len(successes)})
    line = format_summary(summary)
    if summary["failure_ratio"] > max_failure_ratio:
        raise FailureRatioExceeded(
            f"{summary['failed']} items failed (ratio {summary['failure_ratio']:.2f} > {max_failure_ratio:.2f}); "
            f"{line}; see {sheet.uri}"
        )
    return summary


def _row(item: CatalogItem, status: OutcomeStatus, vendor: str, **fields: Any) -> OutputRow:
    return OutputRow(
        sku=item.sku,
        status=status,
        treatment=item.treatment.value,
        vendor=item.vendor or vendor,
        input_uri=item.image,
        finished_at=datetime.now(timezone.utc),
        **fields,
    )


def _plan_metas(prepared: dict[str, Any]) -> dict[str, dict[str, Any]]:
    metas: dict[str, dict[str, Any]] = {}
    for batch in prepared["batches"]:
        with locations.open_binary(batch["items_uri"]) as handle:
            for line in handle:
                if line.strip():
                    item = json.loads(line)
                    metas[item["id"]] = item.get("meta") or {}
    return metas


def _write_jsonl(uri: str, records: list[dict[str, Any]]) -> None:
    path = locations.local_path(uri)
    text = "".join(json.dumps(record, default=str) + "\n" for record in records)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)  # a crashed plan never leaves half a file behind
        return
    with locations.open_binary(uri, "wb") as handle:
        handle.write(text.encode())


__all__ = ["FailureRatioExceeded", "RunFolder", "finish_run", "prepare_run"]
