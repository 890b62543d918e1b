"""Fault injection: scripted faults of every kind, random rates, job and webhook faults."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from airflow_bgreplace.sandbox.server import SandboxServer
from tests.sandbox.conftest import WebhookReceiver, wait_until


@dataclass(frozen=True)
class Vendor:
    name: str
    headers: dict[str, str]
    submit_path: str
    body: Callable[[str], dict]
    status_path: Callable[[httpx.Response], str]
    error_code: Callable[[httpx.Response], str]
    server_error: tuple[int, str]


VENDORS = {
    "runflow": Vendor(
        "runflow",
        {"Authorization": "Bearer rf_live_k"},
        "/v1/models/runflow/background-color/runs",
        lambda url: {"input": {"image_url": url, "color_red": 1, "color_green": 2, "color_blue": 3}},
        lambda answer: f"/v1/runs/{answer.json()['id']}",
        lambda response: response.json()["code"],
        (503, "MODEL_UNAVAILABLE"),
    ),
    "fashn": Vendor(
        "fashn",
        {"Authorization": "Bearer k"},
        "/v1/run",
        lambda url: {"model_name": "background-change", "inputs": {"image": url, "prompt": "p"}},
        lambda answer: f"/v1/status/{answer.json()['id']}",
        lambda response: response.json()["error"],
        (500, "InternalServerError"),
    ),
    "fal": Vendor(
        "fal",
        {"Authorization": "Key k"},
        "/bria/replace-background",
        lambda url: {"image_url": url, "prompt": "p"},
        lambda answer: f"/bria/replace-background/requests/{answer.json()['request_id']}/status",
        lambda response: response.json().get("error_type") or response.json()["detail"],
        (500, "internal_error"),
    ),
    "imagepipeline": Vendor(
        "imagepipeline",
        {"X-API-Key": "k"},
        "/background/change/image/v1",
        lambda url: {"input_image": url, "prompt": "p"},
        lambda answer: f"/background/change/image/v1/status/{answer.json()['job_id']}",
        lambda response: response.json()["error_code"],
        (500, "INTERNAL_ERROR"),
    ),
}
ALL = sorted(VENDORS)


def submit(http: httpx.Client, sandbox: SandboxServer, vendor: Vendor, url: str) -> httpx.Response:
    return http.post(
        sandbox.vendor_url(vendor.name) + vendor.submit_path, json=vendor.body(url), headers=vendor.headers
    )


def counters(sandbox: SandboxServer, vendor: str) -> dict[str, int]:
    return sandbox.stats()["vendors"][vendor]


@pytest.mark.parametrize("name", ALL)
def test_scripted_5xx_on_status_in_the_vendor_shape(
    http: httpx.Client, sandbox: SandboxServer, product_url: str, name: str
) -> None:
    vendor = VENDORS[name]
    sandbox.inject_fault(name, "5xx", route="status", count=2)
    answer = submit(http, sandbox, vendor, product_url)
    assert answer.status_code == 200  # the submit route is not targeted
    url = sandbox.vendor_url(name) + vendor.status_path(answer)
    failures = [http.get(url, headers=vendor.headers) for _ in range(2)]
    assert {(r.status_code, vendor.error_code(r)) for r in failures} == {vendor.server_error}
    assert http.get(url, headers=vendor.headers).status_code in (200, 202)
    assert counters(sandbox, name)["faults_injected"] == 2


@pytest.mark.parametrize("name", ALL)
def test_scripted_429_headers_follow_the_vendor(
    http: httpx.Client, sandbox: SandboxServer, product_url: str, name: str
) -> None:
    vendor = VENDORS[name]
    sandbox.inject_fault(name, "429", route="submit")
    sandbox.inject_fault(name, "429_no_retry_after", route="submit")
    sandbox.inject_fault(name, "429", route="submit", retry_after=7)
    usual, bare, forced = (submit(http, sandbox, vendor, product_url) for _ in range(3))
    assert usual.status_code == bare.status_code == forced.status_code == 429
    assert ("retry-after" in usual.headers) == (name == "imagepipeline")  # only the SDK-documented one
    assert "retry-after" not in bare.headers
    assert forced.headers["retry-after"] == "7"
    assert counters(sandbox, name)["submits_rejected"] == 3 and counters(sandbox, name)["submits_accepted"] == 0


def test_drop_before_accept_creates_no_job(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    sandbox.inject_fault("fal", "drop", route="submit")
    with pytest.raises(httpx.RemoteProtocolError):
        submit(http, sandbox, VENDORS["fal"], product_url)
    assert sandbox.jobs("fal") == []
    assert counters(sandbox, "fal")["submits_rejected"] == 1


@pytest.mark.parametrize("kind", ["drop_after_accept", "drop_mid_response"])
def test_drops_after_accept_keep_the_job(
    http: httpx.Client, sandbox: SandboxServer, product_url: str, kind: str
) -> None:
    sandbox.inject_fault("fashn", kind, route="submit")
    with pytest.raises(httpx.RemoteProtocolError):
        submit(http, sandbox, VENDORS["fashn"], product_url)
    assert len(sandbox.jobs("fashn")) == 1
    assert counters(sandbox, "fashn")["submits_accepted"] == 1


def test_5xx_after_accept_makes_a_blind_retry_a_duplicate(
    http: httpx.Client, sandbox: SandboxServer, product_url: str
) -> None:
    vendor = VENDORS["runflow"]
    sandbox.inject_fault("runflow", "5xx_after_accept", route="submit")
    first = submit(http, sandbox, vendor, product_url)
    assert first.status_code == 503
    assert submit(http, sandbox, vendor, product_url).status_code == 200
    stats = counters(sandbox, "runflow")
    assert (stats["submits_accepted"], stats["duplicate_submits"]) == (2, 1)
    jobs = sandbox.jobs("runflow")
    assert len(jobs) == 2 and jobs[0]["fingerprint"] == jobs[1]["fingerprint"]


def test_drop_mid_response_on_status(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    vendor = VENDORS["imagepipeline"]
    answer = submit(http, sandbox, vendor, product_url)
    sandbox.inject_fault("imagepipeline", "drop_mid_response", route="status")
    with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
        http.get(sandbox.vendor_url("imagepipeline") + vendor.status_path(answer), headers=vendor.headers)


def test_slow_answer(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    vendor = VENDORS["fal"]
    answer = submit(http, sandbox, vendor, product_url)
    sandbox.inject_fault("fal", "slow", route="status", slow_s=0.4)
    started = time.monotonic()
    response = http.get(sandbox.vendor_url("fal") + vendor.status_path(answer), headers=vendor.headers)
    assert time.monotonic() - started >= 0.4 and response.status_code in (200, 202)
    with pytest.raises(httpx.ReadTimeout):  # a client timeout shorter than the delay sees a timeout
        sandbox.inject_fault("fal", "slow", route="status", slow_s=0.5)
        http.get(sandbox.vendor_url("fal") + vendor.status_path(answer), headers=vendor.headers, timeout=0.1)


def test_malformed_json_on_submit_still_creates_the_job(
    http: httpx.Client, sandbox: SandboxServer, product_url: str
) -> None:
    sandbox.inject_fault("fal", "malformed_json", route="submit")
    response = submit(http, sandbox, VENDORS["fal"], product_url)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert counters(sandbox, "fal")["submits_accepted"] == 1


def test_file_route_faults(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    vendor = VENDORS["fashn"]
    answer = submit(http, sandbox, vendor, product_url)
    status_url = sandbox.vendor_url("fashn") + vendor.status_path(answer)
    done = wait_until(lambda: (b := http.get(status_url, headers=vendor.headers).json())["status"] == "completed" and b)
    (url,) = done["output"]
    sandbox.inject_fault("fashn", "5xx", route="file")
    sandbox.inject_fault("fashn", "drop", route="file")
    sandbox.inject_fault("fashn", "drop_mid_response", route="file")
    assert http.get(url).status_code == 503
    with pytest.raises(httpx.RemoteProtocolError):
        http.get(url)
    with pytest.raises(httpx.RemoteProtocolError):
        http.get(url)
    assert http.get(url).status_code == 200


def test_vendor_any_and_pending_list(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    sandbox.inject_fault("any", "5xx", route="submit", count=2)
    assert sandbox.stats()["pending_faults"][0]["remaining"] == 2
    assert submit(http, sandbox, VENDORS["fal"], product_url).status_code == 500
    assert submit(http, sandbox, VENDORS["imagepipeline"], product_url).status_code == 500
    assert submit(http, sandbox, VENDORS["fashn"], product_url).status_code == 200
    assert sandbox.stats()["pending_faults"] == []


@pytest.mark.parametrize(
    ("name", "code", "read_code"),
    [
        ("runflow", "PROVIDER_ERROR", lambda body: body["failure_code"]),
        ("fashn", "ImageLoadError", lambda body: body["error"]["name"]),
        ("fal", "image_load_error", lambda body: body["error_type"]),
        ("imagepipeline", "STORAGE_ERROR", lambda body: body["failure_reason_code"]),
    ],
)
def test_job_fail_rate_uses_the_configured_codes(
    http: httpx.Client, sandbox: SandboxServer, product_url: str, name: str, code: str, read_code: Callable
) -> None:
    vendor = VENDORS[name]
    sandbox.configure(job_fail_rate={name: 1.0}, job_fail_codes={name: [code]})
    url = sandbox.vendor_url(name) + vendor.status_path(submit(http, sandbox, vendor, product_url))

    def failed() -> dict | None:
        job = sandbox.jobs(name)[0]
        return http.get(url, headers=vendor.headers).json() if job["state"] == "failed" else None

    assert read_code(wait_until(failed)) == code


def test_random_faults_are_reproducible_with_a_seed(http: httpx.Client, sandbox: SandboxServer) -> None:
    sandbox.configure(seed=7, fault_5xx_rate={"fal": 0.5})
    url = f"{sandbox.vendor_url('fal')}/bria/replace-background/requests/none/status"

    def sequence() -> list[int]:
        return [http.get(url, headers={"Authorization": "Key k"}).status_code for _ in range(16)]

    first = sequence()
    assert set(first) == {404, 500}
    sandbox.reset()  # keeps settings, reseeds the RNG
    assert sequence() == first


def test_random_drop_and_malformed_rates(http: httpx.Client, sandbox: SandboxServer) -> None:
    sandbox.configure(fault_drop_rate={"fashn": 1.0})
    with pytest.raises(httpx.RemoteProtocolError):
        http.get(f"{sandbox.vendor_url('fashn')}/v1/credits", headers={"Authorization": "Bearer k"})
    sandbox.configure(fault_drop_rate=0.0, fault_malformed_json_rate={"fashn": 1.0})
    with pytest.raises(json.JSONDecodeError):
        http.get(f"{sandbox.vendor_url('fashn')}/v1/credits", headers={"Authorization": "Bearer k"}).json()


def test_random_429_and_slow_rates(http: httpx.Client, sandbox: SandboxServer) -> None:
    sandbox.configure(fault_429_rate={"imagepipeline": 1.0})
    limited = http.get(f"{sandbox.vendor_url('imagepipeline')}/health", headers={"X-API-Key": "k"})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
    sandbox.configure(fault_429_rate=0.0, fault_slow_rate=1.0, fault_slow_s=0.3)
    started = time.monotonic()
    assert http.get(f"{sandbox.vendor_url('imagepipeline')}/health", headers={"X-API-Key": "k"}).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_webhook_drop_rate(
    http: httpx.Client, sandbox: SandboxServer, product_url: str, receiver: WebhookReceiver
) -> None:
    sandbox.configure(webhook_drop_rate={"fal": 1.0})
    vendor = VENDORS["fal"]
    http.post(
        sandbox.vendor_url("fal") + vendor.submit_path,
        json=vendor.body(product_url),
        headers=vendor.headers,
        params={"fal_webhook": receiver.url},
    )
    wait_until(lambda: counters(sandbox, "fal")["webhook_dropped"] == 1)
    assert receiver.deliveries == [] and counters(sandbox, "fal")["webhook_attempts"] == 0


def test_invalid_fault_specs_are_refused(sandbox: SandboxServer) -> None:
    with pytest.raises(RuntimeError, match="422"):
        sandbox.inject_fault("fal", "explode")
    with pytest.raises(RuntimeError, match="422"):
        sandbox.inject_fault("fal", "5xx_after_accept", route="status")
    with pytest.raises(RuntimeError, match="422"):
        sandbox.inject_fault("acme", "5xx")
