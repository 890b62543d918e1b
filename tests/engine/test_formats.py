"""Output formats: RGBA only for png/webp cut-outs; composites are always RGB."""

from __future__ import annotations

import pytest
from PIL import Image

from airflow_bgreplace import engine
from airflow_bgreplace.engine import synthetic
from tests.engine.conftest import PHOTO_SIZE, decode, encode

pytestmark = pytest.mark.usefixtures("missing_model")  # formats do not depend on the path


@pytest.fixture(scope="module")
def product_png() -> bytes:
    return encode(synthetic.make_photo("bottle", "white", PHOTO_SIZE).rgb)


@pytest.mark.parametrize(
    ("fmt", "pil_format", "mode", "content_type"),
    [
        ("png", "PNG", "RGBA", "image/png"),
        ("webp", "WEBP", "RGBA", "image/webp"),
        ("jpeg", "JPEG", "RGB", "image/jpeg"),
        ("JPG", "JPEG", "RGB", "image/jpeg"),
    ],
)
def test_cutout_formats(product_png: bytes, fmt: str, pil_format: str, mode: str, content_type: str) -> None:
    result = engine.remove_background(product_png, output_format=fmt)
    image = decode(result.data)
    assert (image.format, image.mode, result.content_type) == (pil_format, mode, content_type)
    assert (result.width, result.height) == image.size == PHOTO_SIZE
    assert isinstance(result.image, Image.Image) and result.image.mode == mode
    if mode == "RGBA":
        assert image.getpixel((2, 2))[3] == 0  # backdrop is transparent
        assert image.getpixel((200, 200))[3] == 255  # the bottle body is opaque
    else:
        assert min(image.getpixel((2, 2))) > 245  # flattened onto white
        assert any("flattened onto white" in note for note in result.notes)


@pytest.mark.parametrize(("fmt", "pil_format"), [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")])
def test_composites_are_rgb(product_png: bytes, fmt: str, pil_format: str) -> None:
    result = engine.recolor(product_png, "#2050C0", output_format=fmt)
    image = decode(result.data)
    assert (image.format, image.mode) == (pil_format, "RGB")


def test_unknown_format_is_refused_before_any_work(product_png: bytes) -> None:
    with pytest.raises(engine.EngineInputError) as caught:
        engine.remove_background(product_png, output_format="tiff")
    assert caught.value.which == "output_format" and caught.value.cause == "parameter"


def test_result_carries_method_confidence_and_timings(product_png: bytes) -> None:
    result = engine.remove_background(product_png)
    assert result.method == "border_key"
    assert 0.0 <= result.confidence <= 1.0 and result.low_confidence == (result.confidence < 0.5)
    assert {"decode", "border_model", "key", "edges", "encode", "total"} <= set(result.timings_s)
    assert result.timings_s["total"] >= result.timings_s["encode"]
