"""fal.ai queue API for ``bria/replace-background`` (contract: ``shared/vendors/fal.md``).

fal has no failed or cancelled state: a failed request is ``COMPLETED`` with ``error`` /
``error_type`` in its status, or a result GET that answers an error (fal.md §5-6).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from pydantic import Field

from airflow_bgreplace.vendors import assumptions
from airflow_bgreplace.vendors.base import (
    Endpoint,
    ImageInput,
    RequestModel,
    VendorApi,
    describe_validation_errors,
    error_json,
    now_utc,
    plain_error_message,
)
from airflow_bgreplace.vendors.errors import (
    InvalidWebhookSignatureError,
    MalformedWebhookError,
    NotFoundError,
    PaymentRequiredError,
    VendorError,
)
from airflow_bgreplace.vendors.status import JobState, JobStatus, SubmittedJob, map_state
from airflow_bgreplace.vendors.transport import ApiRequest, Operation
from airflow_bgreplace.vendors.webhooks import (
    WebhookCredentials,
    WebhookDelivery,
    check_timestamp,
    required_text,
    verify_ed25519,
)

DEFAULT_QUEUE_URL = "https://queue.fal.run"
DEFAULT_REST_URL = "https://rest.fal.ai"
MODEL_ID = "bria/replace-background"

#: Where fal publishes its webhook signing keys: the newer host first, then the one the original
#: docs name (fal.md §11: support both).
JWKS_PATH = "/.well-known/jwks.json"
DEFAULT_JWKS_URLS = (DEFAULT_REST_URL + JWKS_PATH, "https://rest.alpha.fal.ai" + JWKS_PATH)
#: Signature headers (fal.md §11).
REQUEST_ID_HEADER = "X-Fal-Webhook-Request-Id"
USER_ID_HEADER = "X-Fal-Webhook-User-Id"
TIMESTAMP_HEADER = "X-Fal-Webhook-Timestamp"
SIGNATURE_HEADER = "X-Fal-Webhook-Signature"

_STEPS_MIN, _STEPS_MAX = assumptions.FAL_STEPS_RANGE


class FalReplaceBackgroundRequest(RequestModel):
    """Input of ``bria/replace-background`` (seed 003).

    fal marks nothing required and gives ``image_url`` a sample default; we require both
    ``image_url`` and ``prompt`` so that a forgotten image never silently restages fal's sample
    coffee machine (fal.md §4 gotcha).
    """

    image_url: ImageInput = Field(description="Product photo: URL, data URI, path or bytes (sent inline).")
    prompt: str = Field(min_length=1, description="Description of the new background scene.")
    negative_prompt: str = ""
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    steps_num: int | None = Field(default=None, ge=_STEPS_MIN, le=_STEPS_MAX)
    sync_mode: bool = False


_STATES = {
    "IN_QUEUE": JobState.queued,
    "IN_PROGRESS": JobState.running,
    "COMPLETED": JobState.succeeded,  # refined by error presence and the result GET
}


class FalApi(VendorApi):
    vendor: ClassVar[str] = "fal"
    display_name: ClassVar[str] = "fal.ai"
    default_base_url: ClassVar[str] = DEFAULT_QUEUE_URL
    supports_cancel: ClassVar[bool] = True
    accepts_data_uris: ClassVar[bool] = True
    endpoints: ClassVar[dict[str, Endpoint]] = {
        MODEL_ID: Endpoint(
            name=MODEL_ID,
            request_model=FalReplaceBackgroundRequest,
            price_usd=assumptions.FAL.price_usd[MODEL_ID],
            image_fields=("image_url",),
        )
    }

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Key {api_key}"}

    @staticmethod
    def _requests_path(job_id: str) -> str:
        return f"/{MODEL_ID}/requests/{quote(job_id, safe='')}"

    def submit(
        self, endpoint: str | None, inputs: dict[str, Any], webhook_url: str | None = None
    ) -> Operation[SubmittedJob]:
        request = self.validate(endpoint, inputs)
        fingerprint = self.fingerprint(MODEL_ID, request)
        body = request.model_dump(exclude_none=True)
        body["image_url"] = yield from self.resolve_image(MODEL_ID, "image_url", body["image_url"])
        submit = ApiRequest(
            "POST",
            f"/{MODEL_ID}",
            json=body,
            params={"fal_webhook": webhook_url} if webhook_url else None,
            is_submit=True,
            fingerprint=fingerprint,
        )
        answer = yield submit
        job_id, data = self.accepted_job(submit, answer, "request_id")
        return SubmittedJob(
            vendor=self.vendor,
            endpoint=MODEL_ID,
            job_id=job_id,
            fingerprint=fingerprint,
            submitted_at=now_utc(),
            initial_state=map_state(_STATES, data.get("status", "IN_QUEUE")),
            raw=data,
        )

    def get_status(self, endpoint: str | None, job_id: str) -> Operation[JobStatus]:
        answer = yield ApiRequest("GET", self._requests_path(job_id) + "/status")
        data = answer.json()
        state = map_state(_STATES, data.get("status"))
        fields: dict[str, Any] = {
            "queue_position": data.get("queue_position"),
            "duration_s": (data.get("metrics") or {}).get("inference_time"),
            "raw": {"status": data},
        }
        if state is JobState.succeeded and (data.get("error") or data.get("error_type")):
            cancelled = data.get("error_type") == assumptions.FAL_CANCELLED_ERROR_TYPE
            state = JobState.cancelled if cancelled else JobState.failed
            fields.update(error_code=data.get("error_type"), error_message=data.get("error"))
        elif state is JobState.succeeded:
            # Only the result GET tells success from a failure that left no error in the status.
            result = yield ApiRequest(
                "GET", self._requests_path(job_id), accept_statuses=frozenset(range(400, 500))
            )
            fields["raw"] = {"status": data, "result": result.json()}
            if result.is_success:
                fields["result_urls"] = result_urls(result.json())
            else:
                code, message = self.parse_error_body(result)
                state = JobState.cancelled if code == assumptions.FAL_CANCELLED_ERROR_TYPE else JobState.failed
                fields.update(error_code=code, error_message=message, retryable=_retryable(result))
        return JobStatus(vendor=self.vendor, endpoint=MODEL_ID, job_id=job_id, state=state, **fields)

    def cancel(self, endpoint: str | None, job_id: str) -> Operation[bool]:
        answer = yield ApiRequest(
            "PUT", self._requests_path(job_id) + "/cancel", accept_statuses=frozenset({400, 404})
        )
        if answer.status_code == 404:
            raise NotFoundError(self.vendor, f"request {job_id} not found", status_code=404, raw=answer.json())
        # 400 ALREADY_COMPLETED: nothing left to cancel (fal.md §10, assumption).
        return answer.status_code != 400

    def check_auth(self) -> Operation[None]:
        # fal has no "who am I" call on the queue host: a status read of an unknown id answers
        # 404 with a valid key and 401/403 without one.
        yield ApiRequest(
            "GET", self._requests_path("00000000-0000-0000-0000-000000000000") + "/status",
            accept_statuses=frozenset({404}),
        )

    def error_class(self, response: httpx.Response, code: str | None) -> type[VendorError]:
        # fal locks an account whose credit ran out and answers 403 (fal.md §8, assumption on the body).
        if response.status_code == 403 and "balance" in response.text.lower():
            return PaymentRequiredError
        return super().error_class(response, code)

    def parse_error_body(self, response: httpx.Response) -> tuple[str | None, str]:
        body = error_json(response)
        if body is None:
            return response.headers.get("X-Fal-Error-Type"), plain_error_message(response)
        code, message = _describe_error(body)
        return code or response.headers.get("X-Fal-Error-Type"), message

    # -- webhooks (fal.md §11) -------------------------------------------------
    def webhook_credentials(self, extra: Mapping[str, Any], base_url: str | None = None) -> WebhookCredentials:
        """``jwks_url`` when set; else beside ``rest_base_url`` or an overridden base URL (the sandbox); else fal's."""
        base = super().webhook_credentials(extra, base_url)
        if extra.get("jwks_url"):
            urls: tuple[str, ...] = (str(extra["jwks_url"]),)
        elif extra.get("rest_base_url"):
            urls = (str(extra["rest_base_url"]).rstrip("/") + JWKS_PATH,)
        elif base_url and base_url.rstrip("/") != DEFAULT_QUEUE_URL:
            urls = (base_url.rstrip("/") + JWKS_PATH,)
        else:
            urls = DEFAULT_JWKS_URLS
        return WebhookCredentials(token=base.token, jwks_urls=urls)

    def verify_webhook_signature(
        self, delivery: WebhookDelivery, credentials: WebhookCredentials, keys: Sequence[Any], now: float | None
    ) -> str | None:
        names = (REQUEST_ID_HEADER, USER_ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)
        values = [delivery.header(name) for name in names]
        missing = [name for name, value in zip(names, values, strict=True) if not value]
        if missing:
            raise InvalidWebhookSignatureError(self.vendor, f"missing header(s) {', '.join(missing)}")
        request_id, user_id, timestamp, signature = (str(value) for value in values)
        try:
            signed_at = float(int(timestamp))
        except ValueError:
            raise InvalidWebhookSignatureError(self.vendor, f"{TIMESTAMP_HEADER} is not Unix seconds") from None
        check_timestamp(self.vendor, signed_at, now)
        message = "\n".join([request_id, user_id, timestamp, hashlib.sha256(delivery.body).hexdigest()])
        verify_ed25519(self.vendor, message.encode(), signature, keys)
        return "ed25519"

    def webhook_status(self, data: dict[str, Any]) -> JobStatus:
        """``{request_id, status: OK|ERROR, payload, error?, payload_error?}``; OK's payload is the model output."""
        job_id = required_text(self.vendor, data, "request_id")
        status = required_text(self.vendor, data, "status")
        payload = data.get("payload")
        fields: dict[str, Any] = {"vendor": self.vendor, "endpoint": MODEL_ID, "job_id": job_id, "raw": data}
        if status == "OK":
            # A null payload (payload_error) leaves no URL; the result GET still has the output.
            urls = result_urls(payload) if isinstance(payload, dict) else []
            return JobStatus(
                state=JobState.succeeded, result_urls=urls, error_message=data.get("payload_error"), **fields
            )
        if status == "ERROR":
            code, message = _describe_error(payload) if payload is not None else (None, None)
            cancelled = code == assumptions.FAL_CANCELLED_ERROR_TYPE
            return JobStatus(
                state=JobState.cancelled if cancelled else JobState.failed,
                error_code=code,
                error_message=message or data.get("error") or data.get("payload_error"),
                **fields,
            )
        raise MalformedWebhookError(self.vendor, f"unknown status {status[:40]!r} (expected OK or ERROR)")

    def check_webhook(self, status: JobStatus, delivery: WebhookDelivery, now: float | None) -> None:
        # The signature covers the header's request id; the payload's must be the same job.
        if delivery.header(REQUEST_ID_HEADER) != status.job_id:
            raise InvalidWebhookSignatureError(self.vendor, "the signed request id differs from the payload's")


def result_urls(output: dict[str, Any]) -> list[str]:
    """``image.url`` first, then any further ``images[].url`` (fal.md §4)."""
    urls: list[str] = []
    image = output.get("image")
    if isinstance(image, dict) and image.get("url"):
        urls.append(str(image["url"]))
    for item in output.get("images") or []:
        if isinstance(item, dict) and item.get("url") and item["url"] not in urls:
            urls.append(str(item["url"]))
    return urls


def _describe_error(body: Any) -> tuple[str | None, str]:
    """(error type, message) of an error body: a validation list, or ``{detail, error_type}``."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list) and detail:
        return describe_validation_errors(detail)
    code = body.get("error_type") if isinstance(body, dict) else None
    return code, str(detail if detail is not None else body)[:300]


def _retryable(response: httpx.Response) -> bool | None:
    value = response.headers.get("X-Fal-Retryable")
    return None if value is None else value.lower() == "true"
