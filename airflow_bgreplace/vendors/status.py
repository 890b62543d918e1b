"""The one job status every vendor's states are mapped to."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class JobState(str, enum.Enum):
    """Common job states (vendors/README.md §2)."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (JobState.succeeded, JobState.failed, JobState.cancelled)


def map_state(table: dict[str, JobState], vendor_state: str | None) -> JobState:
    """Map a vendor state through ``table``; unknown values count as running (vendors add states)."""
    if vendor_state is None:
        return JobState.running
    return table.get(vendor_state, JobState.running)


class JobStatus(BaseModel):
    """A vendor job as seen by one status read (or one webhook)."""

    model_config = ConfigDict(frozen=True)

    vendor: str
    endpoint: str
    job_id: str
    state: JobState
    #: Result locations: https URLs, or ``data:`` URIs where the vendor answers inline.
    result_urls: list[str] = Field(default_factory=list)
    error_code: str | None = None
    error_message: str | None = None
    #: Whether the vendor says a failed job may succeed if submitted again (None = unknown).
    retryable: bool | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    #: Processing time reported by the vendor, in seconds.
    duration_s: float | None = None
    #: Cost reported by the vendor, when it reports one (ImagePipeline); else None.
    cost_usd: float | None = None
    progress: float | None = None
    queue_position: int | None = None
    #: The vendor's own answer(s), kept for debugging and for the webhook store.
    raw: dict[str, Any] = Field(default_factory=dict)

    @property
    def is_terminal(self) -> bool:
        return self.state.is_terminal

    def raise_for_failure(self) -> None:
        """Raise :class:`JobFailedError` (vendor, job id, vendor code and message) unless succeeded."""
        from airflow_bgreplace.vendors.errors import JobFailedError

        if self.state is not JobState.succeeded:
            raise JobFailedError(
                self.vendor, self.job_id, f"{self.state.value}: {self.describe_error()}", retryable=self.retryable,
                code=self.error_code, raw=self.raw,
            )

    def describe_error(self) -> str:
        code = f"[{self.error_code}] " if self.error_code else ""
        return f"{code}{self.error_message or 'no message from the vendor'}"


class SubmittedJob(BaseModel):
    """What a submit returns: enough to find the job again after any restart."""

    model_config = ConfigDict(frozen=True)

    vendor: str
    endpoint: str
    job_id: str
    #: Stable hash of the request inputs (without webhook URLs), for ledgers and duplicate checks.
    fingerprint: str
    submitted_at: datetime
    #: The first status the vendor answered with, when the submit answer carries one.
    initial_state: JobState = JobState.queued
    raw: dict[str, Any] = Field(default_factory=dict)
