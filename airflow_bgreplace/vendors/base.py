"""What every vendor contract has in common, and the sync/async clients that run any of them.

A vendor module subclasses :class:`VendorApi`: it declares its endpoints (request models and
prices), its auth header, how its errors and states look, and writes ``submit``/``status``/``cancel``
as sans-IO operations (see :mod:`.transport`). :class:`VendorClient` and
:class:`AsyncVendorClient` run those operations over HTTP with retries.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Annotated, Any, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from airflow_bgreplace.vendors.errors import (
    AuthenticationError,
    CancelNotSupportedError,
    DownloadError,
    InvalidInputError,
    InvalidRequestError,
    InvalidWebhookTokenError,
    NotFoundError,
    PaymentRequiredError,
    RateLimitError,
    ResultExpiredError,
    SubmissionUncertainError,
    TransientError,
    VendorError,
)
from airflow_bgreplace.vendors.inputs import (
    MAX_INPUT_BYTES,
    ImageSource,
    LocalImage,
    NoStager,
    ReadablePath,
    Stager,
    inspect_image,
    is_data_uri,
    is_remote_url,
    load_local_image,
)
from airflow_bgreplace.vendors.retry import RetryPolicy, parse_retry_after
from airflow_bgreplace.vendors.status import JobStatus, SubmittedJob
from airflow_bgreplace.vendors.transport import (
    ApiRequest,
    AsyncDriver,
    Connection,
    ErrorTranslator,
    Operation,
    SyncDriver,
)
from airflow_bgreplace.vendors.url_policy import (
    DEFAULT_DOWNLOAD_TIMEOUT_S,
    DEFAULT_MAX_DOWNLOAD_BYTES,
    UrlPolicy,
)
from airflow_bgreplace.vendors.webhooks import (
    VerifiedWebhook,
    WebhookCredentials,
    WebhookDelivery,
    verify_token,
    webhook_json,
)

T = TypeVar("T")

#: ``javascript:...``, ``mailto:...``: a scheme without ``//``. Two letters at least, so that a
#: Windows drive (``C:\\photos``) stays a path.
_BARE_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:(?!//)")

# --------------------------------------------------------------------------- request models


def image_label(source: Any) -> str:
    """An image input for messages: a path or URL as given, bytes and data URIs by their size."""
    if isinstance(source, bytes | bytearray):
        return f"<{len(source)} bytes>"
    if is_data_uri(source):
        return f"<data URI, {len(source)} characters>"
    return str(source)[:200]


def _check_image_source(value: Any) -> Any:
    """Accept a URL, a data URI, a local path, bytes or a path-like object; keep it as given."""
    if isinstance(value, str):
        if not value:
            raise ValueError("must not be empty")
        if is_remote_url(value):
            return value
        if is_data_uri(value):
            if not value[5:].lower().startswith("image/") or ";base64," not in value.split(",", 1)[0] + ",":
                raise ValueError("a data URI must be data:image/<format>;base64,<data>")
            return value
        if "://" in value:
            raise ValueError(f"unsupported URL scheme {value.split('://', 1)[0]!r} (use http(s) or a path)")
        if _BARE_SCHEME.match(value):
            raise ValueError(f"unsupported URL scheme {value.split(':', 1)[0]!r} (use http(s) or a path)")
        return value  # a local path; read (and checked) when the request is prepared
    if isinstance(value, bytes | bytearray):
        if not value:
            raise ValueError("image bytes are empty")
        return bytes(value)
    if hasattr(value, "__fspath__") or isinstance(value, ReadablePath):
        return value
    raise ValueError(f"expected an image URL, path or bytes, got {type(value).__name__}")


#: An image input field: http(s) URL, data URI, local path, ``ObjectStoragePath`` or bytes.
ImageInput = Annotated[Any, BeforeValidator(_check_image_source)]


def _not_a_boolean(value: Any) -> Any:
    # Pydantic reads True as 1; for a colour channel, a seed or an opacity that is always a mistake.
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    return value


#: A whole-number input. Numeric strings are accepted (Airflow templates render strings) and
#: sent as numbers; booleans and fractions are refused.
IntInput = Annotated[int, BeforeValidator(_not_a_boolean)]
#: A number input, with the same rules as :data:`IntInput`.
FloatInput = Annotated[float, BeforeValidator(_not_a_boolean)]


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_https(value: Any) -> Any:
    """For vendors that document "HTTPS required"; http stays allowed on loopback (the sandbox)."""
    if isinstance(value, str) and value.startswith("http://") and not is_loopback_url(value):
        raise ValueError("the vendor requires an https:// URL")
    return value


class RequestModel(BaseModel):
    """Base of the request models: unknown fields are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)


class RequestFieldError(ValueError):
    """Raised by a model validator to blame named fields.

    Pydantic reports a model-level error without a location; :meth:`VendorApi.validate` reads
    ``fields`` from this error so that the :class:`InvalidInputError` still names them.
    """

    def __init__(self, fields: tuple[str, ...] | list[str], message: str) -> None:
        super().__init__(message)
        self.fields = tuple(fields)
        self.message = message


@dataclass(frozen=True)
class Endpoint:
    """One vendor endpoint (a model, or an operation of a vendor)."""

    name: str
    request_model: type[RequestModel]
    #: Price per request in USD (documented or an assumption; see assumptions.py).
    price_usd: float
    #: Fields of ``request_model`` that hold an image input.
    image_fields: tuple[str, ...]


# --------------------------------------------------------------------------- the contract base


class _Default(enum.Enum):
    """Marks an argument left out, where ``None`` is a meaningful choice."""

    unset = "unset"


#: ``VendorApi(stager=DEFAULT_STAGER)``: the vendor's own default (see :meth:`VendorApi.default_stager`).
DEFAULT_STAGER = _Default.unset


class VendorApi(ErrorTranslator):
    """A vendor's HTTP contract, without any I/O."""

    vendor: ClassVar[str]
    display_name: ClassVar[str]
    default_base_url: ClassVar[str]
    endpoints: ClassVar[dict[str, Endpoint]]
    #: Whether the vendor has a public cancel (vendors/README.md §7).
    supports_cancel: ClassVar[bool] = False
    #: Whether local images may be sent inline as data URIs (else they are staged at a URL).
    accepts_data_uris: ClassVar[bool] = False
    #: Whether the vendor needs an API key (the embedded local engine does not).
    requires_api_key: ClassVar[bool] = True
    #: The vendor's own error codes that decide the error class whatever the HTTP status.
    error_classes: ClassVar[dict[str, type[VendorError]]] = {}

    def __init__(self, stager: Stager | Literal[_Default.unset] | None = DEFAULT_STAGER) -> None:
        """``stager=None`` stages nothing (local images are refused with advice); leaving it out
        uses the vendor's :meth:`default_stager`."""
        self.stager = self.default_stager() if stager is DEFAULT_STAGER else stager

    def default_stager(self) -> Stager | None:
        """The stager used when none is configured; a vendor with its own upload endpoint overrides it."""
        return None

    # -- description -------------------------------------------------------
    @property
    def default_endpoint(self) -> str | None:
        return next(iter(self.endpoints)) if len(self.endpoints) == 1 else None

    def endpoint(self, name: str | None) -> Endpoint:
        name = name or self.default_endpoint
        if name is None:
            raise InvalidInputError(self.vendor, "?", "endpoint", f"choose one of {sorted(self.endpoints)}")
        try:
            return self.endpoints[name]
        except KeyError:
            raise InvalidInputError(
                self.vendor, name, "endpoint", f"unknown endpoint; choose one of {sorted(self.endpoints)}"
            ) from None

    def auth_headers(self, api_key: str) -> dict[str, str]:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- validation --------------------------------------------------------
    def validate(self, endpoint: str | None, inputs: dict[str, Any]) -> RequestModel:
        """Validate ``inputs`` against the endpoint's documented schema; name the bad field."""
        spec = self.endpoint(endpoint)
        try:
            return spec.request_model.model_validate(inputs)
        except PydanticValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "(request)"
            message = first["msg"].removeprefix("Value error, ")
            blamed = first.get("ctx", {}).get("error")
            if isinstance(blamed, RequestFieldError):
                field = ", ".join(blamed.fields) or field
                message = blamed.message
            if "input" in first and first["type"] not in ("missing",) and not isinstance(first["input"], dict):
                shown = repr(first["input"])
                message += f" (got {shown[:80]}{'...' if len(shown) > 80 else ''})"
            raise InvalidInputError(self.vendor, spec.name, field, message) from exc

    # -- preparing a request -----------------------------------------------
    def resolve_image(self, endpoint: str, field: str, source: ImageSource) -> Operation[str]:
        """Turn an image input into a URL or data URI the vendor accepts.

        Images that pass through us (paths, bytes, data URIs) are checked first
        (:func:`~.inputs.inspect_image`): a file that is not a usable image costs no paid call.
        A URL is the vendor's to fetch and is passed on. A configured stager wins over inline data
        URIs (fal's ``use_vendor_upload``).
        """
        if is_remote_url(source):
            assert isinstance(source, str)
            return source
        image = self._local_image(endpoint, field, source)
        if self.accepts_data_uris and self.stager is None:
            return source if isinstance(source, str) and is_data_uri(source) else image.data_uri()
        return (yield from self.stage(field, image))

    def _local_image(self, endpoint: str, field: str, source: ImageSource) -> LocalImage:
        try:
            image = load_local_image(source, default_name=field)
        except (ValueError, OSError) as exc:
            raise InvalidInputError(self.vendor, endpoint, field, str(exc)) from exc
        try:
            inspect_image(image.data)
        except ValueError as exc:
            raise InvalidInputError(self.vendor, endpoint, field, f"{image_label(source)} {exc}") from exc
        return image

    def stage(self, field: str, image: LocalImage) -> Operation[str]:
        stager = self.stager or NoStager(self.display_name, field)
        return (yield from stager.stage(image))

    def load_image(self, endpoint: str, field: str, source: ImageSource) -> Operation[LocalImage]:
        """The bytes of an image input, fetched first when it is a URL.

        For vendors that take images packed (Runflow's zip): the bytes must pass through us.
        The fetch never carries the vendor's key and is bounded like every input.
        """
        if not is_remote_url(source):
            return self._local_image(endpoint, field, source)
        assert isinstance(source, str)
        shown = source.split("?", 1)[0]  # presigned URLs carry secrets in the query
        try:
            answer = yield ApiRequest(
                "GET",
                source,
                authenticated=False,
                expect_json=False,
                max_bytes=MAX_INPUT_BYTES,
                accept_statuses=frozenset(range(400, 500)),
                external=True,  # bounded by the connection's fetch_timeout_s
            )
        except DownloadError as exc:  # refused by the URL policy, too large, too slow
            raise InvalidInputError(self.vendor, endpoint, field, f"could not fetch {shown}: {exc}") from exc
        except TransientError as exc:  # unreachable: still worth a retry of the task, so keep the class
            raise TransientError(
                self.vendor, f"field {field!r}: could not fetch {shown}: {exc.message}", status_code=exc.status_code
            ) from exc
        if not answer.is_success:
            raise InvalidInputError(self.vendor, endpoint, field, f"could not fetch {shown}: HTTP {answer.status_code}")
        name = PurePosixPath(urlsplit(source).path).name or field
        try:
            image = load_local_image(answer.content, default_name=name)
            inspect_image(image.data)
        except ValueError as exc:
            raise InvalidInputError(self.vendor, endpoint, field, f"{shown} {exc}") from exc
        return image

    @staticmethod
    def fingerprint(endpoint: str, request: RequestModel) -> str:
        """A stable hash of what was asked, with local images replaced by their content hash."""

        def canonical(value: Any) -> Any:
            if isinstance(value, bytes):
                return "sha256:" + hashlib.sha256(value).hexdigest()
            if isinstance(value, str | int | float | bool) or value is None:
                return value
            if isinstance(value, dict):
                return {k: canonical(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [canonical(v) for v in value]
            try:  # paths and ObjectStoragePaths: hash the content, not the name
                return canonical(load_local_image(value).data)
            except (ValueError, OSError):
                return str(value)

        body = json.dumps({"endpoint": endpoint, "inputs": canonical(request.model_dump())}, sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()

    # -- reading answers -----------------------------------------------------
    def read_object(self, response: httpx.Response) -> dict[str, Any]:
        """The JSON object of a 2xx answer; any other JSON is an unreadable (transient) answer."""
        data = response.json()
        if not isinstance(data, dict):
            raise TransientError(
                self.vendor, f"expected a JSON object, got {type(data).__name__}", status_code=response.status_code
            )
        return data

    def accepted_job(self, request: ApiRequest, response: httpx.Response, id_field: str) -> tuple[str, dict[str, Any]]:
        """(job id, body) of a submit's 2xx answer.

        An answer without an id means the vendor took the request but we cannot follow the job:
        that is a :class:`SubmissionUncertainError`, never a reason to submit again.
        """
        data = response.json()
        job_id = data.get(id_field) if isinstance(data, dict) else None
        if not isinstance(data, dict) or job_id in (None, ""):
            raise SubmissionUncertainError(
                self.vendor,
                f"submit answered HTTP {response.status_code} without {id_field!r}; not resent to avoid "
                f"paying twice. Find the job by {request.submission_ref or 'its fingerprint'}",
                submission_ref=request.submission_ref,
                fingerprint=request.fingerprint,
                status_code=response.status_code,
                raw=data,
            )
        return str(job_id), data

    # -- the operations (sans-IO) ------------------------------------------
    def submit(
        self, endpoint: str | None, inputs: dict[str, Any], webhook_url: str | None = None
    ) -> Operation[SubmittedJob]:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_status(self, endpoint: str | None, job_id: str) -> Operation[JobStatus]:  # pragma: no cover
        raise NotImplementedError

    def cancel(self, endpoint: str | None, job_id: str) -> Operation[bool]:
        """Ask the vendor to cancel; True if it accepted, False if the job had already ended."""
        raise CancelNotSupportedError(
            self.vendor, f"{self.display_name} has no public cancel; job {job_id} keeps running at the vendor"
        )
        yield  # pragma: no cover

    def read_own_result(self, url: str, max_bytes: int) -> bytes | None:
        """Results a vendor keeps on this machine (the local engine); None for every remote vendor."""
        return None

    def check_auth(self) -> Operation[None]:  # pragma: no cover - abstract
        """A cheap authenticated call, for ``test_connection``."""
        raise NotImplementedError

    # -- webhooks (see vendors/webhooks.py) -------------------------------------
    def webhook_credentials(self, extra: Mapping[str, Any], base_url: str | None = None) -> WebhookCredentials:
        """What a connection's extras configure to authenticate deliveries (``webhook_token``, ...).

        ``base_url`` is the connection's base-URL override, for vendors whose keys live beside the API.
        """
        token = extra.get("webhook_token")
        return WebhookCredentials(token=str(token) if token else None)

    def read_webhook(
        self,
        delivery: WebhookDelivery,
        credentials: WebhookCredentials,
        keys: Sequence[Any] = (),
        now: float | None = None,
    ) -> VerifiedWebhook:
        """Authenticate one delivery, then parse it; typed errors say which check failed.

        The order matters: nothing of an unauthenticated body is parsed, and the checks that need
        the payload (ImagePipeline's timestamp, fal's request id) run last.
        """
        verified_by = self.authenticate_webhook(delivery, credentials, keys, now)
        status = self.parse_webhook(delivery.body)
        self.check_webhook(status, delivery, now)
        return VerifiedWebhook(status=status, verified_by=verified_by, delivery_id=self.webhook_delivery_id(delivery))

    def authenticate_webhook(
        self, delivery: WebhookDelivery, credentials: WebhookCredentials, keys: Sequence[Any], now: float | None
    ) -> str:
        """The URL token when the connection has one, plus the vendor's signature; at least one is required."""
        proofs = []
        if credentials.token:
            verify_token(self.vendor, delivery.token, credentials.token)
            proofs.append("token")
        signature = self.verify_webhook_signature(delivery, credentials, keys, now)
        if signature:
            proofs.append(signature)
        if not proofs:
            raise InvalidWebhookTokenError(
                self.vendor,
                f"{self.display_name} deliveries are not signed here: the connection must set webhook_token",
            )
        return "+".join(proofs)

    def verify_webhook_signature(
        self, delivery: WebhookDelivery, credentials: WebhookCredentials, keys: Sequence[Any], now: float | None
    ) -> str | None:
        """The name of the signature scheme that verified, or None when the vendor signs nothing."""
        return None

    def parse_webhook(self, body: bytes) -> JobStatus:
        """A delivery's payload as the common job status (:class:`MalformedWebhookError` if it is not one)."""
        return self.webhook_status(webhook_json(self.vendor, body))

    def webhook_status(self, data: dict[str, Any]) -> JobStatus:  # pragma: no cover - abstract
        raise NotImplementedError

    def check_webhook(self, status: JobStatus, delivery: WebhookDelivery, now: float | None) -> None:
        """Checks that need the parsed payload (replay windows, ids bound by the signature)."""

    def webhook_delivery_id(self, delivery: WebhookDelivery) -> str | None:
        """The vendor's id of this delivery attempt, when it sends one."""
        return None

    # -- errors --------------------------------------------------------------
    def parse_error_body(self, response: httpx.Response) -> tuple[str | None, str]:
        """(vendor error code, message) from an error answer; vendors override for their shapes."""
        try:
            body = response.json()
        except ValueError:
            return None, response.text[:300] or response.reason_phrase
        return None, json.dumps(body)[:300]

    def error_class(self, response: httpx.Response, code: str | None) -> type[VendorError]:
        if code is not None and code in self.error_classes:
            return self.error_classes[code]
        status = response.status_code
        if status in (401, 403):
            return AuthenticationError
        if status == 402:
            return PaymentRequiredError
        if status == 404:
            return NotFoundError
        if status == 429:
            return RateLimitError
        if status in (400, 409, 413, 422) or 400 <= status < 500:
            return InvalidRequestError
        return TransientError

    def error_from_response(self, response: httpx.Response) -> VendorError:
        code, message = self.parse_error_body(response)
        cls = self.error_class(response, code)
        raw: Any
        try:
            raw = response.json()
        except ValueError:
            raw = response.text[:1000]
        if cls is RateLimitError:
            return RateLimitError(
                self.vendor,
                message,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                status_code=response.status_code,
                code=code,
                raw=raw,
            )
        return cls(self.vendor, message, status_code=response.status_code, code=code, raw=raw)


def error_json(response: httpx.Response) -> Any:
    """The JSON of an error answer, or None when it has none (proxies answer HTML)."""
    try:
        return response.json()
    except ValueError:
        return None


def plain_error_message(response: httpx.Response) -> str:
    return response.text[:300] or response.reason_phrase


def describe_validation_errors(items: list[Any], skip: tuple[str, ...] = ("body",)) -> tuple[str | None, str]:
    """(type, "field: message") of the first item of a Pydantic/FastAPI style error list.

    Items look like ``{"loc": ["body", "input", "color_red"], "msg": "...", "type": "..."}``
    (fal, ImagePipeline, and by assumption Runflow); leading ``skip`` parts of ``loc`` are the
    request envelope, not the field.
    """
    first = items[0]
    if not isinstance(first, dict):
        return None, str(first)[:300]
    loc = [str(part) for part in first.get("loc") or []]
    while loc and loc[0] in skip:
        loc.pop(0)
    where = ".".join(loc)
    message = f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    if len(items) > 1:
        message += f" (+{len(items) - 1} more)"
    return first.get("type"), message


def object_field(data: dict[str, Any], key: str) -> dict[str, Any]:
    """``data[key]`` when it is a JSON object, else an empty one (vendors send null, omit it, or a string)."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def as_float(value: Any) -> float | None:
    """A number the vendor sent as a number or a decimal string; anything else is None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def parse_time(value: Any) -> datetime | None:
    """Vendors send ISO 8601 (with ``Z`` or ``+00:00``) or Unix seconds; tolerate both, never fail."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(float(value), timezone.utc)
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None


# --------------------------------------------------------------------------- downloads


def _download(api: VendorApi, url: str, max_bytes: int, timeout_s: float) -> Operation[bytes]:
    local = api.read_own_result(url, max_bytes)
    if local is not None:
        return local
    if is_data_uri(url):
        try:
            return load_local_image(url).data
        except ValueError as exc:
            raise DownloadError(f"{api.vendor}: inline result is not valid base64: {exc}") from exc
    if not is_remote_url(url):
        raise DownloadError(f"{api.vendor}: result location is not an http(s) URL: {url[:60]}")
    response = yield ApiRequest(
        "GET",
        url,
        authenticated=False,
        expect_json=False,
        max_bytes=max_bytes,
        # Each attempt gets the connection's timeout: a stalled answer is retried within the deadline.
        timeout_s=None,
        accept_statuses=frozenset({401, 403, 404, 410}),
        external=True,
        deadline=time.monotonic() + timeout_s,  # one deadline for every attempt
    )
    if not response.is_success:
        raise ResultExpiredError(
            f"{api.vendor}: result URL answered HTTP {response.status_code} (expired or withdrawn); "
            "read the job status again for a fresh URL"
        )
    return response.content


def _download_policy(timeout_s: float) -> RetryPolicy:
    return RetryPolicy(max_attempts=4, base_delay_s=0.5, max_delay_s=8.0, deadline_s=timeout_s)


# --------------------------------------------------------------------------- the clients


class _ClientBase:
    def __init__(
        self,
        api: VendorApi,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        url_policy: UrlPolicy | None = None,
    ) -> None:
        """``url_policy``: what result and input URLs may be fetched (default: https, public
        addresses only; the base URL's own origin is always trusted). See url_policy.py."""
        if not api_key and api.requires_api_key:
            raise AuthenticationError(api.vendor, "no API key configured (set the connection password)")
        self.api = api
        self.retry = retry or RetryPolicy()
        base = (base_url or api.default_base_url).rstrip("/")
        self.connection = Connection(
            base_url=base,
            auth_headers=api.auth_headers(api_key),
            timeout_s=timeout_s,
            url_policy=(url_policy or UrlPolicy()).with_origin(base),
        )

    @property
    def vendor(self) -> str:
        return self.api.vendor

    def __repr__(self) -> str:  # never shows the key
        return f"{type(self).__name__}(vendor={self.vendor!r}, base_url={self.connection.base_url!r})"


class VendorClient(_ClientBase):
    """Synchronous client over ``httpx.Client``: for workers and scripts."""

    def __init__(self, api: VendorApi, *, http_client: httpx.Client | None = None, **kwargs: Any) -> None:
        super().__init__(api, **kwargs)
        self._driver = SyncDriver(self.connection, api, self.retry, http_client)

    def __enter__(self) -> VendorClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._driver.close()

    def run(self, operation: Operation[T]) -> T:
        """Run any operation of ``self.api`` (e.g. :func:`~.polling.wait_for_terminal`)."""
        return self._driver.run(operation)

    def submit(self, endpoint: str | None = None, *, webhook_url: str | None = None, **inputs: Any) -> SubmittedJob:
        return self._driver.run(self.api.submit(endpoint, inputs, webhook_url))

    def get_status(self, job_id: str, endpoint: str | None = None) -> JobStatus:
        return self._driver.run(self.api.get_status(endpoint, job_id))

    def cancel(self, job_id: str, endpoint: str | None = None) -> bool:
        return self._driver.run(self.api.cancel(endpoint, job_id))

    def check_auth(self) -> None:
        self._driver.run(self.api.check_auth())

    def download(
        self, url: str, *, max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES, timeout_s: float = DEFAULT_DOWNLOAD_TIMEOUT_S
    ) -> bytes:
        return self._driver.run(_download(self.api, url, max_bytes, timeout_s), _download_policy(timeout_s))


class AsyncVendorClient(_ClientBase):
    """Asynchronous client over ``httpx.AsyncClient``: for triggers in the triggerer."""

    def __init__(
        self, api: VendorApi, *, http_client: httpx.AsyncClient | None = None, **kwargs: Any
    ) -> None:
        super().__init__(api, **kwargs)
        self._driver = AsyncDriver(self.connection, api, self.retry, http_client)

    async def __aenter__(self) -> AsyncVendorClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._driver.aclose()

    async def run(self, operation: Operation[T]) -> T:
        """Run any operation of ``self.api`` (e.g. :func:`~.polling.wait_for_terminal`)."""
        return await self._driver.run(operation)

    async def submit(
        self, endpoint: str | None = None, *, webhook_url: str | None = None, **inputs: Any
    ) -> SubmittedJob:
        return await self._driver.run(self.api.submit(endpoint, inputs, webhook_url))

    async def get_status(self, job_id: str, endpoint: str | None = None) -> JobStatus:
        return await self._driver.run(self.api.get_status(endpoint, job_id))

    async def cancel(self, job_id: str, endpoint: str | None = None) -> bool:
        return await self._driver.run(self.api.cancel(endpoint, job_id))

    async def check_auth(self) -> None:
        await self._driver.run(self.api.check_auth())

    async def download(
        self, url: str, *, max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES, timeout_s: float = DEFAULT_DOWNLOAD_TIMEOUT_S
    ) -> bytes:
        return await self._driver.run(_download(self.api, url, max_bytes, timeout_s), _download_policy(timeout_s))


ApiFactory = Callable[..., VendorApi]
