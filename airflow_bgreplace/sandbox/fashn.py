"""FASHN emulator (``fashn.md``; seed 002 ``background-change``, plus its ``background-remove`` sibling).

Mounted at ``/fashn``, standing in for ``https://api.fashn.ai``. Predictions walk
``starting → in_queue → processing → completed|failed``; a failed prediction is still HTTP 200;
over the concurrency cap a submit is rejected with ``429 ConcurrencyLimitExceeded``; the
webhook (``?webhook_url=``) is the unsigned terminal status body.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from airflow_bgreplace.sandbox.core import (
    InputError,
    Job,
    JobFailure,
    Phase,
    Reject,
    RenderedImage,
    VendorEmulator,
    WebhookPlan,
    read_json,
    retry_on_non_2xx,
)
from airflow_bgreplace.sandbox.validation import FieldSpec, check_fields, plain_message
from airflow_bgreplace.vendors import assumptions

MODELS: dict[str, dict[str, FieldSpec]] = {
    "background-change": {
        "image": FieldSpec("str", required=True),
        "prompt": FieldSpec("str", required=True),
        "seed": FieldSpec("int", default=42, ge=0, le=2**32 - 1),
        "output_format": FieldSpec("str", default="png", choices=("png", "jpeg")),
        "return_base64": FieldSpec("bool", default=False),
    },
    "background-remove": {
        "image": FieldSpec("str", required=True),
        "return_base64": FieldSpec("bool", default=False),
    },
}

#: Runtime error names (fashn.md §7.2) and the message the sandbox gives each.
ERROR_MESSAGES: dict[str, str] = {
    "ImageLoadError": "Error loading model image: the image could not be fetched or decoded",
    "ContentModerationError": "Prohibited content detected in the input image",
    "ThirdPartyError": "The third-party processor refused the request; change the image or background prompt",
    "3rdPartyProviderError": "A third-party provider failed",
    "PipelineError": "Unexpected error in the pipeline; please retry",
    "InputValidationError": "Invalid combination of input parameters",
    "InternalServerError": "Internal server error",
}

#: Base64 inputs must carry this prefix (fashn.md §4.1); without it the image fails to load.
_DATA_IMAGE = re.compile(r"^data:image/[A-Za-z0-9.+-]+;base64,")
_CREDITS_HEADER = "x-fashn-credits-used"


def _error(status: int, name: str, message: str) -> JSONResponse:
    return JSONResponse({"error": name, "message": message}, status_code=status)


def _count(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


class FashnEmulator(VendorEmulator):
    name = "fashn"
    assumed = assumptions.FASHN
    phases = (
        Phase("starting", "queued", 0.1),
        Phase("in_queue", "queued", 0.15),
        Phase("processing", "running", 0.75, needs_slot=True),
    )
    terminal_states = {"succeeded": "completed", "failed": "failed", "cancelled": "canceled"}
    default_fail_codes = ("PipelineError", "ImageLoadError", "ContentModerationError", "ThirdPartyError")
    webhook_on_cancel = False  # fashn.md §9: no cancel exists; only completed/failed are delivered

    def routes(self) -> list[BaseRoute]:
        return [
            self.route("/v1/run", self.submit, methods=["POST"], kind="submit", rate_bucket="submit"),
            self.route("/v1/status/{prediction_id}", self.status, kind="status", rate_bucket="status"),
            self.route("/v1/credits", self.credits, rate_bucket="credits"),
            self.route("/{path:path}", self.unknown, methods=["GET", "POST", "PUT", "PATCH", "DELETE"], auth=False),
        ]

    # --- wording ----------------------------------------------------------------------------------
    def api_key(self, request: Request) -> str | None:
        return self.bearer_token(request)

    def unauthorized(self) -> Response:
        return _error(401, "UnauthorizedAccess", "Unauthorized: Invalid token")

    def not_found(self, message: str) -> Response:
        return _error(404, "NotFound", message)

    def rate_limited(self, bucket: str, retry_after: float | None) -> Response:
        response = _error(429, "RateLimitExceeded", "Too many requests; slow down and retry later")
        response.headers.update(self.retry_after_headers(retry_after))
        return response

    def too_many_jobs(self, retry_after: float | None) -> Response:
        return _error(429, "ConcurrencyLimitExceeded", "Too many concurrent predictions; wait for one to finish")

    def out_of_balance(self) -> Response:
        return _error(429, "OutOfCredits", "You have no credits left; top up to continue")

    def server_error(self, status: int | None) -> Response:
        return _error(status or self.default_5xx_status, "InternalServerError", "Internal server error")

    def failure(self, code: str, message: str | None = None) -> JobFailure:
        return JobFailure(code, message or ERROR_MESSAGES.get(code, f"Prediction failed: {code}"))

    def input_failure(self, error: InputError) -> JobFailure:
        return JobFailure("ImageLoadError", f"Error loading model image: {error.message}")

    def job_cost(self, endpoint: str) -> float:
        return float(assumptions.FASHN_CREDITS_PER_JOB)

    def rate_limit(self, bucket: str) -> tuple[int | None, float]:
        if bucket == "credits":
            return assumptions.FASHN_CREDITS_RATE
        return super().rate_limit(bucket)

    # --- routes -------------------------------------------------------------------------------------
    async def submit(self, request: Request) -> Response:
        try:
            body = await read_json(request)
        except ValueError as exc:
            raise Reject(_error(400, "BadRequest", f"Invalid request format: {exc}")) from exc
        if not isinstance(body, dict):
            raise Reject(_error(400, "BadRequest", "Request body must be a JSON object"))
        envelope, issues = check_fields(
            body, {"model_name": FieldSpec("str", required=True), "inputs": FieldSpec("object", required=True)}
        )
        if issues:
            raise Reject(_error(400, "BadRequest", plain_message(issues[0])))
        model = envelope["model_name"]
        if model not in MODELS:
            raise Reject(_error(400, "BadRequest", f"Unknown model_name: {model!r}"))
        # Unknown input keys are ignored (fashn.md §4.1 assumption).
        inputs, issues = check_fields(envelope["inputs"], MODELS[model], ("inputs",))
        if issues:
            raise Reject(_error(400, "BadRequest", plain_message(issues[0])))
        job = self.sandbox.create_job(
            self,
            request,
            job_id=f"{uuid.uuid4()}-u1",
            endpoint=model,
            params=inputs,
            webhook_url=request.query_params.get("webhook_url") or None,
        )
        credits = str(assumptions.FASHN_CREDITS_PER_JOB)
        return JSONResponse({"id": job.id, "error": None}, headers={_CREDITS_HEADER: credits})

    def status_body(self, job: Job) -> dict[str, Any]:
        body: dict[str, Any] = {"id": job.id, "status": job.vendor_state, "output": None, "error": None}
        if job.state == "succeeded":
            if job.params.get("return_base64"):
                body["output"] = [
                    f"data:{stored.content_type};base64,{base64.b64encode(stored.data).decode()}"
                    for stored in job.results
                ]
            else:
                body["output"] = self.result_urls(job)
        elif job.state == "failed" and job.failure is not None:
            body["error"] = {"name": job.failure.code, "message": job.failure.message}
        return body

    async def status(self, request: Request) -> Response:
        job = self.job_for(request, request.path_params["prediction_id"])
        if job is None:
            return self.not_found("Prediction not found or no longer tracked")
        headers = {}
        if job.terminal:  # credits consumed: 1 when completed, 0 otherwise (fashn.md §1 assumption)
            headers[_CREDITS_HEADER] = str(_count(job.cost))
        return JSONResponse(self.status_body(job), headers=headers)

    async def credits(self, request: Request) -> Response:
        balance = _count(max(0.0, self.sandbox.balance(self.name, request.state.api_key)))
        return JSONResponse({"credits": {"total": balance, "subscription": 0, "on_demand": balance}})

    async def unknown(self, request: Request) -> Response:
        return self.not_found(f"Endpoint {request.method} {request.url.path} not found")

    # --- jobs -------------------------------------------------------------------------------------
    async def process(self, job: Job) -> list[RenderedImage]:
        source = job.params["image"]
        if source.startswith("data:") and not _DATA_IMAGE.match(source):
            raise InputError("decode", "base64 input must start with data:image/<format>;base64,")
        if not source.startswith(("data:", "http://", "https://")):
            raise InputError("decode", "Invalid URL format")
        image = await self.sandbox.load_image(job, source)
        if job.endpoint == "background-remove":
            return [await self.sandbox.render("remove", image, "output_0.png")]
        fmt = job.params["output_format"]
        rendered = await self.sandbox.render(
            "replace", image, f"output_0.{fmt}", prompt=job.params["prompt"], output_format=fmt
        )
        return [rendered]

    def webhook(self, job: Job) -> WebhookPlan | None:
        if not job.webhook_url or job.state not in ("succeeded", "failed"):
            return None
        return WebhookPlan(
            job.webhook_url,
            json.dumps(self.status_body(job)).encode(),
            lambda: {"Content-Type": "application/json"},
            retry_on_non_2xx,
            self.assumed.webhook_retry_delays_s,
            self.sandbox.webhook_timeout_s(self.name),
        )
