"""The output manifest: one JSON line per item outcome, written as each item finishes.

Each line is appended and flushed (and fsync'ed, for local files) before :meth:`write` returns,
so a worker that dies mid-batch leaves every finished item on disk and the retry skips them.
Object stores cannot append, so a remote manifest is kept in a local spool file and uploaded
whole at most every ``upload_interval_s`` and on close: there a crash can lose the last interval.
"""

from __future__ import annotations

import enum
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from airflow_bgreplace.catalog import locations
from airflow_bgreplace.catalog.locations import Location

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_INTERVAL_S: Final = 30.0


class OutcomeStatus(str, enum.Enum):
    """What happened to one manifest row tonight."""

    succeeded = "succeeded"
    failed = "failed"
    skipped = "skipped"  # not attempted (limit reached, run stopped, vendor disabled)
    unchanged = "unchanged"  # same fingerprint as the last success: previous output kept
    invalid = "invalid"  # the manifest row did not validate


#: The outcomes whose fingerprint and output stand for the item until it changes.
CURRENT_STATUSES: Final = frozenset({OutcomeStatus.succeeded, OutcomeStatus.unchanged})


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class OutputRow(BaseModel):
    """One line of the output manifest. Keys beyond these are ignored on reading (newer writers)."""

    model_config = ConfigDict(extra="ignore")

    sku: str | None
    status: OutcomeStatus
    #: remove | color | scene; shown on the contact sheet.
    treatment: str | None = None
    vendor: str | None = None
    endpoint: str | None = None
    job_id: str | None = None
    input_uri: str | None = None
    output_uri: str | None = None
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    cost_usd: float | None = None
    error: str | None = None
    fingerprint: str | None = None
    finished_at: datetime = Field(default_factory=_utc_now)


class OutputManifestWriter:
    """Appends :class:`OutputRow` lines to a JSONL file; safe to share between threads.

    ``target`` is a local path / ``file://`` URI (appended in place), or an object-storage URI /
    ``ObjectStoragePath`` (spooled locally, see the module docstring). An existing manifest is
    continued, not replaced, so a retried task appends to what its first try wrote.
    """

    def __init__(
        self,
        target: Location,
        *,
        fsync: bool = True,
        upload_interval_s: float = DEFAULT_UPLOAD_INTERVAL_S,
    ) -> None:
        self.target = target
        self.fsync = fsync
        self.upload_interval_s = upload_interval_s
        self.rows_written = 0
        self._lock = threading.Lock()
        local = locations.local_path(target)
        self._remote = None if local is not None else locations.storage_path(target)
        self._spool_dir: str | None = None
        if local is None:
            self._spool_dir = tempfile.mkdtemp(prefix="bgreplace-output-manifest-")
            local = Path(self._spool_dir) / "manifest.jsonl"
            self._download_existing(local)
        else:
            local.parent.mkdir(parents=True, exist_ok=True)
        self.local_path = local
        self._needs_newline = _ends_mid_line(local)
        self._file: IO[str] | None = local.open("a", encoding="utf-8")
        self._last_upload = time.monotonic()
        self._dirty = False

    def write(self, row: OutputRow | Mapping[str, Any]) -> OutputRow:
        """Append one outcome and make it durable before returning it."""
        outcome = row if isinstance(row, OutputRow) else OutputRow.model_validate(row)
        line = outcome.model_dump_json() + "\n"
        with self._lock:
            if self._file is None:
                raise ValueError(f"output manifest {locations.location_text(self.target)} is closed")
            if self._needs_newline:
                # A previous try died mid-line; start afresh so this row is not glued to the fragment.
                line = "\n" + line
                self._needs_newline = False
            self._file.write(line)
            self._file.flush()
            if self.fsync:
                os.fsync(self._file.fileno())
            self.rows_written += 1
            self._dirty = True
            if self._remote is not None and time.monotonic() - self._last_upload >= self.upload_interval_s:
                self._upload()
        return outcome

    def close(self) -> None:
        with self._lock:
            if self._file is None:
                return
            self._file.close()
            self._file = None
            if self._remote is not None:
                # An empty run still leaves a manifest, so the next run finds one to diff against.
                if self._dirty or self.rows_written == 0:
                    self._upload()
                if self._spool_dir is not None:
                    shutil.rmtree(self._spool_dir, ignore_errors=True)

    def __enter__(self) -> OutputManifestWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _download_existing(self, spool: Path) -> None:
        assert self._remote is not None
        try:
            with self._remote.open("rb") as source, spool.open("wb") as copy:
                shutil.copyfileobj(source, copy)
        except FileNotFoundError:
            spool.touch()

    def _upload(self) -> None:
        assert self._remote is not None
        with self.local_path.open("rb") as source, self._remote.open("wb") as target:
            shutil.copyfileobj(source, target)
        self._last_upload = time.monotonic()
        self._dirty = False


def _ends_mid_line(path: Path) -> bool:
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) != b"\n"


def iter_output_rows(source: Location) -> Iterator[OutputRow]:
    """The rows of an output manifest, in order.

    Lines that do not parse (the fragment a crash leaves mid-write) are logged and skipped.
    """
    with locations.open_binary(source) as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                yield OutputRow.model_validate_json(raw)
            except ValidationError as exc:
                log.warning(
                    "%s line %d is not an output row, skipped: %s",
                    locations.location_text(source), number, exc.errors(include_url=False)[0]["msg"],
                )


def read_output_manifest(source: Location, *, missing_ok: bool = False) -> list[OutputRow]:
    """All rows of an output manifest; ``[]`` for a missing one when ``missing_ok`` (a first run)."""
    try:
        return list(iter_output_rows(source))
    except FileNotFoundError:
        if missing_ok:
            return []
        raise


def current_fingerprints(rows: Iterable[OutputRow]) -> dict[str, OutputRow]:
    """For each sku, its latest succeeded/unchanged row with a fingerprint: the state to diff against."""
    current: dict[str, OutputRow] = {}
    for row in rows:
        if row.sku and row.fingerprint and row.status in CURRENT_STATUSES:
            current[row.sku] = row
    return current


def latest_outcomes(rows: Iterable[OutputRow]) -> list[OutputRow]:
    """One row per sku, the last written (a retried item appears once per try).

    ``invalid`` rows are all kept: they describe manifest rows, and a duplicate-sku row shares
    its sku with the valid item it duplicates.
    """
    latest: dict[object, OutputRow] = {}
    for index, row in enumerate(rows):
        key: object = row.sku if row.sku is not None and row.status is not OutcomeStatus.invalid else ("row", index)
        latest.pop(key, None)  # re-inserting keeps the order in which outcomes became final
        latest[key] = row
    return list(latest.values())


def summarise(rows: Iterable[OutputRow], *, started_at: datetime | None = None) -> dict[str, Any]:
    """Totals for the XCom and the logs; plain JSON types only.

    Counts are per sku, from its latest row (see :func:`latest_outcomes`); ``cost_usd`` adds up
    every row, since a failed try that was retried was paid for too. ``failure_ratio`` is
    failed / attempted (succeeded + failed), 0.0 when nothing was attempted. ``wall_time_s`` runs
    from ``started_at`` (default: the earliest job start, i.e. finish minus duration) to the last
    finish; ``processing_s`` adds up the vendors' own durations. ``by_vendor`` counts every try.
    """
    all_rows = list(rows)
    counts: Counter[OutcomeStatus] = Counter(row.status for row in latest_outcomes(all_rows))
    cost = processing = 0.0
    by_vendor: dict[str, dict[str, Any]] = {}
    first_start: datetime | None = started_at
    last_finish: datetime | None = None
    for row in all_rows:
        cost += row.cost_usd or 0.0
        if row.status in (OutcomeStatus.succeeded, OutcomeStatus.failed):
            processing += row.duration_s or 0.0
            vendor = by_vendor.setdefault(row.vendor or "unknown", {"succeeded": 0, "failed": 0, "cost_usd": 0.0})
            vendor[row.status.value] += 1
            vendor["cost_usd"] += row.cost_usd or 0.0
            start = row.finished_at - timedelta(seconds=row.duration_s or 0.0)
            if started_at is None and (first_start is None or start < first_start):
                first_start = start
            if last_finish is None or row.finished_at > last_finish:
                last_finish = row.finished_at
    attempted = counts[OutcomeStatus.succeeded] + counts[OutcomeStatus.failed]
    for vendor in by_vendor.values():
        vendor["cost_usd"] = round(vendor["cost_usd"], 4)
    wall = (last_finish - first_start).total_seconds() if first_start and last_finish else 0.0
    return {
        "items": sum(counts.values()),
        **{status.value: counts[status] for status in OutcomeStatus},
        "cost_usd": round(cost, 4),
        "failure_ratio": round(counts[OutcomeStatus.failed] / attempted, 4) if attempted else 0.0,
        "wall_time_s": round(max(wall, 0.0), 3),
        "processing_s": round(processing, 3),
        "by_vendor": dict(sorted(by_vendor.items())),
    }


def format_duration(seconds: float) -> str:
    """``"1h 02m"``, ``"4m 05s"``, ``"12.3s"``: how long, at a glance."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def format_summary(summary: Mapping[str, Any]) -> str:
    """One log line: ``412 items: 380 succeeded, 3 failed (0.8%), 27 unchanged, ...; $12.34; 8m 12s``."""
    parts = []
    for status in OutcomeStatus:
        if summary[status.value]:
            ratio = f" ({summary['failure_ratio']:.1%} of attempted)" if status is OutcomeStatus.failed else ""
            parts.append(f"{summary[status.value]} {status.value}{ratio}")
    wall = format_duration(summary["wall_time_s"])
    return f"{summary['items']} items: {', '.join(parts) or 'none'}; cost ${summary['cost_usd']:.2f}; wall {wall}"
