"""Sans-IO plumbing: one definition of each vendor contract, run by a sync and an async driver.

A vendor operation (submit, get status, cancel, stage a file) is a generator that yields
:class:`ApiRequest` objects and receives ``httpx.Response`` objects. :func:`run_with_retries`
wraps it with the retry policy and yields :class:`Send` / :class:`Sleep` actions. The two drivers,
:class:`SyncDriver` and :class:`AsyncDriver`, only perform those actions, so the contract and the
retry logic exist once and the sync and async clients cannot drift apart.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import httpx

from airflow_bgreplace.vendors.errors import (
    DownloadError,
    SubmissionUncertainError,
    TransientError,
    VendorError,
)
from airflow_bgreplace.vendors.retry import RetryPolicy
from airflow_bgreplace.vendors.url_policy import UrlPolicy, fetch_async, fetch_sync

T = TypeVar("T")

USER_AGENT = "airflow-provider-bgreplace"


@dataclass(frozen=True)
class ApiRequest:
    """One HTTP call of a vendor operation."""

    method: str
    #: Path relative to the vendor base URL, or an absolute URL (result files, returned URLs).
    url: str
    json: Any = None
    params: dict[str, str] | None = None
    content: bytes | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: Send the vendor's auth headers (never to third-party URLs such as presigned results).
    authenticated: bool = True
    #: A submit is not idempotent: once its body may have reached the vendor it is never resent.
    is_submit: bool = False
    #: Non-2xx statuses the operation interprets itself instead of raising.
    accept_statuses: frozenset[int] = frozenset()
    #: The answer must be JSON (checked before the operation sees it; bad JSON is transient).
    expect_json: bool = True
    #: Bound on the answer's size (result downloads).
    max_bytes: int | None = None
    timeout_s: float | None = None
    #: A URL we did not choose (a vendor's result URL, a user's image URL): fetched under the
    #: connection's UrlPolicy (scheme, addresses, redirects, size and a wall-clock deadline).
    external: bool = False
    #: ``time.monotonic()`` by which an external fetch, retries included, must be complete.
    deadline: float | None = None
    #: For SubmissionUncertainError: what the vendor will echo back to find the job.
    submission_ref: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""


@dataclass(frozen=True)
class Send:
    request: ApiRequest


@dataclass(frozen=True)
class Sleep:
    seconds: float


#: A vendor operation: yields requests (and, in polling loops, sleeps), returns its result.
Operation = Generator[ApiRequest | Sleep, httpx.Response, T]


Action = Send | Sleep


class ErrorTranslator:
    """What the retry loop needs to know of a vendor: how its errors look."""

    vendor: ClassVar[str] = "vendor"

    def error_from_response(self, response: httpx.Response) -> VendorError:  # pragma: no cover - abstract
        raise NotImplementedError


# Errors raised before any byte of the request left this machine: always safe to retry.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def _uncertain(vendor: str, request: ApiRequest, why: str, status_code: int | None = None) -> SubmissionUncertainError:
    return SubmissionUncertainError(
        vendor,
        f"submit may have been accepted ({why}); not resent to avoid paying twice. "
        f"Find the job by {request.submission_ref or 'its fingerprint'} before submitting again",
        submission_ref=request.submission_ref,
        fingerprint=request.fingerprint,
        status_code=status_code,
    )


def run_with_retries(
    operation: Operation[T],
    errors: ErrorTranslator,
    policy: RetryPolicy,
    clock: Callable[[], float] = time.monotonic,
) -> Generator[Action, httpx.Response | None, T]:
    """Drive ``operation``; retry each of its requests according to ``policy``.

    An operation may also yield :class:`Sleep` (polling loops): it is passed through untouched.
    The policy's deadline bounds the retries of each request, not the whole operation. When a
    request fails for good, the error is thrown into the operation, which may handle it (the
    polling loop tolerates a few failed polls) or let it propagate.
    """
    try:
        step = next(operation)
    except StopIteration as done:
        return done.value
    while True:
        failure: VendorError | DownloadError | None = None
        response: httpx.Response | None = None
        if isinstance(step, Sleep):
            yield step
        else:
            try:
                response = yield from _send_with_retries(step, errors, policy, clock)
            except (VendorError, DownloadError) as exc:  # DownloadError: a refused or unbounded fetch
                failure = exc
        try:
            step = operation.throw(failure) if failure is not None else operation.send(response)  # type: ignore[arg-type]
        except StopIteration as done:
            return done.value


def _send_with_retries(
    request: ApiRequest, errors: ErrorTranslator, policy: RetryPolicy, clock: Callable[[], float]
) -> Generator[Action, httpx.Response | None, httpx.Response]:
    """One request until it succeeds, or raises once the policy gives up (a submit: see module doc)."""
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        error: VendorError
        try:
            response = yield Send(request)
            assert response is not None
        except httpx.HTTPError as exc:
            if request.is_submit and not isinstance(exc, _NOT_SENT):
                raise _uncertain(errors.vendor, request, f"{type(exc).__name__}: {exc}") from exc
            error = TransientError(
                errors.vendor, f"{type(exc).__name__} on {request.method} {_redact(request.url)}: {exc}"
            )
            error.__cause__ = exc
        else:
            if response.is_success or response.status_code in request.accept_statuses:
                if not request.expect_json or _is_json(response):
                    return response
                if request.is_submit:
                    raise _uncertain(errors.vendor, request, "unreadable answer", response.status_code)
                error = TransientError(
                    errors.vendor,
                    f"unreadable JSON from {request.method} {_redact(request.url)}",
                    status_code=response.status_code,
                )
            else:
                error = errors.error_from_response(response)
                # FASHN documents that its API-level 5xx creates no prediction, but a 5xx can also come
                # after the job was stored: a submit answered with a 5xx is never resent.
                if request.is_submit and response.status_code >= 500:
                    raise _uncertain(
                        errors.vendor, request, f"HTTP {response.status_code}", response.status_code
                    ) from error
        delay = policy.next_delay_s(attempt, error, clock() - started)
        if delay is None:
            raise error
        yield Sleep(delay)


def _is_json(response: httpx.Response) -> bool:
    if not response.content:
        return response.status_code == 204
    try:
        json.loads(response.content)
    except ValueError:
        return False
    return True


def _redact(url: str) -> str:
    """URLs may carry secrets (webhook tokens, presigned signatures): keep them out of messages."""
    return url.split("?", 1)[0]


@dataclass
class Connection:
    """Where and how to reach one vendor: the part of a client that is not the contract."""

    base_url: str
    auth_headers: dict[str, str]
    timeout_s: float = 30.0
    #: What external URLs may be fetched (see url_policy.py); the base URL's origin is trusted.
    url_policy: UrlPolicy = field(default_factory=UrlPolicy)


def build_request(client: httpx.Client | httpx.AsyncClient, conn: Connection, req: ApiRequest) -> httpx.Request:
    url = req.url if "://" in req.url else conn.base_url.rstrip("/") + "/" + req.url.lstrip("/")
    headers = {"User-Agent": USER_AGENT, **req.headers}
    if req.authenticated:
        headers.update(conn.auth_headers)
    timeout = httpx.Timeout(req.timeout_s or conn.timeout_s)
    return client.build_request(
        req.method,
        url,
        json=req.json,
        params=req.params,
        content=req.content,
        files=req.files,
        headers=headers,
        timeout=timeout,
    )


def _too_large(req: ApiRequest, size: int) -> DownloadError:
    return DownloadError(f"{_redact(req.url)}: answer larger than {req.max_bytes} bytes (got {size}+)")


class SyncDriver:
    """Runs operations with ``httpx.Client``."""

    def __init__(self, conn: Connection, errors: ErrorTranslator, policy: RetryPolicy,
                 client: httpx.Client | None = None) -> None:
        self.conn = conn
        self.errors = errors
        self.policy = policy
        self._client = client or httpx.Client(follow_redirects=False)

    def close(self) -> None:
        self._client.close()

    def run(self, operation: Operation[T], policy: RetryPolicy | None = None) -> T:
        steps = run_with_retries(operation, self.errors, policy or self.policy)
        feed: httpx.Response | None = None
        error: BaseException | None = None
        try:
            while True:
                action = steps.throw(error) if error is not None else steps.send(feed)
                feed, error = None, None
                if isinstance(action, Sleep):
                    time.sleep(action.seconds)
                    continue
                try:
                    feed = self._send(action.request)
                except (httpx.HTTPError, DownloadError) as exc:
                    error = exc
        except StopIteration as done:
            return done.value

    def _send(self, req: ApiRequest) -> httpx.Response:
        if req.external:
            return fetch_sync(self._client, req, self.conn.url_policy, self.conn.timeout_s)
        response = self._client.send(build_request(self._client, self.conn, req), stream=True)
        try:
            if req.max_bytes is None:
                response.read()
                return response
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > req.max_bytes:
                    raise _too_large(req, size)
                chunks.append(chunk)
            response._content = b"".join(chunks)
            return response
        finally:
            response.close()


class AsyncDriver:
    """Runs operations with ``httpx.AsyncClient`` (in the triggerer's event loop)."""

    def __init__(self, conn: Connection, errors: ErrorTranslator, policy: RetryPolicy,
                 client: httpx.AsyncClient | None = None) -> None:
        self.conn = conn
        self.errors = errors
        self.policy = policy
        self._client = client or httpx.AsyncClient(follow_redirects=False)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def run(self, operation: Operation[T], policy: RetryPolicy | None = None) -> T:
        steps = run_with_retries(operation, self.errors, policy or self.policy)
        feed: httpx.Response | None = None
        error: BaseException | None = None
        try:
            while True:
                action = steps.throw(error) if error is not None else steps.send(feed)
                feed, error = None, None
                if isinstance(action, Sleep):
                    await asyncio.sleep(action.seconds)
                    continue
                try:
                    feed = await self._send(action.request)
                except (httpx.HTTPError, DownloadError) as exc:
                    error = exc
        except StopIteration as done:
            return done.value

    async def _send(self, req: ApiRequest) -> httpx.Response:
        if req.external:
            return await fetch_async(self._client, req, self.conn.url_policy, self.conn.timeout_s)
        response = await self._client.send(build_request(self._client, self.conn, req), stream=True)
        try:
            if req.max_bytes is None:
                await response.aread()
                return response
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > req.max_bytes:
                    raise _too_large(req, size)
                chunks.append(chunk)
            response._content = b"".join(chunks)
            return response
        finally:
            await response.aclose()
