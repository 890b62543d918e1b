from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from airflow_bgreplace.catalog import locations
from airflow_bgreplace.catalog.fingerprint import content_hash, item_fingerprint
from airflow_bgreplace.catalog.manifest import CatalogItem, read_manifest

IMAGE_HASH = "sha256:" + "ab" * 32


def item(**changes: object) -> CatalogItem:
    base: dict[str, object] = {
        "sku": "MUG-1",
        "image": "/catalog/images/mug.jpg",
        "treatment": "scene",
        "prompt": "on a marble counter",
        "reference": "/catalog/scenes/marble.jpg",
        "vendor": "fal",
        "output_format": "png",
    }
    base.update(changes)
    return CatalogItem.model_validate(base)


def test_same_inputs_give_the_same_fingerprint() -> None:
    first = item_fingerprint(item(), IMAGE_HASH)
    again = item_fingerprint(item(), IMAGE_HASH)

    assert first == again
    assert len(first) == 64 and int(first, 16) >= 0


@pytest.mark.parametrize(
    ("changed", "kwargs"),
    [
        ({"prompt": "on a wooden shelf"}, {}),
        ({"reference": "/catalog/scenes/beach.jpg"}, {}),
        ({}, {"reference_hash": "sha256:" + "cd" * 32}),
        ({"vendor": "runflow"}, {}),
        ({"output_format": "webp"}, {}),
        ({"treatment": "remove"}, {}),
        ({}, {"image_bytes_hash": "sha256:" + "ef" * 32}),
    ],
)
def test_changing_any_parameter_of_the_treatment_changes_it(changed: dict[str, object], kwargs: dict[str, str]) -> None:
    image_hash = kwargs.pop("image_bytes_hash", IMAGE_HASH)

    assert item_fingerprint(item(**changed), image_hash, **kwargs) != item_fingerprint(item(), IMAGE_HASH)


def test_colour_counts_for_color_items() -> None:
    red = item(treatment="color", color="#ff0000", prompt=None, reference=None)
    blue = item(treatment="color", color="#0000ff", prompt=None, reference=None)
    red_again = item(treatment="color", color="255,0,0", prompt=None, reference=None)

    assert item_fingerprint(red, IMAGE_HASH) != item_fingerprint(blue, IMAGE_HASH)
    assert item_fingerprint(red, IMAGE_HASH) == item_fingerprint(red_again, IMAGE_HASH)  # same colour, other spelling


def test_parameters_the_treatment_ignores_do_not_count() -> None:
    plain = item(treatment="remove", prompt=None, reference=None)
    with_leftovers = item(treatment="remove", color="#123456", prompt="old prompt", reference=None)

    assert item_fingerprint(plain, IMAGE_HASH) == item_fingerprint(with_leftovers, IMAGE_HASH)


def test_default_vendor_counts_for_items_that_name_none() -> None:
    unnamed = item(vendor=None)

    named = item_fingerprint(item(vendor="fal"), IMAGE_HASH)
    assert item_fingerprint(unnamed, IMAGE_HASH, default_vendor="fal") == named
    assert item_fingerprint(unnamed, IMAGE_HASH, default_vendor="fal") != item_fingerprint(
        unnamed, IMAGE_HASH, default_vendor="runflow"
    )


def test_reordering_manifest_columns_does_not_change_fingerprints(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"a")
    rows = [("A-1", "a.jpg", "scene", "", "on marble", "fal"), ("A-2", "a.jpg", "color", "#102030", "", "")]
    columns = ["sku", "image", "treatment", "color", "prompt", "vendor"]
    order = [5, 3, 0, 4, 2, 1]
    (tmp_path / "one.csv").write_text(
        ",".join(columns) + "\n" + "".join(",".join(row) + "\n" for row in rows)
    )
    (tmp_path / "two.csv").write_text(
        ",".join(columns[i] for i in order) + "\n" + "".join(",".join(row[i] for i in order) + "\n" for row in rows)
    )

    def fingerprints(name: str) -> list[str]:
        return [item_fingerprint(i, IMAGE_HASH) for i in read_manifest(tmp_path / name).items]

    assert fingerprints("one.csv") == fingerprints("two.csv")
    assert len(set(fingerprints("one.csv"))) == 2


def test_content_hash_streams_files_and_matches_hashlib(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # several chunks and a remainder
    path = tmp_path / "big.jpg"
    path.write_bytes(data)
    expected = "sha256:" + hashlib.sha256(data).hexdigest()

    assert content_hash(path) == expected
    assert content_hash(str(path)) == expected
    assert content_hash(path.as_uri()) == expected
    assert content_hash(data) == expected


def test_content_hash_changes_with_the_image_bytes(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    path.write_bytes(b"\x89PNG one")
    before = content_hash(path)
    path.write_bytes(b"\x89PNG two")

    assert content_hash(path) != before


def test_http_urls_are_identified_without_downloading(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("content_hash must not open an http(s) URL")

    monkeypatch.setattr(locations, "open_binary", no_download)
    url = "https://cdn.example.com/p/mug.jpg"

    plain = content_hash(url)
    tagged = content_hash(url, etag='"abc"')
    retagged = content_hash(url, etag='"abd"')
    dated = content_hash(url, etag='"abc"', last_modified="Sun, 01 Mar 2026 02:00:00 GMT")

    assert plain.startswith("url-sha256:")
    assert plain == content_hash(url)
    assert len({plain, tagged, retagged, dated}) == 4
    assert content_hash(url + "?v=2") != plain


def test_content_hash_reads_object_storage() -> None:
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach("memory", fs=MemoryFileSystem())
    path = ObjectStoragePath("memory://bucket/fingerprint/photo.jpg")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"photo bytes")

    expected = "sha256:" + hashlib.sha256(b"photo bytes").hexdigest()
    assert content_hash(path) == content_hash("memory://bucket/fingerprint/photo.jpg") == expected
