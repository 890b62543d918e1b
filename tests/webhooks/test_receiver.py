"""The receiver under real uvicorn, fed by the sandbox's real (signed) callbacks.

Jobs are submitted through our hooks with a callback URL pointing at the receiver; the sandbox
delivers each vendor's webhook as that vendor does (Runflow HMAC, fal Ed25519 + JWKS, FASHN and
ImagePipeline unsigned). Refusals are checked by replaying or altering stored real deliveries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from airflow_bgreplace.vendors import JobState
from airflow_bgreplace.vendors.webhooks import callback_url
from tests.conftest import sandbox_connection
from tests.webhooks.conftest import (
    TOKENS,
    VENDORS,
    Connections,
    Receiver,
    Submitter,
    create_runflow_secret,
)

#: How each vendor's deliveries are authenticated with the test connections.
PROOF = {"runflow": "hmac-sha256", "fashn": "token", "fal": "ed25519", "imagepipeline": "token"}
#: A failure code per vendor, injected at the sandbox, and the code the JobStatus must carry.
FAILURES = {
    "runflow": "PROVIDER_ERROR",
    "fashn": "ImageLoadError",
    "fal": "image_load_error",
    "imagepipeline": "MODEL_ERROR",
}
FAL_HEADERS = tuple(f"x-fal-webhook-{name}" for name in ("request-id", "user-id", "timestamp", "signature"))


def _first_delivery(receiver: Receiver, vendor: str, job_id: str) -> dict[str, Any]:
    receiver.wait_for(vendor, job_id)
    return receiver.store.deliveries_of(vendor, job_id)[0]


def _vendor_headers(delivery: dict[str, Any]) -> dict[str, str]:
    """The headers a vendor sent (transport headers like host and content-length left out)."""
    return {
        name: value
        for name, value in delivery["headers"].items()
        if name.startswith(("x-fal-", "runflow-")) or name == "content-type"
    }


def _runflow_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------- accepted deliveries


@pytest.mark.parametrize("vendor", VENDORS)
def test_each_vendors_real_callback_is_verified_stored_and_parsed(
    vendor: str, submit: Submitter, receiver: Receiver, bgreplace_sandbox: Any
) -> None:
    job_id, url = submit(vendor)

    event = receiver.wait_for(vendor, job_id)

    # The client put the URL where the vendor reads it (body field or query parameter).
    assert bgreplace_sandbox.job(vendor, job_id)["webhook_url"] == url
    assert event.status.vendor == vendor and event.status.job_id == job_id
    assert event.status.state is JobState.succeeded
    assert event.status.result_urls and event.status.result_urls[0].startswith(("http://", "data:"))
    assert event.verified_by == PROOF[vendor] and event.delivery_count == 1
    [delivery] = receiver.store.deliveries_of(vendor, job_id)
    assert delivery["duplicate"] is False and delivery["raw_body"] and len(delivery["body_sha256"]) == 64
    assert [entry["status_code"] for entry in bgreplace_sandbox.job(vendor, job_id)["webhook_deliveries"]] == [200]


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_redelivered_callback_is_a_duplicate_that_changes_nothing(
    vendor: str, submit: Submitter, receiver: Receiver, bgreplace_sandbox: Any
) -> None:
    job_id, _ = submit(vendor)
    first = receiver.wait_for(vendor, job_id)

    bgreplace_sandbox.redeliver_webhook(vendor, job_id)
    second = receiver.wait_for(vendor, job_id, count=2)

    assert second.status == first.status and second.sequence == first.sequence
    assert second.first_received_at == first.first_received_at
    assert [row["duplicate"] for row in receiver.store.deliveries_of(vendor, job_id)] == [False, True]
    assert [entry["status_code"] for entry in bgreplace_sandbox.job(vendor, job_id)["webhook_deliveries"]] == [200, 200]


@pytest.mark.parametrize("vendor", VENDORS)
def test_failed_jobs_arrive_as_failed_statuses_with_the_vendors_code(
    vendor: str, sqlite_submit: Submitter, sqlite_receiver: Receiver, bgreplace_sandbox: Any
) -> None:
    bgreplace_sandbox.inject_fault(vendor, "job_fail", code=FAILURES[vendor])
    job_id, _ = sqlite_submit(vendor)

    status = sqlite_receiver.wait_for(vendor, job_id).status

    assert status.state is JobState.failed
    assert status.error_code == FAILURES[vendor] and status.error_message
    assert status.result_urls == []


@pytest.mark.parametrize("vendor", ["runflow", "fal"])
def test_cancelled_jobs_arrive_as_cancelled(
    vendor: str, sqlite_submit: Submitter, sqlite_receiver: Receiver, bgreplace_sandbox: Any
) -> None:
    job_id, _ = sqlite_submit(vendor)
    bgreplace_sandbox.cancel_job(vendor, job_id)

    assert sqlite_receiver.wait_for(vendor, job_id).status.state is JobState.cancelled


def test_concurrent_copies_of_one_delivery_store_one_event(receiver: Receiver, connections: Connections) -> None:
    body = json.dumps({"event": "run.completed", "run_id": "run-race", "status": "succeeded", "output": {}}).encode()
    signature = _runflow_signature(connections.extras["runflow"]["webhook_secret"], body)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: receiver.post("runflow", body, {"Runflow-Signature": signature}), range(8)))

    assert [answer.status_code for answer in answers] == [200] * 8
    assert sorted(answer.json()["duplicate"] for answer in answers) == [False] + [True] * 7
    assert receiver.store.get("runflow", "run-race").delivery_count == 8  # type: ignore[union-attr]
    assert receiver.store.counts() == {"deliveries": 8, "job_events": 1}


# --------------------------------------------------------------------------- Runflow secrets and tokens


def test_runflow_forged_missing_or_malformed_signatures_are_refused(
    sqlite_submit: Submitter, sqlite_receiver: Receiver
) -> None:
    job_id, _ = sqlite_submit("runflow")
    delivery = _first_delivery(sqlite_receiver, "runflow", job_id)
    body, headers = delivery["raw_body"], _vendor_headers(delivery)
    before = sqlite_receiver.store.counts()

    forged = sqlite_receiver.post("runflow", body, {**headers, "Runflow-Signature": "0" * 64})
    missing = sqlite_receiver.post("runflow", body, {k: v for k, v in headers.items() if k != "runflow-signature"})
    shouted = headers["runflow-signature"].upper()
    upper = sqlite_receiver.post("runflow", body, {**headers, "Runflow-Signature": shouted})
    tampered = sqlite_receiver.post("runflow", body.replace(b"succeeded", b"failed"), headers)

    assert [a.status_code for a in (forged, missing, upper, tampered)] == [401, 401, 401, 401]
    assert "secret" in forged.json()["detail"]
    assert sqlite_receiver.store.counts() == before


def test_runflow_rotation_accepts_the_old_and_the_new_secret(
    sqlite_submit: Submitter, sqlite_receiver: Receiver, connections: Connections, bgreplace_sandbox: Any
) -> None:
    old = connections.extras["runflow"]["webhook_secret"]
    new = create_runflow_secret(bgreplace_sandbox, "rotation")  # the sandbox now signs with the new one
    connections.set("runflow", webhook_secret=f"{old}, {new}")

    job_id, _ = sqlite_submit("runflow")
    assert sqlite_receiver.wait_for("runflow", job_id).verified_by == "hmac-sha256"

    late = json.dumps({"event": "run.failed", "run_id": "run-old", "status": "failed", "output": None}).encode()
    answer = sqlite_receiver.post("runflow", late, {"Runflow-Signature": _runflow_signature(old, late)})
    assert answer.status_code == 200 and answer.json() == {"accepted": True, "duplicate": False}


def test_runflow_without_a_secret_accepts_only_the_url_token(
    sqlite_submit: Submitter, sqlite_receiver: Receiver, connections: Connections, monkeypatch: pytest.MonkeyPatch
) -> None:
    connections.set("runflow", webhook_token="rf-token-Kp2")
    job_id, _ = sqlite_submit("runflow")
    delivery = _first_delivery(sqlite_receiver, "runflow", job_id)
    assert sqlite_receiver.store.get("runflow", job_id).verified_by == "token"  # type: ignore[union-attr]
    body = delivery["raw_body"]

    assert sqlite_receiver.post("runflow", body).status_code == 401
    assert sqlite_receiver.post("runflow", body, token="rf-token-wrong").status_code == 401
    assert sqlite_receiver.post("runflow", body, token="rf-token-Kp2").json() == {"accepted": True, "duplicate": True}
    # A connection with neither a secret nor a token accepts nothing.
    monkeypatch.setenv("AIRFLOW_CONN_RUNFLOW_BARE", sandbox_connection(connections.sandbox, "runflow", {}))
    assert sqlite_receiver.post("runflow", body, conn_id="runflow_bare", token="anything").status_code == 401


# --------------------------------------------------------------------------- fal signatures


def test_fal_tampered_body_bad_signature_or_missing_headers_are_refused(
    sqlite_submit: Submitter, sqlite_receiver: Receiver
) -> None:
    job_id, _ = sqlite_submit("fal")
    delivery = _first_delivery(sqlite_receiver, "fal", job_id)
    body, headers = delivery["raw_body"], _vendor_headers(delivery)
    before = sqlite_receiver.store.counts()

    answers = [
        sqlite_receiver.post("fal", body + b" ", headers),  # still JSON, but not the signed bytes
        sqlite_receiver.post("fal", body, {**headers, "x-fal-webhook-signature": "ab" * 64}),
        sqlite_receiver.post("fal", body, {**headers, "x-fal-webhook-signature": "not-hex"}),
        sqlite_receiver.post("fal", body, {**headers, "x-fal-webhook-user-id": "someone-else"}),
    ]
    answers += [
        sqlite_receiver.post("fal", body, {k: v for k, v in headers.items() if k != missing}) for missing in FAL_HEADERS
    ]

    assert [answer.status_code for answer in answers] == [401] * 8
    assert "missing header" in answers[-1].json()["detail"]
    assert sqlite_receiver.store.counts() == before


@pytest.mark.parametrize("vendor", ["fal", "imagepipeline"])
def test_replayed_deliveries_outside_the_timestamp_window_are_refused(
    vendor: str, sqlite_submit: Submitter, sqlite_receiver: Receiver
) -> None:
    job_id, _ = sqlite_submit(vendor)
    delivery = _first_delivery(sqlite_receiver, vendor, job_id)
    body, headers = delivery["raw_body"], _vendor_headers(delivery)
    token = TOKENS.get(vendor)
    before = sqlite_receiver.store.counts()

    sqlite_receiver.clock_offset_s = 310.0  # the same delivery, 5 minutes later (whole-second stamps)
    late = sqlite_receiver.post(vendor, body, headers, token=token)
    sqlite_receiver.clock_offset_s = -310.0  # or from the future
    early = sqlite_receiver.post(vendor, body, headers, token=token)

    assert (late.status_code, early.status_code) == (401, 401)
    assert "timestamp" in late.json()["detail"]
    assert sqlite_receiver.store.counts() == before
    sqlite_receiver.clock_offset_s = 0.0  # within the window it is a vendor retry: a duplicate
    assert sqlite_receiver.post(vendor, body, headers, token=token).json() == {"accepted": True, "duplicate": True}


# --------------------------------------------------------------------------- URL tokens


@pytest.mark.parametrize("vendor", ["fashn", "imagepipeline"])
def test_unsigned_vendors_need_the_connections_token(
    vendor: str,
    sqlite_submit: Submitter,
    sqlite_receiver: Receiver,
    connections: Connections,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id, _ = sqlite_submit(vendor)
    body = _first_delivery(sqlite_receiver, vendor, job_id)["raw_body"]
    before = sqlite_receiver.store.counts()

    assert sqlite_receiver.post(vendor, body).status_code == 401
    assert sqlite_receiver.post(vendor, body, token=TOKENS[vendor] + "x").status_code == 401
    assert sqlite_receiver.post(vendor, body, token=TOKENS[vendor][:-1]).status_code == 401
    monkeypatch.setenv("AIRFLOW_CONN_UNSIGNED_BARE", sandbox_connection(connections.sandbox, vendor, {}))
    refused = sqlite_receiver.post(vendor, body, conn_id="unsigned_bare", token="anything")
    assert refused.status_code == 401 and "webhook_token" in refused.json()["detail"]
    assert sqlite_receiver.store.counts() == before


def test_unknown_or_foreign_connections_are_refused(sqlite_receiver: Receiver, connections: Connections) -> None:
    body = json.dumps({"id": "p1", "status": "completed", "output": ["https://x/y.png"]}).encode()

    unknown = sqlite_receiver.post("fashn", body, conn_id="no_such_connection", token=TOKENS["fashn"])
    # The ImagePipeline connection's token must not open the FASHN route.
    foreign = sqlite_receiver.post(
        "fashn", body, conn_id="bgreplace_imagepipeline_default", token=TOKENS["imagepipeline"]
    )

    assert (unknown.status_code, foreign.status_code) == (401, 401)
    assert sqlite_receiver.store.counts() == {"deliveries": 0, "job_events": 0}


# --------------------------------------------------------------------------- bad requests


def test_an_oversize_body_is_refused_before_it_is_read(sqlite_receiver: Receiver, connections: Connections) -> None:
    big = b'{"id": "p1", "status": "completed", "pad": "' + b"x" * 100_000 + b'"}'
    url = sqlite_receiver.url("fashn", token=TOKENS["fashn"])

    declared = sqlite_receiver.post("fashn", big, token=TOKENS["fashn"])
    streamed = sqlite_receiver.client.post(url, content=iter([big[:50_000], big[50_000:]]))  # chunked, no length

    assert (declared.status_code, streamed.status_code) == (413, 413)
    assert sqlite_receiver.store.counts() == {"deliveries": 0, "job_events": 0}


@pytest.mark.parametrize(
    ("vendor", "body"),
    [
        ("fashn", b"not json"),
        ("fashn", b"[1, 2]"),
        ("fashn", b'{"status": "completed"}'),
        ("fashn", b'{"id": "p1"}'),
        ("imagepipeline", b'{"status": "completed", "timestamp": 1}'),
        ("runflow", b'{"event": "run.completed", "status": "succeeded"}'),
        ("runflow", b'{"run_id": "r1", "event": "run.completed"}'),
    ],
)
def test_malformed_but_authentic_bodies_are_refused_with_400(
    vendor: str, body: bytes, sqlite_receiver: Receiver, connections: Connections
) -> None:
    headers = {}
    if vendor == "runflow":
        headers["Runflow-Signature"] = _runflow_signature(connections.extras["runflow"]["webhook_secret"], body)

    answer = sqlite_receiver.post(vendor, body, headers, token=TOKENS.get(vendor))

    assert answer.status_code == 400, answer.text
    assert sqlite_receiver.store.counts() == {"deliveries": 0, "job_events": 0}


def test_unknown_vendor_bad_connection_id_and_health(sqlite_receiver: Receiver) -> None:
    base = sqlite_receiver.server.base_url
    client = sqlite_receiver.client

    assert client.post(callback_url(base, "acme", "c"), content=b"{}").status_code == 404
    assert client.post(f"{base}/bgreplace/webhooks/fashn?conn_id=../../etc", content=b"{}").status_code == 400
    assert client.get(f"{base}/bgreplace/health").json()["status"] == "ok"
    assert client.get(f"{base}/bgreplace/webhooks/fashn").status_code == 405


def test_tokens_and_secrets_never_reach_the_log(
    sqlite_submit: Submitter, sqlite_receiver: Receiver, connections: Connections, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="airflow_bgreplace")
    job_id, _ = sqlite_submit("fashn")
    body = _first_delivery(sqlite_receiver, "fashn", job_id)["raw_body"]
    sqlite_receiver.post("fashn", body, token="guessed-token-Mm1")
    secret = connections.extras["runflow"]["webhook_secret"]
    sqlite_receiver.post("runflow", b'{"run_id": "r"}', {"Runflow-Signature": _runflow_signature(secret + "x", b"{}")})

    assert "fashn webhook accepted" in caplog.text and "refused (401)" in caplog.text
    for hidden in (TOKENS["fashn"], "guessed-token-Mm1", secret):
        assert hidden not in caplog.text
