"""Image inputs: URLs, local paths, object-storage paths or bytes, made into what a vendor accepts.

Vendors take an image either inline (base64 data URI: FASHN, fal) or only as a public URL
(Runflow, ImagePipeline). :func:`load_local_image` reads anything that is not already a URL;
a :class:`Stager` publishes bytes at a public URL where the vendor needs one.

Nothing here imports Airflow: an ``ObjectStoragePath`` (or any ``upath``-like object) is
recognised by its ``read_bytes``/``write_bytes`` methods.
"""

from __future__ import annotations

import base64
import io
import mimetypes
import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from airflow_bgreplace.vendors.errors import StagingNotConfiguredError
from airflow_bgreplace.vendors.transport import ApiRequest, Operation

#: Largest image we read from a local source to send to a vendor.
MAX_INPUT_BYTES = 50 * 1024 * 1024
#: Most pixels an input image may declare: Pillow's own decompression-bomb threshold, set here
#: explicitly and checked from the header, so a tiny file declaring 50,000 x 50,000 costs nothing.
MAX_INPUT_PIXELS = 89_478_485
#: Smaller images carry no product (and the local engine refuses them): not worth a paid call.
MIN_INPUT_SIDE = 8


@runtime_checkable
class ReadablePath(Protocol):
    """``ObjectStoragePath``, ``pathlib.Path`` and ``upath.UPath`` all look like this."""

    @property
    def name(self) -> str: ...

    def read_bytes(self) -> bytes: ...


ImageSource = str | bytes | os.PathLike[str] | ReadablePath


@dataclass(frozen=True)
class LocalImage:
    """Bytes of an image that is not reachable by URL yet."""

    data: bytes
    filename: str
    content_type: str

    def data_uri(self) -> str:
        return f"data:{self.content_type};base64,{base64.b64encode(self.data).decode('ascii')}"


def is_remote_url(value: object) -> bool:
    return isinstance(value, str) and urlsplit(value).scheme in ("http", "https")


def is_data_uri(value: object) -> bool:
    return isinstance(value, str) and value.startswith("data:")


def sniff_content_type(data: bytes, filename: str = "") -> str:
    """Content type from magic bytes (names lie: a .jpg may be a PNG), else from the name."""
    signatures = (
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"PK\x03\x04", "application/zip"),
    )
    for magic, content_type in signatures:
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif",
               "application/zip": ".zip"}


def extension_for(content_type: str) -> str:
    return _EXTENSIONS.get(content_type, ".bin")


def load_local_image(source: ImageSource, default_name: str = "image") -> LocalImage:
    """Read a non-URL image source. Raises ``ValueError`` with a readable reason."""
    if isinstance(source, bytes | bytearray):
        data, name = bytes(source), default_name
    elif is_data_uri(source):
        assert isinstance(source, str)
        header, _, payload = source.partition(",")
        if ";base64" not in header:
            raise ValueError("data URI must be base64-encoded (data:image/<type>;base64,...)")
        data, name = base64.b64decode(payload, validate=True), default_name
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"no such file: {path}")
        if path.stat().st_size > MAX_INPUT_BYTES:
            raise ValueError(f"{path} is larger than {MAX_INPUT_BYTES} bytes")
        data, name = path.read_bytes(), path.name
    elif isinstance(source, ReadablePath):
        data, name = source.read_bytes(), source.name or default_name
    else:
        raise ValueError(f"not an image source: {type(source).__name__}")
    if not data:
        raise ValueError("image is empty")
    if len(data) > MAX_INPUT_BYTES:
        raise ValueError(f"image is larger than {MAX_INPUT_BYTES} bytes")
    content_type = sniff_content_type(data, name)
    if "." not in name:
        name += extension_for(content_type)
    return LocalImage(data=data, filename=name, content_type=content_type)


def inspect_image(data: bytes) -> tuple[str, int, int]:
    """``(format, width, height)`` of an image about to be sent; ``ValueError`` says what is wrong.

    Refused: what is not an image (named by what it looks like), truncated or corrupt files,
    sizes outside :data:`MIN_INPUT_SIDE` .. :data:`MAX_INPUT_PIXELS` (from the header, before any
    pixel is decoded) and animations (a vendor would silently keep one frame). CMYK, 16-bit and
    palette images are fine: every vendor and the local engine convert them.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies below
            with Image.open(io.BytesIO(data)) as image:
                fmt, (width, height) = str(image.format), image.size
                frames = int(getattr(image, "n_frames", 1)) if getattr(image, "is_animated", False) else 1
    except Image.DecompressionBombError as exc:
        raise ValueError(f"is too large: {exc} (the limit here is {MAX_INPUT_PIXELS} pixels)") from None
    except UnidentifiedImageError:
        raise ValueError(f"is not an image ({_looks_like(data)})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ValueError(f"is not a readable image ({_looks_like(data)}): {exc}") from None
    if width * height > MAX_INPUT_PIXELS:
        raise ValueError(f"is {width}x{height} = {width * height} pixels, more than the limit of {MAX_INPUT_PIXELS}")
    if min(width, height) < MIN_INPUT_SIDE:
        raise ValueError(f"is {width}x{height}; both sides must be at least {MIN_INPUT_SIDE} px")
    if frames > 1:
        raise ValueError(f"is an animated {fmt} ({frames} frames); give a still image")
    _check_complete(data, fmt)
    return fmt, width, height


def check_complete_image(data: bytes) -> str:
    """The format of ``data`` if it is a whole image; ``ValueError`` saying what is wrong otherwise.

    For downloaded results: a body can arrive cut short with a matching length (a proxy, a CDN).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                fmt = str(image.format)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ValueError(f"is not an image ({_looks_like(data)}): {exc}") from None
    _check_complete(data, fmt)
    return fmt


def _check_complete(data: bytes, fmt: str) -> None:
    """Read the whole file without keeping its pixels: truncation and corruption show here."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if fmt == "PNG":
                    image.verify()  # every chunk and its CRC, no pixel decoding
                else:
                    if fmt == "JPEG":
                        image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))  # 1/64 the pixels
                    image.load()
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        cause = "truncated" if "truncat" in str(exc).lower() or isinstance(exc, EOFError) else "corrupt"
        raise ValueError(f"is a {cause} {fmt} file: {exc}") from None


def _looks_like(data: bytes) -> str:
    head = data[:512]
    if head.lstrip().lower().startswith((b"<!doctype html", b"<html")):
        return "it looks like an HTML page"
    if head.startswith(b"PK\x03\x04"):
        return "it is a zip archive"
    if head.startswith(b"%PDF"):
        return "it is a PDF"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut at the 512th byte
            return "unrecognised binary data"
    return "it looks like text"


def build_zip(members: dict[str, LocalImage]) -> LocalImage:
    """A zip archive holding ``members`` under the given names (Runflow background-replace)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for member_name, image in members.items():
            archive.writestr(member_name, image.data)
    return LocalImage(data=buffer.getvalue(), filename="inputs.zip", content_type="application/zip")


class Stager(Protocol):
    """Publishes a local image and returns a URL the vendor can fetch."""

    def stage(self, image: LocalImage) -> Operation[str]: ...


def _done(value: str) -> Operation[str]:
    """An operation that makes no HTTP call."""
    return value
    yield  # pragma: no cover - makes this a generator


class NoStager:
    """The default where nothing is configured: explains which setting is missing."""

    def __init__(self, vendor: str, field: str) -> None:
        self.vendor = vendor
        self.field = field

    def stage(self, image: LocalImage) -> Operation[str]:
        raise StagingNotConfiguredError(
            f"{self.vendor} needs a public URL for {self.field!r}, but got a local image "
            f"({image.filename}). Pass an http(s) URL, or set the connection extras "
            f"'staging_path' (an ObjectStoragePath URI such as s3://bucket/prefix) and "
            f"'staging_public_url' (the public URL of that prefix)."
        )


class ObjectStorageStager:
    """Writes the file under an object-storage prefix whose public URL is known.

    ``base`` is an ``ObjectStoragePath`` (or ``pathlib.Path``) supporting ``/`` and
    ``write_bytes``; ``public_base_url`` is the URL at which ``base`` is served.
    """

    def __init__(self, base: Any, public_base_url: str) -> None:
        self.base = base
        self.public_base_url = public_base_url.rstrip("/")

    def stage(self, image: LocalImage) -> Operation[str]:
        import hashlib

        digest = hashlib.sha256(image.data).hexdigest()[:32]
        name = f"{digest}{extension_for(image.content_type)}"
        target = self.base / name
        parent = getattr(target, "parent", None)
        if parent is not None and hasattr(parent, "mkdir"):
            parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(image.data)
        return _done(f"{self.public_base_url}/{name}")


class FalStorageStager:
    """fal's documented upload (fal.md §7, fallback flow): initiate, PUT the bytes, use file_url."""

    def __init__(self, rest_base_url: str) -> None:
        self.rest_base_url = rest_base_url.rstrip("/")

    def stage(self, image: LocalImage) -> Operation[str]:
        initiated = yield ApiRequest(
            "POST",
            f"{self.rest_base_url}/storage/upload/initiate",
            params={"storage_type": "gcs"},
            json={"file_name": image.filename, "content_type": image.content_type},
        )
        body = initiated.json()
        yield ApiRequest(
            "PUT",
            body["upload_url"],
            content=image.data,
            headers={"Content-Type": image.content_type},
            authenticated=False,
            expect_json=False,
            external=True,  # a URL from fal's answer: the URL policy applies (no upload to internal hosts)
        )
        return str(body["file_url"])


class ImagePipelineUploadStager:
    """ImagePipeline's own upload endpoint (imagepipeline.md §2: ``POST /upload/image/v1``)."""

    def stage(self, image: LocalImage) -> Operation[str]:
        answer = yield ApiRequest(
            "POST", "/upload/image/v1", files={"file": (image.filename, image.data, image.content_type)}
        )
        return str(answer.json()["url"])
