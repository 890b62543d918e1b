"""Webhook contracts without I/O: the vendors' documented payloads, signatures, tokens, JWKS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from airflow_bgreplace.hooks import HOOKS
from airflow_bgreplace.serving import BackgroundServer
from airflow_bgreplace.vendors import VENDORS, FalApi, FashnApi, ImagePipelineApi, JobState, RunflowApi
from airflow_bgreplace.vendors.errors import (
    InvalidWebhookSignatureError,
    InvalidWebhookTokenError,
    MalformedWebhookError,
    StaleWebhookError,
    WebhookKeysUnavailableError,
)
from airflow_bgreplace.vendors.webhooks import (
    JwksCache,
    WebhookCredentials,
    WebhookDelivery,
    averify_delivery,
    callback_url,
    check_timestamp,
    decode_base64url,
    default_conn_id,
    parse_jwks,
    verify_delivery,
    verify_hmac_sha256,
)

# --------------------------------------------------------------------------- URLs


def test_callback_url_has_one_shape_for_every_vendor() -> None:
    assert (
        callback_url("https://airflow.example.com/", "fal", "bgreplace_fal_default")
        == "https://airflow.example.com/bgreplace/webhooks/fal?conn_id=bgreplace_fal_default"
    )
    assert (
        callback_url("http://127.0.0.1:8080", "fashn", "my conn", token="a+b/c")
        == "http://127.0.0.1:8080/bgreplace/webhooks/fashn?conn_id=my+conn&token=a%2Bb%2Fc"
    )


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_the_default_connection_is_the_hooks_default(vendor: str) -> None:
    assert default_conn_id(vendor) == HOOKS[vendor].default_conn_name


# --------------------------------------------------------------------------- documented payloads


def test_runflow_callbacks_map_success_failure_and_cancel() -> None:
    api = RunflowApi()
    success = api.parse_webhook(
        json.dumps(
            {"event": "run.completed", "run_id": "01J0", "status": "succeeded",
             "output": {"image_urls": ["https://cdn/x.png"]}, "duration_ms": 102345,
             "created_at": "2026-05-06T10:00:00.000+00:00", "completed_at": "2026-05-06T10:01:42.000+00:00",
             "metadata": None}
        ).encode()
    )  # fmt: skip
    failed = api.parse_webhook(
        b'{"event": "run.failed", "run_id": "01J1", "status": "failed",'
        b' "output": {"code": "MODEL_UNAVAILABLE", "message": "try later"}}'
    )
    cancelled = api.parse_webhook(
        b'{"event": "run.cancelled", "run_id": "01J2", "status": "cancelled", "output": null}'
    )

    assert (success.state, success.job_id, success.result_urls) == (JobState.succeeded, "01J0", ["https://cdn/x.png"])
    assert success.duration_s == pytest.approx(102.345) and success.completed_at is not None
    assert (failed.state, failed.error_code, failed.error_message, failed.retryable) == (
        JobState.failed, "MODEL_UNAVAILABLE", "try later", True,
    )  # fmt: skip
    assert cancelled.state is JobState.cancelled and cancelled.result_urls == []


def test_fashn_webhook_is_the_terminal_status_body() -> None:
    api = FashnApi()
    done = api.parse_webhook(b'{"id": "123a", "status": "completed", "output": ["https://cdn/o.png"], "error": null}')
    failed = api.parse_webhook(
        b'{"id": "123b", "status": "failed", "error": {"name": "ImageLoadError", "message": "not an image"}}'
    )
    assert (done.state, done.job_id, done.result_urls) == (JobState.succeeded, "123a", ["https://cdn/o.png"])
    assert (failed.state, failed.error_code, failed.retryable) == (JobState.failed, "ImageLoadError", False)


def test_fal_webhook_ok_error_and_unserialisable_payloads() -> None:
    api = FalApi()
    ok = api.parse_webhook(
        b'{"request_id": "r1", "gateway_request_id": "r1", "status": "OK",'
        b' "payload": {"image": {"url": "https://v3.fal.media/files/x.png", "width": 1024}}}'
    )
    error = api.parse_webhook(
        b'{"request_id": "r2", "status": "ERROR", "error": "Invalid status code: 422", "payload": {"detail":'
        b' [{"loc": ["body", "prompt"], "msg": "field required", "type": "value_error.missing"}]}}'
    )
    cancelled = api.parse_webhook(
        b'{"request_id": "r3", "status": "ERROR", "error": "Invalid status code: 499",'
        b' "payload": {"detail": "Request cancelled by the client", "error_type": "client_cancelled"}}'
    )
    unserialisable = api.parse_webhook(b'{"request_id": "r4", "status": "OK", "payload": null, "payload_error": "big"}')

    assert (ok.state, ok.result_urls) == (JobState.succeeded, ["https://v3.fal.media/files/x.png"])
    assert (error.state, error.error_code, error.error_message) == (
        JobState.failed, "value_error.missing", "prompt: field required",
    )  # fmt: skip
    assert cancelled.state is JobState.cancelled
    assert (unserialisable.result_urls, unserialisable.error_message) == ([], "big")
    with pytest.raises(MalformedWebhookError, match="unknown status"):
        api.parse_webhook(b'{"request_id": "r5", "status": "COMPLETED"}')


def test_imagepipeline_webhook_events() -> None:
    api = ImagePipelineApi()
    done = api.parse_webhook(
        b'{"job_id": "job_a1", "user_id": "usr_1", "status": "completed", "result_url": "https://cdn/r.webp",'
        b' "result_mime_type": "image/webp", "result_size_bytes": 184320, "timestamp": 1769774400}'
    )
    failed = api.parse_webhook(
        b'{"job_id": "job_b2", "status": "failed", "error": "model crashed", "failure_reason_code": "MODEL_ERROR",'
        b' "retryable": true, "timestamp": 1769774400}'
    )
    assert (done.state, done.result_urls, done.endpoint) == (JobState.succeeded, ["https://cdn/r.webp"], "")
    assert done.completed_at is not None and done.completed_at.timestamp() == 1769774400
    assert (failed.state, failed.error_code, failed.retryable) == (JobState.failed, "MODEL_ERROR", True)


@pytest.mark.parametrize("vendor", sorted(VENDORS))
@pytest.mark.parametrize("body", [b"", b"{", b"null", b'"text"', b"[]", b"{}", b"\xff\xfe"])
def test_bodies_that_are_not_a_payload_are_malformed(vendor: str, body: bytes) -> None:
    with pytest.raises(MalformedWebhookError):
        VENDORS[vendor]().parse_webhook(body)


# --------------------------------------------------------------------------- tokens, HMAC, timestamps


def _delivery(body: bytes = b"{}", headers: dict[str, str] | None = None, token: str | None = None) -> WebhookDelivery:
    return WebhookDelivery.of(body, headers or {}, token)


def test_hmac_accepts_any_configured_secret_and_nothing_else() -> None:
    body = b'{"run_id": "r"}'
    signature = hmac.new(b"whsec_new", body, hashlib.sha256).hexdigest()

    assert verify_hmac_sha256("runflow", body, signature, ["whsec_old", "whsec_new"]) == 1
    for bad in (None, "", signature.upper(), signature[:-1], "0" * 64):
        with pytest.raises(InvalidWebhookSignatureError):
            verify_hmac_sha256("runflow", body, bad, ["whsec_old", "whsec_new"])


def test_runflow_secrets_may_be_a_list_or_separated_text() -> None:
    api = RunflowApi()
    assert api.webhook_credentials({"webhook_secret": "a, b\nc"}).hmac_secrets == ("a", "b", "c")
    assert api.webhook_credentials({"webhook_secret": ["a", "b"]}).hmac_secrets == ("a", "b")
    assert api.webhook_credentials({}).hmac_secrets == ()


def test_unsigned_vendors_need_a_configured_and_matching_token() -> None:
    api = FashnApi()
    body = b'{"id": "p", "status": "completed", "output": []}'
    with pytest.raises(InvalidWebhookTokenError, match="webhook_token"):
        api.read_webhook(_delivery(body, token="t"), WebhookCredentials())
    with pytest.raises(InvalidWebhookTokenError):
        api.read_webhook(_delivery(body, token="u"), WebhookCredentials(token="t"))
    with pytest.raises(InvalidWebhookTokenError):
        api.read_webhook(_delivery(body), WebhookCredentials(token="t"))
    assert api.read_webhook(_delivery(body, token="t"), WebhookCredentials(token="t")).verified_by == "token"


def test_timestamps_outside_300_s_are_replays() -> None:
    check_timestamp("x", 1000.0, now=1300.0)  # 300 s old: still inside
    check_timestamp("x", 1300.0, now=1000.0)  # 300 s ahead (clock skew)
    for timestamp, now in ((None, 1300.0), (999.0, 1300.0), (1301.0, 1000.0)):
        with pytest.raises(StaleWebhookError):
            check_timestamp("x", timestamp, now=now)


def test_imagepipeline_refuses_an_event_without_or_with_an_old_timestamp() -> None:
    api, credentials = ImagePipelineApi(), WebhookCredentials(token="t")
    event = {"job_id": "j", "status": "completed", "result_url": "https://x"}
    with pytest.raises(StaleWebhookError, match="no timestamp"):
        api.read_webhook(_delivery(json.dumps(event).encode(), token="t"), credentials)
    stale = json.dumps({**event, "timestamp": int(time.time()) - 400}).encode()
    with pytest.raises(StaleWebhookError):
        api.read_webhook(_delivery(stale, token="t"), credentials)


def test_secrets_never_show_in_reprs() -> None:
    credentials = WebhookCredentials(hmac_secrets=("whsec_abc",), token="tok-123")
    delivery = _delivery(b'{"secret": 1}', token="tok-123")
    assert "whsec_abc" not in repr(credentials) and "tok-123" not in repr(credentials)
    assert "tok-123" not in repr(delivery) and "secret" not in repr(delivery)


# --------------------------------------------------------------------------- fal: Ed25519 and JWKS


def _jwk(key: Ed25519PrivateKey, padded: bool = False) -> dict[str, str]:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).decode()
    return {"kty": "OKP", "crv": "Ed25519", "x": x if padded else x.rstrip("=")}


def _fal_delivery(
    key: Ed25519PrivateKey, request_id: str = "req-1", at: float | None = None, body_id: str | None = None
) -> WebhookDelivery:
    """A delivery signed as fal signs; ``body_id`` puts another request id in the (signed) body."""
    payload = {"request_id": body_id or request_id, "status": "OK", "payload": {"image": {"url": "https://x"}}}
    body = json.dumps(payload).encode()
    timestamp = str(int(time.time() if at is None else at))
    message = "\n".join([request_id, "user-1", timestamp, hashlib.sha256(body).hexdigest()]).encode()
    headers = {
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": "user-1",
        "X-Fal-Webhook-Timestamp": timestamp,
        "X-Fal-Webhook-Signature": key.sign(message).hex(),
    }
    return WebhookDelivery.of(body, headers)


def test_jwks_keys_decode_with_or_without_padding_and_others_are_skipped() -> None:
    first, second = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    document = {
        "keys": [_jwk(first), _jwk(second, padded=True), {"kty": "RSA", "n": "x"}, {"kty": "OKP", "crv": "Ed25519"}]
    }
    assert len(parse_jwks(document)) == 2
    assert decode_base64url("YQ") == decode_base64url("YQ==") == b"a"
    assert parse_jwks({"nope": 1}) == [] and parse_jwks([1]) == []


def test_fal_signature_verifies_against_any_published_key() -> None:
    signer, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    delivery = _fal_delivery(signer)
    keys = parse_jwks({"keys": [_jwk(other), _jwk(signer)]})

    verified = FalApi().read_webhook(delivery, WebhookCredentials(jwks_urls=("u",)), keys)

    assert verified.verified_by == "ed25519" and verified.status.job_id == "req-1"
    with pytest.raises(InvalidWebhookSignatureError, match="none of the 1"):
        FalApi().read_webhook(delivery, WebhookCredentials(jwks_urls=("u",)), keys[:1])
    with pytest.raises(StaleWebhookError):
        FalApi().read_webhook(_fal_delivery(signer, at=time.time() - 400), WebhookCredentials(), keys)


def test_fal_jwks_location_follows_the_connection() -> None:
    api = FalApi()
    assert api.webhook_credentials({}).jwks_urls == (
        "https://rest.fal.ai/.well-known/jwks.json",
        "https://rest.alpha.fal.ai/.well-known/jwks.json",
    )
    assert api.webhook_credentials({}, "http://127.0.0.1:9/fal").jwks_urls == (
        "http://127.0.0.1:9/fal/.well-known/jwks.json",
    )
    assert api.webhook_credentials({"jwks_url": "https://k/j.json"}, "http://x").jwks_urls == ("https://k/j.json",)


class _JwksServer:
    """Serves a JWKS document that a test can change, and counts fetches."""

    def __init__(self) -> None:
        self.document: Any = {"keys": []}
        self.status = 200
        self.fetches = 0

        async def jwks(request: Request) -> Response:
            self.fetches += 1
            if isinstance(self.document, bytes):
                return Response(self.document, status_code=self.status)
            return JSONResponse(self.document, status_code=self.status)

        self.server = BackgroundServer(Starlette(routes=[Route("/.well-known/jwks.json", jwks)]))

    @property
    def url(self) -> str:
        return f"{self.server.base_url}/.well-known/jwks.json"


@pytest.fixture(scope="module")
def jwks_server() -> Iterator[_JwksServer]:
    served = _JwksServer()
    with served.server:
        yield served


def test_jwks_cache_fetches_once_and_refreshes_only_when_allowed(jwks_server: _JwksServer) -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    jwks_server.document, jwks_server.fetches = {"keys": [_jwk(old)]}, 0
    cache = JwksCache(refresh_interval_s=3600)
    credentials = WebhookCredentials(jwks_urls=(jwks_server.url,))

    assert verify_delivery(FalApi(), _fal_delivery(old), credentials, cache).verified_by == "ed25519"
    assert verify_delivery(FalApi(), _fal_delivery(old), credentials, cache).verified_by == "ed25519"
    assert jwks_server.fetches == 1

    jwks_server.document = {"keys": [_jwk(new)]}  # fal rotated its key
    with pytest.raises(InvalidWebhookSignatureError):  # a refresh is not allowed yet
        verify_delivery(FalApi(), _fal_delivery(new), credentials, cache)
    cache.refresh_interval_s = 0
    assert verify_delivery(FalApi(), _fal_delivery(new), credentials, cache).verified_by == "ed25519"
    assert jwks_server.fetches == 2


@pytest.mark.anyio
async def test_async_jwks_fetch_and_rotation(jwks_server: _JwksServer) -> None:
    key = Ed25519PrivateKey.generate()
    jwks_server.document = {"keys": [_jwk(key, padded=True)]}
    cache = JwksCache(refresh_interval_s=0)
    credentials = WebhookCredentials(jwks_urls=(jwks_server.url,))

    verified = await averify_delivery(FalApi(), _fal_delivery(key, "req-a"), credentials, cache)

    assert verified.status.job_id == "req-a"


@pytest.mark.parametrize("document", [b"x" * 70_000, b"not json", {"keys": []}])
def test_unusable_jwks_means_keys_unavailable(jwks_server: _JwksServer, document: Any) -> None:
    jwks_server.document = document
    with pytest.raises(WebhookKeysUnavailableError):
        JwksCache(refresh_interval_s=0).keys([jwks_server.url])


def test_unreachable_or_failing_jwks_means_keys_unavailable(jwks_server: _JwksServer) -> None:
    jwks_server.document, jwks_server.status = {"keys": [_jwk(Ed25519PrivateKey.generate())]}, 500
    try:
        with pytest.raises(WebhookKeysUnavailableError):
            JwksCache().keys([jwks_server.url])
    finally:
        jwks_server.status = 200
    with pytest.raises(WebhookKeysUnavailableError):
        JwksCache(timeout_s=1).keys(["http://127.0.0.1:9/.well-known/jwks.json"])


def test_the_signed_request_id_must_be_the_payloads() -> None:
    key = Ed25519PrivateKey.generate()
    keys = parse_jwks({"keys": [_jwk(key)]})
    with pytest.raises(InvalidWebhookSignatureError, match="request id"):
        FalApi().read_webhook(_fal_delivery(key, "req-1", body_id="req-2"), WebhookCredentials(), keys)
