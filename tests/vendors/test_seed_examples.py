"""The vendors' own request examples (../shared/seeds) replayed against the sandbox.

Each example is sent as the vendor documents it (raw JSON, bypassing our request models), then
followed with our client to a downloadable result in the documented output shape. Our request
models must also accept each example as it stands.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image

from airflow_bgreplace.vendors import VENDORS, JobState, VendorClient
from airflow_bgreplace.vendors.inputs import ImagePipelineUploadStager
from airflow_bgreplace.vendors.transport import ApiRequest, Operation
from tests.conftest import StaticServer, make_product_photo

SEEDS: dict[str, dict[str, Any]] = {
    name: case
    for name, case in json.loads((Path(__file__).parent.parent / "data" / "seed_requests.json").read_text()).items()
    if not name.startswith("_")
}
ID_FIELDS = {"runflow": "id", "fashn": "id", "fal": "request_id", "imagepipeline": "job_id"}


def _image(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(make_product_photo())).save(buffer, format=fmt)
    return buffer.getvalue()


def _serve_locally(url: str, public: StaticServer) -> str:
    """A loopback copy of a public example URL, with content of the same kind."""
    name = Path(urlsplit(url).path).name
    if name.endswith(".zip"):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("image.webp", _image("WEBP"))
            archive.writestr("reference.webp", _image("WEBP"))
        return public.put(name, buffer.getvalue())
    return public.put(name, _image("WEBP" if name.endswith(".webp") else "PNG"))


def _localise(value: Any, public: StaticServer) -> Any:
    if isinstance(value, dict):
        return {key: _localise(item, public) for key, item in value.items()}
    if isinstance(value, str) and value.startswith("https://"):
        return _serve_locally(value, public)
    return value


def _inputs(case: dict[str, Any]) -> dict[str, Any]:
    body = case["body"]
    return dict(body.get("input") or body.get("inputs") or {k: v for k, v in body.items() if k != "model_name"})


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_our_request_models_accept_the_vendor_example(name: str) -> None:
    case = SEEDS[name]
    api = VENDORS[case["vendor"]]()
    api.validate(case["endpoint"], _inputs(case))  # raises InvalidInputError naming the field otherwise


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_the_sandbox_answers_the_vendor_example_as_documented(
    name: str, bgreplace_sandbox: Any, static_server: StaticServer
) -> None:
    case = SEEDS[name]
    vendor = case["vendor"]
    body = _localise(case["body"], static_server)
    client = VendorClient(
        VENDORS[vendor](stager=ImagePipelineUploadStager()), api_key="seed-key",
        base_url=bgreplace_sandbox.vendor_url(vendor),
    )

    def replay() -> Operation[dict[str, Any]]:
        answer = yield ApiRequest(case["method"], case["path"], json=body)
        return dict(answer.json())

    with client:
        accepted = client.run(replay())
        job_id = str(accepted[ID_FIELDS[vendor]])
        deadline = time.monotonic() + 20
        status = client.get_status(job_id, case["endpoint"])
        while not status.is_terminal and time.monotonic() < deadline:
            time.sleep(0.05)
            status = client.get_status(job_id, case["endpoint"])
        assert status.state is JobState.succeeded, status.describe_error()
        assert f'"{case["output_key"]}"' in json.dumps(status.raw)  # the documented output shape
        result = client.download(status.result_urls[0])
    with Image.open(io.BytesIO(result)) as image:
        assert image.width > 0 and image.height > 0
