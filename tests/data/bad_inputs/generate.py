"""Rebuild the committed bad-input files (deterministic): ``.venv/bin/python tests/data/bad_inputs/generate.py``.

Every file here is small; what is big (endless downloads, huge answers) is made by the tests at
run time, from tests/bad_input_corpus.py. README.md says what each file is and which error it gets.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent


def photo(size: tuple[int, int] = (160, 120), colour: tuple[int, int, int] = (200, 40, 40)) -> Image.Image:
    """A product on a near-white background (like tests/conftest.make_product_photo)."""
    image = Image.new("RGB", size, (246, 246, 244))
    w, h = size
    ImageDraw.Draw(image).ellipse((w * 0.25, h * 0.2, w * 0.75, h * 0.85), fill=colour, outline=(90, 20, 20), width=3)
    return image


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` RGB pixels and which carries none."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def rgb48_png(width: int = 64, height: int = 48) -> bytes:
    """A 16-bit-per-channel RGB PNG, written by hand (Pillow writes 8-bit RGB only)."""
    rows = []
    for y in range(height):
        row = bytearray(b"\x00")  # filter: none
        for x in range(width):
            inside = width // 4 < x < 3 * width // 4 and height // 4 < y < 3 * height // 4
            row += struct.pack(">HHH", *((52000, 9000, 9000) if inside else (64000, 64000, 63500)))
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


def corrupt_png() -> bytes:
    """A whole PNG whose pixel data was damaged in place (IDAT bytes flipped, CRC now wrong)."""
    data = bytearray(encode(photo(), "PNG"))
    start = data.index(b"IDAT") + 4
    for offset in range(start + 16, start + 48):
        data[offset] ^= 0x5A
    return bytes(data)


def frames(fmt: str) -> bytes:
    images = [photo((48, 36), colour) for colour in ((200, 40, 40), (40, 160, 60), (40, 60, 200))]
    return encode(images[0], fmt, save_all=True, append_images=images[1:], duration=100, loop=0)


def runflow_zip() -> bytes:
    """Both images present, but not under the names the request gives (image.png, reference.png)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("photo.png", encode(photo((32, 24)), "PNG"))
        archive.writestr("scene.png", encode(photo((32, 24), (90, 140, 90)), "PNG"))
    return buffer.getvalue()


def files() -> dict[str, bytes]:
    png, jpeg = encode(photo(), "PNG"), encode(photo(), "JPEG", quality=90)
    grey16 = Image.new("I;16", (64, 48))
    grey16.paste(40000, (16, 12, 48, 36))
    return {
        "good.png": png,
        "truncated.png": png[: len(png) // 2],
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "corrupt.png": corrupt_png(),
        "png_named.jpg": png,
        "text_named.png": b"SKU,price\nMUG-1,12.50\nthis is a spreadsheet export, not a photo\n",
        "cmyk.jpg": encode(photo().convert("CMYK"), "JPEG", quality=90),
        "grey16.png": encode(grey16, "PNG"),
        "rgb48.png": rgb48_png(),
        "animated.gif": frames("GIF"),
        "animated.png": frames("PNG"),
        "animated.webp": frames("WEBP"),
        "one_pixel.png": encode(Image.new("RGB", (1, 1), (255, 255, 255)), "PNG"),
        "bomb_50000x50000.png": png_header_only(50_000, 50_000),
        "runflow_wrong_members.zip": runflow_zip(),
    }


def main() -> None:
    for name, data in files().items():
        (HERE / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
