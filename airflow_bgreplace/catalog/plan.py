"""Which vendor endpoint, with which documented inputs, performs a catalog treatment.

One table for every (vendor, treatment) pair, so the nightly DAG switches vendors by
configuration alone. A pair the vendor cannot do (e.g. fal has no plain removal) is an error
naming the item, never a silent substitute.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow_bgreplace.catalog.manifest import CatalogItem, Treatment


class UnsupportedTreatment(ValueError):
    """The chosen vendor has no endpoint for this treatment (or these scene inputs)."""


def _hex(item: CatalogItem) -> str:
    assert item.color is not None
    return "#{:02X}{:02X}{:02X}".format(*item.color)


def _with_format(inputs: dict[str, Any], item: CatalogItem, allowed: tuple[str, ...]) -> dict[str, Any]:
    if item.output_format and item.output_format in allowed:
        inputs["output_format"] = item.output_format
    return inputs


Planner = Callable[[CatalogItem], tuple[str, dict[str, Any]]]


def _local(item: CatalogItem) -> tuple[str, dict[str, Any]]:
    formats = ("png", "jpeg", "webp")
    if item.treatment is Treatment.remove:
        return "background/remove", _with_format({"image": item.image}, item, formats)
    if item.treatment is Treatment.color:
        return "background/color", _with_format({"image": item.image, "color": _hex(item)}, item, formats)
    inputs: dict[str, Any] = {"image": item.image, "reference": item.reference, "prompt": item.prompt}
    return "background/replace", _with_format({k: v for k, v in inputs.items() if v}, item, formats)


def _runflow(item: CatalogItem) -> tuple[str, dict[str, Any]]:
    if item.treatment is Treatment.color:
        red, green, blue = item.color or (255, 255, 255)
        return "background-color", {"image_url": item.image, "color_red": red, "color_green": green, "color_blue": blue}
    if item.treatment is Treatment.scene and item.reference:
        inputs = {"image": item.image, "reference": item.reference}
        return "background-replace", {**inputs, "prompt": item.prompt} if item.prompt else inputs
    raise UnsupportedTreatment("runflow does removal only as recolouring, and scenes only from a reference image")


def _fashn(item: CatalogItem) -> tuple[str, dict[str, Any]]:
    if item.treatment is Treatment.scene and item.prompt:
        return "background-change", _with_format({"image": item.image, "prompt": item.prompt}, item, ("png", "jpeg"))
    raise UnsupportedTreatment("fashn background-change needs a scene prompt")


def _fal(item: CatalogItem) -> tuple[str, dict[str, Any]]:
    if item.treatment is Treatment.scene and item.prompt:
        return "bria/replace-background", {"image_url": item.image, "prompt": item.prompt}
    raise UnsupportedTreatment("fal bria/replace-background needs a scene prompt")


def _imagepipeline(item: CatalogItem) -> tuple[str, dict[str, Any]]:
    formats = ("png", "jpeg", "webp")
    if item.treatment is Treatment.remove:
        return "background/remove", _with_format({"input_image": item.image, "output_format": "png"}, item, formats)
    if item.treatment is Treatment.color:
        inputs = {"input_image": item.image, "recolor": _hex(item), "drop_shadow": True}
        return "background/remove", _with_format(inputs, item, formats)
    if item.prompt:
        return "background/change", _with_format({"input_image": item.image, "prompt": item.prompt}, item, formats)
    raise UnsupportedTreatment("imagepipeline background change needs a scene prompt")


PLANNERS: dict[str, Planner] = {
    "local": _local,
    "runflow": _runflow,
    "fashn": _fashn,
    "fal": _fal,
    "imagepipeline": _imagepipeline,
}


def plan_job(item: CatalogItem, default_vendor: str, *, force_vendor: bool = False) -> tuple[str, str, dict[str, Any]]:
    """(vendor, endpoint, inputs) for ``item``; raises :class:`UnsupportedTreatment` naming the item.

    The item's own ``vendor`` wins over ``default_vendor`` unless ``force_vendor`` (e.g. a run
    that must stay on the free local engine).
    """
    vendor = default_vendor if force_vendor else (item.vendor or default_vendor)
    try:
        planner = PLANNERS[vendor]
    except KeyError:
        raise UnsupportedTreatment(f"sku {item.sku}: unknown vendor {vendor!r}") from None
    try:
        endpoint, inputs = planner(item)
    except UnsupportedTreatment as exc:
        raise UnsupportedTreatment(f"sku {item.sku}: {item.treatment.value} with {vendor}: {exc}") from None
    return vendor, endpoint, inputs


def price_usd(vendor: str, endpoint: str) -> float:
    """The documented (or assumed) price of one job, for budgets (``vendors/assumptions.py``)."""
    from airflow_bgreplace.vendors.assumptions import BY_VENDOR

    assumed = BY_VENDOR.get(vendor)
    return assumed.price_usd.get(endpoint, 0.0) if assumed else 0.0
