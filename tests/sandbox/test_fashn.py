"""FASHN emulator: real HTTP against the sandbox, shapes from fashn.md and seed 002."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import pytest

from airflow_bgreplace.sandbox.server import SandboxServer
from tests.sandbox.conftest import PRODUCT_SIZE, WebhookReceiver, data_uri, open_image, product_image, wait_until

AUTH = {"Authorization": "Bearer fa-test"}


def run(
    http: httpx.Client, sandbox: SandboxServer, inputs: dict[str, Any], model: str = "background-change", **params: str
) -> httpx.Response:
    return http.post(
        f"{sandbox.vendor_url('fashn')}/v1/run",
        json={"model_name": model, "inputs": inputs},
        headers=AUTH,
        params=params,
    )


def status(http: httpx.Client, sandbox: SandboxServer, prediction_id: str) -> httpx.Response:
    return http.get(f"{sandbox.vendor_url('fashn')}/v1/status/{prediction_id}", headers=AUTH)


def wait_terminal(http: httpx.Client, sandbox: SandboxServer, prediction_id: str, seen: list[str] | None = None):
    def terminal() -> httpx.Response | None:
        response = status(http, sandbox, prediction_id)
        if seen is not None:
            seen.append(response.json()["status"])
        return response if response.json()["status"] in ("completed", "failed") else None

    return wait_until(terminal, interval_s=0.02)


def test_bad_token_is_401_unauthorized_access(http: httpx.Client, sandbox: SandboxServer) -> None:
    response = http.post(f"{sandbox.vendor_url('fashn')}/v1/run", json={})
    assert response.status_code == 401
    assert response.json() == {"error": "UnauthorizedAccess", "message": "Unauthorized: Invalid token"}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"model_name": "tryon-v9", "inputs": {}}, "model_name"),
        ({"model_name": "background-change"}, "inputs"),
        ({"model_name": "background-change", "inputs": {"image": "https://x/a.png"}}, "prompt"),
        ({"model_name": "background-change", "inputs": {"image": "u", "prompt": "p", "seed": 2**32}}, "seed"),
        (
            {"model_name": "background-change", "inputs": {"image": "u", "prompt": "p", "output_format": "webp"}},
            "output_format",
        ),
    ],
)
def test_invalid_requests_are_400_bad_request(
    http: httpx.Client, sandbox: SandboxServer, body: dict[str, Any], needle: str
) -> None:
    response = http.post(f"{sandbox.vendor_url('fashn')}/v1/run", json=body, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"] == "BadRequest" and needle in response.json()["message"]


def test_lifecycle_with_data_uri_to_jpeg(http: httpx.Client, sandbox: SandboxServer) -> None:
    inputs = {"image": data_uri(product_image()), "prompt": "beach sunset", "output_format": "jpeg", "future_knob": 1}
    answer = run(http, sandbox, inputs)
    assert answer.status_code == 200
    assert answer.json()["error"] is None and answer.json()["id"].endswith("-u1")
    assert answer.headers["x-fashn-credits-used"] == "1"
    seen: list[str] = []
    final = wait_terminal(http, sandbox, answer.json()["id"], seen)
    assert {"in_queue", "processing"} <= set(seen) and set(seen) <= {"starting", "in_queue", "processing", "completed"}
    assert final.status_code == 200 and final.headers["x-fashn-credits-used"] == "1"
    body = final.json()
    assert body["error"] is None
    (url,) = body["output"]
    assert url.endswith("/output_0.jpeg")
    picture = open_image(http.get(url).content)
    assert picture.format == "JPEG" and picture.size == PRODUCT_SIZE


def test_return_base64_gives_data_uris(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    answer = run(http, sandbox, {"image": product_url, "prompt": "office", "return_base64": True}).json()
    (output,) = wait_terminal(http, sandbox, answer["id"]).json()["output"]
    assert output.startswith("data:image/png;base64,")
    assert open_image(base64.b64decode(output.split(",", 1)[1])).size == PRODUCT_SIZE


def test_background_remove_sibling(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    answer = run(http, sandbox, {"image": product_url}, model="background-remove").json()
    (url,) = wait_terminal(http, sandbox, answer["id"]).json()["output"]
    picture = open_image(http.get(url).content)
    assert picture.mode == "RGBA" and picture.getpixel((0, 0))[3] == 0


def test_base64_without_prefix_fails_with_image_load_error(http: httpx.Client, sandbox: SandboxServer) -> None:
    raw = base64.b64encode(product_image()).decode()
    answer = run(http, sandbox, {"image": raw, "prompt": "x"}).json()
    final = wait_terminal(http, sandbox, answer["id"])
    assert final.status_code == 200  # failures are HTTP 200 (fashn.md §12)
    assert final.headers["x-fashn-credits-used"] == "0"
    body = final.json()
    assert body["status"] == "failed" and body["output"] is None
    assert body["error"]["name"] == "ImageLoadError" and "Invalid URL format" in body["error"]["message"]


def test_injected_runtime_error(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    sandbox.inject_fault("fashn", "job_fail", code="ContentModerationError")
    answer = run(http, sandbox, {"image": product_url, "prompt": "x"}).json()
    assert wait_terminal(http, sandbox, answer["id"]).json()["error"]["name"] == "ContentModerationError"


def test_over_concurrency_is_rejected_not_queued(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    sandbox.configure(concurrency={"fashn": 2}, latency_s=0.5)
    answers = [run(http, sandbox, {"image": product_url, "prompt": f"p{i}"}) for i in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["error"] == "ConcurrencyLimitExceeded"
    assert "retry-after" not in answers[2].headers
    wait_terminal(http, sandbox, answers[0].json()["id"])
    wait_terminal(http, sandbox, answers[1].json()["id"])
    assert run(http, sandbox, {"image": product_url, "prompt": "again"}).status_code == 200


def test_default_concurrency_is_the_assumption(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    sandbox.configure(latency_s=1.0)
    codes = [run(http, sandbox, {"image": product_url, "prompt": f"p{i}"}).status_code for i in range(7)]
    assert codes == [200] * 6 + [429]  # assumptions.FASHN.concurrency = 6


def test_status_rate_limit(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    sandbox.configure(status_rate={"fashn": 3}, latency_s=2.0)
    prediction = run(http, sandbox, {"image": product_url, "prompt": "x"}).json()["id"]
    codes = [status(http, sandbox, prediction).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert status(http, sandbox, prediction).json()["error"] == "RateLimitExceeded"


def test_credits_and_out_of_credits(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    sandbox.configure(balance={"fashn": 1})
    credits_url = f"{sandbox.vendor_url('fashn')}/v1/credits"
    assert http.get(credits_url, headers=AUTH).json() == {"credits": {"total": 1, "subscription": 0, "on_demand": 1}}
    prediction = run(http, sandbox, {"image": product_url, "prompt": "x"}).json()["id"]
    wait_terminal(http, sandbox, prediction)
    assert http.get(credits_url, headers=AUTH).json()["credits"]["total"] == 0
    refused = run(http, sandbox, {"image": product_url, "prompt": "x"})
    assert refused.status_code == 429 and refused.json()["error"] == "OutOfCredits"


def test_cdn_url_disappears_after_its_ttl(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    sandbox.configure(result_url_ttl_s={"fashn": 0.4})
    prediction = run(http, sandbox, {"image": product_url, "prompt": "x"}).json()["id"]
    (url,) = wait_terminal(http, sandbox, prediction).json()["output"]
    assert http.get(url).status_code == 200
    time.sleep(0.5)
    assert http.get(url).status_code == 404  # fashn.md §11: CDN URLs 404 once deleted


def test_unknown_prediction_is_404_not_found(http: httpx.Client, sandbox: SandboxServer) -> None:
    response = status(http, sandbox, "123a87r9-4129-4bb3-be18-9c9fb5bd7fc1-u1")
    assert response.status_code == 404 and response.json()["error"] == "NotFound"
    assert http.get(f"{sandbox.vendor_url('fashn')}/v1/nope", headers=AUTH).json()["error"] == "NotFound"


def test_webhook_is_the_unsigned_terminal_status(
    http: httpx.Client, sandbox: SandboxServer, product_url: str, receiver: WebhookReceiver
) -> None:
    receiver.respond_with(503)
    prediction = run(http, sandbox, {"image": product_url, "prompt": "x"}, webhook_url=receiver.url).json()["id"]
    first, second = receiver.wait_for(2)
    assert first.body == second.body
    assert set(second.headers) >= {"content-type"} and not any("signature" in h for h in second.headers)
    assert second.json() == status(http, sandbox, prediction).json()
    assert second.json()["status"] == "completed"
