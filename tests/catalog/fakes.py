"""A fake catalog run over the sample catalog: what the DAG would write, without any vendor."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from pathlib import Path

from PIL import Image, ImageChops, ImageFilter

from airflow_bgreplace.catalog.manifest import CatalogItem, ManifestReadResult, Treatment
from airflow_bgreplace.catalog.outputs import OutcomeStatus, OutputRow

SAMPLE_CATALOG = Path(__file__).resolve().parents[2] / "dags_examples" / "sample_catalog"
#: Items the fake run fails, with the message a vendor would give.
FAILURES = {
    "SNK-BLK-01": "local engine: low confidence (0.41) separating the subject from a textured background",
    "CAN-CITRUS-01": "imagepipeline job 7f3a-21 failed: [INVALID_IMAGE] subject not found",
}
#: Items the fake run finds unchanged since last night.
UNCHANGED = {"BOK-PASTEL-01", "SPK-GRY-01", "TEA-WHT-01"}


def fake_result(item: CatalogItem) -> Image.Image:
    """What a vendor might return: a rough cut-out, recoloured or put on the reference scene."""
    with Image.open(item.image) as source:
        photo = source.convert("RGB")
    # Studio sweeps change mostly from top to bottom: each row's backdrop is its two edge colours,
    # blended across. Far enough from it counts as product: good enough to look like a cut-out.
    edges = Image.new("RGB", (2, photo.height))
    edges.paste(photo.crop((0, 0, 1, photo.height)), (0, 0))
    edges.paste(photo.crop((photo.width - 1, 0, photo.width, photo.height)), (1, 0))
    backdrop = edges.resize(photo.size, Image.Resampling.BILINEAR)
    distance = ImageChops.difference(photo, backdrop).convert("L")
    alpha = distance.point(lambda v: 255 if v > 34 else 0).filter(ImageFilter.MedianFilter(5))
    alpha = alpha.filter(ImageFilter.GaussianBlur(1.2))
    cutout = photo.convert("RGBA")
    cutout.putalpha(alpha)
    if item.treatment is Treatment.remove:
        return cutout
    if item.treatment is Treatment.color:
        assert item.color is not None
        background = Image.new("RGBA", photo.size, (*item.color, 255))
    elif item.reference:
        with Image.open(item.reference) as scene:
            background = scene.convert("RGBA").resize(photo.size)
    else:
        background = Image.new("RGBA", photo.size, (214, 200, 180, 255))
    background.alpha_composite(cutout)
    return background.convert("RGB")


def fake_run(result: ManifestReadResult, out_dir: Path) -> list[OutputRow]:
    """Output rows as the DAG would write them: results on disk, a few failures, invalid rows."""
    out_dir.mkdir(parents=True, exist_ok=True)
    start = datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)
    rows: list[OutputRow] = []
    for index, item in enumerate(result.items):
        finished = start + timedelta(seconds=7 * index + 5)
        common = {"sku": item.sku, "treatment": item.treatment.value, "vendor": item.vendor or "fal",
                  "input_uri": item.image, "finished_at": finished, "fingerprint": f"{index:064x}"}
        if item.sku in FAILURES:
            rows.append(OutputRow(status=OutcomeStatus.failed, error=FAILURES[item.sku], duration_s=6.5,
                                  cost_usd=0.0, **common))
            continue
        image = fake_result(item)
        fmt = "PNG" if image.mode == "RGBA" else "JPEG"
        target = out_dir / f"{item.sku}.{fmt.lower().replace('jpeg', 'jpg')}"
        buffer = io.BytesIO()
        image.save(buffer, fmt)
        target.write_bytes(buffer.getvalue())
        status = OutcomeStatus.unchanged if item.sku in UNCHANGED else OutcomeStatus.succeeded
        rows.append(OutputRow(status=status, output_uri=str(target), width=image.width, height=image.height,
                              job_id=None if status is OutcomeStatus.unchanged else f"job-{index:04d}",
                              duration_s=None if status is OutcomeStatus.unchanged else 4.0 + index % 5,
                              cost_usd=None if status is OutcomeStatus.unchanged else 0.02, **common))
    for error in result.errors:
        rows.append(OutputRow(sku=error.sku, status=OutcomeStatus.invalid, error=str(error),
                              finished_at=start + timedelta(seconds=1)))
    return rows
