"""Runflow emulator: real HTTP against the sandbox, shapes from runflow.md and seeds 000/001."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from typing import Any

import httpx
import pytest

from airflow_bgreplace.sandbox.server import SandboxServer
from tests.sandbox.conftest import (
    PRODUCT_SIZE,
    FileServer,
    WebhookReceiver,
    open_image,
    product_image,
    reference_image,
    wait_until,
    zip_of,
)

AUTH = {"Authorization": "Bearer rf_live_testkey"}
ADMIN = {"Authorization": "Bearer rf_svc_admin"}
COLOR = "runflow/background-color"
REPLACE = "runflow/background-replace"


def create_run(http: httpx.Client, sandbox: SandboxServer, model: str, body: dict[str, Any]) -> httpx.Response:
    return http.post(f"{sandbox.vendor_url('runflow')}/v1/models/{model}/runs", json=body, headers=AUTH)


def get_run(http: httpx.Client, sandbox: SandboxServer, run_id: str, headers: dict[str, str] = AUTH) -> httpx.Response:
    return http.get(f"{sandbox.vendor_url('runflow')}/v1/runs/{run_id}", headers=headers)


def wait_terminal(http: httpx.Client, sandbox: SandboxServer, run_id: str, seen: list[str] | None = None) -> dict:
    def terminal() -> dict[str, Any] | None:
        record = get_run(http, sandbox, run_id).json()
        if seen is not None:
            seen.append(record["status_code"])
        return record if record["status_code"] in ("succeeded", "failed", "canceled") else None

    return wait_until(terminal, interval_s=0.02)


def color_input(url: str, red: int = 10, green: int = 200, blue: int = 30) -> dict[str, Any]:
    return {"input": {"image_url": url, "color_red": red, "color_green": green, "color_blue": blue}}


def test_missing_bearer_is_401_envelope(http: httpx.Client, sandbox: SandboxServer) -> None:
    response = http.post(f"{sandbox.vendor_url('runflow')}/v1/models/{COLOR}/runs", json={})
    assert response.status_code == 401
    assert response.json() == {"code": "UNAUTHORIZED", "message": response.json()["message"], "errors": None}


def test_configured_api_key_rejects_others(http: httpx.Client, sandbox: SandboxServer) -> None:
    sandbox.configure(api_key="rf_live_only")
    assert http.get(f"{sandbox.vendor_url('runflow')}/v1/auth/me", headers=AUTH).status_code == 401
    me = http.get(f"{sandbox.vendor_url('runflow')}/v1/auth/me", headers={"Authorization": "Bearer rf_live_only"})
    assert me.status_code == 200 and me.json()["key_prefix"] == "rf_live_"


def test_validation_errors_are_422_with_pydantic_items(http: httpx.Client, sandbox: SandboxServer) -> None:
    body = {"input": {"image_url": "https://example.com/a.png", "color_red": 300, "color_green": True}}
    response = create_run(http, sandbox, COLOR, body)
    assert response.status_code == 422
    envelope = response.json()
    assert envelope["code"] == "VALIDATION_ERROR"
    errors = {tuple(item["loc"]): item["type"] for item in envelope["errors"]}
    assert errors == {
        ("body", "input", "color_red"): "less_than_equal",
        ("body", "input", "color_green"): "int_type",
        ("body", "input", "color_blue"): "missing",
    }
    assert create_run(http, sandbox, COLOR, {}).json()["errors"][0]["loc"] == ["body", "input"]


def test_http_image_url_off_loopback_is_refused(http: httpx.Client, sandbox: SandboxServer) -> None:
    response = create_run(http, sandbox, COLOR, color_input("http://example.com/a.png"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["type"] == "url_scheme"


def test_unknown_model_is_404(http: httpx.Client, sandbox: SandboxServer) -> None:
    response = create_run(http, sandbox, "runflow/nope", {"input": {}})
    assert response.status_code == 404 and response.json()["code"] == "MODEL_NOT_FOUND"


def test_background_color_lifecycle(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    created = create_run(http, sandbox, COLOR, {**color_input(product_url), "client_ref": "order-7"})
    assert created.status_code == 200
    record = created.json()
    assert record["status_code"] == "queued"
    assert uuid.UUID(record["id"]).version == 7
    assert record["client_ref"] == "order-7" and record["output"] is None
    seen: list[str] = []
    final = wait_terminal(http, sandbox, record["id"], seen)
    assert final["status_code"] == "succeeded"
    assert {"dispatching", "running"} <= set(seen)
    assert final["cost"] == "0.12" and final["failure_code"] is None and final["error"] is None
    assert final["created_at"].endswith("+00:00")
    (output,) = final["output"]["outputs"]
    assert output["type"] == "image" and output["content_type"] == "image/png"
    assert (output["width"], output["height"]) == PRODUCT_SIZE
    assert set(final["output"]) == {"outputs", "seed", "timing", "nsfw_detected"}
    picture = open_image(http.get(output["url"]).content).convert("RGB")
    assert picture.size == PRODUCT_SIZE
    assert picture.getpixel((0, 0)) == (10, 200, 30)  # the backdrop is the requested colour
    assert picture.getpixel((32, 24)) == (200, 30, 30)  # the subject is kept


def test_background_replace_from_zip(http: httpx.Client, sandbox: SandboxServer, file_server: FileServer) -> None:
    bundle = zip_of({"image.png": product_image(), "reference.jpg": reference_image()})
    zip_url = file_server.serve(bundle, "application/zip", name="inputs.zip")
    body = {
        "input": {"zip_url": zip_url, "file_image": "image.png", "file_reference": "reference.jpg", "prompt": "marble"},
        "metadata": {"sku": "A1"},
    }
    record = create_run(http, sandbox, REPLACE, body).json()
    final = wait_terminal(http, sandbox, record["id"])
    assert final["status_code"] == "succeeded" and final["cost"] == "0.35"
    assert final["metadata"] == {"sku": "A1"}
    (url,) = final["output"]["image_urls"]
    picture = open_image(http.get(url).content)
    assert picture.format == "PNG" and picture.size == PRODUCT_SIZE


def test_missing_zip_member_fails_at_preprocess(
    http: httpx.Client, sandbox: SandboxServer, file_server: FileServer
) -> None:
    zip_url = file_server.serve(zip_of({"image.png": product_image()}), "application/zip")
    body = {"input": {"zip_url": zip_url, "file_image": "image.png", "file_reference": "reference.webp"}}
    final = wait_terminal(http, sandbox, create_run(http, sandbox, REPLACE, body).json()["id"])
    assert final["status_code"] == "failed"
    assert final["failure_code"] == "INPUT_VALIDATION_FAILED"
    assert final["failure_stage_code"] == "preprocess"
    assert "reference.webp" in final["failure_message"]
    assert final["error"] == {"code": final["failure_code"], "message": final["failure_message"]}
    assert final["output"] is None


def test_injected_failure_code(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    sandbox.inject_fault("runflow", "job_fail", code="PROVIDER_ERROR", message="provider exploded")
    final = wait_terminal(http, sandbox, create_run(http, sandbox, COLOR, color_input(product_url)).json()["id"])
    assert (final["failure_code"], final["failure_message"], final["failure_stage_code"]) == (
        "PROVIDER_ERROR",
        "provider exploded",
        "provider",
    )


def test_unknown_or_foreign_run_is_run_not_found(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    assert get_run(http, sandbox, str(uuid.uuid4())).json()["code"] == "RUN_NOT_FOUND"
    run_id = create_run(http, sandbox, COLOR, color_input(product_url)).json()["id"]
    other = get_run(http, sandbox, run_id, {"Authorization": "Bearer rf_live_other_org"})
    assert other.status_code == 404 and other.json()["code"] == "RUN_NOT_FOUND"


def test_urls_expire_and_every_read_signs_fresh_ones(
    http: httpx.Client, sandbox: SandboxServer, product_url: str
) -> None:
    sandbox.configure(result_url_ttl_s={"runflow": 0.5})
    run_id = create_run(http, sandbox, COLOR, color_input(product_url)).json()["id"]
    old_url = wait_terminal(http, sandbox, run_id)["output"]["outputs"][0]["url"]
    assert http.get(old_url).status_code == 200
    time.sleep(1.6)
    expired = http.get(old_url)
    assert expired.status_code == 403 and b"Request has expired" in expired.content
    new_url = get_run(http, sandbox, run_id).json()["output"]["outputs"][0]["url"]
    assert new_url != old_url and http.get(new_url).status_code == 200
    tampered = new_url.replace("X-Signature=", "X-Signature=0")
    assert http.get(tampered).status_code == 403


def test_callback_signed_with_hmac_of_raw_body(
    http: httpx.Client, sandbox: SandboxServer, product_url: str, receiver: WebhookReceiver
) -> None:
    secret = http.post(
        f"{sandbox.vendor_url('runflow')}/v1/callback-secrets", json={"label": "tests"}, headers=AUTH
    ).json()
    assert secret["plain_secret"].startswith("whsec_") and secret["is_current"] is True
    body = {**color_input(product_url), "callback_url": receiver.url, "metadata": {"order": 1}}
    run_id = create_run(http, sandbox, COLOR, body).json()["id"]
    (delivery,) = receiver.wait_for(1)
    signature = delivery.headers["runflow-signature"]
    assert re.fullmatch(r"[0-9a-f]{64}", signature)
    expected = hmac.new(secret["plain_secret"].encode(), delivery.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)
    assert delivery.headers["runflow-request-id"]
    event = delivery.json()
    assert (event["event"], event["run_id"], event["status"]) == ("run.completed", run_id, "succeeded")
    assert event["metadata"] == {"order": 1} and event["completed_at"].endswith("+00:00")
    assert event["output"]["outputs"][0]["url"].startswith(sandbox.base_url)


def test_callback_without_secret_is_unsigned(
    http: httpx.Client, sandbox: SandboxServer, product_url: str, receiver: WebhookReceiver
) -> None:
    create_run(http, sandbox, COLOR, {**color_input(product_url), "callback_url": receiver.url})
    (delivery,) = receiver.wait_for(1)
    assert "runflow-signature" not in delivery.headers and "runflow-request-id" in delivery.headers


def test_failed_callback_output_is_error_envelope(
    http: httpx.Client, sandbox: SandboxServer, product_url: str, receiver: WebhookReceiver
) -> None:
    sandbox.inject_fault("runflow", "job_fail", code="MODEL_UNAVAILABLE")
    create_run(http, sandbox, COLOR, {**color_input(product_url), "callback_url": receiver.url})
    event = receiver.wait_for(1)[0].json()
    assert (event["event"], event["status"]) == ("run.failed", "failed")
    assert event["output"]["code"] == "MODEL_UNAVAILABLE" and event["output"]["message"]


@pytest.mark.parametrize(("first_answer", "attempts"), [(500, 2), (400, 1)])
def test_callback_retries_only_on_5xx(
    http: httpx.Client,
    sandbox: SandboxServer,
    product_url: str,
    receiver: WebhookReceiver,
    first_answer: int,
    attempts: int,
) -> None:
    receiver.respond_with(first_answer)
    run_id = create_run(http, sandbox, COLOR, {**color_input(product_url), "callback_url": receiver.url}).json()["id"]
    wait_until(lambda: len(sandbox.job("runflow", run_id)["webhook_deliveries"]) >= attempts)
    time.sleep(0.1)  # the seeds' second delay is 2 s x 0.01: a wrong retry would show by now
    deliveries = receiver.deliveries
    assert len(deliveries) == attempts
    assert len({d.headers["runflow-request-id"] for d in deliveries}) == attempts  # unique per attempt
    assert len({d.body for d in deliveries}) == 1


def test_admin_cancel_needs_a_service_key(
    http: httpx.Client, sandbox: SandboxServer, product_url: str, receiver: WebhookReceiver
) -> None:
    sandbox.configure(latency_s=2.0)
    run_id = create_run(http, sandbox, COLOR, {**color_input(product_url), "callback_url": receiver.url}).json()["id"]
    url = f"{sandbox.vendor_url('runflow')}/v1/admin/runs/{run_id}/cancellation"
    denied = http.post(url, headers=AUTH)
    assert denied.status_code == 403 and denied.json()["code"] == "PERMISSION_DENIED"
    cancelled = http.post(url, json={"reason": "operator stop"}, headers=ADMIN)
    assert cancelled.status_code == 201 and cancelled.json()["status_code"] == "canceled"
    again = http.post(url, headers=ADMIN)
    assert again.status_code == 200 and again.json()["status_code"] == "canceled"
    event = receiver.wait_for(1)[0].json()
    assert (event["event"], event["status"], event["output"]) == ("run.cancelled", "cancelled", None)


def test_over_concurrency_runs_stay_queued(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    sandbox.configure(concurrency={"runflow": 1}, latency_s=0.6)
    first = create_run(http, sandbox, COLOR, color_input(product_url)).json()["id"]
    second = create_run(http, sandbox, COLOR, color_input(product_url, red=1)).json()["id"]
    other_model = create_run(
        http, sandbox, REPLACE, {"input": {"zip_url": product_url, "file_image": "a", "file_reference": "b"}}
    ).json()["id"]
    time.sleep(0.3)
    assert get_run(http, sandbox, first).json()["status_code"] == "running"
    assert get_run(http, sandbox, second).json()["status_code"] == "queued"
    assert get_run(http, sandbox, other_model).json()["status_code"] == "running"  # the cap is per model
    assert wait_terminal(http, sandbox, second)["status_code"] == "succeeded"


def test_rate_limit_is_429_without_headers(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    sandbox.configure(submit_rate={"runflow": 2})
    answers = [create_run(http, sandbox, COLOR, color_input(product_url)) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["code"] == "RATE_LIMITED"
    assert "retry-after" not in answers[2].headers  # runflow.md §9: newest docs send no headers
    stats = sandbox.stats()["vendors"]["runflow"]
    assert (stats["submits_accepted"], stats["submits_rejected"]) == (2, 1)


def test_out_of_credit_is_402(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    sandbox.configure(balance={"runflow": 0.1})
    response = create_run(http, sandbox, COLOR, color_input(product_url))
    assert response.status_code == 402 and response.json()["code"] == "INSUFFICIENT_CREDIT"


def test_callback_history_and_redelivery(
    http: httpx.Client, sandbox: SandboxServer, product_url: str, receiver: WebhookReceiver
) -> None:
    run_id = create_run(http, sandbox, COLOR, {**color_input(product_url), "callback_url": receiver.url}).json()["id"]
    receiver.wait_for(1)
    base = f"{sandbox.vendor_url('runflow')}/v1/runs/{run_id}"
    assert http.post(f"{base}/callback-redeliveries", headers=AUTH).status_code == 201
    first, second = receiver.wait_for(2)
    assert first.json()["run_id"] == second.json()["run_id"] == run_id
    history = wait_until(
        lambda: (h := http.get(f"{base}/callback", headers=AUTH).json())["items"][0]["attempt_count"] == 2 and h
    )
    assert history["items"][0]["attempts"][0]["status_code"] == 200
