"""The control API and SandboxServer helpers: stats, duplicates, reset, config, redelivery."""

from __future__ import annotations

import json
import statistics

import httpx
import pytest

from airflow_bgreplace.sandbox.app import create_app
from airflow_bgreplace.sandbox.config import SandboxSettings
from airflow_bgreplace.sandbox.server import SandboxServer
from tests.sandbox.conftest import WebhookReceiver, wait_until

FAL = {"Authorization": "Key k"}
RUNFLOW = {"Authorization": "Bearer rf_live_k"}


def fal_submit(http: httpx.Client, sandbox: SandboxServer, body: dict, **params: str) -> httpx.Response:
    return http.post(f"{sandbox.vendor_url('fal')}/bria/replace-background", json=body, headers=FAL, params=params)


def runflow_submit(http: httpx.Client, sandbox: SandboxServer, body: dict) -> httpx.Response:
    url = f"{sandbox.vendor_url('runflow')}/v1/models/runflow/background-color/runs"
    return http.post(url, json=body, headers=RUNFLOW)


def test_health_and_urls(sandbox: SandboxServer) -> None:
    assert sandbox.health() == {"status": "ok", "vendors": ["fal", "fashn", "imagepipeline", "runflow"]}
    assert sandbox.vendor_url("fal") == f"http://127.0.0.1:{sandbox.port}/fal"


def test_stats_counts_and_lists_jobs(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    answer = fal_submit(http, sandbox, {"prompt": "p", "image_url": product_url}).json()
    http.get(answer["status_url"], headers=FAL)
    fal_submit(http, sandbox, {"steps_num": 99})  # rejected: 422
    stats = sandbox.stats()
    fal = stats["vendors"]["fal"]
    assert (fal["submits_accepted"], fal["submits_rejected"], fal["status_calls"]) == (1, 1, 1)
    (job,) = stats["jobs"]
    assert {"vendor", "id", "state", "fingerprint", "submitted_at", "finished_at"} <= set(job)
    assert (job["vendor"], job["id"]) == ("fal", answer["request_id"])
    finished = wait_until(lambda: sandbox.job("fal", answer["request_id"])["finished_at"])
    assert finished >= job["submitted_at"]


def test_duplicates_ignore_callback_urls_and_metadata(
    http: httpx.Client, sandbox: SandboxServer, product_url: str
) -> None:
    base = {"input": {"image_url": product_url, "color_red": 1, "color_green": 2, "color_blue": 3}}
    runflow_submit(http, sandbox, base)
    runflow_submit(http, sandbox, {**base, "callback_url": "http://127.0.0.1:9/hook", "metadata": {"try": 2}})
    runflow_submit(http, sandbox, {"input": {**base["input"], "color_red": 9}})
    fal_submit(http, sandbox, {"prompt": "p", "image_url": product_url})
    fal_submit(
        http, sandbox, {"prompt": "p", "image_url": product_url, "seed": 4925634}, fal_webhook="http://127.0.0.1:9/"
    )
    vendors = sandbox.stats()["vendors"]
    assert vendors["runflow"]["duplicate_submits"] == 1
    assert vendors["fal"]["duplicate_submits"] == 1  # an explicit default is the same input


def test_reset_clears_everything_and_can_restore_settings(
    http: httpx.Client, sandbox: SandboxServer, product_url: str
) -> None:
    sandbox.configure(latency_s=5.0)
    answer = fal_submit(http, sandbox, {"prompt": "p", "image_url": product_url}).json()
    sandbox.inject_fault("fal", "5xx")
    sandbox.reset()
    assert sandbox.stats()["jobs"] == [] and sandbox.stats()["pending_faults"] == []
    assert sandbox.stats()["vendors"]["fal"]["submits_accepted"] == 0
    assert http.get(answer["status_url"], headers=FAL).status_code == 404
    assert sandbox.config()["latency_s"] == 5.0
    sandbox.reset(restore_settings=True)
    assert sandbox.config()["latency_s"] == 0.3


def test_configure_validates(sandbox: SandboxServer) -> None:
    assert sandbox.configure(concurrency={"fal": 3})["concurrency"] == {"fal": 3}
    with pytest.raises(RuntimeError, match="422"):
        sandbox.configure(fault_5xx_rate=2.0)
    with pytest.raises(RuntimeError, match="unknown vendor"):
        sandbox.configure(concurrency={"acme": 1})
    with pytest.raises(RuntimeError, match="422"):
        sandbox.configure(no_such_option=1)


def test_raising_concurrency_releases_queued_jobs(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    sandbox.configure(concurrency={"fal": 1}, latency_s=3.0)
    answers = [fal_submit(http, sandbox, {"prompt": f"{i}", "image_url": product_url}).json() for i in range(2)]
    wait_until(lambda: http.get(answers[0]["status_url"], headers=FAL).json()["status"] == "IN_PROGRESS")
    assert http.get(answers[1]["status_url"], headers=FAL).json()["status"] == "IN_QUEUE"
    sandbox.configure(concurrency={"fal": 2})
    wait_until(lambda: http.get(answers[1]["status_url"], headers=FAL).json()["status"] == "IN_PROGRESS")


def test_redeliver_sends_the_webhook_again(
    http: httpx.Client, sandbox: SandboxServer, product_url: str, receiver: WebhookReceiver
) -> None:
    answer = fal_submit(http, sandbox, {"prompt": "p", "image_url": product_url}, fal_webhook=receiver.url).json()
    receiver.wait_for(1)
    sandbox.redeliver_webhook("fal", answer["request_id"])
    first, second = receiver.wait_for(2)
    assert first.json() == second.json()
    assert first.headers["x-fal-webhook-request-id"] == second.headers["x-fal-webhook-request-id"]
    assert len(sandbox.job("fal", answer["request_id"])["webhook_deliveries"]) == 2


def test_redeliver_and_cancel_conflicts(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    answer = fal_submit(http, sandbox, {"prompt": "p", "image_url": product_url}).json()
    with pytest.raises(RuntimeError, match="409"):
        sandbox.redeliver_webhook("fal", answer["request_id"])  # no webhook, not terminal
    wait_until(lambda: sandbox.job("fal", answer["request_id"])["state"] == "succeeded")
    with pytest.raises(RuntimeError, match="409"):
        sandbox.cancel_job("fal", answer["request_id"])
    with pytest.raises(RuntimeError, match="404"):
        sandbox.cancel_job("fal", "missing")


def test_force_cancel_shows_in_each_vendor_vocabulary(
    http: httpx.Client, sandbox: SandboxServer, product_url: str
) -> None:
    sandbox.configure(latency_s=3.0)
    answer = fal_submit(http, sandbox, {"prompt": "p", "image_url": product_url}).json()
    sandbox.cancel_job("fal", answer["request_id"])
    status = http.get(answer["status_url"], headers=FAL).json()
    assert (status["status"], status["error_type"]) == ("COMPLETED", "client_cancelled")
    fashn = http.post(
        f"{sandbox.vendor_url('fashn')}/v1/run",
        json={"model_name": "background-change", "inputs": {"image": product_url, "prompt": "p"}},
        headers={"Authorization": "Bearer k"},
    ).json()
    sandbox.cancel_job("fashn", fashn["id"])
    body = http.get(f"{sandbox.vendor_url('fashn')}/v1/status/{fashn['id']}", headers={"Authorization": "Bearer k"})
    assert body.json()["status"] == "canceled"
    assert sandbox.stats()["vendors"]["fashn"]["jobs_cancelled"] == 1


def test_connection_helpers(sandbox: SandboxServer) -> None:
    conn = json.loads(sandbox.connection_uri("imagepipeline"))
    assert conn == {
        "conn_type": "bgreplace_imagepipeline",
        "host": sandbox.vendor_url("imagepipeline"),
        "password": "sandbox-key",
        "extra": {"allow_http": True, "allow_private_addresses": True},
    }
    env = sandbox.connection_env("fal", "fal_default", api_key="k2")
    assert json.loads(env["AIRFLOW_CONN_FAL_DEFAULT"])["password"] == "k2"
    sandbox.configure(api_key="only-this")
    assert json.loads(sandbox.connection_uri("fal"))["password"] == "only-this"


def test_jobs_listing_filters_by_vendor(http: httpx.Client, sandbox: SandboxServer, product_url: str) -> None:
    fal_submit(http, sandbox, {"prompt": "p", "image_url": product_url})
    runflow_submit(
        http, sandbox, {"input": {"image_url": product_url, "color_red": 1, "color_green": 2, "color_blue": 3}}
    )
    assert [job["vendor"] for job in sandbox.jobs("fal")] == ["fal"]
    assert len(sandbox.jobs()) == 2


@pytest.mark.parametrize("distribution", ["fixed", "uniform", "exponential", "lognormal"])
def test_latency_distributions_keep_the_mean(distribution: str) -> None:
    settings = SandboxSettings(latency_s=2.0, latency_distribution=distribution, latency_spread=0.3, seed=3)
    sandbox = create_app(settings).sandbox
    draws = [sandbox.draw_latency("fal", "bria/replace-background") for _ in range(4000)]
    assert statistics.mean(draws) == pytest.approx(2.0, rel=0.08)
    assert min(draws) >= 0
    if distribution == "uniform":
        assert min(draws) >= 1.4 and max(draws) <= 2.6


def test_default_latency_comes_from_the_assumptions() -> None:
    sandbox = create_app(SandboxSettings(latency_distribution="fixed")).sandbox
    assert sandbox.draw_latency("fashn", "background-change") == 12.0  # seed 002: ~12 s
    assert sandbox.draw_latency("runflow", "background-color") == 8.0
