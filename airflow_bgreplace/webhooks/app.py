"""The webhook receiver: a FastAPI app that authenticates vendor callbacks and stores them.

``POST /webhooks/{vendor}?conn_id=<connection>&token=<secret>`` (the URL from
:func:`~airflow_bgreplace.vendors.webhooks.callback_url`), in this order:

1. unknown vendor → 404;
2. the raw body is read first, at most ``max_body_bytes`` → 413 (before any parsing);
3. the connection ``conn_id`` (default ``bgreplace_<vendor>_default``) gives the secrets: its
   ``webhook_token``, Runflow's ``webhook_secret``, fal's ``jwks_url``;
4. the vendor's checks (:mod:`airflow_bgreplace.vendors.webhooks`): bad or missing signature or
   token, unknown connection, stale timestamp → 401; a body that is not the vendor's payload
   → 400; fal's keys unreachable → 503 (fal retries);
5. raw body + parsed :class:`~airflow_bgreplace.vendors.status.JobStatus` are committed to the
   :class:`~airflow_bgreplace.webhooks.store.WebhookStore`; only then 200
   ``{"accepted": true, "duplicate": <bool>}``. A repeated delivery is answered the same way.

Nothing here logs a token, a secret or a body. Mounted by the api-server plugin at ``/bgreplace``
(no Airflow auth there: the checks above are the only gate) or served by ``bgreplace-webhooks``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from airflow_bgreplace.vendors import VENDORS, VendorApi
from airflow_bgreplace.vendors.errors import (
    MalformedWebhookError,
    WebhookAuthenticationError,
    WebhookError,
    WebhookKeysUnavailableError,
)
from airflow_bgreplace.vendors.webhooks import (
    CONN_ID_PARAM,
    MAX_WEBHOOK_BODY_BYTES,
    ROUTE,
    TOKEN_PARAM,
    URL_PREFIX,
    JwksCache,
    WebhookCredentials,
    WebhookDelivery,
    averify_delivery,
    default_conn_id,
)
from airflow_bgreplace.webhooks.store import WebhookStore

log = logging.getLogger(__name__)

#: Airflow connection ids are identifiers; anything else is refused before a lookup.
_CONN_ID = re.compile(r"[A-Za-z0-9_.\-]{1,250}")


class UnknownConnectionError(WebhookAuthenticationError):
    """The callback names a connection that does not exist or is of another vendor (answered 401)."""


class CredentialsResolver(Protocol):
    """Gives the verification secrets of a connection; raises :class:`UnknownConnectionError`."""

    async def __call__(self, vendor: str, conn_id: str) -> WebhookCredentials: ...


class AirflowConnectionResolver:
    """Reads Airflow connections (metadata DB, secrets backends, ``AIRFLOW_CONN_*``).

    ``Connection.get_connection_from_secrets`` is synchronous and may query a database or a
    secrets backend, so it runs in a worker thread; answers (including "not found") are cached
    for ``ttl_s`` so that a burst of deliveries costs one lookup.
    """

    def __init__(self, ttl_s: float = 30.0, max_entries: int = 1024) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._cache: dict[tuple[str, str], tuple[float, WebhookCredentials | None]] = {}

    async def __call__(self, vendor: str, conn_id: str) -> WebhookCredentials:
        key = (vendor, conn_id)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is None or now - cached[0] > self.ttl_s:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            cached = (now, await asyncio.to_thread(self.load, vendor, conn_id))
            self._cache[key] = cached
        if cached[1] is None:
            raise UnknownConnectionError(vendor, f"no bgreplace_{vendor} connection {conn_id!r}")
        return cached[1]

    @staticmethod
    def load(vendor: str, conn_id: str) -> WebhookCredentials | None:
        from airflow.exceptions import AirflowNotFoundException
        from airflow.models import Connection

        from airflow_bgreplace.hooks.base import _base_url

        try:
            conn = Connection.get_connection_from_secrets(conn_id)
        except AirflowNotFoundException:
            return None
        if conn.conn_type and conn.conn_type != f"bgreplace_{vendor}":
            return None  # another vendor's secrets must not authenticate this one's deliveries
        return VENDORS[vendor]().webhook_credentials(conn.extra_dejson, _base_url(conn.host, conn.schema) or None)


class BodyTooLargeError(Exception):
    """The body is above the receiver's bound (answered 413)."""


async def read_bounded_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing anything above ``limit`` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLargeError
    return bytes(body)


#: HTTP status of each refusal.
_STATUS_OF: tuple[tuple[type[WebhookError], int], ...] = (
    (WebhookAuthenticationError, 401),
    (MalformedWebhookError, 400),
    (WebhookKeysUnavailableError, 503),
)


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


class WebhookReceiver:
    """The state behind the app: store (opened on first use), resolver, fal keys, clock."""

    def __init__(
        self,
        store: WebhookStore | None,
        resolver: CredentialsResolver | None,
        *,
        max_body_bytes: int,
        jwks: JwksCache | None,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self.resolver: CredentialsResolver = resolver or AirflowConnectionResolver()
        self.max_body_bytes = max_body_bytes
        self.jwks = jwks or JwksCache()
        self.clock = clock
        self._apis: dict[str, VendorApi] = {}

    @property
    def store(self) -> WebhookStore:
        # Opened at the first delivery, not at import: the plugin module is imported by every
        # Airflow process that loads plugins.
        if self._store is None:
            self._store = WebhookStore.shared()
        return self._store

    def api(self, vendor: str) -> VendorApi | None:
        if vendor not in VENDORS:
            return None
        if vendor not in self._apis:
            self._apis[vendor] = VENDORS[vendor]()
        return self._apis[vendor]

    async def receive(self, vendor: str, request: Request) -> JSONResponse:
        api = self.api(vendor)
        if api is None:
            return _problem(404, f"unknown vendor {vendor[:40]!r}; known: {sorted(VENDORS)}")
        try:
            body = await read_bounded_body(request, self.max_body_bytes)
        except BodyTooLargeError:
            log.warning("%s webhook refused: body above %d bytes", vendor, self.max_body_bytes)
            return _problem(413, f"body larger than {self.max_body_bytes} bytes")
        conn_id = request.query_params.get(CONN_ID_PARAM) or default_conn_id(vendor)
        if not _CONN_ID.fullmatch(conn_id):
            return _problem(400, f"{CONN_ID_PARAM} is not a connection id")
        now = self.clock()
        delivery = WebhookDelivery.of(body, request.headers, request.query_params.get(TOKEN_PARAM), received_at=now)
        try:
            credentials = await self.resolver(vendor, conn_id)
            verified = await averify_delivery(api, delivery, credentials, self.jwks, now=now)
        except WebhookError as exc:
            status = next((code for cls, code in _STATUS_OF if isinstance(exc, cls)), 400)
            log.warning("%s webhook refused (%d) for connection %s: %s", vendor, status, conn_id, exc.message)
            return _problem(status, exc.message)
        job = verified.status
        result = await self.store.arecord(
            vendor,
            job.job_id,
            body,
            request.headers,
            job,
            verified.verified_by,
            delivery_id=verified.delivery_id,
            body_sha256=delivery.body_sha256,
        )
        log.info(
            "%s webhook accepted: job %s %s (%s, %s, sequence %d)",
            vendor,
            job.job_id,
            job.state.value,
            verified.verified_by,
            "new" if result.new else "duplicate",
            result.sequence,
        )
        return JSONResponse({"accepted": True, "duplicate": not result.new})


def create_app(
    store: WebhookStore | None = None,
    resolver: CredentialsResolver | None = None,
    *,
    max_body_bytes: int = MAX_WEBHOOK_BODY_BYTES,
    jwks: JwksCache | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """The receiver app, serving ``POST /webhooks/{vendor}`` and ``GET /health``.

    ``store`` defaults to :meth:`WebhookStore.shared` (``[bgreplace] webhook_store_url``), opened
    at the first delivery; ``resolver`` to :class:`AirflowConnectionResolver`. ``clock`` is the
    time the replay windows are measured against. Creating the app does no I/O.
    """
    receiver = WebhookReceiver(store, resolver, max_body_bytes=max_body_bytes, jwks=jwks, clock=clock)
    app = FastAPI(title="bgreplace webhooks", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.receiver = receiver

    @app.post(ROUTE)
    async def receive_webhook(vendor: str, request: Request) -> JSONResponse:
        return await receiver.receive(vendor, request)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "vendors": sorted(VENDORS)}

    return app


def create_server_app(**kwargs: Any) -> FastAPI:
    """The receiver under ``/bgreplace``, as the api-server mounts it: for ``bgreplace-webhooks`` and tests.

    ``kwargs`` go to :func:`create_app`.
    """
    root = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    root.mount(URL_PREFIX, create_app(**kwargs))
    return root
