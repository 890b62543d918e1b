"""Runflow model API for ``runflow/background-replace`` and ``runflow/background-color``.

Contract: ``shared/vendors/runflow.md`` (seeds 000, 001). A run is created with
``POST /v1/models/runflow/<slug>/runs`` and polled with ``GET /v1/runs/{id}``; the two models
answer different output shapes (``image_urls`` vs ``outputs[].url``, runflow.md §12). Runflow
needs public URLs for every input (data URIs become ``runflow://`` refs that some models reject,
runflow.md §3), so local images are staged.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from io import BytesIO
from typing import Annotated, Any, ClassVar
from urllib.parse import quote

import httpx
from pydantic import AfterValidator, Field, model_validator

from airflow_bgreplace.vendors import assumptions
from airflow_bgreplace.vendors.base import (
    Endpoint,
    ImageInput,
    IntInput,
    RequestFieldError,
    RequestModel,
    VendorApi,
    as_float,
    describe_validation_errors,
    error_json,
    now_utc,
    object_field,
    parse_time,
    plain_error_message,
    require_https,
)
from airflow_bgreplace.vendors.errors import (
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    PaymentRequiredError,
    RateLimitError,
    TransientError,
    VendorError,
)
from airflow_bgreplace.vendors.inputs import (
    MAX_INPUT_BYTES,
    LocalImage,
    build_zip,
    extension_for,
    inspect_image,
    is_remote_url,
    load_local_image,
)
from airflow_bgreplace.vendors.status import JobState, JobStatus, SubmittedJob, map_state
from airflow_bgreplace.vendors.transport import ApiRequest, Operation
from airflow_bgreplace.vendors.webhooks import (
    WebhookCredentials,
    WebhookDelivery,
    required_text,
    split_secrets,
    verify_hmac_sha256,
)

DEFAULT_BASE_URL = "https://api.runflow.io"
OWNER = "runflow"
REPLACE = "background-replace"
COLOR = "background-color"

#: ``client_ref`` sent with every run: the same request always gets the same reference, so a
#: submit whose answer was lost can be found again (runflow.md §3: client refs are <= 255 chars).
CLIENT_REF_PREFIX = "bgreplace-"

#: Sent with the admin cancel (runflow.md §7: optional, 3-500 characters).
CANCEL_REASON = "cancelled by airflow-provider-bgreplace"

#: Callback headers (runflow.md §10).
SIGNATURE_HEADER = "Runflow-Signature"
REQUEST_ID_HEADER = "Runflow-Request-Id"

_DOCUMENTED_FORM = ("zip_url", "file_image", "file_reference")
_CONVENIENCE_FORM = ("image", "reference")


class RunflowBackgroundReplaceRequest(RequestModel):
    """Input of ``runflow/background-replace`` (seed 000).

    Either the documented form (``zip_url`` of an archive plus the two file names inside it), or
    our convenience form (``image`` + ``reference``): the client then builds ``inputs.zip`` with
    members ``image.<ext>`` and ``reference.<ext>`` and stages it. ``zip_url`` may itself be a
    local zip, which is checked for both members and staged.
    """

    zip_url: ImageInput | None = Field(default=None, description="URL (or local file) of a zip holding both images.")
    file_image: str | None = Field(default=None, min_length=1, description="Product photo's name inside the zip.")
    file_reference: str | None = Field(default=None, min_length=1, description="Background's name inside the zip.")
    image: ImageInput | None = Field(default=None, description="Product photo (convenience form).")
    reference: ImageInput | None = Field(default=None, description="Background reference image (convenience form).")
    prompt: str | None = Field(default=None, description="Scene description; empty keeps Runflow's default.")

    @model_validator(mode="after")
    def _one_form(self) -> RunflowBackgroundReplaceRequest:
        documented = [name for name in _DOCUMENTED_FORM if getattr(self, name) is not None]
        convenience = [name for name in _CONVENIENCE_FORM if getattr(self, name) is not None]
        if documented and convenience:
            raise RequestFieldError(
                documented + convenience,
                "give either zip_url + file_image + file_reference or image + reference, not both",
            )
        form = _CONVENIENCE_FORM if convenience else _DOCUMENTED_FORM
        missing = [name for name in form if getattr(self, name) is None]
        if missing:
            other = " (or image + reference)" if form is _DOCUMENTED_FORM else ""
            raise RequestFieldError(missing, f"required: {' + '.join(form)}{other}")
        return self

    @property
    def is_convenience_form(self) -> bool:
        return self.image is not None


Channel = Annotated[IntInput, Field(ge=0, le=255)]


class RunflowBackgroundColorRequest(RequestModel):
    """Input of ``runflow/background-color`` (seed 001): a flat RGB background, shading fixed at 30 %."""

    image_url: Annotated[ImageInput, AfterValidator(require_https)] = Field(
        description="Image to process: https URL (required by Runflow), or a local image to stage."
    )
    color_red: Channel
    color_green: Channel
    color_blue: Channel


_STATES = {
    "queued": JobState.queued,
    "dispatching": JobState.queued,
    "running": JobState.running,
    "succeeded": JobState.succeeded,
    "partial_succeeded": JobState.succeeded,  # terminal; outputs may be incomplete (README §2)
    "failed": JobState.failed,
    "canceled": JobState.cancelled,  # newer docs and the run record
    "cancelled": JobState.cancelled,  # older docs and the seeds' callback table
}


class RunflowApi(VendorApi):
    """Runflow's run API. ``cancel`` works only with an admin-scope key (see :meth:`cancel`)."""

    vendor: ClassVar[str] = "runflow"
    display_name: ClassVar[str] = "Runflow"
    default_base_url: ClassVar[str] = DEFAULT_BASE_URL
    supports_cancel: ClassVar[bool] = False  # no public cancel (runflow.md §7)
    accepts_data_uris: ClassVar[bool] = False
    endpoints: ClassVar[dict[str, Endpoint]] = {
        REPLACE: Endpoint(
            name=REPLACE,
            request_model=RunflowBackgroundReplaceRequest,
            price_usd=assumptions.RUNFLOW.price_usd[REPLACE],
            image_fields=("zip_url", "image", "reference"),
        ),
        COLOR: Endpoint(
            name=COLOR,
            request_model=RunflowBackgroundColorRequest,
            price_usd=assumptions.RUNFLOW.price_usd[COLOR],
            image_fields=("image_url",),
        ),
    }
    error_classes: ClassVar[dict[str, type[VendorError]]] = {
        "UNAUTHORIZED": AuthenticationError,
        "PERMISSION_DENIED": AuthenticationError,
        "EMAIL_NOT_VERIFIED": AuthenticationError,
        "INSUFFICIENT_CREDIT": PaymentRequiredError,
        "RUN_NOT_FOUND": NotFoundError,
        "RATE_LIMITED": RateLimitError,
        "MODEL_UNAVAILABLE": TransientError,
    }

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    @staticmethod
    def client_ref(fingerprint: str) -> str:
        return CLIENT_REF_PREFIX + fingerprint[:32]

    @staticmethod
    def _run_path(job_id: str) -> str:
        return f"/v1/runs/{quote(job_id, safe='')}"

    # -- submit ----------------------------------------------------------------
    def submit(
        self, endpoint: str | None, inputs: dict[str, Any], webhook_url: str | None = None
    ) -> Operation[SubmittedJob]:
        spec = self.endpoint(endpoint)
        request = self.validate(spec.name, inputs)
        fingerprint = self.fingerprint(spec.name, request)
        if isinstance(request, RunflowBackgroundReplaceRequest):
            model_input = yield from self._replace_input(request)
        else:
            assert isinstance(request, RunflowBackgroundColorRequest)
            model_input = yield from self._color_input(request)
        client_ref = self.client_ref(fingerprint)
        body: dict[str, Any] = {"input": model_input, "client_ref": client_ref}
        if webhook_url:
            body["callback_url"] = webhook_url
        submit = ApiRequest(
            "POST",
            f"/v1/models/{OWNER}/{quote(spec.name, safe='')}/runs",
            json=body,
            is_submit=True,
            fingerprint=fingerprint,
            submission_ref={"client_ref": client_ref},
        )
        answer = yield submit
        job_id, data = self.accepted_job(submit, answer, "id")
        return SubmittedJob(
            vendor=self.vendor,
            endpoint=spec.name,
            job_id=job_id,
            fingerprint=fingerprint,
            submitted_at=parse_time(data.get("created_at")) or now_utc(),
            initial_state=map_state(_STATES, data.get("status_code") or "queued"),
            raw=data,
        )

    def _replace_input(self, request: RunflowBackgroundReplaceRequest) -> Operation[dict[str, Any]]:
        if request.is_convenience_form:
            members: dict[str, LocalImage] = {}
            for field in _CONVENIENCE_FORM:
                image = yield from self.load_image(REPLACE, field, getattr(request, field))
                if not image.content_type.startswith("image/"):
                    raise InvalidInputError(self.vendor, REPLACE, field, "not a PNG, JPEG, WebP or GIF image")
                members[f"{field}{extension_for(image.content_type)}"] = image
            file_image, file_reference = list(members)
            zip_url = yield from self.stage("zip_url", build_zip(members))
        else:
            file_image, file_reference = str(request.file_image), str(request.file_reference)
            zip_url = yield from self._zip_url(request.zip_url, (file_image, file_reference))
        model_input = {"zip_url": zip_url, "file_image": file_image, "file_reference": file_reference}
        if request.prompt is not None:
            model_input["prompt"] = request.prompt
        return model_input

    def _zip_url(self, source: Any, names: tuple[str, str]) -> Operation[str]:
        """A remote zip is sent as is; a local one is checked for both members, then staged."""
        if is_remote_url(source):
            return str(source)
        try:
            archive = load_local_image(source, default_name="inputs.zip")
            with zipfile.ZipFile(BytesIO(archive.data)) as opened:
                members = {info.filename: info for info in opened.infolist()}
                for field, name in zip(("file_image", "file_reference"), names, strict=True):
                    if name not in members:
                        raise InvalidInputError(
                            self.vendor, REPLACE, field, f"{name!r} is not in the zip (it holds {sorted(members)})"
                        )
                    # The declared size bounds what is decompressed: a zip bomb stops here.
                    if members[name].file_size > MAX_INPUT_BYTES:
                        raise InvalidInputError(
                            self.vendor, REPLACE, field, f"{name!r} in the zip is larger than {MAX_INPUT_BYTES} bytes"
                        )
                    try:
                        inspect_image(opened.read(name))
                    except ValueError as exc:
                        raise InvalidInputError(self.vendor, REPLACE, field, f"{name!r} in the zip {exc}") from None
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            if isinstance(exc, InvalidInputError):
                raise
            raise InvalidInputError(self.vendor, REPLACE, "zip_url", f"not a readable zip archive: {exc}") from exc
        return (yield from self.stage("zip_url", archive))

    def _color_input(self, request: RunflowBackgroundColorRequest) -> Operation[dict[str, Any]]:
        image_url = yield from self.resolve_image(COLOR, "image_url", request.image_url)
        try:
            require_https(image_url)
        except ValueError as exc:  # a stager publishing over plain http
            raise InvalidInputError(self.vendor, COLOR, "image_url", f"staged at {image_url}: {exc}") from exc
        return {
            "image_url": image_url,
            "color_red": request.color_red,
            "color_green": request.color_green,
            "color_blue": request.color_blue,
        }

    # -- status ----------------------------------------------------------------
    def get_status(self, endpoint: str | None, job_id: str) -> Operation[JobStatus]:
        answer = yield ApiRequest("GET", self._run_path(job_id))
        return self._parse_run(endpoint, job_id, self.read_object(answer))

    def _parse_run(
        self, endpoint: str | None, job_id: str, data: dict[str, Any], error: dict[str, Any] | None = None
    ) -> JobStatus:
        """A run record (``GET /v1/runs/{id}``, the submit answer, or a callback) as a :class:`JobStatus`.

        ``error`` overrides the record's ``error`` envelope (callbacks carry it in ``output``).
        """
        # The documented failure example says ``status``; the API reference ``status_code``.
        state = map_state(_STATES, data.get("status_code") or data.get("status"))
        output = object_field(data, "output")
        error = object_field(data, "error") if error is None else error
        error_code = data.get("failure_code") or error.get("code")
        total, done = data.get("nodes_total"), data.get("nodes_completed")
        duration_ms = as_float(data.get("duration_ms"))
        return JobStatus(
            vendor=self.vendor,
            endpoint=self.endpoint(endpoint).name if endpoint else _endpoint_of(data),
            job_id=str(data.get("id") or job_id),
            state=state,
            result_urls=result_urls(output) if state is JobState.succeeded else [],
            error_code=error_code,
            error_message=data.get("failure_message") or error.get("message"),
            retryable=_retryable(error_code) if state is JobState.failed else None,
            created_at=parse_time(data.get("created_at")),
            started_at=parse_time(data.get("started_at")),
            completed_at=parse_time(data.get("completed_at")),
            duration_s=duration_ms / 1000 if duration_ms is not None else None,
            cost_usd=as_float(data.get("cost")) if assumptions.RUNFLOW_RUN_COST_IS_USD else None,
            progress=100 * done / total if isinstance(total, int) and total > 0 and isinstance(done, int) else None,
            raw=data,
        )

    # -- callbacks (runflow.md §10) ----------------------------------------------
    def webhook_credentials(self, extra: Mapping[str, Any], base_url: str | None = None) -> WebhookCredentials:
        """``webhook_secret``: one ``whsec_`` secret, or several (a list, or comma separated) while rotating."""
        base = super().webhook_credentials(extra, base_url)
        return WebhookCredentials(hmac_secrets=split_secrets(extra.get("webhook_secret")), token=base.token)

    def verify_webhook_signature(
        self, delivery: WebhookDelivery, credentials: WebhookCredentials, keys: Sequence[Any], now: float | None
    ) -> str | None:
        # Runflow signs only once a secret exists; without one the URL token is the only proof.
        if not credentials.hmac_secrets:
            return None
        verify_hmac_sha256(self.vendor, delivery.body, delivery.header(SIGNATURE_HEADER), credentials.hmac_secrets)
        return "hmac-sha256"

    def webhook_status(self, data: dict[str, Any]) -> JobStatus:
        """``{event, run_id, status, output, ...}``; a failed run's ``output`` is its error (assumption)."""
        run_id = required_text(self.vendor, data, "run_id")
        required_text(self.vendor, data, "status")
        code_key, message_key = assumptions.RUNFLOW_CALLBACK_FAILURE_KEYS
        output = object_field(data, "output")
        error = {"code": output.get(code_key), "message": output.get(message_key)}
        return self._parse_run(None, run_id, data, error=error)

    def webhook_delivery_id(self, delivery: WebhookDelivery) -> str | None:
        return delivery.header(REQUEST_ID_HEADER)

    # -- cancel and auth -------------------------------------------------------
    def cancel(self, endpoint: str | None, job_id: str) -> Operation[bool]:
        """Runflow's admin-only cancel (runflow.md §7); True if cancelled, False if already ended.

        Only an admin-scope key (``rf_svc_*``) may call it: a normal ``rf_live_*`` key gets 403,
        raised as :class:`AuthenticationError`. Even when it succeeds it does not stop the
        provider's compute nor refund the run; late results are dropped.
        """
        answer = yield ApiRequest(
            "POST",
            f"/v1/admin/runs/{quote(job_id, safe='')}/cancellation",
            json={"reason": CANCEL_REASON},
            accept_statuses=frozenset({403}),
        )
        if answer.status_code == 403:
            denied = self.error_from_response(answer)
            raise AuthenticationError(
                self.vendor,
                f"{denied.message} (cancel is admin-only: it needs an rf_svc_ key; run {job_id} keeps running)",
                status_code=403,
                code=denied.code,
                raw=denied.raw,
            )
        return answer.status_code != 200  # 201 cancelled now; 200 the run had already ended

    def check_auth(self) -> Operation[None]:
        yield ApiRequest("GET", "/v1/auth/me")

    # -- errors ----------------------------------------------------------------
    def parse_error_body(self, response: httpx.Response) -> tuple[str | None, str]:
        """Runflow's envelope ``{code, message, errors}``; 422 details name the input field."""
        body = error_json(response)
        if not isinstance(body, dict):
            return None, plain_error_message(response)
        code = body.get("code")
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            item_type, detail = describe_validation_errors(errors, skip=("body", "input"))
            return code or item_type, detail
        return code, str(body.get("message") or body)[:300]


def result_urls(output: dict[str, Any]) -> list[str]:
    """``image_urls[]`` (background-replace) or ``outputs[].url`` (background-color)."""
    urls = [str(url) for url in output.get("image_urls") or [] if url]
    for item in output.get("outputs") or []:
        if isinstance(item, dict) and item.get("url") and item["url"] not in urls:
            urls.append(str(item["url"]))
    return urls


def _endpoint_of(data: dict[str, Any]) -> str:
    """The run record names its model by UUID only; its echoed ``input`` tells the two seeds apart."""
    model_input = object_field(data, "input")
    if "zip_url" in model_input:
        return REPLACE
    if "image_url" in model_input:
        return COLOR
    return ""


def _retryable(code: str | None) -> bool | None:
    if code is None:
        return None
    return code in assumptions.RUNFLOW_RETRYABLE_FAILURE_CODES
