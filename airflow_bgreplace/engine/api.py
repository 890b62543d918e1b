"""The engine's four treatments; each returns an :class:`EngineResult`."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from airflow_bgreplace.engine.backdrops import GROUND, parse_prompt, render_backdrop
from airflow_bgreplace.engine.composite import (
    apply_shadow,
    composite,
    contact_shadow,
    cover,
    harmonise,
    place,
    plan_placement,
    shaded_colour,
)

# ``recolor`` takes a ``drop_shadow`` flag, so the shadow builder goes by another name here.
from airflow_bgreplace.engine.composite import drop_shadow as drop_shadow_matte
from airflow_bgreplace.engine.errors import EngineInputError
from airflow_bgreplace.engine.imageio import (
    CONTENT_TYPES,
    DecodedImage,
    decode_image,
    encode_image,
    flatten_on_white,
    normalise_format,
    parse_color,
)
from airflow_bgreplace.engine.segmentation import Matte, segment_decoded
from airflow_bgreplace.engine.settings import get_settings
from airflow_bgreplace.engine.timing import Timings

ImageInput = bytes | Image.Image


@dataclass
class EngineResult:
    """An encoded result image and how the engine got there."""

    data: bytes
    content_type: str
    width: int
    height: int
    #: Segmentation path, e.g. ``border_key+u2netp``, ``u2netp``, ``u2netp+gate->grabcut``.
    method: str
    #: 0-1; below 0.5 ``low_confidence`` is set and a human should look at the result.
    confidence: float
    low_confidence: bool
    notes: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    #: The picture before encoding (RGBA for png/webp cut-outs, else RGB).
    image: Image.Image | None = field(default=None, repr=False, compare=False)


def _fraction(name: str, value: float, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise EngineInputError(f"{name} must be a number, not {value!r}", which=name, cause="parameter") from exc
    if not (math.isfinite(number) and low <= number <= high):
        raise EngineInputError(f"{name} must be between {low} and {high}, not {value!r}", which=name, cause="parameter")
    return number


def _decode(image: ImageInput, which: str, timings: Timings) -> DecodedImage:
    with timings.step("decode"):
        return decode_image(image, which=which, max_pixels=get_settings().max_pixels)


def _finish(
    rgb: np.ndarray,
    alpha: np.ndarray | None,
    output_format: str,
    matte: Matte,
    notes: list[str],
    timings: Timings,
    started: float,
) -> EngineResult:
    fmt = normalise_format(output_format)
    with timings.step("encode"):
        if alpha is not None and fmt == "jpeg":
            rgb, alpha = flatten_on_white(rgb, alpha), None
        data = encode_image(rgb, alpha, fmt)
        pil = Image.fromarray(np.dstack([rgb, alpha]), "RGBA") if alpha is not None else Image.fromarray(rgb, "RGB")
    timings["total"] = round(time.perf_counter() - started, 6)
    return EngineResult(
        data=data,
        content_type=CONTENT_TYPES[fmt],
        width=int(rgb.shape[1]),
        height=int(rgb.shape[0]),
        method=matte.method,
        confidence=matte.confidence,
        low_confidence=matte.low_confidence,
        notes=[*matte.notes, *notes],
        timings_s=dict(timings),
        image=pil,
    )


def remove_background(image: ImageInput, *, output_format: str = "png") -> EngineResult:
    """The subject as a cut-out: RGBA (soft alpha, decontaminated edge colours) for png/webp;
    jpeg has no alpha, so the cut-out is flattened onto white."""
    started = time.perf_counter()
    normalise_format(output_format)  # fail before the work
    timings = Timings()
    matte = segment_decoded(_decode(image, "image", timings), timings)
    notes = (
        ["jpeg has no transparency: cut-out flattened onto white"] if normalise_format(output_format) == "jpeg" else []
    )
    with timings.step("composite"):
        alpha = matte.alpha_u8()
        # Colour under fully transparent pixels is invisible; zero it away from the subject
        # (smaller files), keep it next to edges (no dark fringes when viewers resample).
        near = cv2.dilate((alpha > 0).view(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        rgb = np.where(near[..., None], matte.foreground, np.uint8(0))
    return _finish(rgb, alpha, output_format, matte, notes, timings, started)


def recolor(
    image: ImageInput,
    color: tuple[int, int, int] | str,
    *,
    shading: float = 0.30,
    drop_shadow: bool = False,
    shadow_opacity: float = 0.38,
    shadow_blur: float = 0.018,
    shadow_dy: float = 0.022,
    shadow_dx: float = 0.004,
    output_format: str = "png",
) -> EngineResult:
    """The subject on a flat colour (hex, name or RGB tuple).

    ``shading`` darkens the colour radially away from the subject by up to that share in the
    farthest corner (Runflow's background-color is fixed at 0.30; 0 gives ImagePipeline's flat
    ``recolor``). ``drop_shadow`` adds ImagePipeline's shadow: the matte offset by
    ``shadow_dx`` x width and ``shadow_dy`` x height, blurred by ``shadow_blur`` x width, at
    ``shadow_opacity``.
    """
    started = time.perf_counter()
    normalise_format(output_format)
    rgb_colour = parse_color(color)
    shading = _fraction("shading", shading, 0.0, 1.0)
    opacity = _fraction("shadow_opacity", shadow_opacity, 0.0, 1.0)
    blur = _fraction("shadow_blur", shadow_blur, 0.0, 1.0)
    dy = _fraction("shadow_dy", shadow_dy, -1.0, 1.0)
    dx = _fraction("shadow_dx", shadow_dx, -1.0, 1.0)
    timings = Timings()
    matte = segment_decoded(_decode(image, "image", timings), timings)
    notes = [f"flat colour #{rgb_colour[0]:02x}{rgb_colour[1]:02x}{rgb_colour[2]:02x}, shading {shading:.0%}"]
    with timings.step("composite"):
        backdrop = shaded_colour(rgb_colour, matte.size, shading, matte.alpha)
        if drop_shadow and opacity > 0:
            shadow = drop_shadow_matte(matte.alpha, opacity=opacity, blur=blur, dx=dx, dy=dy)
            backdrop = apply_shadow(backdrop, shadow)
            notes.append(f"drop shadow: opacity {opacity}, blur {blur} W, offset ({dx} W, {dy} H)")
        out = composite(matte.foreground, matte.alpha, backdrop)
    return _finish(out, None, output_format, matte, notes, timings, started)


def _horizontal_hint(prompt: str | None) -> float:
    words = set(re.findall(r"[a-z]+", (prompt or "").lower()))
    if "left" in words and "right" not in words:
        return 0.36
    if "right" in words and "left" not in words:
        return 0.64
    return 0.5


def replace_with_reference(
    image: ImageInput, reference: ImageInput, *, prompt: str | None = None, output_format: str = "png"
) -> EngineResult:
    """The subject placed into a reference scene, at the product photo's size.

    The reference covers the frame (centre crop); a free-standing subject is scaled and stood on
    a floor line near the bottom (``left``/``right`` in ``prompt`` move it), a subject cut by the
    frame keeps its framing; its light and colour cast are pulled towards the scene, the scene's
    light wraps its edges, and a contact shadow grounds it. Other prompt words are not used
    offline (the vendors' generative models use them to restage the scene).
    """
    started = time.perf_counter()
    normalise_format(output_format)
    timings = Timings()
    decoded = _decode(image, "image", timings)
    scene_image = _decode(reference, "reference", timings)
    matte = segment_decoded(decoded, timings)
    canvas = matte.size
    with timings.step("composite"):
        scene = cover(scene_image.rgb, canvas)
        out, notes = _stage(matte, scene, canvas, horizontal=_horizontal_hint(prompt), ground=0.9, harmony=1.0)
    notes.insert(0, f"reference scene {scene_image.size[0]}x{scene_image.size[1]} covers the frame")
    if prompt:
        notes.append(
            "offline engine: the prompt only steers placement (left/right); the scene comes from the reference"
        )
    return _finish(out, None, output_format, matte, notes, timings, started)


def replace_with_prompt(
    image: ImageInput,
    prompt: str,
    *,
    seed: int | None = None,
    size: tuple[int, int] | None = None,
    output_format: str = "png",
) -> EngineResult:
    """The subject on a studio backdrop painted from the prompt (the offline stand-in for a
    generative scene): colour words give the palette, scene words ("marble", "wood", "beach",
    "sunset", ...) a procedural texture or gradient; same prompt and seed, same pixels.
    ``size`` = (width, height) of the output, default the input's."""
    started = time.perf_counter()
    normalise_format(output_format)
    if not isinstance(prompt, str):
        raise EngineInputError("prompt must be a string", which="prompt", cause="parameter")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise EngineInputError(f"seed must be an integer, not {seed!r}", which="seed", cause="parameter")
    timings = Timings()
    decoded = _decode(image, "image", timings)
    canvas = decoded.size if size is None else _canvas_size(size)
    matte = segment_decoded(decoded, timings)
    spec = parse_prompt(prompt, seed)
    with timings.step("backdrop"):
        backdrop = render_backdrop(spec, canvas)
    with timings.step("composite"):
        out, notes = _stage(matte, backdrop, canvas, horizontal=_horizontal_hint(prompt), ground=GROUND, harmony=0.6)
    notes.insert(0, spec.describe())
    notes.insert(1, "offline stand-in for a generative scene: a procedural backdrop from the prompt's words")
    return _finish(out, None, output_format, matte, notes, timings, started)


def _canvas_size(size: tuple[int, int]) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError) as exc:
        raise EngineInputError(f"size must be (width, height), not {size!r}", which="size", cause="parameter") from exc
    if width < 8 or height < 8 or width * height > get_settings().max_pixels:
        raise EngineInputError(f"size {width}x{height} is out of range", which="size", cause="parameter")
    return width, height


def _stage(
    matte: Matte, scene: np.ndarray, canvas: tuple[int, int], *, horizontal: float, ground: float, harmony: float
) -> tuple[np.ndarray, list[str]]:
    """Place the subject into ``scene``, harmonise it, ground it with a contact shadow, composite."""
    placement = plan_placement(matte.alpha, canvas, horizontal=horizontal, ground=ground)
    alpha = np.clip(np.asarray(place(matte.alpha, placement, canvas), dtype=np.float32), 0.0, 1.0)
    foreground = np.asarray(place(matte.foreground, placement, canvas), dtype=np.uint8)
    foreground = harmonise(foreground, alpha, scene, strength=harmony)
    backdrop = apply_shadow(scene, contact_shadow(alpha))
    return composite(foreground, alpha, backdrop), [placement.reason]
