"""The nightly catalog refresh, minus Airflow: manifests, change detection, output manifests, contact sheets.

Every module here is plain Python, usable from a task, a script or a notebook; Airflow's
``ObjectStoragePath`` is imported only when a non-local URI has to be opened.
"""

from __future__ import annotations

from airflow_bgreplace.catalog.contact_sheet import write_contact_sheet
from airflow_bgreplace.catalog.fingerprint import content_hash, item_fingerprint
from airflow_bgreplace.catalog.manifest import (
    CatalogItem,
    ManifestError,
    ManifestReadResult,
    RowError,
    Treatment,
    read_manifest,
)
from airflow_bgreplace.catalog.outputs import (
    OutcomeStatus,
    OutputManifestWriter,
    OutputRow,
    format_summary,
    read_output_manifest,
    summarise,
)

__all__ = [
    "CatalogItem",
    "ManifestError",
    "ManifestReadResult",
    "OutcomeStatus",
    "OutputManifestWriter",
    "OutputRow",
    "RowError",
    "Treatment",
    "content_hash",
    "format_summary",
    "item_fingerprint",
    "read_manifest",
    "read_output_manifest",
    "summarise",
    "write_contact_sheet",
]
