"""Every hook's sync and async verbs take a job from submit to a downloaded result, over real HTTP."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from airflow_bgreplace.hooks import REMOTE_HOOKS as HOOKS
from airflow_bgreplace.hooks import BgReplaceHook
from airflow_bgreplace.vendors import JobState, JobStatus
from tests.conftest import StaticServer, sandbox_connection

CONN_IDS = {vendor: hook.default_conn_name for vendor, hook in HOOKS.items()}


def _inputs(case: str, photo: Path, public: StaticServer) -> tuple[str, str, dict[str, Any]]:
    """(vendor, endpoint, inputs) for each seed endpoint, with local files where the vendor allows."""
    reference = public.put("reference.png", _png((40, 120, 200)))
    reference_file = public.root / "reference.png"
    cases: dict[str, tuple[str, str, dict[str, Any]]] = {
        "runflow-replace": ("runflow", "background-replace", {"image": photo, "reference": reference_file}),
        "runflow-color": (
            "runflow",
            "background-color",
            {
                "image_url": public.put("product.png", photo.read_bytes()),
                "color_red": 10,
                "color_green": 200,
                "color_blue": 30,
            },
        ),
        "fashn": ("fashn", "background-change", {"image": photo, "prompt": "a beach at sunset"}),
        "fal": ("fal", "bria/replace-background", {"image_url": photo, "prompt": "marble kitchen counter"}),
        "imagepipeline-change": ("imagepipeline", "background/change", {"input_image": photo, "prompt": "forest"}),
        "imagepipeline-remove": (
            "imagepipeline",
            "background/remove",
            {"input_image": reference, "recolor": "#F0F0F0", "drop_shadow": True, "output_format": "png"},
        ),
    }
    return cases[case]


def _png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (200, 150), colour).save(buffer, format="PNG")
    return buffer.getvalue()


CASES = ["runflow-replace", "runflow-color", "fashn", "fal", "imagepipeline-change", "imagepipeline-remove"]


@pytest.fixture
def connections(bgreplace_sandbox: Any, static_server: StaticServer, monkeypatch: pytest.MonkeyPatch) -> None:
    staging = static_server.staging_extra()
    for vendor, conn_id in CONN_IDS.items():
        extra = staging if vendor == "runflow" else {}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", sandbox_connection(bgreplace_sandbox, vendor, extra))


def _wait(hook: BgReplaceHook, job_id: str, endpoint: str, timeout_s: float = 30.0) -> JobStatus:
    deadline = time.monotonic() + timeout_s
    while True:
        status = hook.get_status(job_id, endpoint)
        if status.is_terminal or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def _assert_image(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert image.width > 10 and image.height > 10


@pytest.mark.parametrize("case", CASES)
def test_sync_hook_takes_a_job_to_success(
    case: str, connections: None, product_photo: Path, static_server: StaticServer, bgreplace_sandbox: Any
) -> None:
    vendor, endpoint, inputs = _inputs(case, product_photo, static_server)
    hook = HOOKS[vendor]()
    job = hook.submit(endpoint, **inputs)
    assert job.vendor == vendor and job.endpoint == endpoint and job.job_id

    status = _wait(hook, job.job_id, endpoint)

    assert status.state is JobState.succeeded, status.describe_error()
    assert status.result_urls
    _assert_image(hook.download(status.result_urls[0]))
    assert bgreplace_sandbox.stats()["vendors"][vendor]["submits_accepted"] == 1


@pytest.mark.parametrize("case", CASES)
def test_async_hook_takes_a_job_to_success(
    case: str, connections: None, product_photo: Path, static_server: StaticServer
) -> None:
    vendor, endpoint, inputs = _inputs(case, product_photo, static_server)
    hook = HOOKS[vendor]()

    async def scenario() -> tuple[JobStatus, bytes]:
        job = await hook.asubmit(endpoint, **inputs)
        while True:
            status = await hook.aget_status(job.job_id, endpoint)
            if status.is_terminal:
                return status, await hook.adownload(status.result_urls[0])
            await asyncio.sleep(0.1)

    status, data = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert status.state is JobState.succeeded, status.describe_error()
    _assert_image(data)


@pytest.mark.parametrize("vendor", sorted(HOOKS))
def test_test_connection_accepts_a_key_and_rejects_a_wrong_one(
    vendor: str, bgreplace_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bgreplace_sandbox.configure(api_key="the-right-key")
    conn_id = CONN_IDS[vendor]
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", sandbox_connection(bgreplace_sandbox, vendor, key="the-right-key")
    )
    ok, message = HOOKS[vendor]().test_connection()
    assert ok, message

    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", sandbox_connection(bgreplace_sandbox, vendor, key="wrong-key")
    )
    ok, message = HOOKS[vendor]().test_connection()
    assert not ok
    assert "AuthenticationError" in message
    assert "wrong-key" not in message


@pytest.mark.parametrize("vendor", sorted(HOOKS))
def test_the_api_key_never_reaches_logs_or_errors(
    vendor: str,
    bgreplace_sandbox: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    product_photo: Path,
    static_server: StaticServer,
) -> None:
    secret = "sk-live-DO-NOT-LOG-4242"
    conn_id = CONN_IDS[vendor]
    extra = static_server.staging_extra()
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", sandbox_connection(bgreplace_sandbox, vendor, extra, key=secret)
    )
    _, endpoint, inputs = _inputs(
        {"runflow": "runflow-color", "fashn": "fashn", "fal": "fal", "imagepipeline": "imagepipeline-change"}[vendor],
        product_photo,
        static_server,
    )
    hook = HOOKS[vendor]()
    job = hook.submit(endpoint, **inputs)
    _wait(hook, job.job_id, endpoint)
    bgreplace_sandbox.configure(api_key="another-key")  # now every call fails with an auth error
    with pytest.raises(Exception) as failure:
        hook.get_status(job.job_id, endpoint)

    captured = capsys.readouterr()
    assert secret not in captured.out + captured.err
    assert secret not in str(failure.value) and secret not in repr(hook.client)
