"""The retry policy's decisions, as pure functions."""

from __future__ import annotations

import random

import pytest

from airflow_bgreplace.vendors.errors import (
    AuthenticationError,
    InvalidRequestError,
    RateLimitError,
    SubmissionUncertainError,
    TransientError,
)
from airflow_bgreplace.vendors.retry import RetryPolicy, parse_retry_after


def test_transient_and_rate_limit_errors_are_retried() -> None:
    policy = RetryPolicy()
    assert policy.next_delay_s(1, TransientError("fal", "503"), 0.0) is not None
    assert policy.next_delay_s(1, RateLimitError("fal", "slow down"), 0.0) is not None


@pytest.mark.parametrize(
    "error",
    [AuthenticationError("fal", "bad key"), InvalidRequestError("fal", "bad field")],
)
def test_permanent_errors_are_never_retried(error: Exception) -> None:
    assert RetryPolicy().next_delay_s(1, error, 0.0) is None


def test_an_uncertain_submit_is_never_retried() -> None:
    error = SubmissionUncertainError("runflow", "read timeout", submission_ref={"client_ref": "x"}, fingerprint="f")
    assert RetryPolicy().next_delay_s(1, error, 0.0) is None


def test_retry_after_is_honoured_and_capped() -> None:
    policy = RetryPolicy(max_retry_after_s=10.0, deadline_s=100.0)
    assert policy.next_delay_s(1, RateLimitError("x", "m", retry_after=3.0), 0.0) == 3.0
    assert policy.next_delay_s(1, RateLimitError("x", "m", retry_after=60.0), 0.0) == 10.0


def test_backoff_grows_exponentially_with_full_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=8.0)
    rng = random.Random(7)
    for attempt, cap in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (6, 8.0)]:
        samples = [policy.backoff_s(attempt, rng) for _ in range(200)]
        assert min(samples) >= 0.0 and max(samples) <= cap
        assert max(samples) > cap * 0.8  # the whole range is used, not just the floor


def test_attempts_and_deadline_bound_the_retries() -> None:
    policy = RetryPolicy(max_attempts=3, deadline_s=10.0)
    error = RateLimitError("x", "m", retry_after=4.0)
    assert policy.next_delay_s(2, error, 0.0) == 4.0
    assert policy.next_delay_s(3, error, 0.0) is None  # attempts used up
    assert policy.next_delay_s(1, error, 7.0) is None  # would pass the deadline


@pytest.mark.parametrize(("header", "seconds"), [("5", 5.0), ("0.5", 0.5), ("-3", 0.0), ("soon", None), (None, None)])
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds
