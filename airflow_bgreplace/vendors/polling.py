"""The one polling loop: status reads with backoff until a terminal state or a deadline.

Written as a sans-IO operation, so the worker (sync, ``deferrable=False``) and the triggerer
(async) run the very same loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from airflow_bgreplace.vendors.base import VendorApi
from airflow_bgreplace.vendors.errors import RateLimitError, TransientError
from airflow_bgreplace.vendors.status import JobStatus
from airflow_bgreplace.vendors.transport import Operation, Sleep


@dataclass(frozen=True)
class PollSchedule:
    """Delays between status reads: ``first_s``, growing by ``factor`` up to ``cap_s``.

    Jobs take seconds to minutes; reading often early and rarely later keeps latency low for
    short jobs and the vendor's status-rate limits (FASHN: 50 per 10 s) safe for long ones.
    """

    first_s: float = 1.0
    factor: float = 1.5
    cap_s: float = 15.0

    def delay_s(self, poll_number: int) -> float:
        return float(min(self.cap_s, self.first_s * (self.factor**poll_number)))

    @classmethod
    def for_interval(cls, interval_s: float, cap_s: float | None = None) -> PollSchedule:
        return cls(first_s=interval_s, cap_s=max(interval_s, cap_s if cap_s is not None else interval_s * 8))


def wait_for_terminal(
    api: VendorApi,
    endpoint: str | None,
    job_id: str,
    schedule: PollSchedule,
    deadline_epoch: float | None,
    on_status: Callable[[JobStatus], None] | None = None,
    clock: Callable[[], float] = time.time,
    max_failed_polls: int = 5,
) -> Operation[JobStatus]:
    """Read the status until it is terminal or ``deadline_epoch`` (wall clock) has passed.

    Returns the last status read: terminal, or not terminal when the deadline passed first.
    A status read that fails after its own retries is tolerated ``max_failed_polls`` times in a
    row (a vendor outage of a few minutes must not fail a job that is still running).
    """
    poll_number = 0
    failed_polls = 0
    while True:
        try:
            status = yield from api.get_status(endpoint, job_id)
        except (TransientError, RateLimitError):
            failed_polls += 1
            if failed_polls > max_failed_polls:
                raise
            yield Sleep(schedule.delay_s(poll_number))
            poll_number += 1
            continue
        failed_polls = 0
        if on_status is not None:
            on_status(status)
        if status.is_terminal:
            return status
        delay = schedule.delay_s(poll_number)
        if deadline_epoch is not None:
            remaining = deadline_epoch - clock()
            if remaining <= 0:
                return status
            delay = min(delay, remaining)
        yield Sleep(delay)
        poll_number += 1
