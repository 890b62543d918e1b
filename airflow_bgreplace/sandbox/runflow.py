"""Runflow emulator (``runflow.md``; seeds 000 background-replace, 001 background-color).

Mounted at ``/runflow``, standing in for ``https://api.runflow.io``. Runs are UUIDv7 records that
walk ``queued → dispatching → running → succeeded|failed``; every read re-signs the output URLs;
callbacks carry ``Runflow-Request-Id`` and, once a secret exists, ``Runflow-Signature``.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import secrets
import time
import uuid
import zipfile
from typing import Any
from urllib.parse import urlsplit

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
    Sandbox,
    VendorEmulator,
    WebhookPlan,
    is_loopback,
    isoformat,
    read_json,
    retry_on_5xx_or_network,
    uuid7,
)
from airflow_bgreplace.sandbox.validation import FieldSpec, Issue, check_fields, pydantic_v2_error
from airflow_bgreplace.vendors import assumptions

ENVELOPE: dict[str, FieldSpec] = {
    "input": FieldSpec("object", required=True),
    "callback_url": FieldSpec("str", nullable=True, max_length=2048),  # assumption: batch limit (§3)
    "metadata": FieldSpec("object", nullable=True),
    "client_ref": FieldSpec("str", nullable=True, max_length=255),
}

_CHANNEL = FieldSpec("int", required=True, ge=0, le=255)  # runflow.md §4.2 assumption: else 422
MODELS: dict[str, dict[str, FieldSpec]] = {
    "runflow/background-replace": {
        "zip_url": FieldSpec("str", required=True),
        "file_image": FieldSpec("str", required=True),
        "file_reference": FieldSpec("str", required=True),
        "prompt": FieldSpec("str"),
    },
    "runflow/background-color": {
        "image_url": FieldSpec("str", required=True),
        "color_red": _CHANNEL,
        "color_green": _CHANNEL,
        "color_blue": _CHANNEL,
    },
}

#: Stage of the documented/assumed failure codes (runflow.md §5: dispatch|preprocess|provider|postprocess).
FAILURE_STAGES: dict[str, str] = {
    "INPUT_VALIDATION_FAILED": "preprocess",
    "DISPATCH_FAILED": "dispatch",
    "MODEL_UNAVAILABLE": "dispatch",
    "PROVIDER_ERROR": "provider",
    "CONTENT_POLICY_VIOLATION": "provider",
    "POSTPROCESS_FAILED": "postprocess",
}

CALLBACK_EVENTS = {"succeeded": "run.completed", "failed": "run.failed", "cancelled": "run.cancelled"}
CALLBACK_STATUS = {
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": assumptions.RUNFLOW_CALLBACK_CANCELLED,
}


def _error(
    status: int, code: str, message: str, errors: list[Any] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "errors": errors}, status_code=status, headers=headers)


def _validation_error(errors: list[dict[str, Any]]) -> Reject:
    return Reject(_error(422, "VALIDATION_ERROR", "Request validation failed", errors))


def _stable_uuid(text: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"bgreplace-sandbox:{text}"))


class RunflowEmulator(VendorEmulator):
    name = "runflow"
    assumed = assumptions.RUNFLOW
    phases = (
        Phase("queued", "queued", 0.1),
        Phase("dispatching", "queued", 0.1, needs_slot=True),
        Phase("running", "running", 0.8, needs_slot=True),
    )
    terminal_states = {
        "succeeded": "succeeded",
        "failed": "failed",
        "cancelled": assumptions.RUNFLOW_RECORD_CANCELLED,
    }
    default_fail_codes = ("PROVIDER_ERROR", "INPUT_VALIDATION_FAILED", "MODEL_UNAVAILABLE")
    signed_urls = True  # runflow.md §6: presigned, re-signed on every read
    default_5xx_status = 503
    concurrency_per_endpoint = True  # runflow.md §9: per-model per-org cap

    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__(sandbox)
        self._secrets: dict[str, list[dict[str, Any]]] = {}

    def reset(self) -> None:
        self._secrets.clear()

    def routes(self) -> list[BaseRoute]:
        return [
            self.route(
                "/v1/models/{model_id:path}/runs", self.submit, methods=["POST"], kind="submit", rate_bucket="submit"
            ),
            self.route("/v1/runs/{run_id}", self.get_run, kind="status"),
            self.route("/v1/runs/{run_id}/callback", self.callback_history),
            self.route("/v1/runs/{run_id}/callback-redeliveries", self.redeliver, methods=["POST"]),
            self.route("/v1/admin/runs/{run_id}/cancellation", self.admin_cancel, methods=["POST"], kind="cancel"),
            self.route("/v1/callback-secrets", self.create_secret, methods=["POST"]),
            self.route("/v1/auth/me", self.auth_me),
            self.route("/v1/health", self.health, auth=False),
            self.route("/{path:path}", self.unknown, methods=["GET", "POST", "PUT", "PATCH", "DELETE"], auth=False),
        ]

    # --- wording ----------------------------------------------------------------------------------
    def api_key(self, request: Request) -> str | None:
        return self.bearer_token(request)

    def unauthorized(self) -> Response:
        return _error(401, "UNAUTHORIZED", "Missing or invalid API key.")

    def not_found(self, message: str) -> Response:
        return _error(404, "NOT_FOUND", message)

    def rate_limited(self, bucket: str, retry_after: float | None) -> Response:
        return _error(
            429,
            "RATE_LIMITED",
            f"Rate limit exceeded: too many {bucket} requests",
            None,
            self.retry_after_headers(retry_after),
        )

    def out_of_balance(self) -> Response:
        return _error(402, "INSUFFICIENT_CREDIT", "Insufficient credit to run this model.")

    def server_error(self, status: int | None) -> Response:
        status = status or self.default_5xx_status
        if status == 503:
            return _error(503, "MODEL_UNAVAILABLE", "The model provider is temporarily unavailable.")
        return _error(status, "INTERNAL_SERVER_ERROR", "An unexpected error occurred.")

    def failure(self, code: str, message: str | None = None) -> JobFailure:
        return JobFailure(code, message or f"Run failed: {code}", stage=FAILURE_STAGES.get(code, "provider"))

    def input_failure(self, error: InputError) -> JobFailure:
        # runflow.md §4.1 assumption: unusable inputs fail the run at stage preprocess.
        return JobFailure("INPUT_VALIDATION_FAILED", error.message, stage="preprocess")

    # --- records ------------------------------------------------------------------------------------
    def _output(self, job: Job) -> dict[str, Any] | None:
        if job.state != "succeeded":
            return None
        if job.endpoint == "background-replace":
            return {"image_urls": self.result_urls(job)}
        outputs = [
            {
                "type": "image",
                "url": self.sandbox.file_url(job.origin, stored),
                "content_type": stored.content_type,
                "width": stored.width,
                "height": stored.height,
            }
            for stored in job.results
        ]
        return {"outputs": outputs, "seed": None, "timing": None, "nsfw_detected": None}

    def _duration_ms(self, job: Job) -> int | None:
        return None if job.finished_at is None else round((job.finished_at - job.submitted_at) * 1000)

    def record(self, job: Job) -> dict[str, Any]:
        failure = job.failure if job.state == "failed" else None
        org_id = _stable_uuid(f"org:{job.api_key}")
        return {
            "id": job.id,
            "flow_id": None,
            "model_id": _stable_uuid(job.params["model"]),
            "comfyui_workflow_id": None,
            "target_type": "model",
            "target_version": "latest",
            "org_id": org_id,
            "status_code": job.vendor_state,
            "source_code": "api",
            "input": job.params["input"],
            "output": self._output(job),
            "context": {},
            "duration_ms": self._duration_ms(job),
            "cost": f"{job.cost:.2f}" if job.state == "succeeded" else None,
            "cost_breakdown": {},
            "nodes_total": 1,
            "nodes_completed": 1 if job.state == "succeeded" else 0,
            "resolved_template_id": None,
            "batch_id": None,
            "client_ref": job.extra.get("client_ref"),
            "jurisdiction_code": None,
            "flow_version_id": None,
            "request_id": job.extra["request_id"],
            "created_by": org_id,
            "created_at": isoformat(job.submitted_at),
            "started_at": isoformat(job.started_at),
            "completed_at": isoformat(job.finished_at),
            "callback_url": job.webhook_url,
            "metadata": job.extra.get("metadata"),
            "has_logs": False,
            "has_node_runs": False,
            "links": {"self": f"{job.origin}/{self.name}/v1/runs/{job.id}"},
            "failure_code": failure.code if failure else None,
            "failure_message": failure.message if failure else None,
            "failure_stage_code": failure.stage if failure else None,
            "error": {"code": failure.code, "message": failure.message} if failure else None,
            "node_runs": [],
        }

    # --- routes ---------------------------------------------------------------------------------------
    async def submit(self, request: Request) -> Response:
        model = request.path_params["model_id"]
        schema = MODELS.get(model)
        if schema is None:
            return _error(404, "MODEL_NOT_FOUND", f"Model {model!r} not found.")
        try:
            body = await read_json(request)
        except ValueError as exc:
            raise _validation_error([{"type": "json_invalid", "loc": ["body"], "msg": str(exc)}]) from exc
        if not isinstance(body, dict):
            raise _validation_error(
                [{"type": "dict_type", "loc": ["body"], "msg": "Input should be a valid dictionary", "input": body}]
            )
        envelope, issues = check_fields(body, ENVELOPE)
        if issues:
            raise _validation_error([pydantic_v2_error(issue) for issue in issues])
        model_input, issues = check_fields(envelope["input"], schema, ("body", "input"))
        errors = [pydantic_v2_error(issue) for issue in issues]
        image_url = model_input.get("image_url")
        if isinstance(image_url, str) and not self._https_or_loopback(image_url):
            loc = ["body", "input", "image_url"]
            errors.append({"type": "url_scheme", "loc": loc, "msg": "URL scheme should be 'https'", "input": image_url})
        if errors:
            raise _validation_error(errors)
        job = self.sandbox.create_job(
            self,
            request,
            job_id=uuid7(),
            endpoint=model.split("/", 1)[1],
            params={"model": model, "input": model_input},
            webhook_url=envelope.get("callback_url"),
            extra={
                "metadata": envelope.get("metadata"),
                "client_ref": envelope.get("client_ref"),
                "request_id": f"req_{uuid.uuid4().hex}",
            },
        )
        return JSONResponse(self.record(job))

    @staticmethod
    def _https_or_loopback(url: str) -> bool:
        # Seed 001 requires HTTPS; plain http is allowed for loopback hosts so tests need no TLS.
        parts = urlsplit(url)
        return parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname or ""))

    def _run_or_404(self, request: Request) -> Job:
        job = self.job_for(request, request.path_params["run_id"])
        if job is None:
            raise Reject(_error(404, "RUN_NOT_FOUND", "Run not found."))
        return job

    async def get_run(self, request: Request) -> Response:
        return JSONResponse(self.record(self._run_or_404(request)))

    async def callback_history(self, request: Request) -> Response:
        job = self._run_or_404(request)
        attempts = [entry for entry in job.webhook_log if entry.get("attempt")]
        return JSONResponse(
            {
                "items": [
                    {
                        "run_id": job.id,
                        "attempt_count": len(attempts),
                        "max_attempts": len(self.assumed.webhook_retry_delays_s) + 1,
                        "is_automatic": True,
                        "attempts": [
                            {
                                "attempt_number": entry["attempt"],
                                "status_code": entry["status_code"],
                                "error_message": entry["error"],
                            }
                            for entry in attempts
                        ],
                    }
                ]
                if job.webhook_url
                else []
            }
        )

    async def redeliver(self, request: Request) -> Response:
        job = self._run_or_404(request)
        if not job.webhook_url or not job.terminal:
            return _error(409, "CONFLICT", "Run has no callback_url or is not terminal.")
        self.sandbox.spawn(self.sandbox.deliver_webhook(self, job))
        return JSONResponse({"run_id": job.id, "is_automatic": False, "status_code": "pending"}, status_code=201)

    async def admin_cancel(self, request: Request) -> Response:
        key = request.state.api_key or ""
        if not key.startswith("rf_svc_"):  # runflow.md §7 assumption: inference keys get 403
            return _error(403, "PERMISSION_DENIED", "Your account is not authorized to access this resource.")
        job = self.sandbox.jobs.get((self.name, request.path_params["run_id"]))
        if job is None:
            return _error(404, "RUN_NOT_FOUND", "Run not found.")
        try:
            body = await read_json(request)
        except ValueError:
            body = None
        reason = body.get("reason") if isinstance(body, dict) else None
        if reason is not None and (not isinstance(reason, str) or not 3 <= len(reason) <= 500):
            issue = Issue(("body", "reason"), "too_long", "str", reason, 500)
            raise _validation_error([pydantic_v2_error(issue)])
        cancelled = self.sandbox.cancel_job(self, job)
        return JSONResponse(self.record(job), status_code=201 if cancelled else 200)

    async def create_secret(self, request: Request) -> Response:
        try:
            body = await read_json(request)
        except ValueError:
            body = None
        label = body.get("label") if isinstance(body, dict) else None
        key = request.state.api_key
        plain = "whsec_" + secrets.token_hex(24)
        now = isoformat(time.time())
        for older in self._secrets.get(key, []):
            older["is_current"] = False
        record = {
            "id": uuid7(),
            "org_id": _stable_uuid(f"org:{key}"),
            "key_prefix": plain[:12],
            "is_current": True,
            "label": label,
            "disabled_at": None,
            "last_used_at": None,
            "created_at": now,
            "updated_at": now,
        }
        self._secrets.setdefault(key, []).append({**record, "plain_secret": plain})
        return JSONResponse({"plain_secret": plain, **record}, status_code=201)

    async def auth_me(self, request: Request) -> Response:
        key = request.state.api_key
        return JSONResponse(
            {
                "id": _stable_uuid(f"user:{key}"),
                "email": "sandbox@example.invalid",
                "org_id": _stable_uuid(f"org:{key}"),
                "key_prefix": key[:8],
                "scopes": ["admin"] if key.startswith("rf_svc_") else ["inference"],
            }
        )

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def unknown(self, request: Request) -> Response:
        return self.not_found(f"No route for {request.method} {request.url.path}")

    # --- jobs -------------------------------------------------------------------------------------
    async def process(self, job: Job) -> list[RenderedImage]:
        model_input = job.params["input"]
        if job.endpoint == "background-color":
            image = await self.sandbox.load_image(job, model_input["image_url"], require_https=True)
            color = (model_input["color_red"], model_input["color_green"], model_input["color_blue"])
            return [await self.sandbox.render("color", image, "output_0.png", color=color)]
        archive = await self.sandbox.fetch_input(job, model_input["zip_url"])
        image = self._zip_member(archive, model_input["file_image"], "file_image")
        reference = self._zip_member(archive, model_input["file_reference"], "file_reference")
        self.sandbox.check_image(image, "file_image")
        self.sandbox.check_image(reference, "file_reference")
        rendered = await self.sandbox.render(
            "replace", image, "output_0.png", reference_bytes=reference, prompt=model_input.get("prompt")
        )
        return [rendered]

    def _zip_member(self, archive: bytes, member: str, field_name: str) -> bytes:
        try:
            with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
                info = bundle.getinfo(member)
                if info.file_size > self.settings.max_input_bytes:  # zip bombs
                    raise InputError("file_too_large", f"{field_name} {member!r} is larger than the input limit")
                return bundle.read(info)
        except KeyError as exc:
            raise InputError("decode", f"{field_name} {member!r} not found in zip") from exc
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise InputError("decode", f"zip_url is not a readable zip archive: {exc}") from exc

    def _current_secret(self, key: str) -> str | None:
        current = [entry for entry in self._secrets.get(key, []) if entry["is_current"]]
        return current[-1]["plain_secret"] if current else None

    def webhook(self, job: Job) -> WebhookPlan | None:
        if not job.webhook_url or not job.terminal:
            return None
        if job.state == "succeeded":
            output: dict[str, Any] | None = self._output(job)
        elif job.state == "failed" and job.failure is not None:
            values = {"code": job.failure.code, "message": job.failure.message}
            output = {key: values[key] for key in assumptions.RUNFLOW_CALLBACK_FAILURE_KEYS}
        else:
            output = None
        body = json.dumps(
            {
                "event": CALLBACK_EVENTS[job.state],
                "run_id": job.id,
                "status": CALLBACK_STATUS[job.state],
                "output": output,
                "duration_ms": self._duration_ms(job),
                "created_at": isoformat(job.submitted_at),
                "completed_at": isoformat(job.finished_at),
                "metadata": job.extra.get("metadata"),
            }
        ).encode()
        secret = self._current_secret(job.api_key)

        def headers() -> dict[str, str]:
            sent = {"Content-Type": "application/json", "Runflow-Request-Id": f"req_{uuid.uuid4().hex}"}
            if secret is not None:
                sent["Runflow-Signature"] = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            return sent

        return WebhookPlan(
            job.webhook_url,
            body,
            headers,
            retry_on_5xx_or_network,  # seeds 000/001: retries on 5xx / network errors only
            self.assumed.webhook_retry_delays_s,
            self.sandbox.webhook_timeout_s(self.name),
        )
