"""Decoding inputs (with Pillow's decompression-bomb guard left on) and encoding results."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from airflow_bgreplace.engine.errors import EngineInputError

CONTENT_TYPES: Final[dict[str, str]] = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
#: Smaller inputs carry no usable subject (and break the border statistics).
MIN_SIDE: Final = 8
#: Used only when someone switched Pillow's own guard off (``MAX_IMAGE_PIXELS = None``).
_FALLBACK_BOMB_PIXELS: Final = 89_478_485
#: zlib level 1 with OpenCV's writer: ~5x faster than Pillow's default (level 6) for ~15 %
#: more bytes; encoding would otherwise cost as much as the segmentation.
_PNG_COMPRESS_LEVEL: Final = 1
_JPEG_QUALITY: Final = 92
_WEBP_QUALITY: Final = 90

RGBImage = NDArray[np.uint8]


@dataclass(frozen=True)
class DecodedImage:
    rgb: RGBImage
    #: The input's own alpha channel when it had one that is not fully opaque.
    alpha: NDArray[np.uint8] | None
    source_format: str | None

    @property
    def size(self) -> tuple[int, int]:
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


def normalise_format(output_format: str) -> str:
    fmt = output_format.lower().strip().lstrip(".")
    fmt = "jpeg" if fmt == "jpg" else fmt
    if fmt not in CONTENT_TYPES:
        raise EngineInputError(
            f"unsupported output format {output_format!r} (use png, jpeg or webp)",
            which="output_format",
            cause="parameter",
        )
    return fmt


def decode_image(image: bytes | Image.Image, *, which: str = "image", max_pixels: int) -> DecodedImage:
    """Decode bytes or a PIL image into RGB (+ alpha), refusing bombs, truncation and tiny images."""
    if isinstance(image, Image.Image):
        pil = image
        source_format = pil.format
        _check_size(pil.size, which=which, max_pixels=max_pixels)
        if getattr(pil, "is_animated", False):
            # Keeping the first frame would silently differ from what the catalog shows.
            raise EngineInputError(
                f"{which} is an animated {pil.format} ({getattr(pil, 'n_frames', '?')} frames); give a still image",
                which=which,
                cause="animated",
            )
        try:
            pil.load()
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise EngineInputError(f"{which} cannot be decoded: {exc}", which=which, cause="decode") from exc
    elif isinstance(image, bytes | bytearray | memoryview):
        data = bytes(image)
        if not data:
            raise EngineInputError(f"{which} is empty (0 bytes)", which=which, cause="decode")
        try:
            pil = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            raise EngineInputError(f"{which} is too large: {exc}", which=which, cause="too_large") from exc
        except UnidentifiedImageError as exc:  # Pillow's message names only a BytesIO object
            raise EngineInputError(
                f"{which} is not an image in a format Pillow reads (PNG, JPEG, WebP, GIF, TIFF...)",
                which=which,
                cause="decode",
            ) from exc
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise EngineInputError(f"{which} is not a decodable image: {exc}", which=which, cause="decode") from exc
        source_format = pil.format
        _check_size(pil.size, which=which, max_pixels=max_pixels)
        if getattr(pil, "is_animated", False):
            # Keeping the first frame would silently differ from what the catalog shows.
            raise EngineInputError(
                f"{which} is an animated {pil.format} ({getattr(pil, 'n_frames', '?')} frames); give a still image",
                which=which,
                cause="animated",
            )
        try:
            pil.load()
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            cause = "truncated" if "truncated" in str(exc).lower() or isinstance(exc, EOFError) else "decode"
            raise EngineInputError(f"{which} cannot be decoded ({cause}): {exc}", which=which, cause=cause) from exc
    else:
        raise EngineInputError(
            f"{which} must be bytes or a PIL image, not {type(image).__name__}", which=which, cause="parameter"
        )
    pil = ImageOps.exif_transpose(pil) or pil
    _check_size(pil.size, which=which, max_pixels=max_pixels)
    rgb, alpha = _to_arrays(pil)
    return DecodedImage(rgb=rgb, alpha=alpha, source_format=source_format)


def _check_size(size: tuple[int, int], *, which: str, max_pixels: int) -> None:
    width, height = size
    if width < MIN_SIDE or height < MIN_SIDE:
        raise EngineInputError(
            f"{which} is {width}x{height}; both sides must be at least {MIN_SIDE} px", which=which, cause="too_small"
        )
    bomb = Image.MAX_IMAGE_PIXELS or _FALLBACK_BOMB_PIXELS
    limit = min(int(bomb), max_pixels)
    if width * height > limit:
        raise EngineInputError(
            f"{which} is {width}x{height} = {width * height} pixels, more than the limit of {limit}",
            which=which,
            cause="too_large",
        )


def _to_arrays(pil: Image.Image) -> tuple[RGBImage, NDArray[np.uint8] | None]:
    mode = pil.mode
    if mode.startswith("I") or mode == "F":
        # 16-bit and float greyscale: Pillow's convert("RGB") clips them, so scale by hand.
        values = np.asarray(pil, dtype=np.float64)
        top = 65535.0 if values.max(initial=0.0) > 255.0 else 255.0
        grey = np.clip(values * (255.0 / top), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2)), None
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in pil.info)
    if has_alpha:
        rgba = np.asarray(pil.convert("RGBA"), dtype=np.uint8)
        alpha = np.ascontiguousarray(rgba[:, :, 3])
        return np.ascontiguousarray(rgba[:, :, :3]), (alpha if int(alpha.min()) < 255 else None)
    return np.ascontiguousarray(np.asarray(pil.convert("RGB"), dtype=np.uint8)), None


def flatten_on_white(rgb: RGBImage, alpha: NDArray[np.uint8]) -> RGBImage:
    weight = alpha.astype(np.float32)[:, :, None] / 255.0
    return np.asarray(np.clip(rgb * weight + 255.0 * (1.0 - weight) + 0.5, 0, 255), dtype=np.uint8)


def encode_image(rgb: RGBImage, alpha: NDArray[np.uint8] | None, output_format: str) -> bytes:
    """Encode RGB, or RGBA when ``alpha`` is given and the format carries it (JPEG goes on white)."""
    fmt = normalise_format(output_format)
    if alpha is not None and fmt == "jpeg":
        rgb, alpha = flatten_on_white(rgb, alpha), None
    if fmt == "png":
        bgr = cv2.cvtColor(np.dstack([rgb, alpha]), cv2.COLOR_RGBA2BGRA) if alpha is not None else rgb[:, :, ::-1]
        ok, encoded = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, _PNG_COMPRESS_LEVEL])
        if not ok:
            raise RuntimeError("OpenCV failed to encode a PNG")
        return encoded.tobytes()
    if alpha is not None:
        image = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    else:
        image = Image.fromarray(rgb, "RGB")
    buffer = io.BytesIO()
    if fmt == "jpeg":
        image.save(buffer, format="JPEG", quality=_JPEG_QUALITY, subsampling=0 if _JPEG_QUALITY >= 90 else 2)
    else:
        image.save(buffer, format="WEBP", quality=_WEBP_QUALITY, method=3)
    return buffer.getvalue()


_HEX = re.compile(r"^#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})$")

#: Names accepted by :func:`parse_color` besides hex codes (the CSS basics).
NAMED_COLORS: Final[dict[str, tuple[int, int, int]]] = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "grey": (128, 128, 128),
    "gray": (128, 128, 128),
    "lightgrey": (211, 211, 211),
    "lightgray": (211, 211, 211),
    "red": (255, 0, 0),
    "green": (0, 128, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "orange": (255, 165, 0),
    "pink": (255, 192, 203),
    "purple": (128, 0, 128),
    "beige": (245, 245, 220),
    "navy": (0, 0, 128),
    "teal": (0, 128, 128),
}


def parse_color(color: tuple[int, int, int] | list[int] | str, *, which: str = "color") -> tuple[int, int, int]:
    """``(r, g, b)`` 0-255, ``#RRGGBB`` / ``RRGGBB`` / ``#RGB``, or a basic CSS colour name."""
    if isinstance(color, str):
        text = color.strip()
        if text.lower() in NAMED_COLORS:
            return NAMED_COLORS[text.lower()]
        match = _HEX.match(text)
        if not match:
            raise EngineInputError(
                f"{which} {color!r} is not a hex colour or a known name", which=which, cause="parameter"
            )
        digits = match.group(1)
        if len(digits) == 3:
            digits = "".join(ch * 2 for ch in digits)
        red, green, blue = (int(digits[i : i + 2], 16) for i in (0, 2, 4))
        return red, green, blue
    values = tuple(color)
    if len(values) != 3 or not all(isinstance(v, int | np.integer) and 0 <= int(v) <= 255 for v in values):
        raise EngineInputError(f"{which} {color!r} must be three integers 0-255", which=which, cause="parameter")
    return int(values[0]), int(values[1]), int(values[2])
