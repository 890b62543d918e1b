"""Result images for the sandbox: real pictures made from the inputs with Pillow.

The subject is keyed out by the colour of the image border (product shots sit on a plain
backdrop), which is good enough to make results that look like what was asked for. A later issue
replaces :func:`render_result` with the local engine; keep its signature.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from typing import Literal

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps, ImageStat, UnidentifiedImageError

RenderKind = Literal["remove", "color", "replace"]
OutputFormat = Literal["png", "jpeg", "webp"]

CONTENT_TYPES: dict[str, str] = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}

#: Border-distance ramp (max channel difference) from background to subject.
_KEY_LOW, _KEY_HIGH = 24, 64
#: Used when Pillow's own decompression-bomb guard was switched off by someone else.
_FALLBACK_MAX_PIXELS = 90_000_000


class ImageInputError(ValueError):
    """An input could not be decoded as an image (the vendors' image-load failure)."""

    def __init__(self, message: str, *, which: str = "image", too_large: bool = False) -> None:
        super().__init__(message)
        self.which = which
        self.too_large = too_large


def open_image(data: bytes, *, which: str = "image", max_pixels: int | None = None, load: bool = True) -> Image.Image:
    """Decode ``data`` (fully unless ``load`` is false), refusing decompression bombs and non-images."""
    limit = max_pixels or Image.MAX_IMAGE_PIXELS or _FALLBACK_MAX_PIXELS
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x MAX_IMAGE_PIXELS; treat that as a bomb too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > limit:
                raise ImageInputError(
                    f"{which} is {width}x{height}, more than {limit} pixels", which=which, too_large=True
                )
            if load:
                image.load()
    except ImageInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageInputError(f"{which} is too large: {exc}", which=which, too_large=True) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageInputError(f"{which} cannot be decoded as an image: {exc}", which=which) from exc
    return (ImageOps.exif_transpose(image) or image) if load else image


def check_image(data: bytes, *, which: str = "image", max_pixels: int | None = None) -> tuple[int, int]:
    """Cheap header check of an input (size and format) before a job spends time on it."""
    image = open_image(data, which=which, max_pixels=max_pixels, load=False)
    return image.size


def image_info(data: bytes) -> tuple[int, int, str]:
    """Width, height and content type of an image the sandbox produced."""
    with Image.open(io.BytesIO(data)) as image:
        fmt = (image.format or "PNG").lower()
        return image.width, image.height, CONTENT_TYPES.get(fmt, f"image/{fmt}")


def _border_colour(rgb: Image.Image) -> tuple[int, int, int]:
    ring = Image.new("L", rgb.size, 0)
    ImageDraw.Draw(ring).rectangle((0, 0, rgb.width - 1, rgb.height - 1), outline=255)
    red, green, blue = (int(v) for v in ImageStat.Stat(rgb, ring).median)
    return red, green, blue


def subject_mask(image: Image.Image) -> Image.Image:
    """An ``L`` mask of the subject: existing transparency, else distance from the border colour."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        alpha = image.convert("RGBA").getchannel("A")
        lowest = alpha.getextrema()[0]
        if isinstance(lowest, int | float) and lowest < 255:
            return alpha
    rgb = image.convert("RGB")
    backdrop = Image.new("RGB", rgb.size, _border_colour(rgb))
    red, green, blue = ImageChops.difference(rgb, backdrop).split()
    distance = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    span = _KEY_HIGH - _KEY_LOW
    ramp = [0 if v <= _KEY_LOW else 255 if v >= _KEY_HIGH else (v - _KEY_LOW) * 255 // span for v in range(256)]
    mask = distance.point(ramp)
    return mask.filter(ImageFilter.MedianFilter(3)).filter(ImageFilter.GaussianBlur(0.7))


def prompt_backdrop(prompt: str, size: tuple[int, int]) -> Image.Image:
    """A smooth two-colour gradient whose colours come from a hash of the prompt."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    top = tuple(64 + digest[i] // 2 for i in range(3))  # mid tones: the subject stays visible
    bottom = tuple(32 + digest[i] // 2 for i in range(3, 6))
    gradient = Image.linear_gradient("L").resize(size)
    return Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), gradient)


def _add_shadow(backdrop: Image.Image, mask: Image.Image, shadow: dict[str, float]) -> Image.Image:
    width, height = backdrop.size
    offset = (round(shadow.get("dx", 0.004) * width), round(shadow.get("dy", 0.022) * height))
    opacity = max(0.0, min(1.0, shadow.get("opacity", 0.38)))
    shifted = ImageChops.offset(mask, *offset)
    blurred = shifted.filter(ImageFilter.GaussianBlur(max(0.5, shadow.get("blur", 0.018) * width)))
    alpha = blurred.point([round(v * opacity) for v in range(256)])
    return Image.composite(Image.new("RGB", backdrop.size, (0, 0, 0)), backdrop, alpha)


def _encode(image: Image.Image, output_format: str) -> bytes:
    fmt = output_format.lower()
    if fmt == "jpg":
        fmt = "jpeg"
    if fmt not in CONTENT_TYPES:
        raise ValueError(f"unsupported output format {output_format!r}")
    if fmt == "jpeg" and image.mode != "RGB":
        flat = Image.new("RGB", image.size, (255, 255, 255))
        flat.paste(image, mask=image.getchannel("A") if image.mode == "RGBA" else None)
        image = flat
    buffer = io.BytesIO()
    image.save(buffer, format=fmt.upper(), **({"quality": 90} if fmt != "png" else {}))
    return buffer.getvalue()


def render_result(
    kind: RenderKind,
    image_bytes: bytes,
    *,
    color: tuple[int, int, int] | None = None,
    reference_bytes: bytes | None = None,
    prompt: str | None = None,
    output_format: str = "png",
    shadow: dict[str, float] | None = None,
) -> bytes:
    """Encode the result of one job.

    ``remove`` gives an RGBA cut-out; ``color`` composites the subject over ``color``;
    ``replace`` composites it over ``reference_bytes`` resized to cover, or, without a reference,
    over a gradient derived from ``prompt``. ``shadow`` (``opacity``, ``blur``, ``dx``, ``dy`` as
    fractions) adds a drop shadow under the subject. Raises :class:`ImageInputError` for inputs
    that are not decodable images.
    """
    source = open_image(image_bytes)
    mask = subject_mask(source)
    subject = source.convert("RGB")
    if kind == "remove":
        cutout = subject.convert("RGBA")
        cutout.putalpha(mask)
        return _encode(cutout, output_format)
    if kind == "color":
        backdrop = Image.new("RGB", subject.size, color or (255, 255, 255))
    elif reference_bytes is not None:
        reference = open_image(reference_bytes, which="reference").convert("RGB")
        backdrop = ImageOps.fit(reference, subject.size, Image.Resampling.LANCZOS)
    else:
        backdrop = prompt_backdrop(prompt or "", subject.size)
    if shadow:
        backdrop = _add_shadow(backdrop, mask, shadow)
    return _encode(Image.composite(subject, backdrop, mask), output_format)
