"""The bad-input corpus (tests/data/bad_inputs/README.md) at each level where a case is caught.

Manifest validation, the vendor request models and the image check before a paid call
(vendors/base.py, vendors/inputs.py), and the local engine. Result downloads are in
tests/vendors/test_url_policy.py; whole batches in tests/operators/test_batch_bad_inputs.py.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from airflow_bgreplace import engine
from airflow_bgreplace.catalog.manifest import read_manifest
from airflow_bgreplace.engine.settings import ENV_MODEL_PATH
from airflow_bgreplace.vendors import FalApi, ImagePipelineApi, InvalidInputError, RunflowApi, VendorApi
from airflow_bgreplace.vendors.inputs import MAX_INPUT_BYTES
from airflow_bgreplace.vendors.local import LocalApi
from airflow_bgreplace.vendors.transport import ApiRequest
from tests.bad_input_corpus import ACCEPTED, CORPUS, REFUSED, corpus, png_header_only

# --------------------------------------------------------------------------- manifest


def test_the_corpus_manifest_reports_each_bad_row_by_row_sku_and_field() -> None:
    result = read_manifest(CORPUS / "manifest.csv")

    errors = {error.sku: error for error in result.errors}
    expected = {
        "BAD-COLOR-RANGE": ("color", "'300,0,0' is not an r,g,b colour"),
        "BAD-COLOR-HEX": ("color", "'#GG0000' is not a hex colour"),
        "BAD-COLOR-SHORT": ("color", "'#12345' is not a hex colour"),
        "BAD-URL-FILE-HOST": ("image", "names a file on another host"),
        "BAD-URL-FTP": ("image", "ftp:// is not supported"),
        "BAD-URL-DATA": ("image", "is not a path, an http(s) URL or an object-storage URI"),
        "BAD-URL-JAVASCRIPT": ("image", "is not a path, an http(s) URL or an object-storage URI"),
        "BAD-MISSING-FILE": ("image", "does not exist"),
    }
    assert set(errors) == set(expected)
    for sku, (field, words) in expected.items():
        error = errors[sku]
        assert error.field == field and words in error.message, str(error)
        assert str(error).startswith(f"row {error.row} (sku {sku}): field '{field}'")
    # File contents are not the manifest's business: those rows are items, refused later.
    assert {item.sku for item in result.items} == {
        *(f"GOOD-{name}" for name in ("PNG", "PNG-AS-JPG", "CMYK", "GREY16", "RGB48")),
        "BAD-TRUNCATED-PNG", "BAD-TRUNCATED-JPG", "BAD-CORRUPT", "BAD-TEXT", "BAD-ANIMATED-GIF",
        "BAD-ANIMATED-PNG", "BAD-ANIMATED-WEBP", "BAD-ONE-PIXEL", "BAD-BOMB",
    }


# --------------------------------------------------------------------------- vendor request models

# (vendor contract, endpoint, the inputs around the image field, the image field)
VENDOR_CASES: dict[str, tuple[Callable[[], VendorApi], str, dict[str, Any], str]] = {
    "fal": (FalApi, "bria/replace-background", {"prompt": "marble"}, "image_url"),
    "imagepipeline": (ImagePipelineApi, "background/remove", {"recolor": "#FFFFFF"}, "input_image"),
    "runflow": (RunflowApi, "background-replace", {"reference": corpus("good.png")}, "image"),
    "local": (LocalApi, "background/remove", {}, "image"),
}


@pytest.mark.parametrize("vendor", sorted(VENDOR_CASES))
@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_bad_image_file_is_refused_before_any_request(name: str, vendor: str) -> None:
    make_api, endpoint, inputs, field = VENDOR_CASES[vendor]
    with pytest.raises(InvalidInputError) as caught:
        next(make_api().submit(endpoint, {**inputs, field: corpus(name)}))  # nothing is yielded: no HTTP call
    error = caught.value
    assert error.field == field and REFUSED[name][0] in error.message
    assert name in error.message  # names the file


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_bad_image_bytes_are_refused_too(name: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        next(FalApi().submit(None, {"prompt": "p", "image_url": corpus(name).read_bytes()}))
    message = caught.value.message
    assert f"<{corpus(name).stat().st_size} bytes> " in message and REFUSED[name][0] in message


@pytest.mark.parametrize("name", ACCEPTED)
def test_good_files_go_inline_with_the_type_their_bytes_have(name: str) -> None:
    request = next(FalApi().submit(None, {"prompt": "p", "image_url": corpus(name)}))
    assert isinstance(request, ApiRequest)
    sent = request.json["image_url"]
    expected = "image/jpeg" if name == "cmyk.jpg" else "image/png"  # png_named.jpg is a PNG
    assert sent.startswith(f"data:{expected};base64,")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("file:///etc/passwd", "unsupported URL scheme 'file'"),
        ("ftp://files.example.com/mug.png", "unsupported URL scheme 'ftp'"),
        ("javascript:alert(1)", "unsupported URL scheme 'javascript'"),
        ("data:text/html,<script>alert(1)</script>", "data:image/<format>;base64"),
        ("data:image/png,notbase64", "data:image/<format>;base64"),
    ],
)
@pytest.mark.parametrize("vendor", sorted(VENDOR_CASES))
def test_non_http_urls_are_refused_by_the_request_model(vendor: str, value: str, words: str) -> None:
    make_api, endpoint, inputs, field = VENDOR_CASES[vendor]
    with pytest.raises(InvalidInputError) as caught:
        make_api().validate(endpoint, {**inputs, field: value})
    assert caught.value.field == field and words in caught.value.message


def test_a_data_uri_that_is_not_an_image_is_refused_before_sending() -> None:
    payload = "data:image/png;base64,U0tVLHByaWNlCk1VRy0xLDEyLjUwCg=="  # "SKU,price..." with an image label
    with pytest.raises(InvalidInputError, match="not an image") as caught:
        next(FalApi().submit(None, {"prompt": "p", "image_url": payload}))
    assert caught.value.field == "image_url" and "<data URI, " in caught.value.message


@pytest.mark.parametrize(
    ("make_api", "endpoint", "inputs", "field", "words"),
    [
        (LocalApi, "background/color", {"color": (300, 0, 0)}, "color", "0-255"),
        (LocalApi, "background/color", {"color": "#GG0000"}, "color", "not a colour"),
        (RunflowApi, "background-color", {"color_red": 256, "color_green": 0, "color_blue": 0}, "color_red", "255"),
        (RunflowApi, "background-color", {"color_red": -1, "color_green": 0, "color_blue": 0}, "color_red", "0"),
        (ImagePipelineApi, "background/remove", {"recolor": "#GG0000"}, "recolor", "GG0000"),
        (ImagePipelineApi, "background/remove", {"recolor": "12345"}, "recolor", "12345"),
    ],
)
def test_colours_out_of_range_or_not_hex_name_the_field(
    make_api: Callable[[], VendorApi], endpoint: str, inputs: dict[str, Any], field: str, words: str
) -> None:
    image_field = {"background/color": "image", "background-color": "image_url", "background/remove": "input_image"}
    with pytest.raises(InvalidInputError) as caught:
        make_api().validate(endpoint, {**inputs, image_field[endpoint]: "https://cdn.example.com/p.png"})
    assert caught.value.field == field and words in caught.value.message


def test_a_runflow_zip_without_the_named_members_says_what_it_holds() -> None:
    inputs = {
        "zip_url": corpus("runflow_wrong_members.zip"),
        "file_image": "image.png",
        "file_reference": "reference.png",
    }
    with pytest.raises(InvalidInputError) as caught:
        next(RunflowApi().submit("background-replace", inputs))
    assert caught.value.field == "file_image"
    assert "'image.png' is not in the zip (it holds ['photo.png', 'scene.png'])" in caught.value.message


def test_a_runflow_zip_member_must_be_an_image(tmp_path: Path) -> None:
    archive = tmp_path / "inputs.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        opened.writestr("image.png", corpus("good.png").read_bytes())
        opened.writestr("reference.png", corpus("truncated.png").read_bytes())
    inputs = {"zip_url": archive, "file_image": "image.png", "file_reference": "reference.png"}
    with pytest.raises(InvalidInputError, match=r"'reference\.png' in the zip is a truncated PNG") as caught:
        next(RunflowApi().submit("background-replace", inputs))
    assert caught.value.field == "file_reference"


def test_a_runflow_zip_member_declaring_too_many_bytes_is_not_decompressed(tmp_path: Path) -> None:
    archive = tmp_path / "inputs.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as opened:
        opened.writestr("image.png", corpus("good.png").read_bytes())
        opened.writestr("reference.png", b"\0" * (MAX_INPUT_BYTES + 1))  # ~50 KiB compressed
    inputs = {"zip_url": archive, "file_image": "image.png", "file_reference": "reference.png"}
    with pytest.raises(InvalidInputError, match=f"larger than {MAX_INPUT_BYTES} bytes") as caught:
        next(RunflowApi().submit("background-replace", inputs))
    assert caught.value.field == "file_reference"


# --------------------------------------------------------------------------- the local engine


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_MODEL_PATH, "none")  # the colour key alone: what is tested is the input handling


@pytest.mark.usefixtures("no_model")
@pytest.mark.parametrize("name", sorted(REFUSED))
def test_the_engine_refuses_each_bad_file_naming_input_and_cause(name: str) -> None:
    with pytest.raises(engine.EngineInputError) as caught:
        engine.remove_background(corpus(name).read_bytes())
    assert (caught.value.which, caught.value.cause) == ("image", REFUSED[name][1])
    assert str(caught.value).startswith("image ")


@pytest.mark.usefixtures("no_model")
def test_the_engine_names_a_bad_reference() -> None:
    with pytest.raises(engine.EngineInputError) as caught:
        engine.replace_with_reference(corpus("good.png").read_bytes(), corpus("animated.gif").read_bytes())
    assert (caught.value.which, caught.value.cause) == ("reference", "animated")


@pytest.mark.usefixtures("no_model")
@pytest.mark.parametrize("name", ACCEPTED)
def test_the_engine_converts_cmyk_16_bit_and_misnamed_files(name: str) -> None:
    source = Image.open(corpus(name))
    result = engine.remove_background(corpus(name).read_bytes())
    with Image.open(io.BytesIO(result.data)) as output:
        assert output.mode == "RGBA" and output.size == source.size


@pytest.mark.usefixtures("no_model")
@pytest.mark.parametrize(
    ("color", "words"), [((300, 0, 0), "0-255"), ("#GG0000", "not a hex"), ("#12345", "not a hex")]
)
def test_the_engine_refuses_bad_colours(color: Any, words: str) -> None:
    with pytest.raises(engine.EngineInputError, match=words) as caught:
        engine.recolor(corpus("good.png").read_bytes(), color)
    assert (caught.value.which, caught.value.cause) == ("color", "parameter")


def test_the_contact_sheet_does_not_decode_what_pillow_would_only_warn_about(tmp_path: Path) -> None:
    # 100 M pixels: above Pillow's warning threshold, below its error; a plain Image.open + load
    # would decode 300 MB. The byte check passes too (the file is 45 bytes).
    from airflow_bgreplace.catalog.contact_sheet import write_contact_sheet

    image = tmp_path / "big.png"
    image.write_bytes(png_header_only(10_000, 10_000))
    row = {"sku": "BIG-1", "status": "failed", "input_uri": str(image), "error": "x"}
    sheet = write_contact_sheet([row], tmp_path / "sheet.html")
    assert "10000x10000: too many pixels to thumbnail" in (tmp_path / "sheet.html").read_text()
    assert sheet.thumbnails == 0


def test_pillows_bomb_guard_is_on_and_our_limits_are_below_it() -> None:
    from airflow_bgreplace.catalog.contact_sheet import MAX_SOURCE_PIXELS
    from airflow_bgreplace.engine.settings import DEFAULT_MAX_PIXELS
    from airflow_bgreplace.vendors.inputs import MAX_INPUT_PIXELS

    assert Image.MAX_IMAGE_PIXELS is not None
    assert max(MAX_INPUT_PIXELS, DEFAULT_MAX_PIXELS, MAX_SOURCE_PIXELS) <= Image.MAX_IMAGE_PIXELS
