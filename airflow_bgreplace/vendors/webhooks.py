"""Vendor webhooks without Airflow: callback URLs, signature checks and fal's signing keys.

Each vendor proves a delivery differently (vendors/README.md §5):

* **Runflow**: HMAC-SHA256 of the raw body, lowercase hex in ``Runflow-Signature``, once a
  signing secret exists; several secrets may be configured during a rotation.
* **fal**: Ed25519 over ``request_id \\n user_id \\n timestamp \\n sha256hex(body)``, checked
  against any key of fal's JWKS, within ±300 s.
* **FASHN, ImagePipeline** (and Runflow without a secret): nothing is signed, so a secret token
  travels in the callback URL we give the vendor (``?token=``); ImagePipeline's payload
  ``timestamp`` also bounds replays.

:meth:`VendorApi.read_webhook <airflow_bgreplace.vendors.base.VendorApi.read_webhook>` runs the
vendor's checks and parses the payload into a :class:`JobStatus`; :func:`verify_delivery` and
:func:`averify_delivery` add the JWKS fetch around it. Failures raise the typed errors of
:mod:`.errors` (``MalformedWebhookError``, ``WebhookAuthenticationError`` and its subclasses,
``WebhookKeysUnavailableError``); their messages never quote a secret, a token or a signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from airflow_bgreplace.vendors.assumptions import WEBHOOK_TIMESTAMP_TOLERANCE_S
from airflow_bgreplace.vendors.errors import (
    InvalidWebhookSignatureError,
    InvalidWebhookTokenError,
    MalformedWebhookError,
    StaleWebhookError,
    WebhookKeysUnavailableError,
)
from airflow_bgreplace.vendors.status import JobStatus

if TYPE_CHECKING:
    from airflow_bgreplace.vendors.base import VendorApi

# --------------------------------------------------------------------------- the callback URL

#: Where the receiver is mounted: the api-server plugin and the standalone server use the same prefix.
URL_PREFIX = "/bgreplace"
#: The receiver's route below :data:`URL_PREFIX`.
ROUTE = "/webhooks/{vendor}"
CONN_ID_PARAM = "conn_id"
TOKEN_PARAM = "token"  # noqa: S105 - the name of the query parameter, not a token
#: Largest body the receiver reads. FASHN posts whole status bodies, which hold base64 images
#: when a job asked for ``return_base64`` (fashn.md §5): a few MB each.
MAX_WEBHOOK_BODY_BYTES = 16 * 1024 * 1024


def default_conn_id(vendor: str) -> str:
    """The connection a callback without ``conn_id`` is verified with (the hooks' default name)."""
    return f"bgreplace_{vendor}_default"


def callback_url(public_base_url: str, vendor: str, conn_id: str, token: str | None = None) -> str:
    """The URL a vendor posts a job's webhook to, e.g.
    ``https://airflow.example.com/bgreplace/webhooks/fal?conn_id=bgreplace_fal_default``.

    ``public_base_url`` is where the api-server (or ``bgreplace-webhooks``) is reachable from the
    vendor, without the ``/bgreplace`` prefix. ``token`` is the connection's ``webhook_token``
    (needed for vendors that sign nothing).
    """
    path = URL_PREFIX + ROUTE.format(vendor=quote(vendor, safe=""))
    query = {CONN_ID_PARAM: conn_id, **({TOKEN_PARAM: token} if token else {})}
    return f"{public_base_url.rstrip('/')}{path}?{urlencode(query)}"


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class WebhookCredentials:
    """What one connection configures to authenticate its vendor's deliveries."""

    #: Runflow signing secrets (``whsec_...``); more than one during a rotation.
    hmac_secrets: tuple[str, ...] = ()
    #: The secret carried in the callback URL (``?token=``).
    token: str | None = None
    #: Where fal's signing keys are published; any of them may have signed.
    jwks_urls: tuple[str, ...] = ()

    def __repr__(self) -> str:  # never shows a secret
        return (
            f"WebhookCredentials(hmac_secrets=<{len(self.hmac_secrets)}>, token={'<set>' if self.token else None}, "
            f"jwks_urls={self.jwks_urls!r})"
        )


@dataclass(frozen=True)
class WebhookDelivery:
    """One POST as received: the raw body (exactly the signed bytes), headers, URL token, time."""

    body: bytes
    #: Header names in lower case.
    headers: Mapping[str, str] = field(default_factory=dict)
    token: str | None = None
    received_at: float = field(default_factory=time.time)

    @classmethod
    def of(
        cls, body: bytes, headers: Mapping[str, str], token: str | None = None, received_at: float | None = None
    ) -> WebhookDelivery:
        return cls(
            body,
            {name.lower(): value for name, value in headers.items()},
            token,
            time.time() if received_at is None else received_at,
        )

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def __repr__(self) -> str:  # never shows the token (nor the body)
        headers = sorted(self.headers)
        return f"WebhookDelivery(<{len(self.body)} bytes>, headers={headers}, received_at={self.received_at})"

    @property
    def body_sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


@dataclass(frozen=True)
class VerifiedWebhook:
    """A delivery that passed the vendor's checks, as the common job status."""

    status: JobStatus
    #: How it was authenticated, e.g. ``"hmac-sha256"``, ``"ed25519"``, ``"token"``, ``"token+ed25519"``.
    verified_by: str
    #: The vendor's id of this delivery attempt, when it sends one (Runflow-Request-Id).
    delivery_id: str | None = None


# --------------------------------------------------------------------------- payload helpers


def webhook_json(vendor: str, body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or :class:`MalformedWebhookError`."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedWebhookError(vendor, f"body is not JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise MalformedWebhookError(vendor, f"body is a JSON {type(data).__name__}, not an object")
    return data


def required_text(vendor: str, data: Mapping[str, Any], key: str) -> str:
    """``data[key]`` as a non-empty string (ids and states), or :class:`MalformedWebhookError`."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise MalformedWebhookError(vendor, f"payload has no {key!r}")
    return str(value)


# --------------------------------------------------------------------------- the checks


def verify_token(vendor: str, given: str | None, expected: str) -> None:
    """Constant-time comparison of the URL token with the connection's."""
    if not given:
        raise InvalidWebhookTokenError(vendor, f"the callback URL carries no {TOKEN_PARAM!r}")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise InvalidWebhookTokenError(vendor, "the URL token does not match the connection's webhook_token")


_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


def verify_hmac_sha256(vendor: str, body: bytes, signature: str | None, secrets: Sequence[str]) -> int:
    """Index of the secret whose HMAC-SHA256 of ``body`` equals ``signature`` (lowercase hex).

    Every secret is tried, each in constant time: during a rotation either may have signed.
    """
    if not signature:
        raise InvalidWebhookSignatureError(vendor, "no signature header although a signing secret is configured")
    if not _HEX_SHA256.fullmatch(signature):
        raise InvalidWebhookSignatureError(vendor, "the signature is not 64 lowercase hex characters")
    matched = -1
    for index, secret in enumerate(secrets):
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, signature) and matched < 0:
            matched = index
    if matched < 0:
        raise InvalidWebhookSignatureError(vendor, f"the signature matches none of the {len(secrets)} secret(s)")
    return matched


def check_timestamp(
    vendor: str, timestamp: float | None, now: float | None = None, tolerance_s: float = WEBHOOK_TIMESTAMP_TOLERANCE_S
) -> None:
    """Refuse a delivery whose Unix ``timestamp`` is further than ``tolerance_s`` from now (a replay)."""
    if timestamp is None:
        raise StaleWebhookError(vendor, "no timestamp: a replay cannot be ruled out")
    skew = (time.time() if now is None else now) - timestamp
    if abs(skew) > tolerance_s:
        raise StaleWebhookError(vendor, f"timestamp is {skew:+.0f} s from now (window ±{tolerance_s:.0f} s)")


def verify_ed25519(vendor: str, message: bytes, signature_hex: str, keys: Sequence[Ed25519PublicKey]) -> int:
    """Index of the key that verifies ``signature_hex`` over ``message``."""
    try:
        signature = bytes.fromhex(signature_hex)
    except ValueError:
        raise InvalidWebhookSignatureError(vendor, "the signature is not hex") from None
    if len(signature) != 64:
        raise InvalidWebhookSignatureError(vendor, "the signature is not 64 bytes")
    for index, key in enumerate(keys):
        try:
            key.verify(signature, message)
        except InvalidSignature:
            continue
        return index
    raise InvalidWebhookSignatureError(vendor, f"the signature matches none of the {len(keys)} published key(s)")


# --------------------------------------------------------------------------- JWKS


def decode_base64url(text: str) -> bytes:
    """base64url with or without ``=`` padding (fal's ``x`` values come both ways)."""
    stripped = text.strip().rstrip("=")
    return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))


def parse_jwks(data: Any) -> list[Ed25519PublicKey]:
    """The Ed25519 keys (``kty: OKP, crv: Ed25519``) of a JWKS document; other or broken keys are skipped."""
    keys: list[Ed25519PublicKey] = []
    entries = data.get("keys") if isinstance(data, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
            continue
        try:
            raw = decode_base64url(str(entry.get("x", "")))
            keys.append(Ed25519PublicKey.from_public_bytes(raw))
        except (binascii.Error, ValueError):
            continue
    return keys


@dataclass
class _KeySet:
    keys: tuple[Ed25519PublicKey, ...] = ()
    fetched_at: float | None = None  # of the keys held
    attempted_at: float = float("-inf")  # last fetch attempt, successful or not


class JwksCache:
    """Signing keys per JWKS URL: fetched with a bounded GET, kept at most ``max_age_s``.

    A signature that matches no cached key may mean the vendor rotated its key: callers then ask
    for a refresh, which is granted at most once per ``refresh_interval_s`` per URL, so forged
    deliveries cannot turn the receiver into a JWKS flooder. One instance serves one process; it
    needs no lock (two concurrent fetches of the same document are harmless).
    """

    def __init__(
        self,
        *,
        vendor: str = "fal",
        max_age_s: float = 24 * 3600.0,  # fal.md §11: cache at most 24 h
        refresh_interval_s: float = 60.0,
        timeout_s: float = 5.0,
        max_bytes: int = 64 * 1024,
    ) -> None:
        self.vendor = vendor
        self.max_age_s = max_age_s
        self.refresh_interval_s = refresh_interval_s
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self._sets: dict[str, _KeySet] = {}

    def _due(self, urls: Sequence[str], refresh: bool, now: float) -> list[str]:
        """URLs to fetch now: nothing fresh held, or a refresh asked for and allowed."""
        due = []
        for url in urls:
            held = self._sets.get(url) or _KeySet()
            fresh = held.fetched_at is not None and now - held.fetched_at <= self.max_age_s
            if (not fresh or refresh) and now - held.attempted_at >= self.refresh_interval_s:
                due.append(url)
        return due

    def may_refresh(self, urls: Sequence[str]) -> bool:
        return bool(self._due(urls, True, time.time()))

    def _mark_attempt(self, url: str, now: float) -> None:
        self._sets.setdefault(url, _KeySet()).attempted_at = now

    def _store(self, url: str, content: bytes | None, now: float) -> None:
        if content is None:
            return
        try:
            keys = parse_jwks(json.loads(content))
        except (ValueError, UnicodeDecodeError):
            return
        if keys:
            held = self._sets.setdefault(url, _KeySet())
            held.keys, held.fetched_at = tuple(keys), now

    def _collect(self, urls: Sequence[str], now: float) -> list[Ed25519PublicKey]:
        keys: list[Ed25519PublicKey] = []
        for url in urls:
            held = self._sets.get(url)
            if held is not None and held.fetched_at is not None and now - held.fetched_at <= self.max_age_s:
                keys.extend(held.keys)
        if not keys:
            raise WebhookKeysUnavailableError(self.vendor, f"no signing keys could be fetched from {list(urls)}")
        return keys

    def keys(self, urls: Sequence[str], *, refresh: bool = False) -> list[Ed25519PublicKey]:
        """The keys of every URL (synchronous fetch where due)."""
        now = time.time()
        for url in self._due(urls, refresh, now):
            self._mark_attempt(url, now)
            self._store(url, self._fetch(url), now)
        return self._collect(urls, now)

    async def akeys(self, urls: Sequence[str], *, refresh: bool = False) -> list[Ed25519PublicKey]:
        """The keys of every URL (asynchronous fetch where due)."""
        now = time.time()
        for url in self._due(urls, refresh, now):
            self._mark_attempt(url, now)
            self._store(url, await self._afetch(url), now)
        return self._collect(urls, now)

    # Sync and async twins: the same bounded read, over httpx.Client or httpx.AsyncClient.
    def _fetch(self, url: str) -> bytes | None:
        try:
            with httpx.Client(timeout=self.timeout_s) as client, client.stream("GET", url) as response:
                if response.status_code != 200:
                    return None
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        return None
                return bytes(body)
        except httpx.HTTPError:
            return None

    async def _afetch(self, url: str) -> bytes | None:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client, client.stream("GET", url) as response:
                if response.status_code != 200:
                    return None
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        return None
                return bytes(body)
        except httpx.HTTPError:
            return None


# --------------------------------------------------------------------------- verify + parse


def verify_delivery(
    api: VendorApi,
    delivery: WebhookDelivery,
    credentials: WebhookCredentials,
    jwks: JwksCache | None = None,
    now: float | None = None,
) -> VerifiedWebhook:
    """Authenticate and parse one delivery (fetching signing keys synchronously where needed)."""
    if not credentials.jwks_urls:
        return api.read_webhook(delivery, credentials, (), now)
    jwks = jwks or JwksCache(vendor=api.vendor)
    try:
        return api.read_webhook(delivery, credentials, jwks.keys(credentials.jwks_urls), now)
    except InvalidWebhookSignatureError:
        if not jwks.may_refresh(credentials.jwks_urls):
            raise
    return api.read_webhook(delivery, credentials, jwks.keys(credentials.jwks_urls, refresh=True), now)


async def averify_delivery(
    api: VendorApi,
    delivery: WebhookDelivery,
    credentials: WebhookCredentials,
    jwks: JwksCache | None = None,
    now: float | None = None,
) -> VerifiedWebhook:
    """:func:`verify_delivery` for an event loop: the key fetch is asynchronous."""
    if not credentials.jwks_urls:
        return api.read_webhook(delivery, credentials, (), now)
    jwks = jwks or JwksCache(vendor=api.vendor)
    try:
        return api.read_webhook(delivery, credentials, await jwks.akeys(credentials.jwks_urls), now)
    except InvalidWebhookSignatureError:
        if not jwks.may_refresh(credentials.jwks_urls):
            raise
    return api.read_webhook(delivery, credentials, await jwks.akeys(credentials.jwks_urls, refresh=True), now)


def split_secrets(value: Any) -> tuple[str, ...]:
    """Secrets configured as a list, or as one string separated by commas or whitespace."""
    if not value:
        return ()
    items = value if isinstance(value, list | tuple) else re.split(r"[\s,]+", str(value))
    return tuple(str(item).strip() for item in items if str(item).strip())
