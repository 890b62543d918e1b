"""The Pillow renderer behind every sandbox result."""

from __future__ import annotations

import struct
import zlib

import pytest
from PIL import Image

from airflow_bgreplace.sandbox import render
from tests.sandbox.conftest import PRODUCT_SIZE, SUBJECT_COLOUR, open_image, product_image, reference_image


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels (no pixel data at all)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_remove_gives_a_cutout() -> None:
    cutout = open_image(render.render_result("remove", product_image()))
    assert cutout.mode == "RGBA" and cutout.size == PRODUCT_SIZE
    assert cutout.getpixel((0, 0))[3] == 0
    assert cutout.getpixel((32, 24)) == (*SUBJECT_COLOUR, 255)


def test_existing_transparency_is_the_mask() -> None:
    cutout = open_image(render.render_result("remove", render.render_result("remove", product_image())))
    assert cutout.getpixel((0, 0))[3] == 0 and cutout.getpixel((32, 24))[3] == 255


@pytest.mark.parametrize(("fmt", "pil_format"), [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")])
def test_output_formats(fmt: str, pil_format: str) -> None:
    result = open_image(render.render_result("color", product_image(), color=(0, 0, 255), output_format=fmt))
    assert result.format == pil_format and result.mode == "RGB"


def test_jpeg_cutout_is_flattened_on_white() -> None:
    result = open_image(render.render_result("remove", product_image(), output_format="jpeg"))
    assert result.mode == "RGB" and all(channel > 240 for channel in result.getpixel((0, 0)))


def test_replace_with_reference_covers_the_frame() -> None:
    result = open_image(render.render_result("replace", product_image(), reference_bytes=reference_image()))
    assert result.size == PRODUCT_SIZE
    assert result.getpixel((32, 24)) == SUBJECT_COLOUR


def test_prompt_backdrop_is_deterministic() -> None:
    beach = render.render_result("replace", product_image(), prompt="beach")
    assert beach == render.render_result("replace", product_image(), prompt="beach")
    assert beach != render.render_result("replace", product_image(), prompt="office")


def test_shadow_darkens_below_the_subject() -> None:
    plain = open_image(render.render_result("color", product_image(), color=(255, 255, 255))).convert("L")
    shadow = {"opacity": 0.9, "blur": 0.02, "dx": 0.0, "dy": 0.15}
    shaded = open_image(render.render_result("color", product_image(), color=(255, 255, 255), shadow=shadow))
    assert shaded.convert("L").getpixel((32, 46)) < plain.getpixel((32, 46))


def test_not_an_image_is_an_input_error() -> None:
    with pytest.raises(render.ImageInputError) as caught:
        render.render_result("remove", b"<html>")
    assert not caught.value.too_large


def test_decompression_bomb_guard() -> None:
    bomb = _png_header_only(30_000, 30_000)
    with pytest.raises(render.ImageInputError) as caught:
        render.check_image(bomb)
    assert caught.value.too_large
    with pytest.raises(render.ImageInputError):
        render.render_result("remove", bomb)
    assert Image.MAX_IMAGE_PIXELS  # the process-wide guard is left on


def test_pixel_limit() -> None:
    with pytest.raises(render.ImageInputError, match="more than 100 pixels"):
        render.check_image(product_image(), max_pixels=100)
    assert render.check_image(product_image()) == PRODUCT_SIZE
