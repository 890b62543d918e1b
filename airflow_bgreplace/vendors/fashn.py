"""FASHN AI ``background-change`` (contract: ``shared/vendors/fashn.md``, seed 002).

One universal submit (``POST /v1/run`` with ``{model_name, inputs}``, webhook as the
``?webhook_url=`` query parameter) and one status read (``GET /v1/status/{id}``). Failures come
back as HTTP 200 with ``status: failed`` (fashn.md §5), and API-level errors never create a
prediction (fashn.md §7.1), which makes a 500 on submit safe to resend. There is no cancel.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import quote

import httpx
from pydantic import AfterValidator, Field

from airflow_bgreplace.vendors import assumptions
from airflow_bgreplace.vendors.base import (
    Endpoint,
    ImageInput,
    IntInput,
    RequestModel,
    VendorApi,
    error_json,
    now_utc,
    plain_error_message,
)
from airflow_bgreplace.vendors.errors import (
    AuthenticationError,
    InvalidInputError,
    InvalidRequestError,
    NotFoundError,
    PaymentRequiredError,
    RateLimitError,
    TransientError,
    VendorError,
)
from airflow_bgreplace.vendors.inputs import is_data_uri, is_remote_url
from airflow_bgreplace.vendors.status import JobState, JobStatus, SubmittedJob, map_state
from airflow_bgreplace.vendors.transport import ApiRequest, Operation
from airflow_bgreplace.vendors.webhooks import required_text

DEFAULT_BASE_URL = "https://api.fashn.ai"
MODEL_NAME = "background-change"

#: fashn.md §4.1: base64 inputs must carry this prefix.
_IMAGE_DATA_URI = re.compile(r"^data:image/[A-Za-z0-9.+-]+;base64,")


def _require_image_data_uri(value: Any) -> Any:
    if is_data_uri(value) and not _IMAGE_DATA_URI.match(value):
        raise ValueError("FASHN needs base64 images as data:image/<format>;base64,<data>")
    return value


class FashnBackgroundChangeRequest(RequestModel):
    """Input of ``background-change`` exactly as seed 002 documents it.

    Documented defaults are written out, so the request sent (and its fingerprint) is the same
    whether or not the caller spelled them. The schema is "experimental" and has changed several
    times (fashn.md §4.1): only the seed fields are accepted.
    """

    image: Annotated[ImageInput, AfterValidator(_require_image_data_uri)] = Field(
        description="Image holding the subject: URL, data URI, path or bytes (sent inline as base64)."
    )
    prompt: str = Field(min_length=1, description="Description of the new background.")
    seed: IntInput = Field(default=42, ge=0, le=2**32 - 1)
    output_format: Literal["png", "jpeg"] = "png"
    return_base64: bool = False


_STATES = {
    "starting": JobState.queued,
    "in_queue": JobState.queued,
    "processing": JobState.running,
    "completed": JobState.succeeded,
    "failed": JobState.failed,
    "canceled": JobState.cancelled,  # in the SDK's type only; no server trigger is documented
    "time_out": JobState.failed,  # produced by the SDK client-side; terminal if it ever appears
}


class FashnApi(VendorApi):
    vendor: ClassVar[str] = "fashn"
    display_name: ClassVar[str] = "FASHN"
    default_base_url: ClassVar[str] = DEFAULT_BASE_URL
    supports_cancel: ClassVar[bool] = False
    accepts_data_uris: ClassVar[bool] = True
    endpoints: ClassVar[dict[str, Endpoint]] = {
        MODEL_NAME: Endpoint(
            name=MODEL_NAME,
            request_model=FashnBackgroundChangeRequest,
            price_usd=assumptions.FASHN.price_usd[MODEL_NAME],
            image_fields=("image",),
        )
    }
    #: API-level error names (fashn.md §7.1); 429 ``OutOfCredits`` is a payment problem, not a rate.
    error_classes: ClassVar[dict[str, type[VendorError]]] = {
        "BadRequest": InvalidRequestError,
        "UnauthorizedAccess": AuthenticationError,
        "NotFound": NotFoundError,
        "RateLimitExceeded": RateLimitError,
        "ConcurrencyLimitExceeded": RateLimitError,
        "OutOfCredits": PaymentRequiredError,
        "InternalServerError": TransientError,
    }

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    def submit(
        self, endpoint: str | None, inputs: dict[str, Any], webhook_url: str | None = None
    ) -> Operation[SubmittedJob]:
        request = self.validate(endpoint, inputs)
        fingerprint = self.fingerprint(MODEL_NAME, request)
        model_inputs = request.model_dump()
        image = yield from self.resolve_image(MODEL_NAME, "image", model_inputs["image"])
        if not (is_remote_url(image) or _IMAGE_DATA_URI.match(image)):
            raise InvalidInputError(self.vendor, MODEL_NAME, "image", "not a PNG, JPEG, WebP or GIF image")
        model_inputs["image"] = image
        submit = ApiRequest(
            "POST",
            "/v1/run",
            json={"model_name": MODEL_NAME, "inputs": model_inputs},
            params={"webhook_url": webhook_url} if webhook_url else None,
            is_submit=True,
            fingerprint=fingerprint,
        )
        answer = yield submit
        data = answer.json()
        if isinstance(data, dict) and data.get("error") and not data.get("id"):
            # ``{"id": null, "error": "..."}``: refused without a prediction (fashn.md §3).
            raise InvalidRequestError(self.vendor, str(data["error"]), status_code=answer.status_code, raw=data)
        job_id, data = self.accepted_job(submit, answer, "id")
        return SubmittedJob(
            vendor=self.vendor,
            endpoint=MODEL_NAME,
            job_id=job_id,
            fingerprint=fingerprint,
            submitted_at=now_utc(),
            raw=data,
        )

    def get_status(self, endpoint: str | None, job_id: str) -> Operation[JobStatus]:
        answer = yield ApiRequest("GET", f"/v1/status/{quote(job_id, safe='')}")
        return self._parse_status(job_id, self.read_object(answer))

    def webhook_status(self, data: dict[str, Any]) -> JobStatus:
        """The webhook is the terminal status body itself (fashn.md §10)."""
        required_text(self.vendor, data, "status")
        return self._parse_status(required_text(self.vendor, data, "id"), data)

    def _parse_status(self, job_id: str, data: dict[str, Any]) -> JobStatus:
        state = map_state(_STATES, data.get("status"))
        error_code, error_message = _runtime_error(data.get("error"))
        failed = state is JobState.failed
        return JobStatus(
            vendor=self.vendor,
            endpoint=MODEL_NAME,
            job_id=str(data.get("id") or job_id),
            state=state,
            # Strings: CDN URLs, or data URIs with return_base64 (fashn.md §5).
            result_urls=[str(url) for url in data.get("output") or [] if url] if state is JobState.succeeded else [],
            error_code=error_code,
            error_message=error_message,
            retryable=(error_code in assumptions.FASHN_RETRYABLE_ERROR_NAMES) if failed and error_code else None,
            raw=data,
        )

    def check_auth(self) -> Operation[None]:
        yield ApiRequest("GET", "/v1/credits")

    def parse_error_body(self, response: httpx.Response) -> tuple[str | None, str]:
        """FASHN's API-level body ``{"error": "<Name>", "message": "<text>"}`` (fashn.md §7.1)."""
        body = error_json(response)
        if not isinstance(body, dict):
            return None, plain_error_message(response)
        name = body.get("error")
        code = name if isinstance(name, str) else None
        return code, str(body.get("message") or name or body)[:300]


def _runtime_error(error: Any) -> tuple[str | None, str | None]:
    """``{name, message}`` per the docs and SDK; a plain string per a third-party OpenAPI (fashn.md §5)."""
    if isinstance(error, dict):
        return error.get("name"), error.get("message")
    if error:
        return None, str(error)
    return None, None
