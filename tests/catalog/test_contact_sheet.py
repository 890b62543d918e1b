from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from airflow_bgreplace.catalog.contact_sheet import THUMBNAIL_CACHE_DAYS, write_contact_sheet
from airflow_bgreplace.catalog.manifest import ManifestReadResult
from airflow_bgreplace.catalog.outputs import OutcomeStatus, OutputRow
from tests.catalog.fakes import FAILURES, fake_run

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
IMG_TAG = re.compile(r"<img\b[^>]*>")


@pytest.fixture(scope="module")
def sheet(
    sample_manifest: ManifestReadResult, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[OutputRow]]:
    """The contact sheet of a fake run over the sample catalog (2 failures, 3 unchanged, 5 invalid)."""
    folder = tmp_path_factory.mktemp("run")
    rows = fake_run(sample_manifest, folder / "outputs")
    page = folder / "contact_sheet.html"
    write_contact_sheet(
        rows, page, title="Nightly catalog refresh", run_id="scheduled__2026-03-01T02:00:00+00:00",
        items=sample_manifest.items,
    )
    return page, rows


def test_one_card_per_item_and_the_invalid_rows_listed(sheet: tuple[Path, list[OutputRow]]) -> None:
    page, rows = sheet
    html = page.read_text()

    processed = [r for r in rows if r.status is not OutcomeStatus.invalid]
    assert html.count('<article class="card') == len(processed) == 30
    assert html.count('class="card s-failed"') == len(FAILURES)
    for message in FAILURES.values():
        assert message in html
    assert "5 manifest row(s) not processed" in html
    assert "row 33 (sku TEE-009): field &#x27;color&#x27;: &#x27;#GG0000&#x27; is not a hex colour" in html
    # The failures come first: they are what the reader looks for.
    first_cards = re.findall(r'<article class="card s-(\w+)"', html)[: len(FAILURES)]
    assert first_cards == ["failed"] * len(FAILURES)


def test_the_page_needs_nothing_from_outside(sheet: tuple[Path, list[OutputRow]]) -> None:
    html = sheet[0].read_text()

    sources = re.findall(r'\bsrc="([^"]*)"', html)
    assert sources and all(src.startswith("data:image/") for src in sources)
    assert "<script" not in html and "<link" not in html and "@import" not in html and "@font-face" not in html
    assert not re.search(r"url\(\s*['\"]?(https?:|//)", html)


def test_transparent_results_are_png_on_a_checkerboard(sheet: tuple[Path, list[OutputRow]]) -> None:
    html = sheet[0].read_text()
    card = re.search(r'<article class="card s-succeeded">(?:(?!</article>).)*<h3>MUG-RED-01</h3>.*?</article>', html)

    assert card is not None
    assert 'class="thumb checker"><a href="file://' in card.group(0)
    assert "data:image/png;base64," in card.group(0)


def test_thumbnails_can_be_written_beside_the_page(tmp_path: Path, sample_manifest: ManifestReadResult) -> None:
    rows = fake_run(ManifestReadResult(items=sample_manifest.items[:4], errors=[]), tmp_path / "outputs")

    result = write_contact_sheet(rows, tmp_path / "sheet" / "index.html", thumbnails="thumbs")

    html = (tmp_path / "sheet" / "index.html").read_text()
    sources = re.findall(r'\bsrc="([^"]*)"', html)
    assert sources and all(src.startswith("thumbs/") for src in sources)
    for src in sources:
        with Image.open(tmp_path / "sheet" / src) as thumb:
            assert max(thumb.size) <= 320
    assert result.thumbnails == len(set(sources)) and result.html_bytes < 20_000


def test_unavailable_images_get_a_labelled_placeholder(tmp_path: Path) -> None:
    rows = [
        {"sku": "R-1", "status": "succeeded", "input_uri": "https://cdn.example.com/r1.jpg",
         "output_uri": str(tmp_path / "gone.png")},
        {"sku": "R-2", "status": "succeeded", "input_uri": str(tmp_path / "not-an-image.jpg")},
    ]
    (tmp_path / "not-an-image.jpg").write_text("hello")

    result = write_contact_sheet(rows, tmp_path / "sheet.html")

    html = (tmp_path / "sheet.html").read_text()
    assert "remote URL, not downloaded" in html
    assert "file not found" in html
    assert "not readable as an image" in html
    assert result.unavailable == 3 and result.thumbnails == 0


def test_text_from_rows_is_escaped(tmp_path: Path) -> None:
    rows = [{"sku": "<b>X</b>", "status": "failed", "error": '<script>alert("x")</script>'}]

    write_contact_sheet(rows, tmp_path / "sheet.html", title="A & B", run_id="<run>")

    html = (tmp_path / "sheet.html").read_text()
    assert "<script>" not in html and "<b>X</b>" not in html
    assert "&lt;script&gt;" in html and "A &amp; B" in html and "&lt;run&gt;" in html


def test_an_empty_run_still_makes_a_page(tmp_path: Path) -> None:
    result = write_contact_sheet([], tmp_path / "sheet.html")

    assert result.cards == 0
    assert "Nothing to show" in (tmp_path / "sheet.html").read_text()


def test_cards_beyond_the_limit_are_counted_not_shown(tmp_path: Path) -> None:
    rows = [{"sku": f"S-{n}", "status": "skipped"} for n in range(12)]

    result = write_contact_sheet(rows, tmp_path / "sheet.html", max_cards=5)

    assert result.cards == 5
    assert "7 more item(s) not shown" in (tmp_path / "sheet.html").read_text()


# --------------------------------------------------------------------------- in a real browser


def _chromium_or_skip() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{CHROMIUM} is missing on CI: run scripts/install_chromium.sh before the tests")
    pytest.skip(f"{CHROMIUM} not installed (scripts/install_chromium.sh installs it)")


def _chromium(browser: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(browser), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


# Counts the images that decoded, once everything has loaded, into an attribute --dump-dom shows.
_PROBE = (
    "<script>addEventListener('load',()=>{const all=[...document.images];"
    "document.documentElement.dataset.imagesLoaded=all.filter(i=>i.complete&&i.naturalWidth>0).length+'/'+all.length})"
    "</script></body>"
)


def test_contact_sheet_in_headless_chromium(sheet: tuple[Path, list[OutputRow]], tmp_path: Path) -> None:
    browser = _chromium_or_skip()
    page, _rows = sheet
    html = page.read_text()
    expected = len(IMG_TAG.findall(html))
    assert expected >= 60  # before and after for 28 items, before for 2 failures, scene references

    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "contact_sheet.png"
    screenshot.unlink(missing_ok=True)
    shot = _chromium(browser, tmp_path / "profile-shot", f"--screenshot={screenshot}", "--window-size=1400,1800",
                     page.as_uri())
    assert shot.returncode == 0, shot.stderr[-2000:]
    with Image.open(screenshot) as image:
        assert image.size == (1400, 1800)
        # Not a blank page: the header, the cards and the photos make many colours.
        assert len(image.convert("RGB").resize((140, 180)).getcolors(1 << 16) or []) > 500

    probe = tmp_path / "probe" / page.name
    probe.parent.mkdir()
    probe.write_text(html.replace("</body>", _PROBE))
    dumped = _chromium(browser, tmp_path / "profile-dom", "--virtual-time-budget=15000", "--dump-dom", probe.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    loaded = re.search(r'data-images-loaded="(\d+)/(\d+)"', dumped.stdout)
    assert loaded is not None, dumped.stdout[:500]
    assert (int(loaded.group(1)), int(loaded.group(2))) == (expected, expected)


def test_install_script_is_where_make_expects_it() -> None:
    script = Path(__file__).resolve().parents[2] / "scripts" / "install_chromium.sh"
    assert script.is_file() and os.access(script, os.X_OK)
    assert shutil.which("bash") is not None
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_missing_chromium_skips_locally_and_fails_on_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import tests.catalog.test_contact_sheet as this

    monkeypatch.setattr(this, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"install_chromium\.sh"):
        _chromium_or_skip()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="missing on CI"):
        _chromium_or_skip()


def test_page_and_thumbnails_can_go_to_object_storage(tmp_path: Path, sample_manifest: ManifestReadResult) -> None:
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach("memory", fs=MemoryFileSystem())
    rows = fake_run(ManifestReadResult(items=sample_manifest.items[:3], errors=[]), tmp_path / "outputs")

    result = write_contact_sheet(rows, "memory://reports/2026-03-01/sheet.html", thumbnails="thumbs")

    page = ObjectStoragePath("memory://reports/2026-03-01/sheet.html").read_text()
    sources = re.findall(r'\bsrc="([^"]*)"', page)
    assert result.uri == "memory://reports/2026-03-01/sheet.html" and len(sources) == 6
    for src in sources:
        assert ObjectStoragePath(f"memory://reports/2026-03-01/{src}").read_bytes()[:3] in (b"\xff\xd8\xff", b"\x89PN")


# --------------------------------------------------------------------------- thumbnail cache


def _photo_file(path: Path, colour: tuple[int, int, int]) -> Path:
    Image.new("RGB", (400, 300), colour).save(path, "BMP")  # uncompressed: every colour, the same size
    return path


def _first_thumbnail(html: str) -> tuple[int, int, int]:
    import base64
    import io

    src = re.findall(r'\bsrc="data:image/jpeg;base64,([^"]*)"', html)[0]
    with Image.open(io.BytesIO(base64.b64decode(src))) as thumb:
        pixel = thumb.convert("RGB").getpixel((10, 10))
    assert isinstance(pixel, tuple)
    return pixel[0], pixel[1], pixel[2]


def test_an_unchanged_source_gets_last_runs_thumbnail_without_being_read(tmp_path: Path) -> None:
    photo = _photo_file(tmp_path / "p.bmp", (200, 30, 30))
    rows = [{"sku": "P-1", "status": "unchanged", "input_uri": str(photo)}]
    cache = tmp_path / "cache"
    write_contact_sheet(rows, tmp_path / "night1.html", cache=cache)
    stat = photo.stat()
    # Same size and mtime, other pixels: only a cache hit can still show red (the rsync rule).
    blue = _photo_file(tmp_path / "blue.bmp", (30, 30, 200)).read_bytes()
    assert len(blue) == stat.st_size
    photo.write_bytes(blue)
    os.utime(photo, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    write_contact_sheet(rows, tmp_path / "night2.html", cache=cache)

    assert _first_thumbnail((tmp_path / "night2.html").read_text())[0] > 150


def test_a_changed_source_is_thumbnailed_again_and_unused_thumbnails_expire(tmp_path: Path) -> None:
    photo = _photo_file(tmp_path / "p.bmp", (200, 30, 30))
    other = _photo_file(tmp_path / "q.bmp", (30, 200, 30))
    cache = tmp_path / "cache"
    write_contact_sheet(
        [{"sku": "P-1", "status": "unchanged", "input_uri": str(photo)},
         {"sku": "Q-1", "status": "unchanged", "input_uri": str(other)}],
        tmp_path / "night1.html", cache=cache,
    )  # fmt: skip
    assert len(list(cache.iterdir())) == 2
    _photo_file(photo, (30, 30, 200))
    os.utime(photo, ns=(photo.stat().st_atime_ns, photo.stat().st_mtime_ns + 1_000_000_000))
    night2 = [{"sku": "P-1", "status": "succeeded", "input_uri": str(photo)}]

    write_contact_sheet(night2, tmp_path / "night2.html", cache=cache)

    assert _first_thumbnail((tmp_path / "night2.html").read_text())[2] > 150
    # Q-1 may be on tomorrow's page again: kept until unused for THUMBNAIL_CACHE_DAYS.
    assert len(list(cache.iterdir())) == 3
    long_ago = time.time() - (THUMBNAIL_CACHE_DAYS + 1) * 86400
    for entry in cache.iterdir():
        os.utime(entry, (long_ago, long_ago))
    write_contact_sheet(night2, tmp_path / "night3.html", cache=cache)
    assert len(list(cache.iterdir())) == 1  # the one night3 used
