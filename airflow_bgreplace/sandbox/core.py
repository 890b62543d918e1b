"""The mechanics every emulated vendor shares: one implementation, used by the vendor modules.

* :class:`Sandbox` — the in-memory state of one sandbox app: jobs, result files, counters,
  concurrency slots per (vendor, API key), fixed-window rate limits, balances, fault book,
  webhook delivery with retries, input fetching and the request wrapper that applies auth,
  rate limits and faults around each vendor route.
* :class:`VendorEmulator` — the base class of a vendor module: it says which routes exist and
  how the vendor words its answers; the sandbox does the rest.

A job walks through its vendor's :class:`Phase` list (e.g. ``queued → dispatching → running``),
spending a share of its drawn latency in each; the first phase that ``needs_slot`` waits for a
concurrency slot (or, for vendors that reject, the slot is taken at submit). The work itself —
fetching inputs and rendering — runs during the slot phases, and the job ends succeeded, failed
(vendor code) or cancelled; then the vendor's webhook, if one was registered, is delivered.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.policy
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import random
import secrets
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.parser import BytesParser
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from airflow_bgreplace.sandbox import render
from airflow_bgreplace.sandbox.config import SandboxSettings
from airflow_bgreplace.sandbox.faults import AFTER_HANDLER_KINDS, FaultAction, FaultBook, RouteKind
from airflow_bgreplace.vendors import assumptions
from airflow_bgreplace.vendors.assumptions import VendorAssumptions

log = logging.getLogger(__name__)

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL_STATES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})

#: Every counter reported per vendor by ``GET /_sandbox/stats`` (zeros included).
COUNTERS: tuple[str, ...] = (
    "submits_accepted",
    "submits_rejected",
    "duplicate_submits",
    "status_calls",
    "result_calls",
    "cancels",
    "file_downloads",
    "files_expired",
    "uploads",
    "jobs_succeeded",
    "jobs_failed",
    "jobs_cancelled",
    "webhook_deliveries",
    "webhook_attempts",
    "webhook_successes",
    "webhook_failures",
    "webhook_dropped",
    "faults_injected",
)
_CALL_COUNTERS: dict[str, str] = {"status": "status_calls", "result": "result_calls", "cancel": "cancels"}

#: Where the outermost app stashes the server's own ``send`` (see :class:`DropConnection`).
RAW_SEND_KEY = "bgreplace.raw_send"


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def uuid7() -> str:
    """A UUIDv7 (millisecond timestamp first), as Runflow uses for run ids."""
    millis = time.time_ns() // 1_000_000
    value = (millis & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))


def isoformat(ts: float | None, *, zulu: bool = False) -> str | None:
    """UTC ISO 8601 with milliseconds; ``+00:00`` (Python's own form) unless ``zulu``."""
    if ts is None:
        return None
    text = datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z") if zulu else text


class _OutboundGuard(httpx.AsyncBaseTransport):
    """Refuses any call that leaves the machine (redirects included) unless the host is allowed."""

    def __init__(self, inner: httpx.AsyncBaseTransport, allowed: Callable[[], list[str]]) -> None:
        self.inner = inner
        self.allowed = allowed

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if not is_loopback(host) and host not in self.allowed():
            raise httpx.ConnectError(
                f"the sandbox is offline: it calls only loopback hosts (not {host}); see outbound_hosts",
                request=request,
            )
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def retry_after_value(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


async def read_json(request: Request) -> Any:
    """The request body as JSON; raises ``ValueError`` when it is not JSON."""
    raw = await request.body()
    try:
        return json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"body is not valid JSON: {exc}") from exc


async def read_form_file(request: Request, field_name: str, limit: int) -> tuple[str, str, bytes] | None:
    """(filename, content type, bytes) of one file field of a multipart body, or ``None``.

    Parsed with the standard library so the sandbox does not depend on python-multipart.
    Raises ``ValueError`` when the body exceeds ``limit`` bytes.
    """
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ValueError(f"body larger than {limit} bytes")
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + bytes(body)
    )
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == field_name:
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            return part.get_filename() or "upload", part.get_content_type(), data
    return None


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


# --------------------------------------------------------------------------------------------
# errors and values passed between the core and the vendor modules
# --------------------------------------------------------------------------------------------


class Reject(Exception):
    """Raised by a vendor handler to answer with ``response`` (a validation or limit error)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class JobFailure(Exception):
    """A job's failure in the vendor's words: ``code`` is what the vendor reports."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        stage: str | None = None,
        status: int | None = None,
        retryable: bool | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.stage = stage
        self.status = status
        self.retryable = retryable
        self.details = details or {}


InputProblem = Literal["download", "decode", "file_too_large", "image_too_large", "unsupported"]


class InputError(Exception):
    """An input could not be used; the vendor module maps ``problem`` to its own failure code."""

    def __init__(self, problem: InputProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message


@dataclass(frozen=True)
class Phase:
    """One vendor state a job passes through before it ends."""

    name: str
    state: Literal["queued", "running"]
    share: float  # of the job's drawn latency spent in this phase
    needs_slot: bool = False


@dataclass(frozen=True)
class RenderedImage:
    data: bytes
    content_type: str
    filename: str
    width: int
    height: int


@dataclass
class WebhookPlan:
    """One webhook to deliver: the frozen body, fresh headers per attempt, the retry policy."""

    url: str
    body: bytes
    headers: Callable[[], dict[str, str]]
    retry_on: Callable[[int | None], bool]
    delays_s: tuple[float, ...]
    timeout_s: float


def retry_on_non_2xx(status: int | None) -> bool:
    return status is None or not 200 <= status < 300


def retry_on_5xx_or_network(status: int | None) -> bool:
    return status is None or status >= 500


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class StoredFile:
    id: str
    vendor: str
    data: bytes
    content_type: str
    filename: str
    width: int | None = None
    height: int | None = None
    signed: bool = False  # presigned URLs that expire (else a CDN URL; the file itself expires)
    expires_at: float | None = None
    is_result: bool = False
    ready: bool = True
    job_id: str | None = None


class FileStore:
    """Result files and uploads, served at ``/files/{id}/{filename}``."""

    def __init__(self) -> None:
        self._files: dict[str, StoredFile] = {}
        self._secret = secrets.token_bytes(32)

    def add(self, vendor: str, data: bytes, content_type: str, filename: str, **kwargs: Any) -> StoredFile:
        stored = StoredFile(secrets.token_hex(12), vendor, data, content_type, filename, **kwargs)
        self._files[stored.id] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        return self._files.get(file_id)

    def clear(self) -> None:
        self._files.clear()

    def signature(self, file_id: str, expires: int) -> str:
        return hmac.new(self._secret, f"{file_id}|{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    def url(self, origin: str, stored: StoredFile, ttl_s: float) -> str:
        base = f"{origin}/files/{stored.id}/{stored.filename}"
        if not stored.signed:
            return base
        expires = math.ceil(time.time() + ttl_s)  # whole seconds, never shorter than the TTL
        return f"{base}?X-Expires={expires}&X-Signature={self.signature(stored.id, expires)}"


def _s3_error(status: int, code: str, message: str) -> Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return Response(body, status_code=status, media_type="application/xml")


# --------------------------------------------------------------------------------------------
# jobs, slots, windows
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Job:
    vendor: str
    id: str
    api_key: str
    endpoint: str  # the key of assumptions.typical_latency_s / price_usd, e.g. "background/change"
    params: dict[str, Any]  # validated model input, defaults applied
    fingerprint: str
    origin: str
    webhook_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # vendor-only data (metadata, client_ref...)
    state: JobState = "queued"
    vendor_state: str = ""
    submitted_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    latency_s: float = 0.0
    failure: JobFailure | None = None
    forced_failure: JobFailure | None = None
    results: list[StoredFile] = field(default_factory=list)
    cost: float = 0.0
    slot_held: bool = False
    takes_slot: bool = True
    task: asyncio.Task[None] | None = None
    webhook_log: list[dict[str, Any]] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def summary(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "id": self.id,
            "state": self.state,
            "vendor_state": self.vendor_state,
            "endpoint": self.endpoint,
            "fingerprint": self.fingerprint,
            "submitted_at": self.submitted_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "latency_s": self.latency_s,  # the drawn latency: benches compute their ideal from it
            "error_code": self.failure.code if self.failure else None,
            "webhook_url": self.webhook_url,
            "webhook_deliveries": list(self.webhook_log),
        }


class SlotPool:
    """Concurrency slots of one (vendor, key); the limit is read live so config changes apply."""

    def __init__(self, limit: Callable[[], int]) -> None:
        self._limit = limit
        self.holders: set[str] = set()
        self._waiters: deque[tuple[str, asyncio.Future[None]]] = deque()

    @property
    def limit(self) -> int:
        """Current cap; 0 or less = unlimited."""
        return self._limit()

    def _free(self) -> bool:
        limit = self._limit()
        return limit <= 0 or len(self.holders) < limit

    def try_acquire(self, job_id: str) -> bool:
        if self._waiters or not self._free():
            return False
        self.holders.add(job_id)
        return True

    async def acquire(self, job_id: str) -> None:
        if self.try_acquire(job_id):
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((job_id, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            self.forget(job_id)
            raise

    def forget(self, job_id: str) -> None:
        """Drop ``job_id`` from the waiters and the holders (cancel, reset, end of job)."""
        self._waiters = deque((jid, w) for jid, w in self._waiters if jid != job_id)
        self.holders.discard(job_id)
        self.wake()

    def wake(self) -> None:
        while self._waiters and self._free():
            job_id, waiter = self._waiters.popleft()
            if not waiter.done():
                self.holders.add(job_id)
                waiter.set_result(None)

    def position(self, job_id: str) -> int | None:
        for index, (jid, _) in enumerate(self._waiters):
            if jid == job_id:
                return index
        return None

    @property
    def waiting(self) -> int:
        return len(self._waiters)


class FixedWindows:
    """Fixed-window request counters keyed by (vendor, key, bucket)."""

    def __init__(self) -> None:
        self._windows: dict[tuple[str, ...], tuple[float, int]] = {}

    def hit(self, key: tuple[str, ...], limit: int, window_s: float, now: float) -> float | None:
        """Count one request; ``None`` if allowed, else the seconds until the window resets.

        A window opens at the first request after the previous one closed (not at epoch
        multiples), so a burst is never split across two windows by chance.
        """
        start, count = self._windows.get(key, (now, 0))
        if now >= start + window_s:
            start, count = now, 0
        if count >= limit:
            return start + window_s - now
        self._windows[key] = (start, count + 1)
        return None

    def clear(self) -> None:
        self._windows.clear()


# --------------------------------------------------------------------------------------------
# responses that are faults
# --------------------------------------------------------------------------------------------


class DropConnection(Response):
    """Closes the TCP connection: before any byte, or halfway through ``partial``'s body."""

    def __init__(self, partial: Response | None = None) -> None:
        super().__init__()
        self.partial = partial

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_send = scope.get(RAW_SEND_KEY, send)
        if self.partial is not None:
            body = bytes(self.partial.body)
            await raw_send(
                {"type": "http.response.start", "status": self.partial.status_code, "headers": self.partial.raw_headers}
            )
            await raw_send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
        # uvicorn's send is a bound method of the request cycle, which holds the transport.
        transport = getattr(getattr(raw_send, "__self__", None), "transport", None)
        if transport is not None:
            transport.abort()
            await asyncio.sleep(0.01)  # let connection_lost run so the server knows it is gone
            return
        if self.partial is None:
            # Another server: a response that never completes makes it close the connection.
            await raw_send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]})


# --------------------------------------------------------------------------------------------
# vendor base class
# --------------------------------------------------------------------------------------------


class VendorEmulator:
    """Base of one vendor module. Subclasses set the class attributes and the vendor's wording."""

    name: ClassVar[str]
    #: The vendor's entry in ``vendors.assumptions`` (limits, TTLs, prices, webhook delays).
    assumed: ClassVar[VendorAssumptions]
    phases: ClassVar[tuple[Phase, ...]]
    #: Common terminal state -> the vendor's word for it in status bodies.
    terminal_states: ClassVar[dict[str, str]]
    #: Codes drawn by ``job_fail_rate`` and used by a ``job_fail`` fault without a code.
    default_fail_codes: ClassVar[tuple[str, ...]]
    #: Result URLs are presigned and re-signed on every read (else CDN URLs fixed per file).
    signed_urls: ClassVar[bool] = False
    #: A webhook is sent when a job is cancelled.
    webhook_on_cancel: ClassVar[bool] = True
    default_5xx_status: ClassVar[int] = 500
    #: Concurrency is capped per model (Runflow) rather than per account.
    concurrency_per_endpoint: ClassVar[bool] = False

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    # --- wiring -------------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    def route(
        self,
        path: str,
        handler: Callable[[Request], Awaitable[Response]],
        *,
        methods: Iterable[str] = ("GET",),
        kind: RouteKind = "other",
        auth: bool = True,
        rate_bucket: str | None = None,
    ) -> Route:
        endpoint = self.sandbox.endpoint(self, kind, handler, auth=auth, rate_bucket=rate_bucket)
        return Route(path, endpoint, methods=list(methods))

    def reset(self) -> None:
        """Forget vendor-only state (secrets, uploads in flight)."""

    @property
    def settings(self) -> SandboxSettings:
        return self.sandbox.settings

    # --- the vendor's wording -------------------------------------------------------------------
    def api_key(self, request: Request) -> str | None:
        raise NotImplementedError

    def unauthorized(self) -> Response:
        raise NotImplementedError

    def not_found(self, message: str) -> Response:
        raise NotImplementedError

    def rate_limited(self, bucket: str, retry_after: float | None) -> Response:
        raise NotImplementedError

    def too_many_jobs(self, retry_after: float | None) -> Response:
        """Answer to a submit over the concurrency cap when the vendor rejects."""
        return self.rate_limited("concurrency", retry_after)

    def out_of_balance(self) -> Response:
        raise NotImplementedError

    def server_error(self, status: int | None) -> Response:
        raise NotImplementedError

    def failure(self, code: str, message: str | None = None) -> JobFailure:
        """The vendor's failure for ``code`` (injected faults, limits)."""
        raise NotImplementedError

    def input_failure(self, error: InputError) -> JobFailure:
        raise NotImplementedError

    def concurrency_failure(self) -> JobFailure:
        return self.failure(self.default_fail_codes[0], "Too many concurrent jobs")

    # --- jobs ---------------------------------------------------------------------------------
    async def process(self, job: Job) -> list[RenderedImage]:
        """Fetch the inputs and render the outputs; raise :class:`InputError`/:class:`JobFailure`."""
        raise NotImplementedError

    def webhook(self, job: Job) -> WebhookPlan | None:
        return None

    def job_cost(self, endpoint: str) -> float:
        return self.assumed.price_usd.get(endpoint, 0.0)

    def file_ttl_s(self, job: Job) -> float:
        return self.sandbox.result_url_ttl_s(self.name)

    def rate_limit(self, bucket: str) -> tuple[int | None, float]:
        """(requests, window seconds) for a rate bucket; ``None``/0 requests = unlimited."""
        a = self.assumed
        s = self.settings
        if bucket == "submit":
            rate = s.for_vendor("submit_rate", self.name)
            window = s.for_vendor("rate_window_s", self.name)
            return (a.submit_rate if rate is None else rate, a.rate_window_s if window is None else window)
        if bucket == "status":
            rate = s.for_vendor("status_rate", self.name)
            window = s.for_vendor("status_rate_window_s", self.name)
            return (a.status_rate if rate is None else rate, a.status_rate_window_s if window is None else window)
        return (None, 60.0)

    def retry_after_headers(self, retry_after: float | None) -> dict[str, str]:
        return {} if retry_after is None else {"Retry-After": retry_after_value(retry_after)}

    # --- helpers for subclasses ------------------------------------------------------------------
    def bearer_token(self, request: Request, scheme: str = "Bearer") -> str | None:
        header = request.headers.get("authorization", "")
        prefix, _, token = header.partition(" ")
        if prefix.lower() != scheme.lower():
            return None
        return token.strip() or None

    def job_for(self, request: Request, job_id: str) -> Job | None:
        """The caller's own job (another key's job is invisible, like another org's)."""
        job = self.sandbox.jobs.get((self.name, job_id))
        if job is None or job.api_key != getattr(request.state, "api_key", None):
            return None
        return job

    def result_urls(self, job: Job) -> list[str]:
        return [self.sandbox.file_url(job.origin, stored) for stored in job.results]


# --------------------------------------------------------------------------------------------
# the sandbox state
# --------------------------------------------------------------------------------------------


class Sandbox:
    """All state of one sandbox app; lives on ``app.state.sandbox``."""

    def __init__(self, settings: SandboxSettings, emulators: Iterable[type[VendorEmulator]]) -> None:
        self.initial_settings = settings
        self.settings = settings
        self.vendors: dict[str, VendorEmulator] = {cls.name: cls(self) for cls in emulators}
        self.check_settings(settings)
        self.faults = FaultBook(settings.seed)
        self.rng = random.Random(settings.seed)
        self.files = FileStore()
        self.jobs: dict[tuple[str, str], Job] = {}
        self.counters: dict[str, Counter[str]] = {name: Counter() for name in self.vendors}
        self._fingerprints: dict[str, set[str]] = {name: set() for name in self.vendors}
        self._pools: dict[tuple[str, str, str], SlotPool] = {}
        self._windows = FixedWindows()
        self._spent: defaultdict[tuple[str, str], float] = defaultdict(float)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._http: httpx.AsyncClient | None = None

    # --- settings -------------------------------------------------------------------------------
    def check_settings(self, settings: SandboxSettings) -> None:
        """Reject per-vendor mappings that name a vendor the sandbox does not emulate."""
        for name in type(settings).model_fields:
            value = getattr(settings, name)
            if isinstance(value, dict):
                unknown = set(value) - set(self.vendors) - {"*"}
                if unknown:
                    raise ValueError(f"{name}: unknown vendor(s) {sorted(unknown)}; known: {sorted(self.vendors)}")

    def configure(self, changes: dict[str, Any]) -> SandboxSettings:
        settings = self.settings.updated(changes)
        self.check_settings(settings)
        self.settings = settings
        if "seed" in changes:
            self.faults.rng.seed(settings.seed)
            self.rng.seed(settings.seed)
        for pool in self._pools.values():
            pool.wake()  # a raised concurrency limit frees waiting jobs at once
        return settings

    def result_url_ttl_s(self, vendor: str) -> float:
        ttl = self.settings.for_vendor("result_url_ttl_s", vendor)
        return float(self.vendors[vendor].assumed.result_url_ttl_s if ttl is None else ttl)

    def origin(self, request: Request) -> str:
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        return f"{request.url.scheme}://{request.url.netloc}"

    def key_accepted(self, key: str | None) -> bool:
        if not key:
            return False
        return self.settings.api_key is None or secrets.compare_digest(key, self.settings.api_key)

    # --- lifecycle of the app ---------------------------------------------------------------------
    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            # trust_env=False: the sandbox is offline; a proxy from the environment must not
            # capture calls to loopback receivers and input servers.
            transport = _OutboundGuard(httpx.AsyncHTTPTransport(), lambda: self.settings.outbound_hosts)
            self._http = httpx.AsyncClient(
                follow_redirects=True, max_redirects=3, trust_env=False, transport=transport
            )
        return self._http

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def shutdown(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def reset(self, *, restore_settings: bool = False) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()
        if restore_settings:
            self.settings = self.initial_settings
        self.jobs.clear()
        self.files.clear()
        self.counters = {name: Counter() for name in self.vendors}
        self._fingerprints = {name: set() for name in self.vendors}
        self._pools.clear()
        self._windows.clear()
        self._spent.clear()
        self.faults.reset(self.settings.seed)
        self.rng = random.Random(self.settings.seed)
        for emulator in self.vendors.values():
            emulator.reset()

    # --- request wrapper ------------------------------------------------------------------------
    def endpoint(
        self,
        emulator: VendorEmulator,
        kind: RouteKind,
        handler: Callable[[Request], Awaitable[Response]],
        *,
        auth: bool,
        rate_bucket: str | None,
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a vendor handler: count it, apply faults, auth and rate limits around it."""

        async def wrapped(request: Request) -> Response:
            counters = self.counters[emulator.name]
            if kind in _CALL_COUNTERS:
                counters[_CALL_COUNTERS[kind]] += 1
            action = self.faults.request_fault(self.settings, emulator.name, kind)
            if action is not None:
                counters["faults_injected"] += 1
                if action.kind == "slow":
                    # A slow vendor has the request and is slow to answer: a client that times out
                    # meanwhile does not take its submit back.
                    await request.body()
                    await asyncio.sleep(action.slow_s)
                    action = None
            response = await self._answer(emulator, request, handler, action, auth, rate_bucket)
            if kind == "submit" and getattr(request.state, "job", None) is None:
                counters["submits_rejected"] += 1
            return response

        return wrapped

    async def _answer(
        self,
        emulator: VendorEmulator,
        request: Request,
        handler: Callable[[Request], Awaitable[Response]],
        action: FaultAction | None,
        auth: bool,
        rate_bucket: str | None,
    ) -> Response:
        if action is not None and action.kind not in AFTER_HANDLER_KINDS:
            await request.body()  # unread bytes would turn a clean close into a TCP reset
            return self._fault_response(emulator, action)
        key = emulator.api_key(request) if auth else None
        if auth:
            if not self.key_accepted(key):
                return emulator.unauthorized()
            request.state.api_key = key
        if rate_bucket is not None:
            wait = self.rate_check(emulator, rate_bucket, key or "")
            if wait is not None:
                sends = emulator.assumed.sends_retry_after
                return emulator.rate_limited(rate_bucket, wait if sends else None)
        try:
            response = await handler(request)
        except Reject as rejected:
            response = rejected.response
        if action is not None:
            response = self._spoil(emulator, action, response)
        return response

    def _fault_response(self, emulator: VendorEmulator, action: FaultAction) -> Response:
        if action.kind == "5xx":
            return emulator.server_error(action.status)
        if action.kind == "429":
            sends = emulator.assumed.sends_retry_after
            retry_after = action.retry_after if action.retry_after is not None else (1.0 if sends else None)
            return emulator.rate_limited("fault", retry_after)
        if action.kind == "429_no_retry_after":
            return emulator.rate_limited("fault", None)
        return DropConnection()

    def _spoil(self, emulator: VendorEmulator, action: FaultAction, response: Response) -> Response:
        if not hasattr(response, "body"):  # a stream: nothing sensible to cut
            return response
        if action.kind == "malformed_json":
            body = bytes(response.body)
            headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
            return Response(body[: len(body) // 2], response.status_code, headers, "application/json")
        if action.kind == "5xx_after_accept":
            return emulator.server_error(action.status)
        if action.kind == "drop_mid_response":
            return DropConnection(partial=response)
        return DropConnection()

    def rate_check(self, emulator: VendorEmulator, bucket: str, key: str) -> float | None:
        limit, window = emulator.rate_limit(bucket)
        if not limit:
            return None
        return self._windows.hit((emulator.name, key, bucket), limit, window, time.time())

    # --- jobs -----------------------------------------------------------------------------------
    def pool(self, vendor: str, key: str, endpoint: str) -> SlotPool:
        """The slots of one API key (and one model, for vendors that cap per model)."""
        scope = (vendor, key, endpoint if self.vendors[vendor].concurrency_per_endpoint else "")
        pool = self._pools.get(scope)
        if pool is None:

            def limit() -> int:
                value = self.settings.for_vendor("concurrency", vendor)
                return int(self.vendors[vendor].assumed.concurrency if value is None else value)

            pool = self._pools[scope] = SlotPool(limit)
        return pool

    def job_pool(self, job: Job) -> SlotPool:
        return self.pool(job.vendor, job.api_key, job.endpoint)

    def over_concurrency(self, vendor: str) -> str:
        mode = self.settings.for_vendor("over_concurrency", vendor)
        return str(mode or assumptions.OVER_CONCURRENCY.get(vendor, "queue"))

    def balance(self, vendor: str, key: str) -> float:
        start = self.settings.for_vendor("balance", vendor)
        return float(1000.0 if start is None else start) - self._spent[(vendor, key)]

    def draw_latency(self, vendor: str, endpoint: str) -> float:
        mean = self.settings.for_vendor("latency_s", vendor)
        if mean is None:
            mean = self.vendors[vendor].assumed.typical_latency_s.get(endpoint, 5.0)
        mean = max(0.0, float(mean))
        spread = self.settings.latency_spread
        distribution = self.settings.latency_distribution
        if mean == 0 or distribution == "fixed":
            return mean
        if distribution == "uniform":
            return max(0.0, self.rng.uniform(mean * (1 - spread), mean * (1 + spread)))
        if distribution == "exponential":
            return self.rng.expovariate(1 / mean)
        # lognormal with the given mean: mu = -sigma^2 / 2
        return mean * self.rng.lognormvariate(-(spread**2) / 2, spread)

    def create_job(
        self,
        emulator: VendorEmulator,
        request: Request,
        *,
        job_id: str,
        endpoint: str,
        params: dict[str, Any],
        webhook_url: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Job:
        """Accept a validated submit: limits, balance, doom, duplicate check, then start the job.

        Raises :class:`Reject` with the vendor's answer when the job cannot be created.
        """
        vendor = emulator.name
        key: str = request.state.api_key
        if self.balance(vendor, key) < emulator.job_cost(endpoint):
            raise Reject(emulator.out_of_balance())
        job = Job(
            vendor=vendor,
            id=job_id,
            api_key=key,
            endpoint=endpoint,
            params=params,
            fingerprint=hashlib.sha256(canonical_json({"endpoint": endpoint, "params": params})).hexdigest(),
            origin=self.origin(request),
            webhook_url=webhook_url,
            extra=extra or {},
            vendor_state=emulator.phases[0].name,
        )
        pool = self.job_pool(job)
        mode = self.over_concurrency(vendor)
        if mode == "reject":
            if not pool.try_acquire(job.id):
                wait = self._soonest_slot(job) if emulator.assumed.sends_retry_after else None
                raise Reject(emulator.too_many_jobs(wait))
            job.slot_held = True
        elif mode == "fail" and 0 < pool.limit <= self._in_flight(job):
            job.forced_failure = emulator.concurrency_failure()
            job.takes_slot = False  # it fails for want of a slot: it must not wait for one
        doom = self.faults.job_failure(self.settings, vendor, emulator.default_fail_codes)
        if doom is not None and job.forced_failure is None:
            job.forced_failure = emulator.failure(doom.code or emulator.default_fail_codes[0], doom.message)
        counters = self.counters[vendor]
        counters["submits_accepted"] += 1
        if job.fingerprint in self._fingerprints[vendor]:
            counters["duplicate_submits"] += 1
        self._fingerprints[vendor].add(job.fingerprint)
        job.latency_s = self.draw_latency(vendor, endpoint)
        self.jobs[(vendor, job.id)] = job
        request.state.job = job
        job.task = self.spawn(self._run(emulator, job))
        return job

    def _in_flight(self, new: Job) -> int:
        """Unfinished jobs sharing ``new``'s concurrency pool."""
        pool = self.job_pool(new)
        return sum(1 for job in self.jobs.values() if not job.terminal and self.job_pool(job) is pool)

    def _soonest_slot(self, new: Job) -> float:
        """Seconds until a running job of the same pool should end (a Retry-After value)."""
        now = time.time()
        holders = self.job_pool(new).holders
        remaining = [
            job.submitted_at + job.latency_s - now
            for job in self.jobs.values()
            if job.vendor == new.vendor and job.id in holders
        ]
        return max(1.0, min(remaining, default=1.0))

    def queue_position(self, job: Job) -> int:
        """Jobs of the same key ahead of ``job`` in the queue (0 once it runs)."""
        pool = self.job_pool(job)
        position = pool.position(job.id)
        if position is not None:
            return position
        return 0 if job.slot_held or job.state != "queued" else pool.waiting

    async def _run(self, emulator: VendorEmulator, job: Job) -> None:
        pool = self.job_pool(job)
        work: asyncio.Task[list[RenderedImage]] | None = None
        try:
            for phase in emulator.phases:
                if phase.needs_slot and job.takes_slot and not job.slot_held:
                    await pool.acquire(job.id)
                    job.slot_held = True
                job.vendor_state = phase.name
                job.state = phase.state
                if phase.state == "running" and job.started_at is None:
                    job.started_at = time.time()
                if phase.needs_slot and work is None and job.forced_failure is None:
                    work = asyncio.ensure_future(self._work(emulator, job))
                await asyncio.sleep(job.latency_s * phase.share)
            if job.forced_failure is not None:
                raise job.forced_failure
            images = await (work if work is not None else self._work(emulator, job))
            self._succeed(emulator, job, images)
        except JobFailure as failure:
            self._finish(emulator, job, "failed", failure)
        except asyncio.CancelledError:
            if work is not None:
                work.cancel()
            raise
        except Exception as exc:  # a sandbox bug must still end the job, and say why
            log.exception("sandbox job %s/%s crashed", job.vendor, job.id)
            self._finish(emulator, job, "failed", emulator.failure("INTERNAL", f"sandbox error: {exc!r}"))
        finally:
            pool.forget(job.id)
            job.slot_held = False

    async def _work(self, emulator: VendorEmulator, job: Job) -> list[RenderedImage]:
        try:
            return await emulator.process(job)
        except InputError as error:
            raise emulator.input_failure(error) from error

    def _succeed(self, emulator: VendorEmulator, job: Job, images: list[RenderedImage]) -> None:
        if job.terminal:
            return
        signed = emulator.signed_urls
        expires_at = None if signed else time.time() + emulator.file_ttl_s(job)
        for image in images:
            job.results.append(
                self.files.add(
                    job.vendor,
                    image.data,
                    image.content_type,
                    image.filename,
                    width=image.width,
                    height=image.height,
                    signed=signed,
                    expires_at=expires_at,
                    is_result=True,
                    job_id=job.id,
                )
            )
        job.cost = emulator.job_cost(job.endpoint)
        self._spent[(job.vendor, job.api_key)] += job.cost
        self._finish(emulator, job, "succeeded")

    def _finish(self, emulator: VendorEmulator, job: Job, state: JobState, failure: JobFailure | None = None) -> None:
        if job.terminal:
            return
        job.state = state
        job.vendor_state = emulator.terminal_states[state]
        job.failure = failure
        job.finished_at = time.time()
        if job.started_at is None and state != "cancelled":
            job.started_at = job.finished_at
        self.counters[job.vendor][f"jobs_{state}"] += 1
        if job.webhook_url and (state != "cancelled" or emulator.webhook_on_cancel):
            self.spawn(self.deliver_webhook(emulator, job))

    def cancel_job(self, emulator: VendorEmulator, job: Job, failure: JobFailure | None = None) -> bool:
        """Cancel a job that has not ended; ``False`` when it already had."""
        if job.terminal:
            return False
        if job.task is not None:
            job.task.cancel()
        self.job_pool(job).forget(job.id)
        job.slot_held = False
        self._finish(emulator, job, "cancelled", failure)
        return True

    # --- inputs and outputs ---------------------------------------------------------------------
    async def fetch_input(self, job: Job, url: str, *, require_https: bool = False) -> bytes:
        """The bytes behind an input URL or data URI, bounded in size and time."""
        limit = self.settings.max_input_bytes
        if url.startswith("data:"):
            return _decode_data_uri(url, limit)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError("unsupported", f"unsupported URL {url[:200]!r}")
        if require_https and parts.scheme != "https" and not is_loopback(parts.hostname):
            raise InputError("unsupported", f"HTTPS required: {url[:200]}")
        own = self._own_file(job, url)
        if own is not None:
            return own
        try:
            return await asyncio.wait_for(self._download(url, limit), self.settings.input_fetch_timeout_s)
        except asyncio.TimeoutError as exc:
            raise InputError("download", f"timed out fetching {url[:200]}") from exc

    def _own_file(self, job: Job, url: str) -> bytes | None:
        # Files uploaded to the sandbox itself are read from memory, not over the network.
        prefix = f"{job.origin}/files/"
        if not url.startswith(prefix):
            return None
        stored = self.files.get(url[len(prefix) :].split("/", 1)[0])
        if stored is None or not stored.ready:
            raise InputError("download", f"GET {url[:200]} answered HTTP 404")
        return stored.data

    async def _download(self, url: str, limit: int) -> bytes:
        try:
            async with self.http.stream("GET", url, timeout=self.settings.input_fetch_timeout_s) as response:
                if response.status_code >= 400:
                    raise InputError("download", f"GET {url[:200]} answered HTTP {response.status_code}")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise InputError("file_too_large", f"{url[:200]} is larger than {limit} bytes")
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.HTTPError as exc:
            raise InputError("download", f"cannot fetch {url[:200]}: {exc!r}") from exc

    async def load_image(self, job: Job, url: str, *, which: str = "image", require_https: bool = False) -> bytes:
        """Fetch an input and check that it is an image of acceptable size (header only)."""
        data = await self.fetch_input(job, url, require_https=require_https)
        self.check_image(data, which)
        return data

    def check_image(self, data: bytes, which: str = "image") -> None:
        try:
            render.check_image(data, which=which, max_pixels=self.settings.max_input_pixels)
        except render.ImageInputError as exc:
            raise InputError("image_too_large" if exc.too_large else "decode", str(exc)) from exc

    async def render(self, kind: render.RenderKind, image: bytes, filename: str, **options: Any) -> RenderedImage:
        """Run :func:`render.render_result` in a thread and describe its output."""
        try:
            data = await asyncio.to_thread(render.render_result, kind, image, **options)
        except render.ImageInputError as exc:
            raise InputError("image_too_large" if exc.too_large else "decode", str(exc)) from exc
        width, height, content_type = render.image_info(data)
        return RenderedImage(data, content_type, filename, width, height)

    def file_url(self, origin: str, stored: StoredFile) -> str:
        return self.files.url(origin, stored, self.result_url_ttl_s(stored.vendor))

    async def serve_file(self, request: Request) -> Response:
        """``GET /files/{file_id}/{filename}``: presigned or CDN semantics, per the file."""
        stored = self.files.get(request.path_params["file_id"])
        if stored is None or not stored.ready or stored.filename != request.path_params["filename"]:
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        counters = self.counters[stored.vendor]
        action = self.faults.request_fault(self.settings, stored.vendor, "file")
        if action is not None:
            counters["faults_injected"] += 1
            if action.kind == "slow":
                await asyncio.sleep(action.slow_s)
            elif action.kind in ("5xx", "5xx_after_accept"):
                return _s3_error(action.status or 503, "ServiceUnavailable", "Please reduce your request rate.")
            elif action.kind in ("drop", "drop_after_accept"):
                return DropConnection()
        expired = stored.is_result and self.settings.result_expire_immediately
        if stored.signed:
            try:
                expires = int(request.query_params["X-Expires"])
                signature = request.query_params["X-Signature"]
            except (KeyError, ValueError):
                return _s3_error(403, "AccessDenied", "Query-string authentication requires the signature.")
            if not hmac.compare_digest(signature, self.files.signature(stored.id, expires)):
                return _s3_error(403, "SignatureDoesNotMatch", "The request signature does not match.")
            if expired or time.time() > expires:
                counters["files_expired"] += 1
                return _s3_error(403, "AccessDenied", "Request has expired")
        elif expired or (stored.expires_at is not None and time.time() > stored.expires_at):
            counters["files_expired"] += 1
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        counters["file_downloads"] += 1
        response = Response(stored.data, media_type=stored.content_type)
        if action is not None and action.kind == "drop_mid_response":
            return DropConnection(partial=response)
        if action is not None and action.kind == "malformed_json":
            return Response(stored.data[: len(stored.data) // 2], media_type=stored.content_type)
        return response

    # --- webhooks -------------------------------------------------------------------------------
    async def deliver_webhook(self, emulator: VendorEmulator, job: Job) -> None:
        """Deliver the job's webhook with the vendor's retry policy (delays x webhook_time_scale)."""
        plan = emulator.webhook(job)
        if plan is None:
            return
        counters = self.counters[job.vendor]
        counters["webhook_deliveries"] += 1
        if self.faults.webhook_dropped(self.settings, job.vendor):
            counters["webhook_dropped"] += 1
            job.webhook_log.append({"attempt": 0, "dropped": True, "at": time.time()})
            return
        scale = self.settings.webhook_time_scale
        for attempt in range(1, len(plan.delays_s) + 2):
            counters["webhook_attempts"] += 1
            status: int | None = None
            error: str | None = None
            try:
                answer = await self.http.post(
                    plan.url, content=plan.body, headers=plan.headers(), timeout=plan.timeout_s
                )
                status = answer.status_code
            except httpx.HTTPError as exc:
                error = repr(exc)
            job.webhook_log.append({"attempt": attempt, "status_code": status, "error": error, "at": time.time()})
            if status is not None and 200 <= status < 300:
                counters["webhook_successes"] += 1
                return
            if attempt > len(plan.delays_s) or not plan.retry_on(status):
                break
            await asyncio.sleep(plan.delays_s[attempt - 1] * scale)
        counters["webhook_failures"] += 1

    def webhook_timeout_s(self, vendor: str) -> float:
        value = self.settings.for_vendor("webhook_timeout_s", vendor)
        return float(self.vendors[vendor].assumed.webhook_timeout_s if value is None else value)

    # --- stats ----------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        return {
            "vendors": {
                vendor: {name: counters[name] for name in COUNTERS} for vendor, counters in self.counters.items()
            },
            "jobs": [job.summary() for job in self.jobs.values()],
            "pending_faults": self.faults.pending(),
        }


def _decode_data_uri(uri: str, limit: int) -> bytes:
    header, sep, payload = uri.partition(",")
    if not sep:
        raise InputError("decode", "data URI without a comma")
    if len(payload) * 3 // 4 > limit:
        raise InputError("file_too_large", f"data URI is larger than {limit} bytes")
    if not header.endswith(";base64"):
        raise InputError("decode", "only base64 data URIs are supported")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError("decode", f"invalid base64 in data URI: {exc}") from exc
