"""fal.ai queue emulator (``fal.md``; seed 003 ``bria/replace-background``).

Mounted at ``/fal``, standing in for both ``https://queue.fal.run`` (queue API) and
``https://rest.fal.ai`` (storage, JWKS). Requests wait ``IN_QUEUE`` beyond the concurrency cap
(never 429), run ``IN_PROGRESS`` and end ``COMPLETED`` — with ``error``/``error_type`` when they
failed; the result is a separate GET. Webhooks (``?fal_webhook=``) are Ed25519-signed with the
sandbox's own key, published at ``/fal/.well-known/jwks.json``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from PIL import Image, ImageDraw
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute

from airflow_bgreplace.sandbox.core import (
    InputError,
    Job,
    JobFailure,
    Phase,
    Reject,
    RenderedImage,
    Sandbox,
    StoredFile,
    VendorEmulator,
    WebhookPlan,
    isoformat,
    read_json,
    retry_on_non_2xx,
)
from airflow_bgreplace.sandbox.validation import FieldSpec, check_fields, pydantic_v2_error
from airflow_bgreplace.vendors import assumptions

MODEL_ID = "bria/replace-background"
#: Seed 003: ``image_url`` defaults to this sample; a client that omits it gets a result for it.
SAMPLE_IMAGE_URL = (
    "https://v3b.fal.media/files/b/0a8bea8c/Mztgx0NG3HPdby-4iPqwH_a_coffee_machine_standing_in_the_kitchen.png"
)
INPUT: dict[str, FieldSpec] = {
    "prompt": FieldSpec("str", default=""),  # fal.md §4 assumption: a missing prompt is accepted
    "image_url": FieldSpec("str", default=SAMPLE_IMAGE_URL),
    "seed": FieldSpec("int", default=4925634),
    "steps_num": FieldSpec("int", default=30, ge=assumptions.FAL_STEPS_RANGE[0], le=assumptions.FAL_STEPS_RANGE[1]),
    "negative_prompt": FieldSpec("str", default=""),
    "sync_mode": FieldSpec("bool", default=False),
}

#: Model errors (fal.md §8.1): type -> (HTTP status, retryable, message).
MODEL_ERRORS: dict[str, tuple[int, bool, str]] = {
    "internal_server_error": (500, True, "Internal server error"),
    "generation_timeout": (504, True, "Generation timed out"),
    "downstream_service_error": (400, False, "A downstream service returned an error"),
    "downstream_service_unavailable": (500, True, "A downstream service is unavailable"),
    "content_policy_violation": (422, False, "The content could not be processed because it was flagged"),
    "image_too_small": (422, False, "Image is too small"),
    "image_too_large": (422, False, "Image is too large"),
    "image_load_error": (422, False, "Failed to load the image"),
    "file_download_error": (422, False, "Failed to download the file"),
    "face_detection_error": (422, False, "No face detected in the image"),
    "file_too_large": (422, False, "File is too large"),
}
#: Request errors (fal.md §8.2): error_type -> HTTP status.
REQUEST_ERRORS: dict[str, int] = {
    "request_timeout": 504,
    "startup_timeout": 504,
    "runner_scheduling_failure": 503,
    "runner_connection_timeout": 503,
    "runner_disconnected": 503,
    "runner_connection_refused": 503,
    "runner_connection_error": 503,
    "runner_incomplete_response": 502,
    "runner_server_error": 500,
    "internal_error": 500,
    "client_disconnected": 499,
    "client_cancelled": 499,
    "bad_request": 400,
}
_INPUT_PROBLEMS = {
    "download": "file_download_error",
    "decode": "image_load_error",
    "unsupported": "image_load_error",
    "file_too_large": "file_too_large",
    "image_too_large": "image_too_large",
}


def _detail(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _request_error(status: int, message: str, error_type: str) -> JSONResponse:
    return JSONResponse(
        {"detail": message, "error_type": error_type}, status_code=status, headers={"X-Fal-Error-Type": error_type}
    )


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name.rsplit("/", 1)[-1])[:120] or "file"


def _sample_image() -> bytes:
    # Offline stand-in for the seed's sample photo: a dark "machine" on a light kitchen wall.
    image = Image.new("RGB", (512, 512), (236, 232, 224))
    ImageDraw.Draw(image).rounded_rectangle((156, 120, 356, 420), radius=24, fill=(40, 40, 44))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class FalEmulator(VendorEmulator):
    name = "fal"
    assumed = assumptions.FAL
    phases = (Phase("IN_QUEUE", "queued", 0.1), Phase("IN_PROGRESS", "running", 0.9, needs_slot=True))
    terminal_states = {"succeeded": "COMPLETED", "failed": "COMPLETED", "cancelled": "COMPLETED"}
    default_fail_codes = ("image_load_error", "content_policy_violation", "runner_server_error")

    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__(sandbox)
        # One key pair per sandbox app, kept across resets so cached JWKS stay valid.
        self._signing_key = Ed25519PrivateKey.generate()
        self.key_id = f"sandbox-{secrets.token_hex(4)}"
        self._uploads: dict[str, str] = {}  # upload token -> file id
        self._cdn_tokens: set[str] = set()

    def reset(self) -> None:
        self._uploads.clear()
        self._cdn_tokens.clear()

    def routes(self) -> list[BaseRoute]:
        base = f"/{MODEL_ID}"
        request = f"{base}/requests/{{request_id}}"
        return [
            self.route(base, self.submit, methods=["POST"], kind="submit", rate_bucket="submit"),
            self.route(f"{request}/status", self.status, kind="status"),
            self.route(f"{request}/status/stream", self.status_stream, kind="status"),
            self.route(request, self.result, kind="result"),
            self.route(f"{request}/cancel", self.cancel, methods=["PUT"], kind="cancel"),
            self.route("/storage/upload/initiate", self.upload_initiate, methods=["POST"]),
            self.route("/storage/upload/{token}", self.upload_put, methods=["PUT"], auth=False),
            self.route("/storage/auth/token", self.cdn_token, methods=["POST"]),
            self.route("/cdn/files/upload", self.cdn_upload, methods=["POST"], auth=False),
            self.route("/.well-known/jwks.json", self.jwks, auth=False),
            self.route("/{path:path}", self.unknown, methods=["GET", "POST", "PUT", "PATCH", "DELETE"], auth=False),
        ]

    # --- wording ----------------------------------------------------------------------------------
    def api_key(self, request: Request) -> str | None:
        return self.bearer_token(request, scheme="Key")

    def unauthorized(self) -> Response:  # fal.md §8 assumption: 401 {"detail": ...}
        return _detail(401, "Invalid or missing credentials; send 'Authorization: Key <FAL_KEY>'.")

    def not_found(self, message: str) -> Response:
        return _detail(404, message)

    def rate_limited(self, bucket: str, retry_after: float | None) -> Response:
        response = _detail(429, "Too many requests")
        response.headers.update(self.retry_after_headers(retry_after))
        return response

    def out_of_balance(self) -> Response:  # fal.md §8 assumption
        return _detail(403, "User is locked. Reason: Exhausted balance. Top up your balance to continue.")

    def server_error(self, status: int | None) -> Response:
        status = status or self.default_5xx_status
        error_type = {502: "runner_incomplete_response", 503: "runner_scheduling_failure", 504: "request_timeout"}
        return _request_error(status, "Internal error", error_type.get(status, "internal_error"))

    def failure(self, code: str, message: str | None = None) -> JobFailure:
        if code in REQUEST_ERRORS:
            return JobFailure(code, message or code.replace("_", " ").capitalize(), status=REQUEST_ERRORS[code])
        status, retryable, default = MODEL_ERRORS.get(code, (422, False, f"Request failed: {code}"))
        return JobFailure(code, message or default, status=status, retryable=retryable, details={"model": True})

    def input_failure(self, error: InputError) -> JobFailure:
        failure = self.failure(_INPUT_PROBLEMS[error.problem], error.message)
        failure.details["loc"] = ["body", "image_url"]
        return failure

    def file_ttl_s(self, job: Job) -> float:
        if "lifecycle_s" in job.extra:
            lifetime = job.extra["lifecycle_s"]
            return float("inf") if lifetime is None else float(lifetime)
        return super().file_ttl_s(job)

    # --- shapes -------------------------------------------------------------------------------------
    def _urls(self, job: Job) -> dict[str, str]:
        base = f"{job.origin}/{self.name}/{MODEL_ID}/requests/{job.id}"
        return {
            "request_id": job.id,
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
        }

    def _error_of(self, job: Job) -> JobFailure | None:
        if job.state == "cancelled":
            return job.failure or self.failure(assumptions.FAL_CANCELLED_ERROR_TYPE, "Request cancelled by the client")
        return job.failure if job.state == "failed" else None

    def status_body(self, job: Job, with_logs: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"status": job.vendor_state, **self._urls(job)}
        if job.vendor_state == "IN_QUEUE":
            body["queue_position"] = self.sandbox.queue_position(job)
            return body
        logs = None
        if with_logs:
            logs = [
                {
                    "message": "Processing request",
                    "level": "INFO",
                    "source": "USER",
                    "timestamp": isoformat(job.started_at),
                }
            ]
        body["logs"] = logs
        if job.terminal:
            inference = (job.finished_at or 0.0) - (job.started_at or job.finished_at or 0.0)
            body["metrics"] = {"inference_time": round(inference, 3)}
            failure = self._error_of(job)
            if failure is not None:
                body["error"] = failure.message
                body["error_type"] = failure.code
        return body

    def _image(self, stored: StoredFile, job: Job) -> dict[str, Any]:
        if job.params.get("sync_mode"):
            url = f"data:{stored.content_type};base64,{base64.b64encode(stored.data).decode()}"
        else:
            url = self.sandbox.file_url(job.origin, stored)
        return {
            "url": url,
            "content_type": stored.content_type,
            "file_name": stored.filename,
            "file_size": len(stored.data),
            "width": stored.width,
            "height": stored.height,
        }

    def result_body(self, job: Job) -> dict[str, Any]:
        images = [self._image(stored, job) for stored in job.results]
        return {"image": images[0], "images": images}

    def error_response_parts(self, failure: JobFailure) -> tuple[int, dict[str, Any], dict[str, str]]:
        """(status, body, headers) of a failed request's result GET."""
        status = failure.status or 500
        if failure.details.get("model"):
            item = {
                "loc": failure.details.get("loc", ["body"]),
                "msg": failure.message,
                "type": failure.code,
                "url": f"https://docs.fal.ai/errors#{failure.code}",
            }
            return status, {"detail": [item]}, {"X-Fal-Retryable": "true" if failure.retryable else "false"}
        return status, {"detail": failure.message, "error_type": failure.code}, {"X-Fal-Error-Type": failure.code}

    # --- routes -------------------------------------------------------------------------------------
    async def submit(self, request: Request) -> Response:
        try:
            body = await read_json(request)
        except ValueError as exc:
            raise Reject(_detail(422, [{"loc": ["body"], "msg": str(exc), "type": "json_invalid"}])) from exc
        if body is None:
            body = {}
        if not isinstance(body, dict):
            item = {"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type"}
            raise Reject(_detail(422, [item]))
        params, issues = check_fields(body, INPUT)
        if issues:
            detail = [
                pydantic_v2_error(issue) | {"url": f"https://docs.fal.ai/errors#{pydantic_v2_error(issue)['type']}"}
                for issue in issues
            ]
            raise Reject(_detail(422, detail, {"X-Fal-Retryable": "false"}))
        extra: dict[str, Any] = {}
        preference = request.headers.get("x-fal-object-lifecycle-preference")
        if preference:
            try:
                extra["lifecycle_s"] = json.loads(preference).get("expiration_duration_seconds")
            except (ValueError, AttributeError):
                raise Reject(_detail(400, "Invalid X-Fal-Object-Lifecycle-Preference header")) from None
        webhook = request.query_params.get("fal_webhook") or None
        job = self.sandbox.create_job(
            self, request, job_id=str(uuid.uuid4()), endpoint=MODEL_ID, params=params, webhook_url=webhook, extra=extra
        )
        answer = {**self._urls(job), "status": "IN_QUEUE", "queue_position": self.sandbox.queue_position(job)}
        if webhook:
            answer["gateway_request_id"] = job.id
        return JSONResponse(answer)

    def _request_or_404(self, request: Request) -> Job:
        job = self.job_for(request, request.path_params["request_id"])
        if job is None:
            raise Reject(_detail(404, "Request not found"))
        return job

    @staticmethod
    def _wants_logs(request: Request) -> bool:
        return request.query_params.get("logs", "0").lower() in ("1", "true")

    async def status(self, request: Request) -> Response:
        job = self._request_or_404(request)
        # fal.md §5 assumption: 202 while waiting or running, 200 once COMPLETED.
        return JSONResponse(self.status_body(job, self._wants_logs(request)), status_code=200 if job.terminal else 202)

    async def status_stream(self, request: Request) -> Response:
        job = self._request_or_404(request)
        with_logs = self._wants_logs(request)

        async def events() -> AsyncIterator[str]:
            last: dict[str, Any] | None = None
            while (self.name, job.id) in self.sandbox.jobs:  # ends on reset too
                body = self.status_body(job, with_logs)
                if body != last:
                    yield f"data: {json.dumps(body)}\n\n"
                    last = body
                if job.terminal:
                    return
                await asyncio.sleep(0.05)

        return StreamingResponse(events(), media_type="text/event-stream")

    async def result(self, request: Request) -> Response:
        job = self._request_or_404(request)
        if not job.terminal:  # fal.md §6 assumption
            return _detail(400, "Request is still in progress")
        failure = self._error_of(job)
        if failure is not None:
            status, body, headers = self.error_response_parts(failure)
            return JSONResponse(body, status_code=status, headers={**headers, "x-fal-request-id": job.id})
        return JSONResponse(self.result_body(job), headers={"x-fal-request-id": job.id})

    async def cancel(self, request: Request) -> Response:
        # fal.md §10 assumption: 202 accepted, 400 already completed, 404 unknown.
        job = self.job_for(request, request.path_params["request_id"])
        if job is None:
            return JSONResponse({"status": "NOT_FOUND"}, status_code=404)
        cancelled = self.failure(assumptions.FAL_CANCELLED_ERROR_TYPE, "Request cancelled by the client")
        if not self.sandbox.cancel_job(self, job, cancelled):
            return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400)
        return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)

    async def upload_initiate(self, request: Request) -> Response:
        try:
            body = await read_json(request)
        except ValueError:
            body = None
        fields, issues = check_fields(
            body if isinstance(body, dict) else {},
            {"file_name": FieldSpec("str", required=True), "content_type": FieldSpec("str", required=True)},
        )
        if issues:
            return _detail(422, [pydantic_v2_error(issue) for issue in issues])
        stored = self.sandbox.files.add(
            self.name,
            b"",
            fields["content_type"],
            _safe_name(fields["file_name"]),
            ready=False,
            expires_at=time.time() + self.sandbox.result_url_ttl_s(self.name),
        )
        token = secrets.token_urlsafe(24)
        self._uploads[token] = stored.id
        origin = self.sandbox.origin(request)
        return JSONResponse(
            {
                "upload_url": f"{origin}/{self.name}/storage/upload/{token}",
                "file_url": self.sandbox.file_url(origin, stored),
            }
        )

    async def _store_body(self, request: Request, stored: StoredFile) -> Response | None:
        data = await request.body()
        if len(data) > self.settings.max_input_bytes:
            return _detail(413, "File too large")
        stored.data = data
        stored.ready = True
        self.sandbox.counters[self.name]["uploads"] += 1
        return None

    async def upload_put(self, request: Request) -> Response:
        file_id = self._uploads.pop(request.path_params["token"], None)
        stored = self.sandbox.files.get(file_id) if file_id else None
        if stored is None:
            return _detail(404, "Upload URL not found or already used")
        problem = await self._store_body(request, stored)
        if problem is not None:
            return problem
        stored.content_type = request.headers.get("content-type", stored.content_type)
        return Response(status_code=200)

    async def cdn_token(self, request: Request) -> Response:
        token = secrets.token_urlsafe(24)
        self._cdn_tokens.add(token)
        origin = self.sandbox.origin(request)
        return JSONResponse(
            {
                "token": token,
                "token_type": "Bearer",
                "base_url": f"{origin}/{self.name}/cdn",
                "expires_at": isoformat(time.time() + 3600),
            }
        )

    async def cdn_upload(self, request: Request) -> Response:
        token = self.bearer_token(request)
        if token is None or token not in self._cdn_tokens:
            return self.unauthorized()
        content_type = request.headers.get("content-type", "application/octet-stream")
        name = _safe_name(request.headers.get("x-fal-file-name") or f"{secrets.token_hex(6)}.bin")
        stored = self.sandbox.files.add(
            self.name, b"", content_type, name, expires_at=time.time() + self.sandbox.result_url_ttl_s(self.name)
        )
        problem = await self._store_body(request, stored)
        if problem is not None:
            return problem
        return JSONResponse({"access_url": self.sandbox.file_url(self.sandbox.origin(request), stored)})

    async def jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [self.public_jwk()]})

    async def unknown(self, request: Request) -> Response:
        return _detail(404, "Not Found")

    def public_jwk(self) -> dict[str, str]:
        raw = self._signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.key_id, "use": "sig", "alg": "EdDSA"}

    # --- jobs -------------------------------------------------------------------------------------
    async def process(self, job: Job) -> list[RenderedImage]:
        url = job.params["image_url"]
        if url == SAMPLE_IMAGE_URL:
            image = await asyncio.to_thread(_sample_image)
        else:
            image = await self.sandbox.load_image(job, url)
        name = f"{secrets.token_urlsafe(9)}.png"
        return [await self.sandbox.render("replace", image, name, prompt=job.params["prompt"])]

    def user_id(self, key: str) -> str:
        return f"sandbox-user-{hashlib.sha256(key.encode()).hexdigest()[:10]}"

    def webhook(self, job: Job) -> WebhookPlan | None:
        if not job.webhook_url or not job.terminal:
            return None
        payload: dict[str, Any] = {"request_id": job.id, "gateway_request_id": job.id}
        failure = self._error_of(job)
        if failure is None:
            payload.update(status="OK", payload=self.result_body(job))
        else:
            status, body, _ = self.error_response_parts(failure)
            payload.update(status="ERROR", error=f"Invalid status code: {status}", payload=body)
        raw = json.dumps(payload).encode()
        user_id = self.user_id(job.api_key)

        def headers() -> dict[str, str]:
            # Signed per attempt: the timestamp must stay within the receivers' ±300 s window.
            timestamp = str(int(time.time()))
            message = "\n".join([job.id, user_id, timestamp, hashlib.sha256(raw).hexdigest()]).encode()
            return {
                "Content-Type": "application/json",
                "X-Fal-Webhook-Request-Id": job.id,
                "X-Fal-Webhook-User-Id": user_id,
                "X-Fal-Webhook-Timestamp": timestamp,
                "X-Fal-Webhook-Signature": self._signing_key.sign(message).hex(),
            }

        return WebhookPlan(
            job.webhook_url,
            raw,
            headers,
            retry_on_non_2xx,
            self.assumed.webhook_retry_delays_s,
            self.sandbox.webhook_timeout_s(self.name),
        )
