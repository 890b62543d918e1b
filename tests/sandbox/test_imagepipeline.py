"""ImagePipeline emulator: real HTTP against the sandbox, shapes from imagepipeline.md and seed 004."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from airflow_bgreplace.sandbox.server import SandboxServer
from tests.sandbox.conftest import PRODUCT_SIZE, FileServer, WebhookReceiver, open_image, product_image, wait_until

AUTH = {"X-API-Key": "ip_live_test"}
CHANGE = "/background/change/image/v1"
REMOVE = "/background/remove/image/v1"


def submit(http: httpx.Client, sandbox: SandboxServer, path: str, body: dict[str, Any]) -> httpx.Response:
    return http.post(sandbox.vendor_url("imagepipeline") + path, json=body, headers=AUTH)


def status(http: httpx.Client, sandbox: SandboxServer, path: str, job_id: str) -> httpx.Response:
    return http.get(f"{sandbox.vendor_url('imagepipeline')}{path}/status/{job_id}", headers=AUTH)


def wait_terminal(
    http: httpx.Client, sandbox: SandboxServer, path: str, job_id: str, seen: list[str] | None = None
) -> dict[str, Any]:
    def terminal() -> dict[str, Any] | None:
        body = status(http, sandbox, path, job_id).json()
        if seen is not None:
            seen.append(body["status"])
        return body if body["status"] in ("completed", "failed", "cancelled") else None

    return wait_until(terminal, interval_s=0.02)


def test_missing_key_is_401(http: httpx.Client, sandbox: SandboxServer) -> None:
    response = http.post(sandbox.vendor_url("imagepipeline") + CHANGE, json={})
    assert response.status_code == 401
    body = response.json()
    assert body["error_code"] == "UNAUTHORIZED" and body["error"] and body["message"]


def test_validation_is_fastapi_422(http: httpx.Client, sandbox: SandboxServer) -> None:
    body = {"prompt": 3, "output_format": "gif", "tone_correction": 1.5}
    detail = submit(http, sandbox, CHANGE, body).json()["detail"]
    by_field = {item["loc"][-1]: item for item in detail}
    assert by_field["input_image"] == {
        "loc": ["body", "input_image"],
        "msg": "field required",
        "type": "value_error.missing",
    }
    assert by_field["prompt"]["type"] == "type_error.str"
    assert by_field["output_format"]["type"] == "type_error.enum"
    assert by_field["tone_correction"]["type"] == "value_error.number.not_le"


@pytest.mark.parametrize(
    ("body", "field", "kind"),
    [
        ({"input_image": "u", "recolor": "#GGGGGG"}, "recolor", "value_error.str.regex"),
        ({"input_image": "u", "drop_shadow": True}, "drop_shadow", "value_error"),
        ({"input_image": "u", "recolor": "FFF", "shadow_opacity": -0.1}, "shadow_opacity", "value_error.number.not_ge"),
    ],
)
def test_remove_validation(http: httpx.Client, sandbox: SandboxServer, body: dict, field: str, kind: str) -> None:
    response = submit(http, sandbox, REMOVE, body)
    assert response.status_code == 422
    assert [(item["loc"][-1], item["type"]) for item in response.json()["detail"]] == [(field, kind)]


def test_change_lifecycle_to_webp(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    answer = submit(http, sandbox, CHANGE, {"input_image": product_url, "prompt": "on a sunlit marble counter"})
    assert answer.status_code == 200
    queued = answer.json()
    assert re.fullmatch(r"job_[0-9a-f]+", queued["job_id"])
    assert (queued["status"], queued["endpoint"]) == ("queued", CHANGE)
    assert queued["queued_at"].endswith("Z") and queued["estimated_time_seconds"] >= 0
    seen: list[str] = []
    final = wait_terminal(http, sandbox, CHANGE, queued["job_id"], seen)
    assert {"pending", "processing"} <= set(seen)
    assert final["status"] == "completed" and final["progress"] == 100
    assert final["result_mime_type"] == "image/webp" and final["cost_usd"] == 0.02
    assert final["balance_remaining_usd"] == pytest.approx(999.98)
    assert "cutout_url" not in final
    picture = open_image(http.get(final["result_url"]).content)
    assert picture.format == "WEBP" and picture.size == PRODUCT_SIZE


def test_remove_without_recolor_result_is_the_cutout(
    http: httpx.Client, sandbox: SandboxServer, product_url: str
) -> None:
    job_id = submit(http, sandbox, REMOVE, {"input_image": product_url}).json()["job_id"]
    final = wait_terminal(http, sandbox, REMOVE, job_id)
    assert final["result_url"] == final["cutout_url"]
    cutout = open_image(http.get(final["cutout_url"]).content)
    assert cutout.format == "PNG" and cutout.mode == "RGBA"
    assert cutout.getpixel((0, 0))[3] == 0 and cutout.getpixel((32, 24))[3] == 255


def test_remove_with_recolor_and_shadow(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    body = {"input_image": product_url, "recolor": "F0F0F0", "drop_shadow": True, "output_format": "jpeg"}
    final = wait_terminal(http, sandbox, REMOVE, submit(http, sandbox, REMOVE, body).json()["job_id"])
    assert final["result_url"] != final["cutout_url"] and final["result_mime_type"] == "image/jpeg"
    picture = open_image(http.get(final["result_url"]).content)
    assert picture.format == "JPEG" and picture.mode == "RGB" and picture.size == PRODUCT_SIZE
    corner = picture.getpixel((0, 0))
    assert all(abs(channel - 0xF0) <= 3 for channel in corner)


def test_injected_failure_is_http_200_with_code(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    sandbox.inject_fault("imagepipeline", "job_fail", code="MODEL_ERROR")
    job_id = submit(http, sandbox, CHANGE, {"input_image": product_url, "prompt": "x"}).json()["job_id"]
    final = wait_terminal(http, sandbox, CHANGE, job_id)
    assert (final["status"], final["failure_reason_code"], final["retryable"]) == ("failed", "MODEL_ERROR", True)
    assert final["error"]


def test_unreachable_input_is_input_invalid(
    http: httpx.Client, sandbox: SandboxServer, file_server: FileServer
) -> None:
    url = file_server.serve(b"<html>", "text/html")
    job_id = submit(http, sandbox, CHANGE, {"input_image": url, "prompt": "x"}).json()["job_id"]
    final = wait_terminal(http, sandbox, CHANGE, job_id)
    assert (final["failure_reason_code"], final["retryable"]) == ("INPUT_INVALID", False)


def test_rate_limit_is_429_with_retry_after(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    sandbox.configure(submit_rate={"imagepipeline": 1}, rate_window_s={"imagepipeline": 30})
    assert submit(http, sandbox, CHANGE, {"input_image": product_url, "prompt": "x"}).status_code == 200
    limited = submit(http, sandbox, CHANGE, {"input_image": product_url, "prompt": "x"})
    assert limited.status_code == 429 and limited.json()["error_code"] == "RATE_LIMIT_EXCEEDED"
    assert 1 <= int(limited.headers["Retry-After"]) <= 30


def test_over_concurrency_is_429_concurrent_jobs(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    sandbox.configure(concurrency={"imagepipeline": 1}, latency_s=1.0)
    assert submit(http, sandbox, CHANGE, {"input_image": product_url, "prompt": "x"}).status_code == 200
    refused = submit(http, sandbox, CHANGE, {"input_image": product_url, "prompt": "y"})
    assert refused.status_code == 429 and refused.json()["error_code"] == "CONCURRENT_JOBS_EXCEEDED"
    assert int(refused.headers["Retry-After"]) >= 1


def test_over_concurrency_as_failed_job(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    sandbox.configure(concurrency={"imagepipeline": 1}, over_concurrency={"imagepipeline": "fail"}, latency_s=0.4)
    submit(http, sandbox, CHANGE, {"input_image": product_url, "prompt": "x"})
    job_id = submit(http, sandbox, CHANGE, {"input_image": product_url, "prompt": "y"}).json()["job_id"]
    final = wait_terminal(http, sandbox, CHANGE, job_id)
    assert (final["failure_reason_code"], final["retryable"]) == ("CONCURRENT_JOBS_EXCEEDED", True)


def test_upload_then_use_the_url(http: httpx.Client, sandbox: SandboxServer) -> None:
    response = http.post(
        sandbox.vendor_url("imagepipeline") + "/upload/image/v1",
        files={"file": ("product.png", product_image(), "image/png")},
        headers=AUTH,
    )
    assert response.status_code == 200
    uploaded = response.json()
    assert (uploaded["filename"], uploaded["content_type"]) == ("product.png", "image/png")
    assert uploaded["size_bytes"] == len(product_image())
    job_id = submit(http, sandbox, REMOVE, {"input_image": uploaded["url"]}).json()["job_id"]
    assert wait_terminal(http, sandbox, REMOVE, job_id)["status"] == "completed"
    not_image = http.post(
        sandbox.vendor_url("imagepipeline") + "/upload/image/v1",
        files={"file": ("a.txt", b"hi", "text/plain")},
        headers=AUTH,
    )
    assert not_image.status_code == 400 and not_image.json()["error_code"] == "INVALID_PARAMETERS"
    no_file = http.post(
        sandbox.vendor_url("imagepipeline") + "/upload/image/v1", files={"other": ("a.png", b"x")}, headers=AUTH
    )
    assert no_file.status_code == 422 and no_file.json()["detail"][0]["loc"] == ["body", "file"]


def test_result_url_is_presigned_and_re_signed(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    sandbox.configure(result_url_ttl_s={"imagepipeline": 0.3})
    job_id = submit(http, sandbox, CHANGE, {"input_image": product_url, "prompt": "x"}).json()["job_id"]
    old = wait_terminal(http, sandbox, CHANGE, job_id)["result_url"]
    time.sleep(1.4)
    assert http.get(old).status_code == 403
    fresh = status(http, sandbox, CHANGE, job_id).json()["result_url"]
    assert http.get(fresh).status_code == 200


def test_result_expire_immediately(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    sandbox.configure(result_expire_immediately=True)
    job_id = submit(http, sandbox, CHANGE, {"input_image": product_url, "prompt": "x"}).json()["job_id"]
    url = wait_terminal(http, sandbox, CHANGE, job_id)["result_url"]
    assert http.get(url).status_code == 403
    assert sandbox.stats()["vendors"]["imagepipeline"]["files_expired"] == 1


def test_webhook_event(http: httpx.Client, sandbox: SandboxServer, product_url: str, receiver: WebhookReceiver) -> None:
    job_id = submit(
        http, sandbox, REMOVE, {"input_image": product_url, "recolor": "#fff", "callback_url": receiver.url}
    ).json()["job_id"]
    event = receiver.wait_for(1)[0].json()
    assert event["job_id"] == job_id and event["status"] == "completed"
    assert event["user_id"].startswith("usr_") and abs(event["timestamp"] - time.time()) < 60
    assert event["result_mime_type"] == "image/webp"
    assert event["result_size_bytes"] == len(http.get(event["result_url"]).content)


def test_failed_webhook_carries_the_failure_and_is_retried(
    http: httpx.Client, sandbox: SandboxServer, product_url: str, receiver: WebhookReceiver
) -> None:
    receiver.respond_with(500, 502)
    sandbox.inject_fault("imagepipeline", "job_fail", code="TIMEOUT")
    submit(http, sandbox, CHANGE, {"input_image": product_url, "prompt": "x", "callback_url": receiver.url})
    deliveries = receiver.wait_for(3)
    event = deliveries[-1].json()
    assert (event["status"], event["failure_reason_code"], event["retryable"]) == ("failed", "TIMEOUT", True)
    assert event["result_url"] is None


def test_force_cancel_through_the_control_api(
    http: httpx.Client, sandbox: SandboxServer, product_url: str, receiver: WebhookReceiver
) -> None:
    sandbox.configure(latency_s=2.0)
    body = {"input_image": product_url, "prompt": "x", "callback_url": receiver.url}
    job_id = submit(http, sandbox, CHANGE, body).json()["job_id"]
    assert sandbox.cancel_job("imagepipeline", job_id)["state"] == "cancelled"
    final = status(http, sandbox, CHANGE, job_id).json()
    assert (final["status"], final["failure_reason_code"]) == ("cancelled", "CANCELLED")
    time.sleep(0.2)
    assert receiver.deliveries == []  # cancelled jobs send no webhook (assumption)


def test_status_is_per_endpoint(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    job_id = submit(http, sandbox, CHANGE, {"input_image": product_url, "prompt": "x"}).json()["job_id"]
    wrong = status(http, sandbox, REMOVE, job_id)
    assert wrong.status_code == 404 and wrong.json()["error_code"] == "NOT_FOUND"


def test_event_schema_and_account(http: httpx.Client, sandbox: SandboxServer) -> None:
    base = sandbox.vendor_url("imagepipeline")
    schema = http.get(f"{base}/webhooks/event-schema", headers=AUTH).json()
    assert {"job_id", "status", "timestamp"} <= set(schema["required"])
    assert http.get(f"{base}/v1/user/details", headers=AUTH).json()["balance_remaining_usd"] == 1000.0
