"""ImagePipeline background change / remove contract (shared/vendors/imagepipeline.md, seed 004) without a server."""

from __future__ import annotations

import math
import re
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
    StagingNotConfiguredError,
    SubmissionUncertainError,
    TransientError,
)
from airflow_bgreplace.vendors.imagepipeline import CHANGE, REMOVE, ImagePipelineApi
from airflow_bgreplace.vendors.inputs import ImagePipelineUploadStager, ObjectStorageStager
from airflow_bgreplace.vendors.status import JobState

API = ImagePipelineApi()

# Seed 004 example requests and answers, verbatim.
CHANGE_INPUT = {"input_image": "https://example.com/product.webp", "prompt": "on a sunlit marble kitchen counter",
                "output_format": "webp"}
REMOVE_INPUT = {"input_image": "https://example.com/product.webp", "recolor": "#F0F0F0", "drop_shadow": True}
CHANGE_DONE = {"job_id": "job_2a6d9f81", "status": "completed", "result_url": "https://cdn.imagepipeline.io/o/2a6d9f81.webp",
               "processing_time_seconds": 31.5, "balance_remaining_usd": 187.52}
REMOVE_DONE = {"job_id": "job_e3b0f72c", "status": "completed", "result_url": "https://cdn.imagepipeline.io/o/e3b0f72c.webp",
               "processing_time_seconds": 12.8, "balance_remaining_usd": 187.52}
QUEUED = {"job_id": "job_a1b2c3", "status": "queued", "endpoint": "/background/change/image/v1",
          "estimated_time_seconds": 8, "queued_at": "2026-05-30T12:00:00Z"}
FRACTIONS = ["shadow_opacity", "shadow_blur", "shadow_dy", "shadow_dx"]


def rejected_field(endpoint: str, inputs: dict[str, Any]) -> str:
    with pytest.raises(InvalidInputError) as caught:
        API.validate(endpoint, inputs)
    assert (caught.value.vendor, caught.value.endpoint) == ("imagepipeline", endpoint)
    return caught.value.field


def test_imagepipeline_is_registered_with_both_operations() -> None:
    assert VENDORS["imagepipeline"] is ImagePipelineApi
    assert set(ImagePipelineApi.endpoints) == {CHANGE, REMOVE} == set(assumptions.IMAGEPIPELINE.price_usd)


def test_the_default_stager_is_imagepipelines_own_upload() -> None:
    assert isinstance(ImagePipelineApi().stager, ImagePipelineUploadStager)
    other = ObjectStorageStager(object(), "https://cdn.example")
    assert ImagePipelineApi(stager=other).stager is other


def test_an_explicit_none_stager_turns_the_upload_off(png_bytes: bytes) -> None:
    api = ImagePipelineApi(stager=None)
    assert api.stager is None
    with pytest.raises(StagingNotConfiguredError, match="input_image"):
        next(api.submit(CHANGE, {**CHANGE_INPUT, "input_image": png_bytes}))


# --------------------------------------------------------------------------- change input


def test_change_accepts_the_seed_example_and_fills_the_documented_defaults() -> None:
    request = API.validate(CHANGE, CHANGE_INPUT)
    assert request.model_dump(exclude_none=True) == {**CHANGE_INPUT, "use_segmentation": True, "seed": -1}


@pytest.mark.parametrize("field", ["input_image", "prompt"])
def test_change_requires_image_and_prompt(field: str) -> None:
    assert rejected_field(CHANGE, {k: v for k, v in CHANGE_INPUT.items() if k != field}) == field


def test_change_accepts_every_documented_optional_field() -> None:
    assert API.validate(CHANGE, {**CHANGE_INPUT, "use_segmentation": False, "subject_description": "glass bottle",
                                 "tone_correction": 0.5, "has_text": True, "seed": 1234})


@given(value=st.floats(0.0, 1.0))
def test_any_tone_correction_between_0_and_1_is_accepted(value: float) -> None:
    assert API.validate(CHANGE, {**CHANGE_INPUT, "tone_correction": value}).model_dump()["tone_correction"] == value


@given(value=st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1 + 1e-9), st.just(math.nan)))
def test_any_tone_correction_outside_0_to_1_is_rejected(value: float) -> None:
    assert rejected_field(CHANGE, {**CHANGE_INPUT, "tone_correction": value}) == "tone_correction"


@given(seed=st.integers(min_value=-1))
def test_seed_minus_one_or_any_non_negative_integer_is_accepted(seed: int) -> None:
    assert API.validate(CHANGE, {**CHANGE_INPUT, "seed": seed}).model_dump()["seed"] == seed


@given(seed=st.integers(max_value=-2))
def test_any_seed_below_minus_one_is_rejected(seed: int) -> None:
    assert rejected_field(CHANGE, {**CHANGE_INPUT, "seed": seed}) == "seed"


@pytest.mark.parametrize(("endpoint", "inputs"), [(CHANGE, CHANGE_INPUT), (REMOVE, REMOVE_INPUT)])
@pytest.mark.parametrize("output_format", ["webp", "jpeg", "png"])
def test_every_documented_output_format_is_accepted(endpoint: str, inputs: dict[str, Any], output_format: str) -> None:
    assert API.validate(endpoint, {**inputs, "output_format": output_format})


@given(
    endpoint=st.sampled_from([CHANGE, REMOVE]),
    output_format=st.text(max_size=6).filter(lambda value: value not in ("webp", "jpeg", "png")),
)
def test_any_other_output_format_is_rejected(endpoint: str, output_format: str) -> None:
    inputs = CHANGE_INPUT if endpoint == CHANGE else REMOVE_INPUT
    assert rejected_field(endpoint, {**inputs, "output_format": output_format}) == "output_format"


@pytest.mark.parametrize("field", ["palette", "num_inference_steps", "harmonize_strength", "callback_url"])
def test_fields_outside_the_documented_table_are_refused(field: str) -> None:
    # SDK-only extras are not documented; callback_url is the webhook_url argument, not an input.
    assert rejected_field(CHANGE, {**CHANGE_INPUT, field: "x"}) == field


# --------------------------------------------------------------------------- remove input


def test_remove_accepts_the_seed_example_and_fills_the_documented_defaults() -> None:
    request = API.validate(REMOVE, REMOVE_INPUT)
    assert request.model_dump(exclude_none=True) == {
        **REMOVE_INPUT, "shadow_opacity": 0.38, "shadow_blur": 0.018, "shadow_dy": 0.022, "shadow_dx": 0.004,
        "output_format": "webp",
    }


def test_remove_without_recolor_is_a_transparent_cutout() -> None:
    assert API.validate(REMOVE, {"input_image": "https://example.com/a.png"}).model_dump()["recolor"] is None


@given(colour=st.from_regex(r"#?[0-9A-Fa-f]{6}", fullmatch=True))
def test_any_hex_colour_with_or_without_hash_is_accepted_and_sent_as_hash_rrggbb(colour: str) -> None:
    sent = API.validate(REMOVE, {**REMOVE_INPUT, "recolor": colour}).model_dump()["recolor"]
    assert sent == "#" + colour.lstrip("#").upper()


@given(colour=st.text(max_size=9).filter(lambda value: not re.fullmatch(r"#?[0-9A-Fa-f]{6}", value)))
def test_any_other_recolor_string_is_rejected(colour: str) -> None:
    assert rejected_field(REMOVE, {**REMOVE_INPUT, "recolor": colour}) == "recolor"


@given(field=st.sampled_from(FRACTIONS), value=st.floats(0.0, 1.0))
def test_any_shadow_fraction_between_0_and_1_is_accepted(field: str, value: float) -> None:
    assert API.validate(REMOVE, {**REMOVE_INPUT, field: value}).model_dump()[field] == value


@given(
    field=st.sampled_from(FRACTIONS),
    value=st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1 + 1e-9), st.just(math.inf)),
)
def test_any_shadow_fraction_outside_0_to_1_is_rejected(field: str, value: float) -> None:
    assert rejected_field(REMOVE, {**REMOVE_INPUT, field: value}) == field


@pytest.mark.parametrize("field", FRACTIONS)
def test_fractions_refuse_booleans_and_accept_numeric_strings(field: str) -> None:
    assert rejected_field(REMOVE, {**REMOVE_INPUT, field: True}) == field
    assert API.validate(REMOVE, {**REMOVE_INPUT, field: "0.5"}).model_dump()[field] == 0.5


def test_drop_shadow_requires_recolor() -> None:
    with pytest.raises(InvalidInputError, match="needs recolor") as caught:
        API.validate(REMOVE, {"input_image": "https://example.com/a.png", "drop_shadow": True})
    assert caught.value.field == "drop_shadow"
    assert API.validate(REMOVE, {"input_image": "https://example.com/a.png", "drop_shadow": False})


def test_a_bad_recolor_with_drop_shadow_blames_recolor() -> None:
    assert rejected_field(REMOVE, {**REMOVE_INPUT, "recolor": "white"}) == "recolor"


@pytest.mark.parametrize("value", ["maybe", 2, None])
def test_drop_shadow_must_be_a_boolean(value: object) -> None:
    assert rejected_field(REMOVE, {**REMOVE_INPUT, "drop_shadow": value}) == "drop_shadow"


# --------------------------------------------------------------------------- submit


@pytest.mark.parametrize(
    ("endpoint", "inputs", "path"),
    [(CHANGE, CHANGE_INPUT, "/background/change/image/v1"), (REMOVE, REMOVE_INPUT, "/background/remove/image/v1")],
)
def test_submit_posts_the_flat_body_with_callback_url(
    endpoint: str, inputs: dict[str, Any], path: str, reply, finish
) -> None:
    operation = API.submit(endpoint, dict(inputs), "https://hooks.example/ip?token=s3cret")
    request = next(operation)
    assert (request.method, request.url, request.params) == ("POST", path, None)
    assert request.json == {
        **API.validate(endpoint, inputs).model_dump(exclude_none=True),
        "callback_url": "https://hooks.example/ip?token=s3cret",
    }
    assert request.json["output_format"] == inputs.get("output_format", "webp")  # always explicit
    assert request.is_submit

    job = finish(operation, reply(200, {**QUEUED, "endpoint": path}))
    assert (job.vendor, job.endpoint, job.job_id, job.initial_state) == (
        "imagepipeline", endpoint, "job_a1b2c3", JobState.queued,
    )
    assert job.submitted_at.isoformat() == "2026-05-30T12:00:00+00:00"


def test_submit_without_webhook_sends_no_callback_url() -> None:
    assert "callback_url" not in next(API.submit(CHANGE, dict(CHANGE_INPUT))).json


@given(first=st.text(min_size=1, max_size=30), second=st.text(min_size=1, max_size=30))
def test_fingerprint_ignores_the_webhook_url(first: str, second: str) -> None:
    one = next(API.submit(REMOVE, dict(REMOVE_INPUT), f"https://hooks.example/{first}"))
    two = next(API.submit(REMOVE, dict(REMOVE_INPUT), f"https://hooks.example/{second}"))
    assert one.fingerprint == two.fingerprint == next(API.submit(REMOVE, dict(REMOVE_INPUT))).fingerprint


def test_the_fingerprint_tells_the_two_operations_apart() -> None:
    inputs = {"input_image": "https://example.com/a.png", "output_format": "png"}
    change = next(API.submit(CHANGE, {**inputs, "prompt": "beach"}))
    remove = next(API.submit(REMOVE, dict(inputs)))
    assert change.fingerprint != remove.fingerprint


def test_a_local_image_is_uploaded_through_imagepipeline_first(png_bytes: bytes, reply) -> None:
    operation = API.submit(CHANGE, {**CHANGE_INPUT, "input_image": png_bytes})
    upload = next(operation)
    assert (upload.method, upload.url, upload.authenticated, upload.is_submit) == (
        "POST", "/upload/image/v1", True, False,
    )
    assert upload.files is not None
    filename, data, content_type = upload.files["file"]
    assert (data, content_type) == (png_bytes, "image/png") and filename.endswith(".png")
    submit = operation.send(reply(200, {"url": "https://cdn.imagepipeline.io/u/abc.png", "filename": filename,
                                        "content_type": "image/png", "size_bytes": len(png_bytes)}))
    assert submit.json["input_image"] == "https://cdn.imagepipeline.io/u/abc.png"


def test_a_submit_answer_without_a_job_id_is_uncertain(reply) -> None:
    operation = API.submit(CHANGE, dict(CHANGE_INPUT))
    next(operation)
    with pytest.raises(SubmissionUncertainError):
        operation.send(reply(200, {"status": "queued"}))


# --------------------------------------------------------------------------- status


@pytest.mark.parametrize(
    ("vendor_status", "state"),
    [
        ("queued", JobState.queued),
        ("pending", JobState.queued),
        ("processing", JobState.running),
        ("completed", JobState.succeeded),
        ("failed", JobState.failed),
        ("cancelled", JobState.cancelled),
        ("warming", JobState.running),
    ],
)
def test_every_documented_status_maps_to_the_common_state(vendor_status: str, state: JobState, reply, finish) -> None:
    operation = API.get_status(REMOVE, "job_e3b0f72c")
    request = next(operation)
    assert (request.method, request.url) == ("GET", "/background/remove/image/v1/status/job_e3b0f72c")
    status = finish(operation, reply(200, {"job_id": "job_e3b0f72c", "status": vendor_status, "progress": 40}))
    assert status.state is state


def test_polling_needs_the_endpoint() -> None:
    with pytest.raises(InvalidInputError) as caught:
        next(API.get_status(None, "job_2a6d9f81"))
    assert caught.value.field == "endpoint"


@pytest.mark.parametrize(("endpoint", "body", "duration"), [(CHANGE, CHANGE_DONE, 31.5), (REMOVE, REMOVE_DONE, 12.8)])
def test_the_seed_completed_examples(endpoint: str, body: dict[str, Any], duration: float, reply, finish) -> None:
    operation = API.get_status(endpoint, body["job_id"])
    next(operation)
    status = finish(operation, reply(200, body))
    assert (status.state, status.endpoint, status.job_id) == (JobState.succeeded, endpoint, body["job_id"])
    assert status.result_urls == [body["result_url"]]
    assert status.duration_s == duration
    assert status.raw == body


def test_the_jobs_page_example_gives_progress_duration_and_cost(reply, finish) -> None:
    body = {"job_id": "job_a1b2c3", "status": "completed", "progress": 100,
            "result_url": "https://cdn.imagepipeline.io/signed", "result_mime_type": "image/webp",
            "queue_wait_seconds": 1.1, "inference_time_seconds": 6.2, "total_elapsed_seconds": 7.3,
            "credits_charged": True, "credits_amount": 1, "cost_usd": 0.02, "queue_position": 0}
    operation = API.get_status(CHANGE, "job_a1b2c3")
    next(operation)
    status = finish(operation, reply(200, body))
    assert (status.progress, status.duration_s, status.cost_usd, status.queue_position) == (100, 6.2, 0.02, 0)


def test_a_remove_without_result_url_falls_back_to_the_cutout(reply, finish) -> None:
    body = {"job_id": "job_e3b0f72c", "status": "completed", "cutout_url": "https://cdn.imagepipeline.io/o/cut.png"}
    operation = API.get_status(REMOVE, "job_e3b0f72c")
    next(operation)
    assert finish(operation, reply(200, body)).result_urls == ["https://cdn.imagepipeline.io/o/cut.png"]


def test_a_failed_job_arrives_as_http_200_with_code_message_and_retryable(reply, finish) -> None:
    body = {"job_id": "job_a1b2c3", "status": "failed", "error": "Prompt rejected by content policy.",
            "failure_reason_code": "INPUT_INVALID", "retryable": False}
    operation = API.get_status(CHANGE, "job_a1b2c3")
    next(operation)
    status = finish(operation, reply(200, body))
    assert status.state is JobState.failed
    assert (status.error_code, status.error_message, status.retryable) == (
        "INPUT_INVALID", "Prompt rejected by content policy.", False,
    )
    assert status.result_urls == []


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        ("RATE_LIMIT_EXCEEDED", True),
        ("CONCURRENT_JOBS_EXCEEDED", True),
        ("INSUFFICIENT_CREDITS", False),
        ("CREDIT_CHARGE_FAILED", False),
        ("INPUT_INVALID", False),
        ("MODEL_ERROR", True),
        ("MODEL_UNAVAILABLE", True),
        ("STORAGE_ERROR", True),
        ("TIMEOUT", True),
        ("INTERNAL_ERROR", True),
        ("SOMETHING_NEW", None),
    ],
)
def test_the_documented_retryable_table_applies_when_the_flag_is_missing(
    code: str, retryable: bool | None, reply, finish
) -> None:
    operation = API.get_status(CHANGE, "job_a1b2c3")
    next(operation)
    status = finish(operation, reply(200, {"job_id": "job_a1b2c3", "status": "failed", "failure_reason_code": code,
                                           "error": "failed"}))
    assert (status.error_code, status.retryable) == (code, retryable)


def test_the_vendors_own_retryable_flag_wins(reply, finish) -> None:
    operation = API.get_status(CHANGE, "job_a1b2c3")
    next(operation)
    status = finish(operation, reply(200, {"job_id": "job_a1b2c3", "status": "failed",
                                           "failure_reason_code": "MODEL_ERROR", "retryable": False}))
    assert status.retryable is False


def test_a_failure_coded_cancelled_is_a_cancelled_job(reply, finish) -> None:
    operation = API.get_status(CHANGE, "job_a1b2c3")
    next(operation)
    status = finish(operation, reply(200, {"job_id": "job_a1b2c3", "status": "failed",
                                           "failure_reason_code": "CANCELLED", "error": "job was cancelled"}))
    assert (status.state, status.retryable) == (JobState.cancelled, None)


# --------------------------------------------------------------------------- errors


def test_a_422_fastapi_validation_error_names_the_field(reply) -> None:
    body = {"detail": [{"loc": ["body", "prompt"], "msg": "field required", "type": "value_error.missing"}]}
    error = API.error_from_response(reply(422, body))
    assert type(error) is InvalidRequestError
    assert (error.code, error.message) == ("value_error.missing", "prompt: field required")


@pytest.mark.parametrize(
    ("status", "code", "error_class"),
    [
        (400, "INVALID_PARAMETERS", InvalidRequestError),
        (401, "UNAUTHORIZED", AuthenticationError),
        (401, None, AuthenticationError),
        (402, "INSUFFICIENT_BALANCE", PaymentRequiredError),
        (403, "INSUFFICIENT_BALANCE", PaymentRequiredError),
        (404, "NOT_FOUND", NotFoundError),
        (429, "RATE_LIMIT_EXCEEDED", RateLimitError),
        (429, "CONCURRENT_JOBS_EXCEEDED", RateLimitError),
        (500, "INTERNAL_ERROR", TransientError),
    ],
)
def test_every_documented_error_maps_to_a_typed_error(status: int, code: str | None, error_class: type, reply) -> None:
    body = {"error": "Invalid or missing API key.", "error_code": code, "message": "Invalid or missing API key."}
    error = API.error_from_response(reply(status, body))
    assert type(error) is error_class
    assert (error.vendor, error.status_code, error.code, error.message) == (
        "imagepipeline", status, code, "Invalid or missing API key.",
    )


def test_a_429_carries_retry_after(reply) -> None:
    error = API.error_from_response(reply(429, {"error": "slow down", "error_code": "RATE_LIMIT_EXCEEDED"},
                                          headers={"Retry-After": "12"}))
    assert isinstance(error, RateLimitError)
    assert (error.retry_after, error.message) == (12.0, "slow down")


def test_the_legacy_detail_string_is_the_message(reply) -> None:
    error = API.error_from_response(reply(404, {"detail": "Job not found"}))
    assert isinstance(error, NotFoundError)
    assert (error.code, error.message) == (None, "Job not found")


# --------------------------------------------------------------------------- cancel and auth


def test_there_is_no_cancel() -> None:
    assert ImagePipelineApi.supports_cancel is False
    with pytest.raises(CancelNotSupportedError, match="job_a1b2c3"):
        next(API.cancel(CHANGE, "job_a1b2c3"))


def test_check_auth_reads_the_user_details(reply, finish) -> None:
    operation = API.check_auth()
    request = next(operation)
    assert (request.method, request.url) == ("GET", "/v1/user/details")
    assert finish(operation, reply(200, {"plan": "pro", "balance_usd": 187.52})) is None
    assert API.auth_headers("ip_live_x") == {"X-API-Key": "ip_live_x"}
