"""ImagePipeline emulator (``imagepipeline.md``; seed 004 background change and remove).

Mounted at ``/imagepipeline``, standing in for ``https://api.imagepipeline.io``. Flat JSON
bodies are validated FastAPI-style (422 ``{"detail": [...]}``); jobs (``job_<hex>``) walk
``queued → pending → processing → completed|failed``; each status read re-signs ``result_url``
(and ``cutout_url`` for remove); the webhook (``callback_url``) is an unsigned WebhookEvent.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
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
    isoformat,
    read_form_file,
    read_json,
    retry_on_non_2xx,
)
from airflow_bgreplace.sandbox.validation import FieldSpec, check_fields, pydantic_v1_error
from airflow_bgreplace.vendors import assumptions

_HEX_COLOUR = r"#?(?:[0-9A-Fa-f]{6}|[0-9A-Fa-f]{3})"
_FORMAT = FieldSpec("str", default="webp", choices=("webp", "jpeg", "png"))

CHANGE: dict[str, FieldSpec] = {
    "input_image": FieldSpec("str", required=True),
    "prompt": FieldSpec("str", required=True),
    "use_segmentation": FieldSpec("bool", default=True),
    "subject_description": FieldSpec("str"),
    "tone_correction": FieldSpec("float", ge=0.0, le=1.0),
    "has_text": FieldSpec("bool"),
    "seed": FieldSpec("int", default=-1, ge=-1),
    "output_format": _FORMAT,
    "callback_url": FieldSpec("str"),
    # Accepted by the official SDK although not in the docs table (imagepipeline.md §4.1).
    "palette": FieldSpec("str_list"),
    "num_inference_steps": FieldSpec("int", default=8, ge=1),
    "true_cfg_scale": FieldSpec("float", default=4.0),
    "faster_inference": FieldSpec("bool", default=True),
    "harmonize_strength": FieldSpec("float", ge=0.0, le=1.0),
}
REMOVE: dict[str, FieldSpec] = {
    "input_image": FieldSpec("str", required=True),
    "recolor": FieldSpec("str", pattern=_HEX_COLOUR),
    "drop_shadow": FieldSpec("bool", default=False),
    "shadow_opacity": FieldSpec("float", default=0.38, ge=0.0, le=1.0),
    "shadow_blur": FieldSpec("float", default=0.018, ge=0.0, le=1.0),
    "shadow_dy": FieldSpec("float", default=0.022, ge=0.0, le=1.0),
    "shadow_dx": FieldSpec("float", default=0.004, ge=0.0, le=1.0),
    "output_format": _FORMAT,
    "callback_url": FieldSpec("str"),
}
#: endpoint key (as in assumptions) -> (path, schema)
ENDPOINTS: dict[str, tuple[str, dict[str, FieldSpec]]] = {
    "background/change": ("/background/change/image/v1", CHANGE),
    "background/remove": ("/background/remove/image/v1", REMOVE),
}

#: Job-level failure codes (imagepipeline.md §7): code -> (retryable, message).
FAILURE_CODES: dict[str, tuple[bool | None, str]] = {
    "RATE_LIMIT_EXCEEDED": (True, "Too many requests."),
    "CONCURRENT_JOBS_EXCEEDED": (True, "Too many in-flight jobs for your plan."),
    "INSUFFICIENT_CREDITS": (False, "Insufficient credits."),
    "CREDIT_CHARGE_FAILED": (False, "Charging credits failed."),
    "INPUT_INVALID": (False, "Input rejected."),
    "MODEL_ERROR": (True, "The model failed on this input."),
    "MODEL_UNAVAILABLE": (True, "The model is temporarily unavailable."),
    "STORAGE_ERROR": (True, "The result could not be stored."),
    "TIMEOUT": (True, "The job exceeded its time budget."),
    "INTERNAL_ERROR": (True, "Internal error."),
    "CANCELLED": (None, "Job was cancelled."),
}

EVENT_SCHEMA: dict[str, Any] = {
    "title": "WebhookEvent",
    "type": "object",
    "required": ["job_id", "status", "timestamp"],
    "properties": {
        "job_id": {"type": "string"},
        "user_id": {"type": "string"},
        "status": {"type": "string", "enum": ["completed", "failed"]},
        "result_url": {"type": ["string", "null"]},
        "result_mime_type": {"type": ["string", "null"]},
        "result_size_bytes": {"type": ["integer", "null"]},
        "timestamp": {"type": "integer", "description": "Unix seconds"},
        "error": {"type": ["string", "null"]},
        "failure_reason_code": {"type": ["string", "null"]},
        "retryable": {"type": ["boolean", "null"]},
    },
}


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "error_code": code, "message": message}, status_code=status, headers=headers)


def _unprocessable(detail: list[dict[str, Any]]) -> Reject:
    return Reject(JSONResponse({"detail": detail}, status_code=422))


def _hex_to_rgb(colour: str) -> tuple[int, int, int]:
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(ch * 2 for ch in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


class ImagePipelineEmulator(VendorEmulator):
    name = "imagepipeline"
    assumed = assumptions.IMAGEPIPELINE
    phases = (
        Phase("queued", "queued", 0.1),
        Phase("pending", "queued", 0.1, needs_slot=True),  # accepted by a worker, not yet running
        Phase("processing", "running", 0.8, needs_slot=True),
    )
    terminal_states = {"succeeded": "completed", "failed": "failed", "cancelled": "cancelled"}
    default_fail_codes = ("MODEL_ERROR", "INPUT_INVALID", "TIMEOUT")
    signed_urls = True  # imagepipeline.md §6: pre-signed, fresh on every status read (assumption)
    webhook_on_cancel = False  # imagepipeline.md §10 assumption

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = []
        for endpoint, (path, _) in ENDPOINTS.items():
            routes.append(
                self.route(path, self._submit_for(endpoint), methods=["POST"], kind="submit", rate_bucket="submit")
            )
            routes.append(self.route(f"{path}/status/{{job_id}}", self._status_for(endpoint), kind="status"))
        return [
            *routes,
            self.route("/upload/image/v1", self.upload, methods=["POST"]),
            self.route("/webhooks/event-schema", self.event_schema),
            self.route("/v1/user/details", self.account),
            self.route("/health", self.health),
            self.route("/{path:path}", self.unknown, methods=["GET", "POST", "PUT", "PATCH", "DELETE"], auth=False),
        ]

    # --- wording ----------------------------------------------------------------------------------
    def api_key(self, request: Request) -> str | None:
        return request.headers.get("x-api-key") or None

    def unauthorized(self) -> Response:
        return _error(401, "UNAUTHORIZED", "Invalid or missing API key.")

    def not_found(self, message: str) -> Response:
        return _error(404, "NOT_FOUND", message)

    def rate_limited(self, bucket: str, retry_after: float | None) -> Response:
        return _error(429, "RATE_LIMIT_EXCEEDED", "Rate limit exceeded.", self.retry_after_headers(retry_after))

    def too_many_jobs(self, retry_after: float | None) -> Response:
        return _error(
            429,
            "CONCURRENT_JOBS_EXCEEDED",
            "Too many concurrent jobs for your plan.",
            self.retry_after_headers(retry_after),
        )

    def out_of_balance(self) -> Response:
        return _error(402, "INSUFFICIENT_BALANCE", "Insufficient balance; top up to continue.")

    def server_error(self, status: int | None) -> Response:
        return _error(status or self.default_5xx_status, "INTERNAL_ERROR", "Internal server error.")

    def failure(self, code: str, message: str | None = None) -> JobFailure:
        retryable, default = FAILURE_CODES.get(code, (True, f"Job failed: {code}"))
        return JobFailure(code, message or default, retryable=retryable)

    def input_failure(self, error: InputError) -> JobFailure:
        return self.failure("INPUT_INVALID", f"Could not load input_image: {error.message}")

    def concurrency_failure(self) -> JobFailure:
        return self.failure("CONCURRENT_JOBS_EXCEEDED")

    # --- routes -------------------------------------------------------------------------------------
    def _submit_for(self, endpoint: str) -> Callable[[Request], Awaitable[Response]]:
        async def submit(request: Request) -> Response:
            return await self.submit(request, endpoint)

        return submit

    def _status_for(self, endpoint: str) -> Callable[[Request], Awaitable[Response]]:
        async def status(request: Request) -> Response:
            job = self.job_for(request, request.path_params["job_id"])
            if job is None or job.endpoint != endpoint:
                return self.not_found("Job not found.")
            return JSONResponse(self.status_body(job))

        return status

    async def submit(self, request: Request, endpoint: str) -> Response:
        path, schema = ENDPOINTS[endpoint]
        try:
            body = await read_json(request)
        except ValueError as exc:
            raise _unprocessable([{"loc": ["body", 0], "msg": str(exc), "type": "value_error.jsondecode"}]) from exc
        if not isinstance(body, dict):
            raise _unprocessable([{"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict"}])
        params, issues = check_fields(body, schema)
        detail = [pydantic_v1_error(issue) for issue in issues]
        if endpoint == "background/remove" and params.get("drop_shadow") and not params.get("recolor"):
            detail.append(
                {"loc": ["body", "drop_shadow"], "msg": "drop_shadow requires recolor", "type": "value_error"}
            )
        if detail:
            raise _unprocessable(detail)
        callback_url = params.pop("callback_url", None)
        job_id = "job_" + secrets.token_hex(4)
        while (self.name, job_id) in self.sandbox.jobs:
            job_id = "job_" + secrets.token_hex(4)
        job = self.sandbox.create_job(
            self, request, job_id=job_id, endpoint=endpoint, params=params, webhook_url=callback_url
        )
        return JSONResponse(
            {
                "job_id": job.id,
                "status": "queued",
                "endpoint": path,
                "estimated_time_seconds": round(job.latency_s, 1),
                "queued_at": isoformat(job.submitted_at, zulu=True),
            }
        )

    def _result_files(self, job: Job) -> tuple[str | None, str | None, str | None, int | None]:
        """(result_url, result_mime_type, cutout_url, result_size_bytes), freshly signed."""
        if job.state != "succeeded" or not job.results:
            return None, None, None, None
        urls = self.result_urls(job)
        if job.endpoint == "background/change":
            stored = job.results[0]
            return urls[0], stored.content_type, None, len(stored.data)
        cutout = urls[0]
        if len(job.results) > 1:  # recoloured composite
            return urls[1], job.results[1].content_type, cutout, len(job.results[1].data)
        if assumptions.IMAGEPIPELINE_REMOVE_RESULT_IS_CUTOUT:
            return cutout, job.results[0].content_type, cutout, len(job.results[0].data)
        return None, None, cutout, None

    def status_body(self, job: Job) -> dict[str, Any]:
        body: dict[str, Any] = {"job_id": job.id, "status": job.vendor_state}
        now = time.time()
        if not job.terminal:
            elapsed = now - job.submitted_at
            body["progress"] = 0 if job.state == "queued" else min(99, int(100 * elapsed / max(job.latency_s, 1e-6)))
            body["estimated_time_seconds"] = round(max(0.0, job.latency_s - elapsed), 1)
            if job.vendor_state == "queued":
                body["queue_position"] = self.sandbox.queue_position(job)
            return body
        started = job.started_at or job.submitted_at
        finished = job.finished_at or now
        if job.state == "succeeded":
            result_url, mime, cutout_url, _ = self._result_files(job)
            body.update(
                progress=100,
                result_url=result_url,
                result_mime_type=mime,
                queue_wait_seconds=round(started - job.submitted_at, 3),
                inference_time_seconds=round(finished - started, 3),
                total_elapsed_seconds=round(finished - job.submitted_at, 3),
                processing_time_seconds=round(finished - job.submitted_at, 3),
                credits_charged=True,
                credits_amount=1,
                cost_usd=job.cost,
                balance_remaining_usd=round(self.sandbox.balance(self.name, job.api_key), 4),
            )
            if job.endpoint == "background/remove":
                body["cutout_url"] = cutout_url
            return body
        failure = job.failure or self.failure("CANCELLED")
        body.update(
            error=failure.message,
            failure_reason_code=failure.code,
            retryable=failure.retryable,
            credits_charged=False,
            cost_usd=0.0,
        )
        return body

    async def upload(self, request: Request) -> Response:
        try:
            upload = await read_form_file(request, "file", self.settings.max_input_bytes)
        except ValueError:
            return _error(413, "INVALID_PARAMETERS", "File too large.")
        if upload is None:
            raise _unprocessable([{"loc": ["body", "file"], "msg": "field required", "type": "value_error.missing"}])
        filename, content_type, data = upload
        try:
            self.sandbox.check_image(data)
        except InputError as exc:
            return _error(400, "INVALID_PARAMETERS", f"Not an image: {exc.message}")
        safe_name = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in filename)[:120] or "upload"
        stored = self.sandbox.files.add(self.name, data, content_type, safe_name)  # "permanent URL" (§6)
        self.sandbox.counters[self.name]["uploads"] += 1
        url = self.sandbox.file_url(self.sandbox.origin(request), stored)
        return JSONResponse({"url": url, "filename": safe_name, "content_type": content_type, "size_bytes": len(data)})

    async def event_schema(self, request: Request) -> Response:
        return JSONResponse(EVENT_SCHEMA)

    async def account(self, request: Request) -> Response:
        balance = self.sandbox.balance(self.name, request.state.api_key)
        return JSONResponse(
            {"plan": "sandbox", "balance_remaining_usd": round(balance, 4), "allowed_operations": sorted(ENDPOINTS)}
        )

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def unknown(self, request: Request) -> Response:
        return self.not_found(f"No route for {request.method} {request.url.path}.")

    # --- jobs -------------------------------------------------------------------------------------
    async def process(self, job: Job) -> list[RenderedImage]:
        params = job.params
        image = await self.sandbox.load_image(job, params["input_image"])
        fmt = params["output_format"]
        ext = "jpg" if fmt == "jpeg" else fmt
        stem = job.id.removeprefix("job_")
        if job.endpoint == "background/change":
            return [
                await self.sandbox.render("replace", image, f"{stem}.{ext}", prompt=params["prompt"], output_format=fmt)
            ]
        outputs = [await self.sandbox.render("remove", image, f"{stem}_cutout.png")]
        if params.get("recolor"):
            shadow = None
            if params["drop_shadow"]:
                shadow = {
                    "opacity": params["shadow_opacity"],
                    "blur": params["shadow_blur"],
                    "dx": params["shadow_dx"],
                    "dy": params["shadow_dy"],
                }
            outputs.append(
                await self.sandbox.render(
                    "color",
                    image,
                    f"{stem}.{ext}",
                    color=_hex_to_rgb(params["recolor"]),
                    output_format=fmt,
                    shadow=shadow,
                )
            )
        return outputs

    def webhook(self, job: Job) -> WebhookPlan | None:
        if not job.webhook_url or job.state not in ("succeeded", "failed"):
            return None
        result_url, mime, _, size = self._result_files(job)
        event: dict[str, Any] = {
            "job_id": job.id,
            "user_id": f"usr_{hashlib.sha256(job.api_key.encode()).hexdigest()[:8]}",
            "status": job.vendor_state,
            "result_url": result_url,
            "result_mime_type": mime,
            "result_size_bytes": size,
            "timestamp": int(time.time()),
        }
        if job.state == "failed" and job.failure is not None:
            event.update(
                error=job.failure.message, failure_reason_code=job.failure.code, retryable=job.failure.retryable
            )
        return WebhookPlan(
            job.webhook_url,
            json.dumps(event).encode(),
            lambda: {"Content-Type": "application/json"},
            retry_on_non_2xx,
            self.assumed.webhook_retry_delays_s,
            self.sandbox.webhook_timeout_s(self.name),
        )
