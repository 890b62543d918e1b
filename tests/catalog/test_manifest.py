from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from PIL import Image

from airflow_bgreplace.catalog.manifest import (
    CatalogItem,
    ManifestError,
    Treatment,
    parse_color,
    read_manifest,
)

HEADER = "sku,image,treatment,color,prompt,reference,vendor,output_format\n"


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    """A catalog folder with two images and a scene, as a manifest would sit beside them."""
    (tmp_path / "images").mkdir()
    (tmp_path / "scenes").mkdir()
    for name in ("images/a.jpg", "images/b.jpg", "scenes/marble.jpg"):
        Image.new("RGB", (8, 8), (200, 30, 30)).save(tmp_path / name)
    return tmp_path


def write(folder: Path, text: str, name: str = "manifest.csv") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_rows_are_normalised(catalog: Path) -> None:
    path = write(catalog, HEADER + (
        "A-1,images/a.jpg,remove,,,,,PNG\n"
        "A-2,images/b.jpg,Color,#ff8800,,,FAL,jpg\n"
        'A-3,images/a.jpg,scene,," on marble, soft light ",scenes/marble.jpg,runflow,\n'
        "A-4,images/a.jpg,colour,\"10, 20,30\",,,,\n"
    ))

    result = read_manifest(path)

    assert result.errors == []
    assert [item.sku for item in result.items] == ["A-1", "A-2", "A-3", "A-4"]
    one, two, three, four = result.items
    assert one.image == str(catalog / "images" / "a.jpg")
    assert one.output_format == "png"
    assert (two.treatment, two.color, two.vendor, two.output_format) == (Treatment.color, (255, 136, 0), "fal", "jpeg")
    assert three.prompt == "on marble, soft light"
    assert three.reference == str(catalog / "scenes" / "marble.jpg")
    assert four.color == (10, 20, 30)
    assert [item.row for item in result.items] == [2, 3, 4, 5]


def test_jsonl_gives_the_same_items_as_csv(catalog: Path) -> None:
    csv_path = write(catalog, HEADER + "A-1,images/a.jpg,color,#112233,,,,webp\nA-2,images/b.jpg,scene,,a beach,,,\n")
    lines = [
        {"treatment": "color", "sku": "A-1", "image": "images/a.jpg", "color": [17, 34, 51], "output_format": "webp"},
        {"sku": "A-2", "image": "images/b.jpg", "treatment": "scene", "prompt": "a beach"},
    ]
    jsonl_path = write(catalog, "\n".join(json.dumps(line) for line in lines) + "\n", "manifest.jsonl")

    from_csv, from_jsonl = read_manifest(csv_path), read_manifest(jsonl_path)

    assert from_jsonl.format == "jsonl" and from_csv.format == "csv"
    assert [i.model_dump() for i in from_jsonl.items] == [i.model_dump() for i in from_csv.items]


def test_format_is_sniffed_without_an_extension(catalog: Path) -> None:
    jsonl = write(catalog, '\n{"sku": "A-1", "image": "images/a.jpg", "treatment": "remove"}\n', "tonight")
    csv_text = write(catalog, HEADER + "A-1,images/a.jpg,remove,,,,,\n", "tonight.txt")

    assert read_manifest(jsonl).format == "jsonl"
    assert read_manifest(csv_text).format == "csv"
    assert [i.sku for i in read_manifest(jsonl).items] == [i.sku for i in read_manifest(csv_text).items] == ["A-1"]


def test_spreadsheet_exports_with_bom_and_semicolons_are_read(catalog: Path) -> None:
    path = catalog / "excel.csv"
    path.write_bytes("\ufeffSKU;Image;Treatment;Colour\nA-1;images/a.jpg;color;12,34,56\n".encode())

    result = read_manifest(path)

    assert result.errors == []
    assert result.items[0].color == (12, 34, 56)


def test_locations_in_every_form(catalog: Path) -> None:
    absolute = catalog / "images" / "b.jpg"
    path = write(catalog, HEADER + (
        f"A-1,{absolute},remove,,,,,\n"
        f"A-2,{absolute.as_uri()},remove,,,,,\n"
        "A-3,https://cdn.example.com/p/3.jpg,remove,,,,,\n"
        "A-4,s3://bucket/photos/4.jpg,scene,,,gs://other/scene.jpg,,\n"
        "A-5,./images/../images/a.jpg,remove,,,,,\n"
    ))

    images = [(item.image, item.reference) for item in read_manifest(path).items]

    assert images == [
        (str(absolute), None),
        (str(absolute), None),
        ("https://cdn.example.com/p/3.jpg", None),
        ("s3://bucket/photos/4.jpg", "gs://other/scene.jpg"),
        (str(catalog / "images" / "a.jpg"), None),
    ]


@pytest.mark.parametrize(
    ("cells", "field", "message"),
    [
        ("TEE-009,images/a.jpg,color,#GG0000,,,,", "color", "'#GG0000' is not a hex colour"),
        ("TEE-009,images/a.jpg,color,300,0,0,,fal,png", None, "has 9 values but the header names 8 columns"),
        ('TEE-009,images/a.jpg,color,"300,0,0",,,,', "color", "'300,0,0' is not an r,g,b colour"),
        ("TEE-009,images/a.jpg,color,,,,,", "color", "treatment 'color' needs a colour"),
        ("TEE-009,images/a.jpg,blur,,,,,", "treatment", "'blur' is not a treatment"),
        ("TEE-009,,remove,,,,,", "image", "missing; every row needs an image"),
        ("TEE-009,images/nope.jpg,remove,,,,,", "image", "'images/nope.jpg' does not exist"),
        ("TEE-009,images/a.jpg,scene,,,,,", "prompt", "needs a prompt, a reference image, or both"),
        ("TEE-009,images/a.jpg,scene,,,scenes/nope.jpg,,", "reference", "'scenes/nope.jpg' does not exist"),
        ("TEE-009,images/a.jpg,remove,,,,acme,", "vendor", "'acme' is not a vendor"),
        ("TEE-009,images/a.jpg,remove,,,,,tiff", "output_format", "'tiff' is not an output format"),
        ('TEE-009,"data:image/png;base64,AAAA",remove,,,,,', "image", "is not a path, an http(s) URL"),
        ("TEE/009,images/a.jpg,remove,,,,,", "sku", "cannot name a file"),
    ],
)
def test_each_problem_names_row_sku_and_field(catalog: Path, cells: str, field: str | None, message: str) -> None:
    path = write(catalog, HEADER + "OK-1,images/a.jpg,remove,,,,,\n" + "\n" + cells + "\n")

    result = read_manifest(path)

    assert [item.sku for item in result.items] == ["OK-1"]  # one bad row does not sink the batch
    assert len(result.errors) == 1
    error = result.errors[0]
    assert (error.row, error.field) == (4, field)  # the blank line still counts: editors number it
    assert message in error.message
    sku = cells.split(",", 1)[0]
    where = f"row 4 (sku {sku}): " + (f"field {field!r}: " if field else "")
    assert str(error).startswith(where)


def test_the_issue_example_message(catalog: Path) -> None:
    rows = "".join(f"OK-{n},images/a.jpg,remove,,,,,\n" for n in range(5))
    path = write(catalog, HEADER + rows + "TEE-009,images/a.jpg,color,#GG0000,,,,\n")

    (error,) = read_manifest(path).errors

    assert str(error).startswith("row 7 (sku TEE-009): field 'color': '#GG0000' is not a hex colour")


def test_a_row_with_several_problems_reports_each(catalog: Path) -> None:
    path = write(catalog, HEADER + "B-1,images/nope.jpg,scene,,,,acme,gif\n")

    fields = [error.field for error in read_manifest(path).errors]

    assert fields == ["image", "prompt", "vendor", "output_format"]


def test_missing_sku_is_reported_without_one(catalog: Path) -> None:
    path = write(catalog, HEADER + ",images/a.jpg,remove,,,,,\n")

    (error,) = read_manifest(path).errors

    assert str(error) == "row 2: field 'sku': missing; every row needs a sku"


def test_duplicate_skus_are_errors_for_the_later_rows(catalog: Path) -> None:
    path = write(catalog, HEADER + (
        "A-1,images/a.jpg,remove,,,,,\n"
        "A-2,images/a.jpg,remove,,,,,\n"
        "A-1,images/b.jpg,color,#000000,,,,\n"
        "A-1,images/b.jpg,remove,,,,,\n"
    ))

    result = read_manifest(path)

    assert [(item.sku, item.row) for item in result.items] == [("A-1", 2), ("A-2", 3)]
    assert [str(error) for error in result.errors] == [
        "row 4 (sku A-1): field 'sku': 'A-1' repeats row 2",
        "row 5 (sku A-1): field 'sku': 'A-1' repeats row 2",
    ]


def test_bad_json_lines_are_row_errors(catalog: Path) -> None:
    path = write(catalog, (
        '{"sku": "A-1", "image": "images/a.jpg", "treatment": "remove"}\n'
        '{"sku": "A-2", "image": \n'
        '["not", "an", "object"]\n'
        '{"sku": "A-3", "image": "images/a.jpg", "treatment": "remove", "colr": "#fff"}\n'
    ), "m.jsonl")

    result = read_manifest(path)

    assert [item.sku for item in result.items] == ["A-1", "A-3"]
    assert [(error.row, error.field) for error in result.errors] == [(2, None), (3, None)]
    assert "is not valid JSON" in result.errors[0].message
    assert "is a JSON list, not an object" in result.errors[1].message
    assert result.warnings == ["ignored unknown key 'colr' (first seen on row 4)"]


def test_unknown_columns_are_a_warning_not_an_error(catalog: Path) -> None:
    path = write(catalog, "sku,image,treatment,notes\nA-1,images/a.jpg,remove,hello\n")

    result = read_manifest(path)

    assert [item.sku for item in result.items] == ["A-1"]
    assert result.warnings and "notes" in result.warnings[0]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("image,treatment\nimages/a.jpg,remove\n", "has no 'sku' column"),
        ("sku,image,sku\nA,images/a.jpg,A\n", "names column(s) sku twice"),
        ("", "is empty"),
    ],
)
def test_a_manifest_that_cannot_be_read_raises(catalog: Path, text: str, reason: str) -> None:
    with pytest.raises(ManifestError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        read_manifest(write(catalog, text))


def test_a_missing_manifest_raises_manifest_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "nope.csv")


def test_non_utf8_manifest_raises_manifest_error(catalog: Path) -> None:
    path = catalog / "latin1.csv"
    path.write_bytes(HEADER.encode() + "A-1,images/caf\xe9.jpg,remove,,,,,\n".encode("latin-1"))

    with pytest.raises(ManifestError, match="not UTF-8"):
        read_manifest(path)


def test_check_files_can_be_turned_off(catalog: Path) -> None:
    path = write(catalog, HEADER + "A-1,images/elsewhere.jpg,remove,,,,,\n")

    assert read_manifest(path, check_files=False).errors == []


class TextOnlyManifest:
    """An object-storage path as far as the reader needs: ``read_text()`` and a URI."""

    def __init__(self, uri: str, text: str) -> None:
        self.uri, self.text = uri, text

    def read_text(self) -> str:
        return self.text

    def __str__(self) -> str:
        return self.uri


def test_object_with_read_text_resolves_relative_paths_against_its_folder() -> None:
    source = TextOnlyManifest("s3://shop/catalog/2026/manifest.csv", HEADER + (
        "A-1,images/a.jpg,remove,,,,,\n"
        "A-2,../shared/b.jpg,scene,,,../../../../scenes/x.jpg,,\n"
    ))

    result = read_manifest(source)

    assert result.errors == []
    assert [(i.image, i.reference) for i in result.items] == [
        ("s3://shop/catalog/2026/images/a.jpg", None),
        ("s3://shop/catalog/shared/b.jpg", "s3://shop/scenes/x.jpg"),  # never above the bucket
    ]


def test_object_storage_uri_is_opened_through_airflow() -> None:
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach("memory", fs=MemoryFileSystem())
    path = ObjectStoragePath("memory://bucket/nightly/manifest.jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"sku": "A-1", "image": "img/a.png", "treatment": "remove"}\n')

    by_uri = read_manifest("memory://bucket/nightly/manifest.jsonl")
    by_path = read_manifest(path)

    assert [i.image for i in by_uri.items] == [i.image for i in by_path.items] == ["memory://bucket/nightly/img/a.png"]


def test_catalog_item_built_directly_applies_the_same_rules(tmp_path: Path) -> None:
    item = CatalogItem(sku="X-1", image="https://x.test/a.png", treatment="colour", color="#0A0B0C")
    assert (item.treatment, item.color, item.color_hex) == (Treatment.color, (10, 11, 12), "#0a0b0c")
    assert CatalogItem.model_validate_json(item.model_dump_json()) == item

    with pytest.raises(ValueError, match="field 'prompt': missing; treatment 'scene' needs"):
        CatalogItem(sku="X-2", image="https://x.test/a.png", treatment="scene")
    with pytest.raises(ValueError, match="colr"):
        CatalogItem.model_validate({"sku": "X-3", "image": "a.png", "treatment": "remove", "colr": "#fff"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [("#A1b2C3", (161, 178, 195)), ("a1b2c3", (161, 178, 195)), ("1, 2 ,3", (1, 2, 3)), ([0, 0, 255], (0, 0, 255)),
     ("", None), (None, None)],
)
def test_parse_color_forms(value: object, expected: tuple[int, int, int] | None) -> None:
    assert parse_color(value) == expected


@pytest.mark.parametrize("value", ["#FFF", "#12345", "1,2", "1,2,3,4", "-1,0,0", "a,b,c", 7])
def test_parse_color_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="colour"):
        parse_color(value)


def test_a_100k_row_manifest_reads_in_a_couple_of_seconds(catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    treatments = ("remove,", "color,#aabbcc", "scene,")
    lines = [HEADER]
    for n in range(100_000):
        prompt = "on a marble counter" if n % 3 == 2 else ""
        lines.append(f"SKU-{n:06d},images/{'ab'[n % 2]}.jpg,{treatments[n % 3]},{prompt},,fal,png\n")
    path = write(catalog, "".join(lines), "big.csv")

    started = time.perf_counter()
    result = read_manifest(path)
    elapsed = time.perf_counter() - started

    assert len(result.items) == 100_000 and not result.errors
    with capsys.disabled():
        print(f"\n100,000-row CSV manifest read and validated in {elapsed:.2f} s")
