"""The sandbox never leaves the machine: public input URLs and webhook URLs are refused, not fetched."""

from __future__ import annotations

import time
from typing import Any

import httpx


def _wait_terminal(sandbox: Any, vendor: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        [job] = sandbox.jobs(vendor)
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return dict(job)
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def test_a_public_input_url_fails_the_job_instead_of_being_fetched(bgreplace_sandbox: Any) -> None:
    answer = httpx.post(
        bgreplace_sandbox.vendor_url("fal") + "/bria/replace-background",
        headers={"Authorization": "Key k"},
        json={"image_url": "https://v3b.fal.media/files/b/0a8bea8c/example.png", "prompt": "kitchen"},
    )
    assert answer.status_code == 200

    job = _wait_terminal(bgreplace_sandbox, "fal")

    assert job["state"] == "failed"
    assert job["error_code"] == "file_download_error"


def test_a_public_webhook_url_is_never_called(bgreplace_sandbox: Any, static_server: Any) -> None:
    from tests.conftest import make_product_photo

    image_url = static_server.put("offline.png", make_product_photo())
    answer = httpx.post(
        bgreplace_sandbox.vendor_url("fal") + "/bria/replace-background",
        params={"fal_webhook": "https://your-server.com/webhook"},
        headers={"Authorization": "Key k"},
        json={"image_url": image_url, "prompt": "kitchen"},
    )
    assert answer.status_code == 200
    _wait_terminal(bgreplace_sandbox, "fal")
    deadline = time.monotonic() + 5
    while bgreplace_sandbox.stats()["vendors"]["fal"]["webhook_failures"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)

    [job] = bgreplace_sandbox.jobs("fal")
    assert job["webhook_deliveries"], job
    assert all(d.get("status_code") is None and "offline" in (d.get("error") or "") for d in job["webhook_deliveries"])
