"""FASHN background-change contract (shared/vendors/fashn.md, seed 002) without a server."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_bgreplace.vendors import VENDORS, assumptions
from airflow_bgreplace.vendors.errors import (
    AuthenticationError,
    CancelNotSupportedError,
    InvalidInputError,
    InvalidRequestError,
    NotFoundError,
    PaymentRequiredError,
    RateLimitError,
    SubmissionUncertainError,
    TransientError,
)
from airflow_bgreplace.vendors.fashn import MODEL_NAME, FashnApi
from airflow_bgreplace.vendors.retry import RetryPolicy
from airflow_bgreplace.vendors.status import JobState
from airflow_bgreplace.vendors.transport import run_with_retries

API = FashnApi()
PREDICTION_ID = "123a87r9-4129-4bb3-be18-9c9fb5bd7fc1-u1"  # the docs' example: not a valid UUID
INPUTS = {"image": "https://example.com/product.jpg", "prompt": "beach sunset"}
CDN_URL = f"https://cdn.staging.fashn.ai/{PREDICTION_ID}/output_0.png"


def rejected_field(inputs: dict[str, Any]) -> str:
    with pytest.raises(InvalidInputError) as caught:
        API.validate(MODEL_NAME, inputs)
    assert (caught.value.vendor, caught.value.endpoint) == ("fashn", MODEL_NAME)
    return caught.value.field


def test_fashn_is_registered_as_a_single_endpoint_vendor() -> None:
    assert VENDORS["fashn"] is FashnApi
    assert API.default_endpoint == MODEL_NAME
    assert API.endpoint(None).price_usd == assumptions.FASHN.price_usd[MODEL_NAME]


# --------------------------------------------------------------------------- input


def test_the_documented_defaults_are_filled_in() -> None:
    request = API.validate(None, INPUTS)
    assert request.model_dump() == {**INPUTS, "seed": 42, "output_format": "png", "return_base64": False}


@pytest.mark.parametrize("field", ["image", "prompt"])
def test_image_and_prompt_are_required(field: str) -> None:
    assert rejected_field({k: v for k, v in INPUTS.items() if k != field}) == field


def test_an_empty_prompt_is_rejected() -> None:
    assert rejected_field({**INPUTS, "prompt": ""}) == "prompt"


@given(seed=st.integers(0, 2**32 - 1))
def test_every_seed_in_the_documented_range_is_accepted(seed: int) -> None:
    assert API.validate(None, {**INPUTS, "seed": seed}).model_dump()["seed"] == seed


@given(seed=st.one_of(st.integers(max_value=-1), st.integers(min_value=2**32)))
def test_every_seed_outside_the_documented_range_is_rejected(seed: int) -> None:
    assert rejected_field({**INPUTS, "seed": seed}) == "seed"


@pytest.mark.parametrize("seed", [42.5, "forty-two", True, None])
def test_the_seed_must_be_an_integer(seed: object) -> None:
    assert rejected_field({**INPUTS, "seed": seed}) == "seed"


def test_a_templated_seed_string_is_sent_as_an_integer() -> None:
    assert next(API.submit(None, {**INPUTS, "seed": "7"})).json["inputs"]["seed"] == 7


@pytest.mark.parametrize("output_format", ["png", "jpeg"])
def test_both_documented_output_formats_are_accepted(output_format: str) -> None:
    assert API.validate(None, {**INPUTS, "output_format": output_format})


@given(output_format=st.text(max_size=8).filter(lambda value: value not in ("png", "jpeg")))
def test_any_other_output_format_is_rejected(output_format: str) -> None:
    assert rejected_field({**INPUTS, "output_format": output_format}) == "output_format"


def test_return_base64_must_be_a_boolean() -> None:
    assert API.validate(None, {**INPUTS, "return_base64": True})
    assert rejected_field({**INPUTS, "return_base64": "sometimes"}) == "return_base64"


@pytest.mark.parametrize("field", ["background_prompt", "disable_prompt_enhancement", "num_images", "resolution"])
def test_fields_of_other_schema_versions_are_refused(field: str) -> None:
    # fashn.md §4.1: the schema drifted; only the seed's fields are sent.
    assert rejected_field({**INPUTS, field: "x"}) == field


def test_a_base64_image_needs_the_data_image_prefix(png_bytes: bytes) -> None:
    payload = base64.b64encode(png_bytes).decode()
    assert API.validate(None, {**INPUTS, "image": f"data:image/png;base64,{payload}"})
    with pytest.raises(InvalidInputError, match=r"data:image/<format>;base64") as caught:
        API.validate(None, {**INPUTS, "image": f"data:application/octet-stream;base64,{payload}"})
    assert caught.value.field == "image"


# --------------------------------------------------------------------------- submit


def test_submit_sends_model_name_and_inputs_with_the_webhook_as_a_query_parameter(reply, finish) -> None:
    operation = API.submit(None, dict(INPUTS), "https://hooks.example/fashn?token=s3cret")
    request = next(operation)
    assert (request.method, request.url) == ("POST", "/v1/run")
    assert request.json == {
        "model_name": "background-change",
        "inputs": {**INPUTS, "seed": 42, "output_format": "png", "return_base64": False},
    }
    assert request.params == {"webhook_url": "https://hooks.example/fashn?token=s3cret"}
    assert request.is_submit

    job = finish(operation, reply(200, {"id": PREDICTION_ID, "error": None}))
    assert (job.vendor, job.endpoint, job.job_id) == ("fashn", MODEL_NAME, PREDICTION_ID)
    assert job.initial_state is JobState.queued
    assert job.fingerprint == request.fingerprint


def test_no_webhook_means_no_query_parameter() -> None:
    assert next(API.submit(None, dict(INPUTS))).params is None


@given(first=st.text(min_size=1, max_size=30), second=st.text(min_size=1, max_size=30))
def test_fingerprint_ignores_the_webhook_url(first: str, second: str) -> None:
    one = next(API.submit(None, dict(INPUTS), f"https://hooks.example/{first}"))
    two = next(API.submit(None, dict(INPUTS), f"https://hooks.example/{second}"))
    assert one.fingerprint == two.fingerprint == next(API.submit(None, dict(INPUTS))).fingerprint


def test_fingerprint_is_the_same_whether_a_default_is_spelled_out_or_not() -> None:
    spelled = next(API.submit(None, {**INPUTS, "seed": 42, "output_format": "png"}))
    assert spelled.fingerprint == next(API.submit(None, dict(INPUTS))).fingerprint
    assert next(API.submit(None, {**INPUTS, "seed": 7})).fingerprint != spelled.fingerprint


def test_local_images_are_sent_inline_with_the_data_image_prefix(tmp_path: Path, jpeg_bytes: bytes) -> None:
    path = tmp_path / "product.jpg"
    path.write_bytes(jpeg_bytes)
    request = next(API.submit(None, {**INPUTS, "image": path}))
    sent = request.json["inputs"]["image"]
    assert sent.startswith("data:image/jpeg;base64,")
    assert base64.b64decode(sent.split(",", 1)[1]) == jpeg_bytes


def test_local_bytes_that_are_no_image_are_refused() -> None:
    with pytest.raises(InvalidInputError) as caught:
        next(API.submit(None, {**INPUTS, "image": b"plain text, not a picture"}))
    assert caught.value.field == "image"


def test_a_submit_answer_with_an_error_and_no_id_is_a_rejection(reply) -> None:
    operation = API.submit(None, dict(INPUTS))
    next(operation)
    with pytest.raises(InvalidRequestError, match="model not available"):
        operation.send(reply(200, {"id": None, "error": "model not available"}))


def test_a_submit_answer_without_an_id_is_uncertain(reply) -> None:
    operation = API.submit(None, dict(INPUTS))
    next(operation)
    with pytest.raises(SubmissionUncertainError):
        operation.send(reply(200, {"error": None}))


@pytest.mark.parametrize(
    "body",
    [
        {"error": "InternalServerError", "message": "An unexpected error occurred"},
        None,  # a proxy's HTML page
    ],
)
def test_a_5xx_on_submit_is_never_resent(reply, body) -> None:
    # fashn.md §7.1 says API-level errors create no prediction, but a 5xx may also come after the
    # prediction was stored: we never risk paying twice, the caller gets what it needs to look.
    steps = run_with_retries(API.submit(None, dict(INPUTS)), API, RetryPolicy())
    next(steps)
    answer = reply(500, body) if body is not None else reply(502, content=b"<html>Bad gateway</html>")
    with pytest.raises(SubmissionUncertainError):
        steps.send(answer)


# --------------------------------------------------------------------------- status


@pytest.mark.parametrize(
    ("vendor_status", "state"),
    [
        ("starting", JobState.queued),
        ("in_queue", JobState.queued),
        ("processing", JobState.running),
        ("completed", JobState.succeeded),
        ("failed", JobState.failed),
        ("canceled", JobState.cancelled),
        ("time_out", JobState.failed),
        ("warming", JobState.running),
    ],
)
def test_every_documented_status_maps_to_the_common_state(vendor_status: str, state: JobState, reply, finish) -> None:
    operation = API.get_status(None, PREDICTION_ID)
    request = next(operation)
    assert (request.method, request.url) == ("GET", f"/v1/status/{PREDICTION_ID}")
    status = finish(operation, reply(200, {"id": PREDICTION_ID, "status": vendor_status, "output": None,
                                           "error": None}))
    assert status.state is state


def test_a_completed_prediction_gives_its_output_strings(reply, finish) -> None:
    body = {"id": PREDICTION_ID, "status": "completed", "output": [CDN_URL, "data:image/png;base64,iVBORw0KGgo="],
            "error": None}
    operation = API.get_status(None, PREDICTION_ID)
    next(operation)
    status = finish(operation, reply(200, body))
    assert status.state is JobState.succeeded
    assert status.result_urls == [CDN_URL, "data:image/png;base64,iVBORw0KGgo="]
    assert (status.error_code, status.retryable, status.cost_usd) == (None, None, None)
    assert status.raw == body


@pytest.mark.parametrize(
    ("name", "retryable"),
    [
        ("ImageLoadError", False),
        ("ContentModerationError", False),
        ("InputValidationError", False),
        ("ThirdPartyError", True),
        ("PipelineError", True),
        ("InternalServerError", True),
    ],
)
def test_a_failed_prediction_arrives_as_http_200_with_name_and_message(
    name: str, retryable: bool, reply, finish
) -> None:
    body = {"id": PREDICTION_ID, "status": "failed",
            "error": {"name": name, "message": "Error loading model image: Invalid URL format"}}
    operation = API.get_status(None, PREDICTION_ID)
    next(operation)
    status = finish(operation, reply(200, body))
    assert status.state is JobState.failed
    assert (status.error_code, status.error_message) == (name, "Error loading model image: Invalid URL format")
    assert status.retryable is retryable
    assert status.result_urls == []


def test_a_plain_string_error_is_tolerated(reply, finish) -> None:
    operation = API.get_status(None, PREDICTION_ID)
    next(operation)
    status = finish(operation, reply(200, {"id": PREDICTION_ID, "status": "failed", "error": "pipeline crashed"}))
    assert (status.state, status.error_code, status.error_message) == (JobState.failed, None, "pipeline crashed")
    assert status.retryable is None


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "name", "error_class"),
    [
        (400, "BadRequest", InvalidRequestError),
        (401, "UnauthorizedAccess", AuthenticationError),
        (404, "NotFound", NotFoundError),
        (429, "RateLimitExceeded", RateLimitError),
        (429, "ConcurrencyLimitExceeded", RateLimitError),
        (429, "OutOfCredits", PaymentRequiredError),
        (500, "InternalServerError", TransientError),
        (402, "PaymentRequired", PaymentRequiredError),  # third-party OpenAPI variant
    ],
)
def test_every_documented_api_error_maps_to_a_typed_error(status: int, name: str, error_class: type, reply) -> None:
    body = {"error": name, "message": "Unauthorized: Invalid token"}
    error = API.error_from_response(reply(status, body))
    assert type(error) is error_class
    assert (error.vendor, error.status_code, error.code, error.message) == (
        "fashn", status, name, "Unauthorized: Invalid token",
    )


def test_an_unknown_prediction_is_not_found(reply) -> None:
    error = API.error_from_response(reply(404, {"error": "NotFound", "message": "Prediction no longer tracked"}))
    assert isinstance(error, NotFoundError) and "no longer tracked" in str(error)


# --------------------------------------------------------------------------- cancel and auth


def test_there_is_no_cancel() -> None:
    assert FashnApi.supports_cancel is False
    with pytest.raises(CancelNotSupportedError, match=PREDICTION_ID):
        next(API.cancel(None, PREDICTION_ID))


def test_check_auth_reads_the_credit_balance(reply, finish) -> None:
    operation = API.check_auth()
    request = next(operation)
    assert (request.method, request.url) == ("GET", "/v1/credits")
    assert finish(operation, reply(200, {"credits": {"total": 10, "subscription": 0, "on_demand": 10}})) is None
    assert API.auth_headers("fa-key") == {"Authorization": "Bearer fa-key"}
