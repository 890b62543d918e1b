"""Bad inputs raise EngineInputError naming the input and the cause."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from airflow_bgreplace import engine
from airflow_bgreplace.engine import synthetic
from airflow_bgreplace.engine.settings import ENV_MAX_PIXELS
from tests.engine.conftest import encode

pytestmark = pytest.mark.usefixtures("missing_model")


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels and carries no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def small_photo() -> bytes:
    return encode(synthetic.make_photo("ball", "white", (160, 120)).rgb)


def _error(call: object, *args: object, **kwargs: object) -> engine.EngineInputError:
    with pytest.raises(engine.EngineInputError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files(small_photo: bytes, fmt: str) -> None:
    data = encode(np.asarray(Image.open(io.BytesIO(small_photo)).convert("RGB")), fmt)
    error = _error(engine.remove_background, data[: len(data) // 2])
    assert error.which == "image" and error.cause in ("truncated", "decode")
    assert "image" in str(error)


def test_one_pixel_image_is_too_small() -> None:
    error = _error(engine.remove_background, encode(np.zeros((1, 1, 3), np.uint8)))
    assert error.cause == "too_small" and "1x1" in str(error)


def test_decompression_bomb_is_refused_from_the_header() -> None:
    error = _error(engine.remove_background, _png_header(100_000, 100_000))
    assert error.cause == "too_large" and error.too_large


def test_engine_pixel_limit_applies_below_pillows_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_MAX_PIXELS, "1000000")
    error = _error(engine.segment, _png_header(2000, 2000))
    assert error.cause == "too_large" and "4000000" in str(error)


@pytest.mark.parametrize(
    ("data", "cause"), [(b"", "decode"), (b"GIF89a not really", "decode"), (b"\x00" * 64, "decode")]
)
def test_non_images(data: bytes, cause: str) -> None:
    assert _error(engine.remove_background, data).cause == cause


def test_wrong_input_type() -> None:
    error = _error(engine.remove_background, "photo.png")
    assert error.cause == "parameter" and "bytes or a PIL image" in str(error)


def test_reference_errors_name_the_reference(small_photo: bytes) -> None:
    error = _error(engine.replace_with_reference, small_photo, b"junk")
    assert error.which == "reference"


def test_pil_images_are_accepted(small_photo: bytes) -> None:
    result = engine.remove_background(Image.open(io.BytesIO(small_photo)))
    assert (result.width, result.height) == (160, 120)


@pytest.mark.parametrize(
    ("kwargs", "which"),
    [
        ({"color": "#12345"}, "color"),
        ({"color": (256, 0, 0)}, "color"),
        ({"color": "white", "shading": 1.5}, "shading"),
        ({"color": "white", "shadow_opacity": -0.1}, "shadow_opacity"),
        ({"color": "white", "shadow_blur": float("nan")}, "shadow_blur"),
    ],
)
def test_bad_recolor_parameters(small_photo: bytes, kwargs: dict[str, object], which: str) -> None:
    error = _error(engine.recolor, small_photo, **kwargs)
    assert (error.which, error.cause) == (which, "parameter")


@pytest.mark.parametrize(
    ("kwargs", "which"), [({"seed": "7"}, "seed"), ({"size": (4, 4)}, "size"), ({"size": "big"}, "size")]
)
def test_bad_prompt_parameters(small_photo: bytes, kwargs: dict[str, object], which: str) -> None:
    error = _error(engine.replace_with_prompt, small_photo, "marble", **kwargs)
    assert error.which == which
