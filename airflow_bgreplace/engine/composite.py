"""Compositing: one ``alpha F + (1 - alpha) B`` for every treatment, plus what goes into B and F.

- Shadows (a drop shadow with ImagePipeline's parameters, a contact shadow for scenes) darken
  the *background layer* before the subject goes on top; multiplying a shadow over the finished
  picture would also darken the subject.
- Soft shading (Runflow's background-color, fixed at 30 %) is a radial falloff of the flat
  colour away from a light centred behind the subject.
- Placement scales and moves the subject into a new canvas; harmonisation pulls its light and
  colour cast towards the scene and lets the scene's light wrap its edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from airflow_bgreplace.engine.matting import box

#: Smooth corrections (colour shifts, light wrap) are computed on this many pixels.
_FIELD_PIXELS = 150_000

FloatImage = NDArray[np.float32]
Image8 = NDArray[np.uint8]


def _to_u8(image: Image8 | FloatImage) -> Image8:
    if image.dtype == np.uint8:
        return np.asarray(image, dtype=np.uint8)
    # Saturating, rounding conversion in one pass (values here are never negative).
    return np.asarray(cv2.convertScaleAbs(image), dtype=np.uint8)


def composite(foreground: Image8 | FloatImage, alpha: FloatImage, backdrop: Image8 | FloatImage) -> Image8:
    """``alpha F + (1 - alpha) B`` in 8-bit sRGB (the space the matte was estimated in)."""
    weights = np.ascontiguousarray(np.clip(alpha, 0.0, 1.0), dtype=np.float32)
    # OpenCV's per-pixel weighted blend: one SIMD pass instead of five numpy temporaries.
    out = cv2.blendLinear(_to_u8(foreground), _to_u8(backdrop), weights, 1.0 - weights)
    return np.asarray(out, dtype=np.uint8)


def apply_shadow(backdrop: Image8 | FloatImage, shadow: FloatImage) -> Image8:
    """Darken the background layer by a shadow matte (0 = no shadow, 1 = black)."""
    darkness = np.ascontiguousarray(np.clip(shadow, 0.0, 1.0), dtype=np.float32)
    base = _to_u8(backdrop)
    return np.asarray(cv2.blendLinear(base, np.zeros_like(base), 1.0 - darkness, darkness), dtype=np.uint8)


def _blur(image: FloatImage, sigma: float) -> FloatImage:
    """Gaussian blur; large sigmas run on a smaller copy (<= 0.5/255 from exact, ~25x faster)."""
    if sigma <= 0.3:
        return image
    height, width = image.shape[:2]
    factor = int(max(1, min(8, sigma // 3)))
    if factor == 1:
        return np.asarray(cv2.GaussianBlur(image, (0, 0), sigma), dtype=np.float32)
    small = cv2.resize(image, (max(1, width // factor), max(1, height // factor)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / factor)
    return np.asarray(cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR), dtype=np.float32)


def drop_shadow(alpha: FloatImage, *, opacity: float, blur: float, dx: float, dy: float) -> FloatImage:
    """ImagePipeline's drop shadow: the matte offset by (dx * W, dy * H), blurred by blur * W.

    A wide blur hides detail, so shift and blur run on a copy reduced by ~sigma/3 (at most 8x).
    """
    height, width = alpha.shape
    sigma = blur * width
    factor = int(max(1, min(8, sigma // 3)))
    small = alpha
    if factor > 1:
        size = (max(1, width // factor), max(1, height // factor))
        small = np.asarray(cv2.resize(alpha, size, interpolation=cv2.INTER_AREA), dtype=np.float32)
    sh, sw = small.shape
    shift = np.array([[1, 0, dx * sw], [0, 1, dy * sh]], dtype=np.float32)
    moved = cv2.warpAffine(small, shift, (sw, sh), flags=cv2.INTER_LINEAR, borderValue=0.0)
    if sigma / factor > 0.3:
        moved = cv2.GaussianBlur(moved, (0, 0), sigma / factor)
    if factor > 1:
        moved = cv2.resize(moved, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.asarray(np.asarray(moved, dtype=np.float32) * opacity, dtype=np.float32)


def contact_shadow(alpha: FloatImage, *, opacity: float = 0.45) -> FloatImage:
    """A soft shadow where the subject meets the floor: its footprint squashed and blurred.

    Nothing for subjects cut by the bottom of the frame (they do not stand on anything visible).
    """
    height = alpha.shape[0]
    rows = np.nonzero(alpha.max(axis=1) > 0.5)[0]
    if rows.size == 0 or rows.max() >= height - 2:
        return np.zeros_like(alpha)
    bottom, top = int(rows.max()), int(rows.min())
    base_rows = alpha[max(top, bottom - max(2, (bottom - top) // 12)) : bottom + 1]
    cols = np.nonzero(base_rows.max(axis=0) > 0.5)[0]
    if cols.size == 0:
        return np.zeros_like(alpha)
    span = int(cols.max() - cols.min() + 1)
    footprint = np.zeros_like(alpha)
    centre = (int((cols.min() + cols.max()) // 2), bottom)
    axes = (max(2, int(span * 0.55)), max(1, int(span * 0.06)))
    cv2.ellipse(footprint, centre, axes, 0, 0, 360, 1.0, -1)
    tight = _blur(footprint, max(1.0, span * 0.02))
    wide = _blur(footprint, max(1.5, span * 0.08))
    return np.asarray(np.clip(0.6 * tight + 0.4 * wide, 0.0, 1.0) * opacity, dtype=np.float32)


def subject_box(alpha: FloatImage, threshold: float = 0.05) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) bounds of the subject, exclusive; None for an empty matte."""
    rows = np.nonzero(alpha.max(axis=1) > threshold)[0]
    cols = np.nonzero(alpha.max(axis=0) > threshold)[0]
    if rows.size == 0 or cols.size == 0:
        return None
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def shaded_colour(
    colour: tuple[int, int, int], size: tuple[int, int], shading: float, alpha: FloatImage | None = None
) -> Image8:
    """A flat colour with a soft radial falloff: full colour behind the subject, ``1 - shading``
    of it in the farthest corner (Runflow's background-color bakes 30 %)."""
    width, height = size
    if shading <= 0:
        flat = np.empty((height, width, 3), dtype=np.uint8)
        flat[:] = np.asarray(colour, dtype=np.uint8)
        return flat
    cx, cy = width / 2.0, height * 0.45
    bounds = subject_box(alpha) if alpha is not None else None
    if bounds is not None:
        x0, y0, x1, y1 = bounds
        cx, cy = (x0 + x1) / 2.0, y0 + 0.4 * (y1 - y0)  # key light aimed at the upper body
    corners = [(0, 0), (width, 0), (0, height), (width, height)]
    reach = max(np.hypot(cx - x, cy - y) for x, y in corners)
    # The falloff is smooth: evaluate it at the pixel centres of a coarse grid (the positions
    # cv2.resize interpolates from) and let the resize fill in.
    cols, rows = min(width, 256), min(height, 256)
    xs = ((np.arange(cols, dtype=np.float32) + 0.5) * (width / cols) - 0.5)[None, :]
    ys = ((np.arange(rows, dtype=np.float32) + 0.5) * (height / rows) - 0.5)[:, None]
    radius = np.clip(np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2) / max(reach, 1.0), 0.0, 1.0)
    falloff = radius * radius * (3.0 - 2.0 * radius)  # smoothstep: flat centre, soft shoulder
    coarse = np.asarray(colour, dtype=np.float32)[None, None, :] * (1.0 - shading * falloff)[..., None]
    coarse8 = _to_u8(np.asarray(coarse, dtype=np.float32))
    return np.asarray(cv2.resize(coarse8, (width, height), interpolation=cv2.INTER_LINEAR), dtype=np.uint8)


@dataclass(frozen=True)
class Placement:
    scale: float
    offset: tuple[int, int]
    #: Why the subject was (not) moved, for the result's notes.
    reason: str


def plan_placement(
    alpha: FloatImage, canvas: tuple[int, int], *, horizontal: float = 0.5, ground: float = 0.9
) -> Placement:
    """Where the subject goes in a ``canvas`` = (W, H) scene.

    A free-standing subject is scaled to fill 55-80 % of the canvas height (within 85 % of its
    width) and stood with its base on the ``ground`` line at ``horizontal``. A subject cut by the
    frame (a close-up) keeps its framing, scaled to the canvas.
    """
    height, width = alpha.shape
    canvas_w, canvas_h = canvas
    bounds = subject_box(alpha)
    fit = min(canvas_w / width, canvas_h / height)
    if bounds is None:
        return Placement(
            fit, (round((canvas_w - width * fit) / 2), round((canvas_h - height * fit) / 2)), "empty matte"
        )
    x0, y0, x1, y1 = bounds
    margin = max(2, round(0.01 * max(width, height)))
    cut = x0 < margin or y0 < margin or x1 > width - margin or y1 > height - margin
    if cut:
        offset = (round((canvas_w - width * fit) / 2), round((canvas_h - height * fit) / 2))
        return Placement(fit, offset, "subject touches the frame: original framing kept")
    box_w, box_h = x1 - x0, y1 - y0
    share = box_h / height
    target = float(np.clip(share, 0.55, 0.8))
    scale = target * canvas_h / box_h
    scale = min(scale, 0.85 * canvas_w / box_w, 0.95 * ground * canvas_h / box_h)
    left = horizontal * canvas_w - (x0 + box_w / 2.0) * scale
    top = ground * canvas_h - y1 * scale
    return Placement(scale, (round(left), round(top)), f"subject scaled x{scale:.2f}, base on the floor line")


def place(image: NDArray[Any], placement: Placement, canvas: tuple[int, int]) -> NDArray[Any]:
    """Warp an image (H x W or H x W x C, any dtype) into the canvas; outside is zero."""
    canvas_w, canvas_h = canvas
    matrix = np.array(
        [[placement.scale, 0, placement.offset[0]], [0, placement.scale, placement.offset[1]]], dtype=np.float32
    )
    interpolation = cv2.INTER_AREA if placement.scale < 1 else cv2.INTER_LINEAR
    warped = cv2.warpAffine(image, matrix, (canvas_w, canvas_h), flags=interpolation, borderMode=cv2.BORDER_CONSTANT)
    return np.asarray(warped, dtype=image.dtype)


def cover(image: Image8, canvas: tuple[int, int]) -> Image8:
    """Resize to cover the canvas and crop the centre (CSS ``object-fit: cover``)."""
    canvas_w, canvas_h = canvas
    height, width = image.shape[:2]
    scale = max(canvas_w / width, canvas_h / height)
    size = (max(canvas_w, round(width * scale)), max(canvas_h, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(image, size, interpolation=interpolation)
    left, top = (size[0] - canvas_w) // 2, (size[1] - canvas_h) // 2
    return np.ascontiguousarray(resized[top : top + canvas_h, left : left + canvas_w], dtype=np.uint8)


def harmonise(foreground: Image8, alpha: FloatImage, backdrop: Image8, strength: float = 1.0) -> Image8:
    """Match the subject's light and colour cast to the scene, and wrap scene light on its edges.

    Lightness moves 25 % of the way to the scene's (at most 12 L), the scene's colour cast is
    added at 25 %, and within ~1 % of the diagonal of the outline the blurred scene bleeds in
    (light wrap). Deliberately gentle: a product's own colour must stay recognisable. The
    corrections are smooth, so they are computed on a small copy and added at full size.
    """
    bounds = subject_box(alpha)
    if bounds is None or strength <= 0:
        return foreground
    height, width = alpha.shape
    pad = max(4, round(0.02 * np.hypot(height, width)))
    x0, y0 = max(0, bounds[0] - pad), max(0, bounds[1] - pad)
    x1, y1 = min(width, bounds[2] + pad), min(height, bounds[3] + pad)
    crop_w, crop_h = x1 - x0, y1 - y0
    scale = min(1.0, float(np.sqrt(_FIELD_PIXELS / float(crop_w * crop_h))))
    small = (max(2, round(crop_w * scale)), max(2, round(crop_h * scale)))
    fg = np.asarray(cv2.resize(foreground[y0:y1, x0:x1], small, interpolation=cv2.INTER_AREA), dtype=np.float32)
    a = np.asarray(cv2.resize(alpha[y0:y1, x0:x1], small, interpolation=cv2.INTER_AREA), dtype=np.float32)
    bg = np.asarray(cv2.resize(backdrop[y0:y1, x0:x1], small, interpolation=cv2.INTER_AREA), dtype=np.float32)
    weight = float(a.sum())
    if weight < 1.0:
        return foreground
    overview = cv2.resize(backdrop, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    scene_mean = cv2.cvtColor(overview, cv2.COLOR_RGB2Lab).reshape(-1, 3).mean(axis=0)
    fg_lab = np.asarray(cv2.cvtColor(fg / 255.0, cv2.COLOR_RGB2Lab), dtype=np.float32)
    subject_mean = (fg_lab * a[..., None]).reshape(-1, 3).sum(axis=0) / weight
    shift_l = float(np.clip(0.25 * (scene_mean[0] - subject_mean[0]), -12.0, 12.0)) * strength
    fg_lab[..., 0] = np.clip(fg_lab[..., 0] + shift_l, 0.0, 100.0)
    fg_lab[..., 1] += 0.25 * strength * float(scene_mean[1])
    fg_lab[..., 2] += 0.25 * strength * float(scene_mean[2])
    delta = cv2.cvtColor(fg_lab, cv2.COLOR_Lab2RGB) * 255.0 - fg
    # Light wrap: scene colour blurred into the subject's outer edge.
    radius = max(1, round(0.01 * np.hypot(height, width) * scale))
    scene_blur = box(bg * (1.0 - a)[..., None], radius) / np.maximum(box(1.0 - a, radius), 1e-3)[..., None]
    wrap = 0.35 * strength * np.clip(1.0 - box(a, radius), 0.0, 1.0) * a
    full = (crop_w, crop_h)
    delta_full = cv2.resize(delta, full, interpolation=cv2.INTER_LINEAR)
    blur_full = cv2.resize(scene_blur, full, interpolation=cv2.INTER_LINEAR)
    wrap_full = cv2.resize(wrap, full, interpolation=cv2.INTER_LINEAR)[..., None]
    adjusted = foreground[y0:y1, x0:x1].astype(np.float32) + delta_full
    adjusted = adjusted * (1.0 - wrap_full) + blur_full * wrap_full
    out = foreground.copy()
    out[y0:y1, x0:x1] = _to_u8(np.asarray(np.clip(adjusted, 0.0, 255.0), dtype=np.float32))
    return out
