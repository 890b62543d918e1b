"""Runflow contract (shared/vendors/runflow.md, seeds 000/001) without a server."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_bgreplace.vendors import VENDORS, assumptions
from airflow_bgreplace.vendors.errors import (
    AuthenticationError,
    InvalidInputError,
    InvalidRequestError,
    NotFoundError,
    PaymentRequiredError,
    RateLimitError,
    StagingNotConfiguredError,
    SubmissionUncertainError,
    TransientError,
)
from airflow_bgreplace.vendors.inputs import ObjectStorageStager
from airflow_bgreplace.vendors.retry import RetryPolicy
from airflow_bgreplace.vendors.runflow import COLOR, REPLACE, RunflowApi
from airflow_bgreplace.vendors.status import JobState
from airflow_bgreplace.vendors.transport import Send, Sleep, run_with_retries

API = RunflowApi()

# Seed 000 / 001 example inputs, verbatim.
REPLACE_INPUT = {
    "prompt": "Replace the white area on Image 1 with Image 2 as the background. Keep the perfume bottle "
    "perfectly intact and match the soft window light from Image 2.",
    "zip_url": "https://public.runflow.io/images/models/runflow/background-replace/examples/"
    "01-perfume-bottle-marble-counter/inputs.zip",
    "file_image": "image.webp",
    "file_reference": "reference.webp",
}
COLOR_INPUT = {
    "color_red": 245,
    "image_url": "https://public.runflow.io/images/models/runflow/background-color/examples/1/before.webp",
    "color_blue": 200,
    "color_green": 220,
}
RUN_ID = "01970f3e-7c1a-7b2e-9a40-5d7c2e1f0a11"


def run_record(**fields: Any) -> dict[str, Any]:
    """A run record with the fields the API reference shows (runflow.md §3)."""
    record: dict[str, Any] = {
        "id": RUN_ID,
        "status_code": "queued",
        "input": REPLACE_INPUT,
        "output": {},
        "duration_ms": None,
        "cost": None,
        "nodes_total": 1,
        "nodes_completed": 0,
        "created_at": "2026-05-06T10:00:00.000+00:00",
        "started_at": None,
        "completed_at": None,
        "failure_code": None,
        "failure_message": None,
    }
    record.update(fields)
    return record


def rejected_field(endpoint: str, inputs: dict[str, Any]) -> str:
    with pytest.raises(InvalidInputError) as caught:
        API.validate(endpoint, inputs)
    assert caught.value.vendor == "runflow" and caught.value.endpoint == endpoint
    return caught.value.field


def test_runflow_is_registered_with_documented_prices() -> None:
    assert VENDORS["runflow"] is RunflowApi
    assert {name: spec.price_usd for name, spec in RunflowApi.endpoints.items()} == {REPLACE: 0.35, COLOR: 0.12}


# --------------------------------------------------------------------------- background-color input


def test_color_accepts_the_seed_example() -> None:
    request = API.validate(COLOR, COLOR_INPUT)
    assert request.model_dump() == COLOR_INPUT


@pytest.mark.parametrize("field", ["image_url", "color_red", "color_green", "color_blue"])
def test_color_requires_each_documented_field(field: str) -> None:
    inputs = {k: v for k, v in COLOR_INPUT.items() if k != field}
    assert rejected_field(COLOR, inputs) == field


@given(field=st.sampled_from(["color_red", "color_green", "color_blue"]), value=st.integers(0, 255))
def test_color_accepts_every_channel_value_in_range(field: str, value: int) -> None:
    assert getattr(API.validate(COLOR, {**COLOR_INPUT, field: value}), field) == value


@given(
    field=st.sampled_from(["color_red", "color_green", "color_blue"]),
    value=st.one_of(st.integers(max_value=-1), st.integers(min_value=256)),
)
def test_color_rejects_every_channel_value_out_of_range(field: str, value: int) -> None:
    assert rejected_field(COLOR, {**COLOR_INPUT, field: value}) == field


@pytest.mark.parametrize("value", [245.5, "red", True, None, [245]])
def test_color_channels_must_be_integers(value: object) -> None:
    assert rejected_field(COLOR, {**COLOR_INPUT, "color_green": value}) == "color_green"


def test_templated_numeric_strings_are_sent_as_integers() -> None:
    # An operator's Jinja template renders "245"; Runflow documents an integer.
    request = next(API.submit(COLOR, {**COLOR_INPUT, "color_red": "245", "color_green": 220.0}))
    assert request.json["input"] == COLOR_INPUT


def test_color_rejects_plain_http_image_url() -> None:
    with pytest.raises(InvalidInputError, match="https") as caught:
        API.validate(COLOR, {**COLOR_INPUT, "image_url": "http://public.runflow.io/before.webp"})
    assert caught.value.field == "image_url"


@given(host=st.from_regex(r"[a-z][a-z0-9]{0,20}\.(com|io|net)", fullmatch=True))
def test_color_rejects_http_on_any_public_host_and_accepts_https(host: str) -> None:
    assert rejected_field(COLOR, {**COLOR_INPUT, "image_url": f"http://{host}/a.png"}) == "image_url"
    assert API.validate(COLOR, {**COLOR_INPUT, "image_url": f"https://{host}/a.png"})


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/a.png", "http://localhost/a.png", "http://[::1]:9/a.png"])
def test_color_allows_http_on_loopback_for_the_sandbox(url: str) -> None:
    assert API.validate(COLOR, {**COLOR_INPUT, "image_url": url})


def test_color_shading_is_baked_in_not_an_input() -> None:
    assert rejected_field(COLOR, {**COLOR_INPUT, "shading_percent": 30}) == "shading_percent"


# --------------------------------------------------------------------------- background-replace input


def test_replace_accepts_the_seed_example() -> None:
    request = API.validate(REPLACE, REPLACE_INPUT)
    assert request.model_dump(exclude_none=True) == REPLACE_INPUT


def test_replace_prompt_is_optional() -> None:
    assert API.validate(REPLACE, {k: v for k, v in REPLACE_INPUT.items() if k != "prompt"})


@pytest.mark.parametrize("field", ["zip_url", "file_image", "file_reference"])
def test_replace_documented_form_needs_all_three_fields(field: str) -> None:
    inputs = {k: v for k, v in REPLACE_INPUT.items() if k != field}
    assert rejected_field(REPLACE, inputs) == field


def test_replace_accepts_the_convenience_form(png_bytes: bytes) -> None:
    assert API.validate(REPLACE, {"image": png_bytes, "reference": "https://x.example/r.jpg", "prompt": "marble"})


@pytest.mark.parametrize("field", ["image", "reference"])
def test_replace_convenience_form_needs_both_images(field: str, png_bytes: bytes) -> None:
    inputs = {"image": png_bytes, "reference": png_bytes}
    del inputs[field]
    assert rejected_field(REPLACE, inputs) == field


def test_replace_refuses_both_forms_and_names_the_fields(png_bytes: bytes) -> None:
    with pytest.raises(InvalidInputError, match="not both") as caught:
        API.validate(REPLACE, {**REPLACE_INPUT, "image": png_bytes})
    assert caught.value.field == "zip_url, file_image, file_reference, image"


def test_replace_without_any_image_names_the_documented_fields() -> None:
    with pytest.raises(InvalidInputError, match=r"image \+ reference") as caught:
        API.validate(REPLACE, {"prompt": "a beach"})
    assert caught.value.field == "zip_url, file_image, file_reference"


@pytest.mark.parametrize("endpoint", [None, "runflow/background-replace", "background-remove"])
def test_an_endpoint_must_be_named_because_runflow_has_two(endpoint: str | None) -> None:
    with pytest.raises(InvalidInputError) as caught:
        API.validate(endpoint, COLOR_INPUT)
    assert caught.value.field == "endpoint"


# --------------------------------------------------------------------------- submit


def test_submit_replace_sends_the_documented_body_with_a_client_ref(reply, finish) -> None:
    operation = API.submit(REPLACE, dict(REPLACE_INPUT), "https://your-server.com/webhook")
    request = next(operation)
    assert (request.method, request.url) == ("POST", "/v1/models/runflow/background-replace/runs")
    client_ref = request.json["client_ref"]
    assert request.json == {
        "input": REPLACE_INPUT,
        "client_ref": client_ref,
        "callback_url": "https://your-server.com/webhook",
    }
    assert client_ref == RunflowApi.client_ref(request.fingerprint) and len(client_ref) <= 255
    assert request.is_submit and request.submission_ref == {"client_ref": client_ref}

    job = finish(operation, reply(200, run_record(client_ref=client_ref)))
    assert (job.vendor, job.endpoint, job.job_id) == ("runflow", REPLACE, RUN_ID)
    assert job.initial_state is JobState.queued
    assert job.fingerprint == request.fingerprint
    assert job.submitted_at.isoformat() == "2026-05-06T10:00:00+00:00"


def test_submit_color_sends_the_input_unchanged_and_no_callback_when_not_asked(reply, finish) -> None:
    operation = API.submit(COLOR, dict(COLOR_INPUT))
    request = next(operation)
    assert request.url == "/v1/models/runflow/background-color/runs"
    assert request.json["input"] == COLOR_INPUT
    assert "callback_url" not in request.json
    job = finish(operation, reply(201, run_record(input=COLOR_INPUT, status_code="dispatching")))
    assert job.initial_state is JobState.queued


@given(first=st.text(min_size=1, max_size=30), second=st.text(min_size=1, max_size=30))
def test_fingerprint_and_client_ref_ignore_the_webhook_url(first: str, second: str) -> None:
    one = next(API.submit(COLOR, dict(COLOR_INPUT), f"https://hooks.example/{first}"))
    two = next(API.submit(COLOR, dict(COLOR_INPUT), f"https://hooks.example/{second}"))
    three = next(API.submit(COLOR, dict(COLOR_INPUT)))
    assert one.fingerprint == two.fingerprint == three.fingerprint
    assert one.json["client_ref"] == two.json["client_ref"] == three.json["client_ref"]


def test_fingerprint_changes_with_the_inputs() -> None:
    one = next(API.submit(COLOR, dict(COLOR_INPUT)))
    two = next(API.submit(COLOR, {**COLOR_INPUT, "color_red": 244}))
    assert one.fingerprint != two.fingerprint and one.json["client_ref"] != two.json["client_ref"]


def test_convenience_form_builds_and_stages_the_zip(tmp_path: Path, png_bytes: bytes, jpeg_bytes: bytes) -> None:
    reference = tmp_path / "scene.jpeg"
    reference.write_bytes(jpeg_bytes)
    staging = tmp_path / "staging"
    api = RunflowApi(stager=ObjectStorageStager(staging, "https://cdn.example/staging/"))

    request = next(api.submit(REPLACE, {"image": png_bytes, "reference": reference, "prompt": "marble"}))

    model_input = request.json["input"]
    assert model_input["file_image"] == "image.png"
    assert model_input["file_reference"] == "reference.jpg"
    assert model_input["prompt"] == "marble"
    assert model_input["zip_url"].startswith("https://cdn.example/staging/") and model_input["zip_url"].endswith(".zip")
    [staged] = staging.iterdir()
    assert model_input["zip_url"].endswith(staged.name)
    with zipfile.ZipFile(staged) as archive:
        assert sorted(archive.namelist()) == ["image.png", "reference.jpg"]
        assert archive.read("image.png") == png_bytes
        assert archive.read("reference.jpg") == jpeg_bytes


def test_convenience_form_fetches_url_images_without_the_api_key(
    tmp_path: Path, png_bytes: bytes, jpeg_bytes: bytes, reply
) -> None:
    api = RunflowApi(stager=ObjectStorageStager(tmp_path, "https://cdn.example/s"))
    operation = api.submit(REPLACE, {"image": png_bytes, "reference": "https://photos.example/scene?sig=secret"})

    fetch = next(operation)
    assert (fetch.method, fetch.url, fetch.authenticated, fetch.is_submit) == (
        "GET", "https://photos.example/scene?sig=secret", False, False,
    )
    assert fetch.max_bytes is not None
    submit = operation.send(reply(200, content=jpeg_bytes, headers={"Content-Type": "image/jpeg"}))
    assert submit.json["input"]["file_reference"] == "reference.jpg"
    with zipfile.ZipFile(next(tmp_path.iterdir())) as archive:
        assert archive.read("reference.jpg") == jpeg_bytes


def test_convenience_form_reports_an_unreachable_image_url(png_bytes: bytes, reply) -> None:
    operation = RunflowApi(stager=ObjectStorageStager(Path("/nonexistent"), "https://cdn.example")).submit(
        REPLACE, {"image": "https://photos.example/gone.png?sig=secret", "reference": png_bytes}
    )
    next(operation)
    with pytest.raises(InvalidInputError, match="HTTP 404") as caught:
        operation.send(reply(404, {"error": "not found"}))
    assert caught.value.field == "image"
    assert "secret" not in str(caught.value)


def test_convenience_form_rejects_bytes_that_are_no_image(tmp_path: Path, png_bytes: bytes) -> None:
    api = RunflowApi(stager=ObjectStorageStager(tmp_path, "https://cdn.example"))
    with pytest.raises(InvalidInputError) as caught:
        next(api.submit(REPLACE, {"image": png_bytes, "reference": b"just some text"}))
    assert caught.value.field == "reference"


def test_convenience_form_without_a_stager_says_what_to_configure(png_bytes: bytes) -> None:
    with pytest.raises(StagingNotConfiguredError, match="staging_path"):
        next(API.submit(REPLACE, {"image": png_bytes, "reference": png_bytes}))


def test_a_local_zip_is_checked_for_both_members_before_staging(tmp_path: Path, png_bytes: bytes) -> None:
    archive = tmp_path / "inputs.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("image.webp", png_bytes)
    api = RunflowApi(stager=ObjectStorageStager(tmp_path / "staging", "https://cdn.example"))
    inputs = {**REPLACE_INPUT, "zip_url": archive}
    with pytest.raises(InvalidInputError, match=r"reference\.webp") as caught:
        next(api.submit(REPLACE, inputs))
    assert caught.value.field == "file_reference"

    with zipfile.ZipFile(archive, "a") as zipped:
        zipped.writestr("reference.webp", png_bytes)
    request = next(api.submit(REPLACE, inputs))
    assert request.json["input"]["zip_url"].startswith("https://cdn.example/")


def test_a_local_color_image_is_staged_and_must_end_up_on_https(tmp_path: Path, png_bytes: bytes) -> None:
    staged = next(RunflowApi(stager=ObjectStorageStager(tmp_path, "https://cdn.example")).submit(
        COLOR, {**COLOR_INPUT, "image_url": png_bytes}
    ))
    assert staged.json["input"]["image_url"].startswith("https://cdn.example/")
    with pytest.raises(InvalidInputError, match="https") as caught:
        next(RunflowApi(stager=ObjectStorageStager(tmp_path, "http://cdn.example")).submit(
            COLOR, {**COLOR_INPUT, "image_url": png_bytes}
        ))
    assert caught.value.field == "image_url"


def test_a_submit_answer_without_an_id_is_uncertain_and_names_the_client_ref(reply) -> None:
    operation = API.submit(COLOR, dict(COLOR_INPUT))
    request = next(operation)
    with pytest.raises(SubmissionUncertainError) as caught:
        operation.send(reply(200, {"status_code": "queued"}))
    assert caught.value.submission_ref == {"client_ref": request.json["client_ref"]}


def test_a_5xx_on_submit_is_never_resent_and_says_how_to_find_the_run(reply) -> None:
    steps = run_with_retries(API.submit(COLOR, dict(COLOR_INPUT)), API, RetryPolicy())
    action = next(steps)
    assert isinstance(action, Send)
    with pytest.raises(SubmissionUncertainError) as caught:
        steps.send(reply(503, {"code": "MODEL_UNAVAILABLE", "message": "provider down", "errors": None}))
    assert caught.value.submission_ref == {"client_ref": action.request.json["client_ref"]}
    assert action.request.json["client_ref"] in str(caught.value)


def test_a_429_on_submit_is_retried(reply) -> None:
    steps = run_with_retries(API.submit(COLOR, dict(COLOR_INPUT)), API, RetryPolicy())
    next(steps)
    answer = reply(429, {"code": "RATE_LIMITED", "message": "Rate limit exceeded: 120/min", "errors": None},
                   headers={"Retry-After": "3"})
    assert steps.send(answer) == Sleep(3.0)


# --------------------------------------------------------------------------- status


@pytest.mark.parametrize(
    ("status_code", "state"),
    [
        ("queued", JobState.queued),
        ("dispatching", JobState.queued),
        ("running", JobState.running),
        ("succeeded", JobState.succeeded),
        ("partial_succeeded", JobState.succeeded),
        ("failed", JobState.failed),
        ("canceled", JobState.cancelled),
        ("cancelled", JobState.cancelled),
        ("warming_up", JobState.running),  # a state Runflow may add: keep polling
    ],
)
def test_every_documented_status_code_maps_to_the_common_state(
    status_code: str, state: JobState, reply, finish
) -> None:
    operation = API.get_status(REPLACE, RUN_ID)
    request = next(operation)
    assert (request.method, request.url) == ("GET", f"/v1/runs/{RUN_ID}")
    status = finish(operation, reply(200, run_record(status_code=status_code)))
    assert status.state is state
    assert status.is_terminal == state.is_terminal


def test_a_succeeded_replace_run_gives_image_urls_timings_and_cost(reply, finish) -> None:
    record = run_record(
        status_code="succeeded",
        output={"image_urls": ["https://assets.runflow.io/o/1.png?sig=a"]},
        duration_ms=102345,
        cost="0.35",
        nodes_total=4,
        nodes_completed=4,
        started_at="2026-05-06T10:00:02.000+00:00",
        completed_at="2026-05-06T10:01:42.000+00:00",
    )
    operation = API.get_status(REPLACE, RUN_ID)
    next(operation)
    status = finish(operation, reply(200, record))
    assert status.result_urls == ["https://assets.runflow.io/o/1.png?sig=a"]
    assert status.duration_s == pytest.approx(102.345)
    assert status.cost_usd == pytest.approx(0.35)
    assert status.progress == 100
    assert status.created_at is not None and status.created_at.isoformat() == "2026-05-06T10:00:00+00:00"
    assert status.started_at is not None and status.completed_at is not None
    assert status.error_code is None and status.retryable is None
    assert status.raw == record


def test_a_succeeded_color_run_gives_outputs_urls(reply, finish) -> None:
    output = {
        "outputs": [{"type": "image", "url": "https://assets.runflow.io/c.png", "content_type": "image/png"}],
        "seed": None, "timing": None, "nsfw_detected": None,
    }
    operation = API.get_status(COLOR, RUN_ID)
    next(operation)
    status = finish(operation, reply(200, run_record(status_code="succeeded", input=COLOR_INPUT, output=output)))
    assert (status.endpoint, status.result_urls) == (COLOR, ["https://assets.runflow.io/c.png"])


def test_the_endpoint_is_read_from_the_echoed_input_when_not_given(reply, finish) -> None:
    for model_input, endpoint in ((REPLACE_INPUT, REPLACE), (COLOR_INPUT, COLOR)):
        operation = API.get_status(None, RUN_ID)
        next(operation)
        assert finish(operation, reply(200, run_record(input=model_input))).endpoint == endpoint


def test_a_failed_run_carries_the_documented_failure_fields(reply, finish) -> None:
    # runflow.md §5 documented example: it says ``status``, not ``status_code``.
    body = {"id": RUN_ID, "status": "failed", "failure_code": "INPUT_VALIDATION_FAILED",
            "failure_stage": "preprocess", "failure_message": "image dimensions exceed 4096x4096"}
    operation = API.get_status(REPLACE, RUN_ID)
    next(operation)
    status = finish(operation, reply(200, body))
    assert status.state is JobState.failed
    assert (status.error_code, status.error_message) == ("INPUT_VALIDATION_FAILED", "image dimensions exceed 4096x4096")
    assert status.retryable is False
    assert status.result_urls == []


def test_a_failed_run_with_only_an_error_object_and_a_retryable_code(reply, finish) -> None:
    record = run_record(status_code="failed", error={"code": "MODEL_UNAVAILABLE", "message": "provider down"})
    operation = API.get_status(REPLACE, RUN_ID)
    next(operation)
    status = finish(operation, reply(200, record))
    assert (status.error_code, status.error_message, status.retryable) == ("MODEL_UNAVAILABLE", "provider down", True)
    assert "MODEL_UNAVAILABLE" in assumptions.RUNFLOW_RETRYABLE_FAILURE_CODES


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "code", "error_class"),
    [
        (400, None, InvalidRequestError),
        (401, "UNAUTHORIZED", AuthenticationError),
        (402, "INSUFFICIENT_CREDIT", PaymentRequiredError),
        (403, "PERMISSION_DENIED", AuthenticationError),
        (403, "EMAIL_NOT_VERIFIED", AuthenticationError),
        (403, "ORGANIZATION_MEMBERSHIP_REQUIRED", AuthenticationError),
        (404, "RUN_NOT_FOUND", NotFoundError),
        (409, None, InvalidRequestError),
        (422, None, InvalidRequestError),
        (429, "RATE_LIMITED", RateLimitError),
        (503, "MODEL_UNAVAILABLE", TransientError),
        (500, None, TransientError),
    ],
)
def test_every_documented_error_maps_to_a_typed_error(status: int, code: str | None, error_class: type, reply) -> None:
    body = {"code": code, "message": "Your account is not authorized to access this resource.", "errors": None}
    error = API.error_from_response(reply(status, body))
    assert type(error) is error_class
    assert (error.vendor, error.status_code, error.code) == ("runflow", status, code)
    assert error.message == body["message"]
    assert error.raw == body


def test_the_code_decides_even_on_an_unexpected_status(reply) -> None:
    error = API.error_from_response(reply(400, {"code": "INSUFFICIENT_CREDIT", "message": "top up", "errors": None}))
    assert isinstance(error, PaymentRequiredError)


def test_a_422_names_the_input_field_from_loc(reply) -> None:
    body = {
        "code": "VALIDATION_ERROR",
        "message": "Validation failed",
        "errors": [
            {"loc": ["body", "input", "color_red"], "msg": "Input should be less than or equal to 255",
             "type": "less_than_equal"},
            {"loc": ["body", "input", "color_blue"], "msg": "Field required", "type": "missing"},
        ],
    }
    error = API.error_from_response(reply(422, body))
    assert isinstance(error, InvalidRequestError)
    assert error.code == "VALIDATION_ERROR"
    assert error.message == "color_red: Input should be less than or equal to 255 (+1 more)"


def test_a_429_keeps_retry_after_when_an_older_deployment_sends_it(reply) -> None:
    error = API.error_from_response(reply(429, {"code": "RATE_LIMITED", "message": "Rate limit exceeded"},
                                          headers={"Retry-After": "7"}))
    assert isinstance(error, RateLimitError) and error.retry_after == 7.0


def test_a_non_json_gateway_error_is_transient(reply) -> None:
    error = API.error_from_response(reply(502, content=b"<html>Bad gateway</html>"))
    assert isinstance(error, TransientError) and error.code is None and "Bad gateway" in error.message


# --------------------------------------------------------------------------- cancel and auth


def test_cancel_calls_the_admin_endpoint(reply, finish) -> None:
    assert RunflowApi.supports_cancel is False  # no public cancel
    operation = API.cancel(REPLACE, RUN_ID)
    request = next(operation)
    assert (request.method, request.url) == ("POST", f"/v1/admin/runs/{RUN_ID}/cancellation")
    assert 3 <= len(request.json["reason"]) <= 500
    assert finish(operation, reply(201, run_record(status_code="canceled"))) is True


def test_cancel_of_an_ended_run_returns_false(reply, finish) -> None:
    operation = API.cancel(REPLACE, RUN_ID)
    next(operation)
    assert finish(operation, reply(200, run_record(status_code="succeeded"))) is False


def test_cancel_with_a_normal_key_is_an_authentication_error_that_explains_why(reply) -> None:
    operation = API.cancel(REPLACE, RUN_ID)
    next(operation)
    denied = {"code": "PERMISSION_DENIED", "message": "Your account is not authorized to access this resource.",
              "errors": None}
    with pytest.raises(AuthenticationError, match="admin-only") as caught:
        operation.send(reply(403, denied))
    assert (caught.value.code, caught.value.status_code) == ("PERMISSION_DENIED", 403)
    assert RUN_ID in str(caught.value)


def test_check_auth_reads_auth_me(reply, finish) -> None:
    operation = API.check_auth()
    request = next(operation)
    assert (request.method, request.url, request.authenticated) == ("GET", "/v1/auth/me", True)
    assert finish(operation, reply(200, {"id": "user"})) is None
    assert API.auth_headers("rf_live_abc") == {"Authorization": "Bearer rf_live_abc"}

