"""The shipped sample catalog: what its README promises, and that its script re-creates it."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

from airflow_bgreplace.catalog.manifest import ManifestReadResult, Treatment
from tests.catalog.fakes import SAMPLE_CATALOG

SCRIPT = SAMPLE_CATALOG.parents[1] / "scripts" / "render_sample_catalog.py"


@pytest.fixture(scope="module")
def renderer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_sample_catalog", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def test_the_manifest_has_30_items_and_the_five_documented_bad_rows(sample_manifest: ManifestReadResult) -> None:
    assert len(sample_manifest.items) == 30
    assert sample_manifest.warnings == []
    assert [(e.row, e.sku, e.field) for e in sample_manifest.errors] == [
        (32, "MUG-BLU-01", "treatment"),
        (33, "TEE-009", "color"),
        (34, "MUG-BLK-01", "image"),
        (35, "MUG-RED-01", "sku"),
        (36, "VAS-GRN-01", "prompt"),
    ]
    readme = (SAMPLE_CATALOG / "README.md").read_text()
    for error in sample_manifest.errors:
        assert f"| {error.row} | `{error.sku}` |" in readme


def test_the_manifest_exercises_every_treatment(sample_manifest: ManifestReadResult) -> None:
    kinds = Counter(
        (item.treatment, item.prompt is not None, item.reference is not None) for item in sample_manifest.items
    )

    assert kinds[(Treatment.remove, False, False)] > 0
    assert kinds[(Treatment.color, False, False)] > 0
    assert kinds[(Treatment.scene, True, False)] > 0  # prompt only
    assert kinds[(Treatment.scene, False, True)] > 0  # reference only
    assert kinds[(Treatment.scene, True, True)] > 0  # both
    vendors = {item.vendor for item in sample_manifest.items}
    assert vendors >= {"runflow", "fashn", "fal", "imagepipeline", "local", None}


def test_the_images_are_small_enough_to_commit() -> None:
    files = sorted((SAMPLE_CATALOG / "images").glob("*.jpg")) + sorted((SAMPLE_CATALOG / "scenes").glob("*.jpg"))

    assert len(files) == 33
    for path in files:
        assert path.stat().st_size <= 40_000, path.name
        with Image.open(path) as image:
            assert max(image.size) <= 640, path.name
    total = sum(path.stat().st_size for path in SAMPLE_CATALOG.rglob("*") if path.is_file())
    assert total < 1_500_000


def test_the_script_writes_the_committed_manifest(renderer: ModuleType, tmp_path: Path) -> None:
    renderer.write_manifest(tmp_path / "manifest.csv")

    assert (tmp_path / "manifest.csv").read_text() == (SAMPLE_CATALOG / "manifest.csv").read_text()


def test_the_script_is_deterministic(renderer: ModuleType, tmp_path: Path) -> None:
    only = "--only=mug-red,sneaker-black-wood,scene-beach"
    for out in ("one", "two"):
        assert renderer.main([f"--out={tmp_path / out}", only]) == 0

    made = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.jpg"))
    assert [str(p) for p in made] == ["images/mug-red.jpg", "images/sneaker-black-wood.jpg", "scenes/beach.jpg"]
    for path in made:
        assert (tmp_path / "one" / path).read_bytes() == (tmp_path / "two" / path).read_bytes()
