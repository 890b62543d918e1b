"""Delivering a finished job: download (bounded, retried, checked whole, URL refreshed once), store, describe.

Shared by the single-job operators and the batch operator, so there is one download path.
"""

from __future__ import annotations

import io
import os
import re
import time
from typing import Any

from PIL import Image

from airflow_bgreplace.vendors.base import DEFAULT_DOWNLOAD_TIMEOUT_S, DEFAULT_MAX_DOWNLOAD_BYTES, VendorClient
from airflow_bgreplace.vendors.errors import (
    DownloadError,
    DownloadTimeoutError,
    IncompleteResultError,
    ResultExpiredError,
    TransientError,
)
from airflow_bgreplace.vendors.inputs import check_complete_image, extension_for, sniff_content_type
from airflow_bgreplace.vendors.status import JobStatus

#: The keys of the XCom every operator returns (the batch manifest rows use them too).
RESULT_KEYS = ("vendor", "job_id", "status", "output_uri", "input_uri", "width", "height", "duration_s", "cost_usd")


def download_result(
    client: VendorClient,
    job: JobStatus,
    *,
    max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
    timeout_s: float = DEFAULT_DOWNLOAD_TIMEOUT_S,
) -> tuple[bytes, JobStatus]:
    """The first result image of ``job``, checked to be a whole image.

    Result URLs expire (Runflow's within the hour); on an expired URL, a body that is not a whole
    image, or a server or network error that outlasted the download's own retries, the status is
    read once more, since vendors sign a fresh URL on every read, and the download is tried again.
    Other download errors (refused by the URL policy, too large, too slow) are not retried: a fresh
    URL would not change them. ``timeout_s`` bounds both tries together.
    """
    if not job.result_urls:
        raise DownloadError(f"{job.vendor} job {job.job_id} succeeded but returned no result URL")
    deadline = time.monotonic() + timeout_s
    try:
        return _whole_image(job, client.download(job.result_urls[0], max_bytes=max_bytes, timeout_s=timeout_s)), job
    except (ResultExpiredError, IncompleteResultError, TransientError):
        fresh = client.get_status(job.job_id, job.endpoint)
        if not fresh.result_urls:
            raise
        left = deadline - time.monotonic()
        if left <= 0:
            raise DownloadTimeoutError(
                f"{job.vendor} job {job.job_id}: no time left within {timeout_s:g} s for a fresh result URL"
            ) from None
        try:
            data = client.download(fresh.result_urls[0], max_bytes=max_bytes, timeout_s=left)
        except ResultExpiredError as again:
            reissued = "the same URL" if fresh.result_urls[0] == job.result_urls[0] else "a new URL"
            raise ResultExpiredError(
                f"{job.vendor} job {job.job_id}: the result URL expired before the download, and a fresh "
                f"status read gave {reissued}, which failed too: {again}"
            ) from again
        return _whole_image(fresh, data), fresh


def _whole_image(job: JobStatus, data: bytes) -> bytes:
    try:
        check_complete_image(data)
    except ValueError as exc:
        message = f"{job.vendor} job {job.job_id}: the downloaded result is not a whole image: it {exc}"
        raise IncompleteResultError(message) from None
    return data


def safe_path_part(part: str) -> str:
    """A run id, task id or SKU made safe as one path segment on every filesystem and object store."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", part)


def image_size(data: bytes) -> tuple[int | None, int | None]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.width, image.height
    except (OSError, ValueError, Image.DecompressionBombError):
        return None, None


def with_extension(path: Any, data: bytes) -> Any:
    """Give an output path without a suffix the one its content has (vendors pick webp/png/jpeg)."""
    name = getattr(path, "name", os.path.basename(str(path)))
    if "." in name:
        return path
    return path.with_name(name + extension_for(sniff_content_type(data)))


def store_result(data: bytes, output_path: Any) -> Any:
    """Write ``data`` to an ``ObjectStoragePath``/``Path`` (parents created), returning the path used."""
    target = with_extension(output_path, data)
    parent = target.parent
    if hasattr(parent, "mkdir"):
        parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def describe_input(value: Any) -> str | None:
    """A printable reference to an input image for the XCom (never the bytes themselves)."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if isinstance(value, str) and value.startswith("data:"):
        return value[:40] + "..."
    return str(value)
