"""The ``local`` vendor: the embedded engine behind the same contract as the paid vendors.

It runs in the process that submits (a worker), so a "job" is finished when ``submit`` returns;
its status and result are kept under ``work_dir`` so that any later status read or download,
in any process on the machine, finds them. Free, offline, no key. A DAG switches between
``local`` and a paid vendor by configuration alone.
"""

from __future__ import annotations

import re
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from airflow_bgreplace.vendors.base import Endpoint, ImageInput, RequestModel, VendorApi, now_utc
from airflow_bgreplace.vendors.errors import DownloadError, InvalidInputError, NotFoundError
from airflow_bgreplace.vendors.inputs import extension_for
from airflow_bgreplace.vendors.status import JobState, JobStatus, SubmittedJob
from airflow_bgreplace.vendors.transport import Operation

REMOVE, COLOR, REPLACE = "background/remove", "background/color", "background/replace"
_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")


def parse_color(value: Any) -> tuple[int, int, int]:
    """``#RRGGBB``, ``RRGGBB``, ``"r,g,b"`` or a 3-sequence of 0-255 ints."""
    given = value
    if isinstance(value, str):
        match = _HEX.match(value.strip())
        if match:
            digits = match.group(1)
            return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)
        value = [part.strip() for part in value.split(",")]
    try:
        red, green, blue = (int(part) for part in value)
    except (TypeError, ValueError):
        raise ValueError(f"{given!r} is not a colour (#RRGGBB or r,g,b)") from None
    if not all(0 <= channel <= 255 for channel in (red, green, blue)):
        raise ValueError(f"colour channels must be 0-255, got {(red, green, blue)}")
    return red, green, blue


class _LocalRequest(RequestModel):
    image: ImageInput
    output_format: str = Field(default="png", pattern="^(png|jpeg|webp)$")


class LocalRemoveRequest(_LocalRequest):
    """Cut the product out onto transparency (png/webp) or white (jpeg)."""


class LocalColorRequest(_LocalRequest):
    """The product on a flat colour, with Runflow-style soft shading and an optional drop shadow."""

    color: tuple[int, int, int]
    shading: float = Field(default=0.30, ge=0, le=1)
    drop_shadow: bool = False
    shadow_opacity: float = Field(default=0.38, ge=0, le=1)
    shadow_blur: float = Field(default=0.018, ge=0, le=1)
    shadow_dy: float = Field(default=0.022, ge=-1, le=1)
    shadow_dx: float = Field(default=0.004, ge=-1, le=1)

    @field_validator("color", mode="before")
    @classmethod
    def _color(cls, value: Any) -> tuple[int, int, int]:
        return parse_color(value)


class LocalReplaceRequest(_LocalRequest):
    """The product onto a reference scene, or onto a studio backdrop derived from a prompt."""

    reference: ImageInput | None = None
    prompt: str | None = None
    seed: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _scene(self) -> LocalReplaceRequest:
        if self.reference is None and not self.prompt:
            raise ValueError("give a reference image or a prompt")
        return self


class LocalApi(VendorApi):
    vendor: ClassVar[str] = "local"
    display_name: ClassVar[str] = "Local engine"
    default_base_url: ClassVar[str] = "local://engine"
    accepts_data_uris: ClassVar[bool] = True
    requires_api_key: ClassVar[bool] = False
    endpoints: ClassVar[dict[str, Endpoint]] = {
        REMOVE: Endpoint(REMOVE, LocalRemoveRequest, 0.0, ("image",)),
        COLOR: Endpoint(COLOR, LocalColorRequest, 0.0, ("image",)),
        REPLACE: Endpoint(REPLACE, LocalReplaceRequest, 0.0, ("image", "reference")),
    }

    def __init__(self, work_dir: str | Path | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.work_dir = Path(work_dir) if work_dir else Path(tempfile.gettempdir()) / "bgreplace-local-jobs"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {}

    def submit(
        self, endpoint: str | None, inputs: dict[str, Any], webhook_url: str | None = None
    ) -> Operation[SubmittedJob]:
        from airflow_bgreplace import engine

        request = self.validate(endpoint, inputs)
        spec = self.endpoint(endpoint)
        fingerprint = self.fingerprint(spec.name, request)
        image = (yield from self.load_image(spec.name, "image", request.image)).data  # type: ignore[attr-defined]
        job_id = f"local-{int(time.time() * 1000):x}-{secrets.token_hex(4)}"
        started = time.time()
        try:
            if isinstance(request, LocalColorRequest):
                result = engine.recolor(
                    image,
                    request.color,
                    shading=request.shading,
                    drop_shadow=request.drop_shadow,
                    shadow_opacity=request.shadow_opacity,
                    shadow_blur=request.shadow_blur,
                    shadow_dy=request.shadow_dy,
                    shadow_dx=request.shadow_dx,
                    output_format=request.output_format,
                )
            elif isinstance(request, LocalReplaceRequest) and request.reference is not None:
                reference = (yield from self.load_image(spec.name, "reference", request.reference)).data
                result = engine.replace_with_reference(
                    image, reference, prompt=request.prompt, output_format=request.output_format
                )
            elif isinstance(request, LocalReplaceRequest):
                assert request.prompt is not None
                result = engine.replace_with_prompt(
                    image, request.prompt, seed=request.seed, output_format=request.output_format
                )
            else:
                result = engine.remove_background(image, output_format=request.output_format)  # type: ignore[attr-defined]
        except engine.EngineInputError as exc:  # names its input: image, reference, color, shading...
            raise InvalidInputError(self.vendor, spec.name, exc.which, f"{exc} ({exc.cause})") from exc
        status = JobStatus(
            vendor=self.vendor,
            endpoint=spec.name,
            job_id=job_id,
            state=JobState.succeeded,
            result_urls=[self._store(job_id, result.data, result.content_type)],
            created_at=now_utc(),
            completed_at=now_utc(),
            duration_s=round(time.time() - started, 3),
            cost_usd=0.0,
            raw={
                "engine": {
                    "method": result.method,
                    "confidence": result.confidence,
                    "low_confidence": result.low_confidence,
                    "notes": list(result.notes),
                    "timings_s": dict(result.timings_s),
                }
            },
        )
        (self.work_dir / f"{job_id}.json").write_text(status.model_dump_json())
        return SubmittedJob(
            vendor=self.vendor,
            endpoint=spec.name,
            job_id=job_id,
            fingerprint=fingerprint,
            submitted_at=now_utc(),
            initial_state=JobState.succeeded,
            raw=status.raw,
        )

    def _store(self, job_id: str, data: bytes, content_type: str) -> str:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        path = self.work_dir / f"{job_id}{extension_for(content_type)}"
        path.write_bytes(data)
        return path.resolve().as_uri()

    def get_status(self, endpoint: str | None, job_id: str) -> Operation[JobStatus]:
        record = self.work_dir / f"{Path(job_id).name}.json"
        if not record.is_file():
            raise NotFoundError(self.vendor, f"job {job_id} is not in {self.work_dir}")
        return JobStatus.model_validate_json(record.read_text())
        yield  # pragma: no cover - makes this an operation

    def check_auth(self) -> Operation[None]:
        from airflow_bgreplace import engine  # the engine imports: nothing else to check

        del engine
        return None
        yield  # pragma: no cover

    def read_own_result(self, url: str, max_bytes: int) -> bytes | None:
        if not url.startswith("file://"):
            return None
        path = Path(urlsplit(url).path).resolve()
        if self.work_dir.resolve() not in path.parents:
            raise DownloadError(f"local: {path} is outside the engine's work folder")
        if path.stat().st_size > max_bytes:
            raise DownloadError(f"local: {path.name} is larger than {max_bytes} bytes")
        return path.read_bytes()
