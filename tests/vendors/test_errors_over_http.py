"""Every typed error, produced by the sandbox's real HTTP answers and fault injection, per vendor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_bgreplace.vendors import (
    VENDORS,
    AuthenticationError,
    CancelNotSupportedError,
    DownloadError,
    InvalidRequestError,
    JobState,
    NotFoundError,
    PaymentRequiredError,
    RateLimitError,
    SubmissionUncertainError,
    TransientError,
    VendorClient,
)
from airflow_bgreplace.vendors.retry import RetryPolicy
from airflow_bgreplace.vendors.transport import ApiRequest, Operation
from tests.conftest import StaticServer, make_product_photo

FAST = RetryPolicy(max_attempts=3, base_delay_s=0.02, max_delay_s=0.1, deadline_s=10)
UNKNOWN_JOB = "00000000-0000-7000-8000-000000000000"


def submit_args(vendor: str, public: StaticServer) -> tuple[str, dict[str, Any]]:
    photo = public.put("photo.png", make_product_photo())
    return {
        "runflow": ("background-color", {"image_url": photo, "color_red": 1, "color_green": 2, "color_blue": 3}),
        "fashn": ("background-change", {"image": photo, "prompt": "beach"}),
        "fal": ("bria/replace-background", {"image_url": photo, "prompt": "beach"}),
        "imagepipeline": ("background/change", {"input_image": photo, "prompt": "beach"}),
    }[vendor]


@pytest.fixture(params=sorted(VENDORS))
def vendor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(vendor: str, bgreplace_sandbox: Any) -> VendorClient:
    with VendorClient(
        VENDORS[vendor](), api_key="sandbox-key", base_url=bgreplace_sandbox.vendor_url(vendor), retry=FAST
    ) as client:
        yield client  # type: ignore[misc]


def _accepted(sandbox: Any, vendor: str) -> int:
    return int(sandbox.stats()["vendors"][vendor]["submits_accepted"])


def test_wrong_key_is_an_authentication_error(vendor: str, bgreplace_sandbox: Any, static_server: StaticServer) -> None:
    bgreplace_sandbox.configure(api_key="right")
    endpoint, inputs = submit_args(vendor, static_server)
    client = VendorClient(VENDORS[vendor](), api_key="wrong", base_url=bgreplace_sandbox.vendor_url(vendor))
    with client, pytest.raises(AuthenticationError) as caught:
        client.submit(endpoint, **inputs)
    assert caught.value.vendor == vendor and caught.value.status_code in (401, 403)
    assert "wrong" not in str(caught.value)


def test_empty_balance_is_a_payment_error(
    vendor: str, client: VendorClient, bgreplace_sandbox: Any, static_server: StaticServer
) -> None:
    bgreplace_sandbox.configure(balance={vendor: 0})
    endpoint, inputs = submit_args(vendor, static_server)
    with pytest.raises(PaymentRequiredError):
        client.submit(endpoint, **inputs)
    assert _accepted(bgreplace_sandbox, vendor) == 0


def test_vendor_side_validation_is_an_invalid_request_error(vendor: str, client: VendorClient) -> None:
    # Bypass our own validation: what does the vendor itself answer to an empty body?
    path = {
        "runflow": "/v1/models/runflow/background-color/runs",
        "fashn": "/v1/run",
        "fal": "/bria/replace-background",
        "imagepipeline": "/background/change/image/v1",
    }[vendor]

    def empty_submit() -> Operation[None]:
        yield ApiRequest("POST", path, json={"input": {}} if vendor == "runflow" else {"steps_num": 999})

    with pytest.raises(InvalidRequestError) as caught:
        client.run(empty_submit())
    assert caught.value.status_code in (400, 422)
    assert caught.value.message


def test_429_on_submit_is_retried_then_surfaces_as_rate_limit(
    vendor: str, client: VendorClient, bgreplace_sandbox: Any, static_server: StaticServer
) -> None:
    endpoint, inputs = submit_args(vendor, static_server)
    bgreplace_sandbox.inject_fault(vendor, "429", route="submit", count=2, retry_after=0.05)
    job = client.submit(endpoint, **inputs)  # two 429s, then accepted: a rejected submit is safe to resend
    assert job.job_id
    bgreplace_sandbox.inject_fault(vendor, "429_no_retry_after", route="submit", count=10)
    with pytest.raises(RateLimitError):
        client.submit(endpoint, **inputs)
    assert _accepted(bgreplace_sandbox, vendor) == 1


@pytest.mark.parametrize("kind", ["5xx", "drop", "malformed_json", "drop_mid_response"])
def test_status_faults_are_transient_and_retried(
    vendor: str, kind: str, client: VendorClient, bgreplace_sandbox: Any, static_server: StaticServer
) -> None:
    endpoint, inputs = submit_args(vendor, static_server)
    job = client.submit(endpoint, **inputs)
    bgreplace_sandbox.inject_fault(vendor, kind, route="status", count=2)
    assert client.get_status(job.job_id, endpoint).job_id == job.job_id  # third attempt answers
    bgreplace_sandbox.inject_fault(vendor, kind, route="status", count=10)
    with pytest.raises(TransientError):
        client.get_status(job.job_id, endpoint)


@pytest.mark.parametrize("kind", ["5xx_after_accept", "drop_after_accept", "malformed_json"])
def test_an_ambiguous_submit_is_never_resent(
    vendor: str, kind: str, client: VendorClient, bgreplace_sandbox: Any, static_server: StaticServer
) -> None:
    endpoint, inputs = submit_args(vendor, static_server)
    bgreplace_sandbox.inject_fault(vendor, kind, route="submit", count=1)
    with pytest.raises(SubmissionUncertainError) as caught:
        client.submit(endpoint, **inputs)
    assert caught.value.fingerprint
    stats = bgreplace_sandbox.stats()["vendors"][vendor]
    assert stats["submits_accepted"] == 1 and stats["duplicate_submits"] == 0


def test_unknown_job_is_not_found(vendor: str, client: VendorClient, static_server: StaticServer) -> None:
    endpoint, _ = submit_args(vendor, static_server)
    with pytest.raises(NotFoundError):
        client.get_status("job_0000000000" if vendor == "imagepipeline" else UNKNOWN_JOB, endpoint)


def test_failed_job_carries_the_vendor_code(
    vendor: str, client: VendorClient, bgreplace_sandbox: Any, static_server: StaticServer
) -> None:
    code = {"runflow": "INPUT_VALIDATION_FAILED", "fashn": "ImageLoadError", "fal": "image_load_error",
            "imagepipeline": "MODEL_ERROR"}[vendor]
    bgreplace_sandbox.inject_fault(vendor, "job_fail", code=code)
    endpoint, inputs = submit_args(vendor, static_server)
    job = client.submit(endpoint, **inputs)
    status = _wait(client, job.job_id, endpoint)
    assert status.state is JobState.failed
    assert status.error_code == code
    with pytest.raises(Exception) as caught:
        status.raise_for_failure()
    assert code in str(caught.value) and job.job_id in str(caught.value)


def test_cancel_where_the_vendor_has_none(
    vendor: str, client: VendorClient, bgreplace_sandbox: Any, static_server: StaticServer
) -> None:
    endpoint, inputs = submit_args(vendor, static_server)
    bgreplace_sandbox.configure(latency_s={vendor: 30})
    job = client.submit(endpoint, **inputs)
    if vendor == "fal":
        assert client.cancel(job.job_id, endpoint) is True
        assert _wait(client, job.job_id, endpoint).state is JobState.cancelled
    elif vendor == "runflow":
        with pytest.raises(AuthenticationError, match="admin"):  # admin-only endpoint, normal key
            client.cancel(job.job_id, endpoint)
    else:
        with pytest.raises(CancelNotSupportedError):
            client.cancel(job.job_id, endpoint)


def test_expired_result_url_is_a_download_error(
    vendor: str, client: VendorClient, bgreplace_sandbox: Any, static_server: StaticServer
) -> None:
    bgreplace_sandbox.configure(result_expire_immediately=True)
    endpoint, inputs = submit_args(vendor, static_server)
    status = _wait(client, client.submit(endpoint, **inputs).job_id, endpoint)
    with pytest.raises(DownloadError, match="expired"):
        client.download(status.result_urls[0])


def test_download_is_bounded_in_size(
    vendor: str, client: VendorClient, static_server: StaticServer
) -> None:
    endpoint, inputs = submit_args(vendor, static_server)
    status = _wait(client, client.submit(endpoint, **inputs).job_id, endpoint)
    with pytest.raises(DownloadError, match="larger than"):
        client.download(status.result_urls[0], max_bytes=100)


def _wait(client: VendorClient, job_id: str, endpoint: str) -> Any:
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status = client.get_status(job_id, endpoint)
        if status.is_terminal:
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def test_local_images_without_a_stager_name_the_setting(tmp_path: Path) -> None:
    from airflow_bgreplace.vendors import StagingNotConfiguredError

    photo = tmp_path / "p.png"
    photo.write_bytes(make_product_photo())
    client = VendorClient(VENDORS["runflow"](stager=None), api_key="k", base_url="http://127.0.0.1:9")
    with pytest.raises(StagingNotConfiguredError, match="staging_path"):
        client.submit("background-color", image_url=photo, color_red=1, color_green=1, color_blue=1)
