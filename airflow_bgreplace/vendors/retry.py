"""Retry policy: pure functions, so they are tested without a network."""

from __future__ import annotations

import random
from dataclasses import dataclass

from airflow_bgreplace.vendors.errors import (
    RateLimitError,
    SubmissionUncertainError,
    TransientError,
    VendorError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by attempts and by a total deadline.

    Retry-After is honoured (capped at ``max_retry_after_s``). Defaults follow Runflow's documented
    policy (5 attempts, 1 s doubling, 32 s cap), the strictest of the four vendors.
    """

    max_attempts: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 32.0
    #: Total time one call may spend, retries and waits included.
    deadline_s: float = 120.0
    max_retry_after_s: float = 120.0

    def is_retryable(self, error: BaseException) -> bool:
        """429 and transient errors are retried; an uncertain submit never is (no double billing)."""
        if isinstance(error, SubmissionUncertainError):
            return False
        return isinstance(error, RateLimitError | TransientError)

    def backoff_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full-jitter backoff before retry number ``attempt`` (1-based)."""
        cap = min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1)))
        return (rng or random).uniform(0, cap)

    def next_delay_s(
        self, attempt: int, error: BaseException, elapsed_s: float, rng: random.Random | None = None
    ) -> float | None:
        """Seconds to wait before the next attempt, or None when the error must be raised."""
        if attempt >= self.max_attempts or not self.is_retryable(error):
            return None
        retry_after = error.retry_after if isinstance(error, RateLimitError) else None
        if retry_after is not None:
            delay = min(retry_after, self.max_retry_after_s)
        else:
            delay = self.backoff_s(attempt, rng)
        if elapsed_s + delay > self.deadline_s:
            return None
        return delay


NO_RETRY = RetryPolicy(max_attempts=1)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is not used by these vendors)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(seconds, 0.0)


def is_vendor_error(error: BaseException) -> bool:
    return isinstance(error, VendorError)
