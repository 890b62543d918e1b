"""Typed errors of the vendor clients.

One tree for every vendor, so a caller can catch precisely (``except RateLimitError``) without
knowing which vendor it talks to. Every error carries the vendor name, and the vendor's own error
code and message where the vendor sent one.
"""

from __future__ import annotations

from typing import Any


class BgReplaceError(Exception):
    """Base of every error raised by ``airflow_bgreplace``."""


class InvalidInputError(BgReplaceError, ValueError):
    """A request failed our own validation before anything was sent.

    ``field`` names the offending input (dotted for nested values), so that a batch can say which
    item and which field were wrong.
    """

    def __init__(self, vendor: str, endpoint: str, field: str, message: str) -> None:
        self.vendor = vendor
        self.endpoint = endpoint
        self.field = field
        self.message = message
        super().__init__(f"{vendor} {endpoint}: field {field!r}: {message}")


class StagingNotConfiguredError(BgReplaceError):
    """A local image must be published at a public URL, and no stager is configured."""


class VendorError(BgReplaceError):
    """An error answered by (or on the way to) a vendor API."""

    def __init__(
        self,
        vendor: str,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        raw: Any = None,
    ) -> None:
        self.vendor = vendor
        self.message = message
        self.status_code = status_code
        self.code = code
        self.raw = raw
        parts = [vendor]
        if status_code is not None:
            parts.append(f"HTTP {status_code}")
        if code:
            parts.append(code)
        super().__init__(f"{' '.join(parts)}: {message}")


class AuthenticationError(VendorError):
    """401/403: the key is missing, wrong, or not allowed to do this."""


class PaymentRequiredError(VendorError):
    """402, or the vendor's own out-of-credits answer: top up before retrying."""


class InvalidRequestError(VendorError):
    """400/422: the vendor rejected the request; ``message`` is the vendor's own text."""


class NotFoundError(VendorError):
    """404: the job (or endpoint) is unknown to the vendor, or no longer tracked."""


class RateLimitError(VendorError):
    """429: too many requests or too many jobs in flight; ``retry_after`` in seconds if given."""

    def __init__(self, vendor: str, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(vendor, message, **kwargs)
        self.retry_after = retry_after


class TransientError(VendorError):
    """5xx, a dropped connection, a timeout or an unreadable answer: worth retrying later."""


class SubmissionUncertainError(TransientError):
    """A submit may have been accepted although no job id came back.

    Raised instead of retrying, so that a job is never billed twice. ``submission_ref`` holds what
    is needed to find the job (the client reference or metadata sent with it, where the vendor
    echoes one), and ``fingerprint`` identifies the request.
    """

    def __init__(
        self, vendor: str, message: str, *, submission_ref: dict[str, Any], fingerprint: str, **kwargs: Any
    ) -> None:
        super().__init__(vendor, message, **kwargs)
        self.submission_ref = submission_ref
        self.fingerprint = fingerprint


class CancelNotSupportedError(VendorError):
    """The vendor has no public cancel; the job keeps running (and billing) at the vendor."""


class JobFailedError(VendorError):
    """The vendor ran the job and it ended in failure; ``code`` is the vendor's failure code."""

    def __init__(self, vendor: str, job_id: str, message: str, *, retryable: bool | None = None, **kwargs: Any):
        super().__init__(vendor, f"job {job_id} failed: {message}", **kwargs)
        self.job_id = job_id
        self.retryable = retryable


class DownloadError(BgReplaceError):
    """A result could not be downloaded (expired URL, too large, too slow, not allowed)."""


class ResultExpiredError(DownloadError):
    """The result URL answered 401/403/404/410: expired or withdrawn; a fresh status read may sign a new one."""


class IncompleteResultError(DownloadError):
    """The downloaded result is not a whole image (cut short or corrupted on the way); downloading again may succeed."""


class UrlNotAllowedError(DownloadError):
    """A URL we did not choose breaks the connection's URL policy (scheme, address, redirects).

    See :mod:`airflow_bgreplace.vendors.url_policy`; the message names the URL and the rule.
    """


class DownloadTooLargeError(DownloadError):
    """The answer passed its size bound (counted while streaming)."""


class DownloadTimeoutError(DownloadError):
    """The fetch passed its wall-clock deadline (connection, redirects and body together)."""


class WebhookError(BgReplaceError):
    """A webhook delivery was refused; ``vendor`` names whose route it came to."""

    def __init__(self, vendor: str, message: str) -> None:
        self.vendor = vendor
        self.message = message
        super().__init__(f"{vendor} webhook: {message}")


class MalformedWebhookError(WebhookError, ValueError):
    """The body is not the vendor's documented payload (not JSON, no job id, no status)."""


class WebhookAuthenticationError(WebhookError):
    """The delivery could not be shown to come from the vendor. Messages never quote secrets."""


class InvalidWebhookSignatureError(WebhookAuthenticationError):
    """A signature is missing, malformed, or matches no configured secret or published key."""


class InvalidWebhookTokenError(WebhookAuthenticationError):
    """The URL token is missing or wrong, or the connection configures none for an unsigned vendor."""


class StaleWebhookError(WebhookAuthenticationError):
    """The delivery's timestamp is outside the replay window (or missing where one is required)."""


class WebhookKeysUnavailableError(WebhookError):
    """The vendor's signing keys (fal's JWKS) could not be fetched; the delivery can be retried later."""
