"""fal.ai queue emulator: real HTTP against the sandbox, shapes from fal.md."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from airflow_bgreplace.sandbox.server import SandboxServer
from tests.sandbox.conftest import (
    PRODUCT_SIZE,
    FileServer,
    WebhookReceiver,
    data_uri,
    open_image,
    product_image,
    wait_until,
)

AUTH = {"Authorization": "Key fal-test-key"}
MODEL = "bria/replace-background"


def submit(http: httpx.Client, sandbox: SandboxServer, body: dict[str, Any], **params: str) -> httpx.Response:
    return http.post(f"{sandbox.vendor_url('fal')}/{MODEL}", json=body, headers=AUTH, params=params)


def wait_completed(http: httpx.Client, status_url: str) -> dict[str, Any]:
    def completed() -> dict[str, Any] | None:
        body = http.get(status_url, headers=AUTH).json()
        return body if body["status"] == "COMPLETED" else None

    return wait_until(completed)


def test_missing_key_is_401_with_detail(http: httpx.Client, sandbox: SandboxServer) -> None:
    response = http.post(f"{sandbox.vendor_url('fal')}/{MODEL}", json={}, headers={"Authorization": "Bearer x"})
    assert response.status_code == 401
    assert isinstance(response.json()["detail"], str)


def test_out_of_range_steps_is_422_model_error(http: httpx.Client, sandbox: SandboxServer) -> None:
    response = submit(http, sandbox, {"prompt": "beach", "image_url": "https://x/y.png", "steps_num": 0})
    assert response.status_code == 422
    assert response.headers["X-Fal-Retryable"] == "false"
    (item,) = response.json()["detail"]
    assert item["loc"] == ["body", "steps_num"]
    assert item["type"] == "greater_than_equal"
    assert item["ctx"] == {"ge": 1}
    assert item["url"].endswith("#greater_than_equal")


def test_wrong_type_is_422(http: httpx.Client, sandbox: SandboxServer) -> None:
    response = submit(http, sandbox, {"prompt": 5, "sync_mode": "yes"})
    assert response.status_code == 422
    assert {item["type"] for item in response.json()["detail"]} == {"string_type", "bool_type"}


def test_lifecycle_to_downloadable_png(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    answer = submit(http, sandbox, {"prompt": "on a beach", "image_url": product_url})
    assert answer.status_code == 200
    queued = answer.json()
    assert queued["status"] == "IN_QUEUE" and queued["queue_position"] == 0
    assert "gateway_request_id" not in queued
    request_id = queued["request_id"]
    assert queued["status_url"].endswith(f"/fal/{MODEL}/requests/{request_id}/status")
    assert queued["cancel_url"].endswith(f"/requests/{request_id}/cancel")

    seen: list[tuple[int, str]] = []

    def completed() -> dict[str, Any] | None:
        response = http.get(queued["status_url"], headers=AUTH, params={"logs": "1"})
        seen.append((response.status_code, response.json()["status"]))
        return response.json() if response.json()["status"] == "COMPLETED" else None

    final = wait_until(completed, interval_s=0.02)
    assert (202, "IN_PROGRESS") in seen
    assert seen[-1][0] == 200
    assert "error" not in final and final["metrics"]["inference_time"] >= 0
    assert final["logs"][0]["level"] == "INFO"

    result = http.get(queued["response_url"], headers=AUTH)
    assert result.status_code == 200
    assert result.headers["x-fal-request-id"] == request_id
    body = result.json()
    assert body["images"] == [body["image"]]
    image = body["image"]
    assert image["content_type"] == "image/png" and image["file_name"].endswith(".png")
    download = http.get(image["url"])
    assert download.status_code == 200
    picture = open_image(download.content)
    assert picture.format == "PNG" and picture.size == PRODUCT_SIZE == (image["width"], image["height"])
    assert image["file_size"] == len(download.content)


def test_result_before_completion_is_400(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    sandbox.configure(latency_s=2.0)
    queued = submit(http, sandbox, {"prompt": "x", "image_url": product_url}).json()
    response = http.get(queued["response_url"], headers=AUTH)
    assert response.status_code == 400
    assert response.json() == {"detail": "Request is still in progress"}


def test_unknown_request_is_404(http: httpx.Client, sandbox: SandboxServer) -> None:
    url = f"{sandbox.vendor_url('fal')}/{MODEL}/requests/00000000-0000-0000-0000-000000000000/status"
    assert http.get(url, headers=AUTH).status_code == 404


def test_another_key_cannot_see_a_request(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    queued = submit(http, sandbox, {"prompt": "x", "image_url": product_url}).json()
    response = http.get(queued["status_url"], headers={"Authorization": "Key someone-else"})
    assert response.status_code == 404


def test_over_concurrency_requests_wait_in_queue(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    sandbox.configure(concurrency={"fal": 1}, latency_s=0.6)
    answers = [submit(http, sandbox, {"prompt": f"p{i}", "image_url": product_url}) for i in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]  # never 429
    time.sleep(0.2)
    statuses = [http.get(a.json()["status_url"], headers=AUTH).json() for a in answers]
    assert statuses[0]["status"] == "IN_PROGRESS"
    assert [s["status"] for s in statuses[1:]] == ["IN_QUEUE", "IN_QUEUE"]
    assert [s["queue_position"] for s in statuses[1:]] == [0, 1]
    for answer in answers:
        assert "error" not in wait_completed(http, answer.json()["status_url"])


def test_submits_are_never_rate_limited(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    codes = {submit(http, sandbox, {"prompt": f"{i}", "image_url": product_url}).status_code for i in range(25)}
    assert codes == {200}  # fal.md §9: no request-per-minute limit on the queue


def test_cancel_in_queue_then_result_is_499(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    sandbox.configure(concurrency={"fal": 1}, latency_s=1.0)
    first = submit(http, sandbox, {"prompt": "a", "image_url": product_url}).json()
    second = submit(http, sandbox, {"prompt": "b", "image_url": product_url}).json()
    cancel = http.put(second["cancel_url"], headers=AUTH)
    assert cancel.status_code == 202 and cancel.json() == {"status": "CANCELLATION_REQUESTED"}
    status = http.get(second["status_url"], headers=AUTH).json()
    assert status["status"] == "COMPLETED" and status["error_type"] == "client_cancelled"
    result = http.get(second["response_url"], headers=AUTH)
    assert result.status_code == 499
    assert result.json()["error_type"] == "client_cancelled"
    assert http.put(second["cancel_url"], headers=AUTH).status_code == 400
    missing = http.put(f"{sandbox.vendor_url('fal')}/{MODEL}/requests/nope/cancel", headers=AUTH)
    assert missing.status_code == 404 and missing.json() == {"status": "NOT_FOUND"}
    assert http.put(first["cancel_url"], headers=AUTH).status_code == 202  # in progress: best effort
    assert sandbox.stats()["vendors"]["fal"]["cancels"] == 4


def test_injected_model_error(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    sandbox.inject_fault("fal", "job_fail", code="content_policy_violation")
    queued = submit(http, sandbox, {"prompt": "x", "image_url": product_url}).json()
    status = wait_completed(http, queued["status_url"])
    assert status["error_type"] == "content_policy_violation" and status["error"]
    result = http.get(queued["response_url"], headers=AUTH)
    assert result.status_code == 422
    assert result.headers["X-Fal-Retryable"] == "false"
    assert result.json()["detail"][0]["type"] == "content_policy_violation"


def test_injected_request_error(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    sandbox.inject_fault("fal", "job_fail", code="runner_server_error")
    queued = submit(http, sandbox, {"prompt": "x", "image_url": product_url}).json()
    wait_completed(http, queued["status_url"])
    result = http.get(queued["response_url"], headers=AUTH)
    assert result.status_code == 500
    assert result.headers["X-Fal-Error-Type"] == "runner_server_error"
    assert result.json()["error_type"] == "runner_server_error"


def test_unreachable_image_is_file_download_error(
    http: httpx.Client, sandbox: SandboxServer, file_server: FileServer
) -> None:
    missing = file_server.serve(b"gone", status=404)
    queued = submit(http, sandbox, {"prompt": "x", "image_url": missing}).json()
    assert wait_completed(http, queued["status_url"])["error_type"] == "file_download_error"


def test_not_an_image_is_image_load_error(http: httpx.Client, sandbox: SandboxServer) -> None:
    queued = submit(http, sandbox, {"prompt": "x", "image_url": data_uri(b"not an image")}).json()
    assert wait_completed(http, queued["status_url"])["error_type"] == "image_load_error"


def test_too_many_pixels_is_image_too_large(http: httpx.Client, sandbox: SandboxServer) -> None:
    sandbox.configure(max_input_pixels=100)
    queued = submit(http, sandbox, {"prompt": "x", "image_url": data_uri(product_image())}).json()
    assert wait_completed(http, queued["status_url"])["error_type"] == "image_too_large"


def test_omitted_image_url_uses_the_sample(http: httpx.Client, sandbox: SandboxServer) -> None:
    # fal.md §4 gotcha: image_url has a default, so forgetting it is not an error.
    queued = submit(http, sandbox, {"prompt": "kitchen"}).json()
    assert "error" not in wait_completed(http, queued["status_url"])
    image = http.get(queued["response_url"], headers=AUTH).json()["image"]
    assert (image["width"], image["height"]) == (512, 512)


def test_sync_mode_returns_a_data_uri(http: httpx.Client, sandbox: SandboxServer) -> None:
    queued = submit(http, sandbox, {"prompt": "x", "image_url": data_uri(product_image()), "sync_mode": True}).json()
    wait_completed(http, queued["status_url"])
    url = http.get(queued["response_url"], headers=AUTH).json()["image"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert open_image(base64.b64decode(url.split(",", 1)[1])).size == PRODUCT_SIZE


def test_lifecycle_header_expires_the_file(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    answer = http.post(
        f"{sandbox.vendor_url('fal')}/{MODEL}",
        json={"prompt": "x", "image_url": product_url},
        headers={**AUTH, "X-Fal-Object-Lifecycle-Preference": json.dumps({"expiration_duration_seconds": 0.5})},
    ).json()
    wait_completed(http, answer["status_url"])
    url = http.get(answer["response_url"], headers=AUTH).json()["image"]["url"]
    assert http.get(url).status_code == 200
    time.sleep(0.6)
    assert http.get(url).status_code == 404  # the CDN deleted it (fal.md §7)


def test_storage_upload_then_use_the_file(http: httpx.Client, sandbox: SandboxServer) -> None:
    base = sandbox.vendor_url("fal")
    initiate = http.post(
        f"{base}/storage/upload/initiate",
        params={"storage_type": "gcs"},
        json={"file_name": "product.png", "content_type": "image/png"},
        headers=AUTH,
    )
    assert initiate.status_code == 200
    urls = initiate.json()
    assert http.get(urls["file_url"]).status_code == 404  # nothing uploaded yet
    put = http.put(urls["upload_url"], content=product_image(), headers={"Content-Type": "image/png"})
    assert put.status_code == 200
    assert http.get(urls["file_url"]).content == product_image()
    queued = submit(http, sandbox, {"prompt": "x", "image_url": urls["file_url"]}).json()
    assert "error" not in wait_completed(http, queued["status_url"])
    assert sandbox.stats()["vendors"]["fal"]["uploads"] == 1


def test_storage_token_flow(http: httpx.Client, sandbox: SandboxServer) -> None:
    token = http.post(
        f"{sandbox.vendor_url('fal')}/storage/auth/token", params={"storage_type": "fal-cdn-v3"}, json={}, headers=AUTH
    ).json()
    upload = http.post(
        f"{token['base_url']}/files/upload",
        content=product_image(),
        headers={
            "Authorization": f"{token['token_type']} {token['token']}",
            "Content-Type": "image/png",
            "X-Fal-File-Name": "p.png",
        },
    )
    assert upload.status_code == 200
    assert http.get(upload.json()["access_url"]).content == product_image()
    bad = http.post(f"{token['base_url']}/files/upload", content=b"x", headers={"Authorization": "Bearer wrong"})
    assert bad.status_code == 401


def _verify_fal_signature(delivery_headers: dict[str, str], body: bytes, jwks: dict[str, Any]) -> bool:
    """Independent verifier, written from fal.md §11."""
    timestamp = delivery_headers["x-fal-webhook-timestamp"]
    assert abs(time.time() - int(timestamp)) <= 300
    message = "\n".join(
        [
            delivery_headers["x-fal-webhook-request-id"],
            delivery_headers["x-fal-webhook-user-id"],
            timestamp,
            hashlib.sha256(body).hexdigest(),
        ]
    ).encode()
    signature = bytes.fromhex(delivery_headers["x-fal-webhook-signature"])
    for key in jwks["keys"]:
        x = key["x"] + "=" * (-len(key["x"]) % 4)
        try:
            Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x)).verify(signature, message)
            return True
        except Exception:
            continue
    return False


def test_webhook_is_ed25519_signed_and_verifiable_with_jwks(
    http: httpx.Client, sandbox: SandboxServer, product_url: str, receiver: WebhookReceiver
) -> None:
    answer = submit(http, sandbox, {"prompt": "x", "image_url": product_url}, fal_webhook=receiver.url).json()
    assert answer["gateway_request_id"] == answer["request_id"]
    (delivery,) = receiver.wait_for(1)
    jwks = http.get(f"{sandbox.vendor_url('fal')}/.well-known/jwks.json").json()
    assert jwks["keys"][0]["kty"] == "OKP" and jwks["keys"][0]["crv"] == "Ed25519"
    assert _verify_fal_signature(delivery.headers, delivery.body, jwks)
    assert not _verify_fal_signature(delivery.headers, delivery.body + b" ", jwks)
    payload = delivery.json()
    assert payload["request_id"] == answer["request_id"] and payload["status"] == "OK"
    assert payload["payload"]["image"]["url"].startswith(sandbox.base_url)
    assert delivery.path == "/hook?token=secret-token"


def test_error_webhook_and_retry_after_500(
    http: httpx.Client, sandbox: SandboxServer, product_url: str, receiver: WebhookReceiver
) -> None:
    receiver.respond_with(500)
    sandbox.inject_fault("fal", "job_fail", code="image_load_error")
    submit(http, sandbox, {"prompt": "x", "image_url": product_url}, fal_webhook=receiver.url)
    first, second = receiver.wait_for(2)
    assert first.body == second.body  # frozen payload, signed again per attempt
    payload = second.json()
    assert payload["status"] == "ERROR" and payload["error"] == "Invalid status code: 422"
    assert payload["payload"]["detail"][0]["type"] == "image_load_error"
    counters = wait_until(lambda: (c := sandbox.stats()["vendors"]["fal"])["webhook_successes"] and c)
    assert counters["webhook_attempts"] == 2 and counters["webhook_deliveries"] == 1


def test_status_stream_ends_with_completed(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    queued = submit(http, sandbox, {"prompt": "x", "image_url": product_url}).json()
    with http.stream("GET", f"{queued['status_url']}/stream", headers=AUTH) as stream:
        events = [json.loads(line[5:]) for line in stream.iter_lines() if line.startswith("data:")]
    assert events[-1]["status"] == "COMPLETED"
    assert "IN_PROGRESS" in [event["status"] for event in events]


@pytest.mark.parametrize("bad_body", [b"{not json", b"[1, 2]"])
def test_non_object_body_is_422(http: httpx.Client, sandbox: SandboxServer, bad_body: bytes) -> None:
    response = http.post(
        f"{sandbox.vendor_url('fal')}/{MODEL}", content=bad_body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
