"""Subject segmentation: the one implementation behind every engine call.

Paths (named in :attr:`Matte.method`):

``input_alpha``
    The input already has transparency; it is used as is.
``border_key`` / ``border_key+u2netp``
    The border shows a seamless backdrop (uniform and smooth): pixels are keyed against the
    backdrop surface fitted to the border (cast shadows tolerated), completed by regions inside
    the outline that are measurably not backdrop (labels, highlights). When the key shows doubt
    (see :func:`_key_doubts`) or ``AIRFLOW__BGREPLACE__ENGINE_VERIFY=always``, u2netp is
    consulted: it drops key regions it does not support and adds subject parts the key missed.
    Edge alpha comes from difference matting against the known backdrop, which also gives exact
    colour decontamination. Without the model the key alone is used, also on textured uniform
    surfaces where it is the best classical option (at low confidence).
``u2netp``
    A real scene (or a textured table top): u2netp's saliency mask, edges by a colour guided
    filter, edge colours by blur-fusion foreground estimation.
``u2netp+gate->grabcut``
    u2netp's response failed the sanity gate (weak, diffuse, or a tiny mask): OpenCV GrabCut
    from the border instead, RNG seeded for determinism; always low confidence.
``grabcut``
    A real scene and no model.

Masks are computed on a copy of at most :data:`MASK_PIXELS`; alpha and colour are then
evaluated at full resolution only in a band around the outline, from smooth fields (subject
colour, local backdrop colour, guided-filter coefficients) sampled there. That keeps a 4 MP
image about as cheap as a 1 MP one apart from decoding and encoding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from airflow_bgreplace.engine import model
from airflow_bgreplace.engine.background import (
    BorderModel,
    border_busyness,
    fit_border_model,
    shadow_distance,
    to_lab,
    weighted_distance,
    work_image,
)
from airflow_bgreplace.engine.imageio import DecodedImage, decode_image
from airflow_bgreplace.engine.matting import (
    apply_guided,
    bilinear,
    blur_fusion_at,
    blur_fusion_fields,
    box,
    guided_coefficients,
    known_background_alpha,
    spread_colour,
    unmix_foreground,
)
from airflow_bgreplace.engine.settings import get_settings
from airflow_bgreplace.engine.timing import Timings

FloatImage = NDArray[np.float32]
Mask = NDArray[np.bool_]

#: Results below this confidence carry ``low_confidence=True``.
LOW_CONFIDENCE: Final = 0.5
#: Edge band half-width, as a share of the image diagonal.
BAND_SHARE: Final = 0.006
#: Masks are computed on a copy of at most this many pixels.
MASK_PIXELS: Final = 500_000
#: Guided-filter coefficients and blur-fusion fields are smooth: this many pixels suffice.
FIELD_PIXELS: Final = 150_000
#: GrabCut runs on a copy this wide at most (its cost grows with pixels x iterations).
GRABCUT_SIDE: Final = 400
GRABCUT_ITERATIONS: Final = 5
GRABCUT_SEED: Final = 0
#: Holes in the key smaller than this share of the image are always filled (glints, noise).
TINY_HOLE_SHARE: Final = 2e-5


@dataclass
class Matte:
    """A subject matte at the input's resolution, with how it was made and how sure it is."""

    #: Alpha, float32 0-1, H x W.
    alpha: FloatImage
    method: str
    confidence: float
    #: Subject colours with the old background unmixed from the edges (uint8 H x W x 3).
    foreground: NDArray[np.uint8]
    notes: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    #: Diagnostics behind the confidence (uniformity, u2netp response, ...), for evaluation.
    features: dict[str, float] = field(default_factory=dict)

    @property
    def low_confidence(self) -> bool:
        return self.confidence < LOW_CONFIDENCE

    @property
    def size(self) -> tuple[int, int]:
        return int(self.alpha.shape[1]), int(self.alpha.shape[0])

    def alpha_u8(self) -> NDArray[np.uint8]:
        return np.asarray(np.clip(self.alpha * 255.0 + 0.5, 0, 255), dtype=np.uint8)


def segment(image: bytes | Image.Image) -> Matte:
    """Separate the subject from its background (see the module docstring for the paths)."""
    timings = Timings()
    with timings.step("decode"):
        decoded = decode_image(image, max_pixels=get_settings().max_pixels)
    return segment_decoded(decoded, timings)


def segment_decoded(decoded: DecodedImage, timings: Timings | None = None) -> Matte:
    timings = timings if timings is not None else Timings()
    rgb = decoded.rgb
    if decoded.alpha is not None and _has_cutout(decoded.alpha):
        alpha = decoded.alpha.astype(np.float32) / 255.0
        own = ["the input already has transparency: its alpha is the matte"]
        return Matte(alpha, "input_alpha", 1.0, rgb, own, timings)
    notes: list[str] = []
    with timings.step("border_model"):
        small = _mask_copy(rgb)
        border = fit_border_model(work_image(small))
    session, reason = model.get_session()
    if session is None:
        notes.append(f"u2netp unavailable, classical path: {reason}")
    features = {
        "uniformity": round(border.uniformity, 4),
        "backdrop_noise": round(border.noise, 3),
        "backdrop_texture": round(border.texture, 3),
    }

    def saliency() -> model.Saliency | None:
        """u2netp on demand: the studio path asks only when its colour key is in doubt."""
        if session is None:
            return None
        with timings.step("u2netp"):
            result = model.predict(session, small)
        features["u2netp_raw_max"] = round(result.raw_max, 4)
        return result

    # A textured table top is uniform at the border but keys badly; u2netp does better there.
    # Without the model the key is still the better classical choice on any uniform border.
    if border.seamless or (border.uniform and session is None):
        return _studio(rgb, small, border, saliency, timings, notes, features)
    return _scene(rgb, small, border, saliency(), timings, notes, features)


def _has_cutout(alpha: NDArray[np.uint8]) -> bool:
    """Transparency worth keeping: some clear and some opaque pixels (not a stray 254)."""
    return bool((alpha < 16).mean() > 0.001 and (alpha > 240).mean() > 0.001)


# --- shared helpers ----------------------------------------------------------------------------


def _mask_copy(rgb: NDArray[np.uint8], pixels: int = MASK_PIXELS) -> NDArray[np.uint8]:
    height, width = rgb.shape[:2]
    scale = min(1.0, float(np.sqrt(pixels / float(height * width))))
    if scale >= 1.0:
        return rgb
    size = (max(8, round(width * scale)), max(8, round(height * scale)))
    return np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def _band(shape: tuple[int, ...]) -> int:
    return max(2, round(BAND_SHARE * float(np.hypot(shape[0], shape[1]))))


def _disk(radius: int) -> NDArray[np.uint8]:
    size = 2 * max(1, radius) + 1
    return np.asarray(cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)), dtype=np.uint8)


def _dilate(mask: Mask, radius: int) -> Mask:
    return np.asarray(cv2.dilate(mask.view(np.uint8), _disk(radius)), dtype=bool)


def _erode(mask: Mask, radius: int) -> Mask:
    return np.asarray(cv2.erode(mask.view(np.uint8), _disk(radius)), dtype=bool)


def _keep_components(mask: Mask, min_share_of_largest: float, min_pixels: int) -> Mask:
    """Drop specks: components smaller than a share of the largest one and than ``min_pixels``."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    if count <= 2:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    floor = max(min_pixels, min_share_of_largest * float(areas.max()))
    keep = np.zeros(count, dtype=bool)
    keep[1:] = areas >= floor
    return np.asarray(keep[labels], dtype=bool)


def _fill_holes(mask: Mask, max_pixels: int) -> Mask:
    """Fill enclosed background regions of at most ``max_pixels``."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats((~mask).view(np.uint8), connectivity=4)
    if count <= 1:
        return mask
    touches = np.zeros(count, dtype=bool)
    for edge in (labels[0, :], labels[-1, :], labels[:, 0], labels[:, -1]):
        touches[np.unique(edge)] = True
    fill = (~touches) & (stats[:, cv2.CC_STAT_AREA] <= max_pixels)
    fill[0] = False
    return np.asarray(mask | fill[labels], dtype=bool)


def _resize(image: FloatImage, shape: tuple[int, ...], interpolation: int = cv2.INTER_LINEAR) -> FloatImage:
    return np.asarray(cv2.resize(image, (shape[1], shape[0]), interpolation=interpolation), dtype=np.float32)


def _clean_alpha(alpha: FloatImage) -> FloatImage:
    """Snap near-0/near-1 values: sensor noise would otherwise leave a faint veil everywhere."""
    return np.asarray(np.clip((alpha - 0.02) / 0.96, 0.0, 1.0), dtype=np.float32)


def _iou(a: Mask, b: Mask) -> float:
    union = float((a | b).sum())
    return float((a & b).sum()) / union if union else 0.0


@dataclass(frozen=True)
class _Band:
    """Full-resolution pixels near the outline, with their coordinates in a smaller copy."""

    ys: NDArray[np.intp]
    xs: NDArray[np.intp]
    #: The same pixels' centres in the small copy's pixel grid (for :func:`bilinear`).
    fy: NDArray[np.float32]
    fx: NDArray[np.float32]


def _band_pixels(ring_small: Mask, full_shape: tuple[int, ...]) -> _Band:
    ring = cv2.resize(ring_small.view(np.uint8), (full_shape[1], full_shape[0]), interpolation=cv2.INTER_NEAREST)
    ys, xs = np.nonzero(ring)
    sy = ring_small.shape[0] / full_shape[0]
    sx = ring_small.shape[1] / full_shape[1]
    fy = ((ys + 0.5) * sy - 0.5).astype(np.float32)
    fx = ((xs + 0.5) * sx - 0.5).astype(np.float32)
    return _Band(ys, xs, fy, fx)


def _rescale(
    band: _Band, small_shape: tuple[int, ...], field_shape: tuple[int, ...]
) -> tuple[NDArray[np.float32], ...]:
    """The band's coordinates in a field of another size than the mask copy."""
    ky = field_shape[0] / small_shape[0]
    kx = field_shape[1] / small_shape[1]
    return ((band.fy + 0.5) * ky - 0.5).astype(np.float32), ((band.fx + 0.5) * kx - 0.5).astype(np.float32)


def _to_full(hard_small: Mask, full_shape: tuple[int, ...]) -> FloatImage:
    if hard_small.shape == tuple(full_shape[:2]):
        return hard_small.astype(np.float32)
    up = _resize(hard_small.astype(np.float32), full_shape)
    return (up > 0.5).astype(np.float32)


# --- studio path -------------------------------------------------------------------------------


def _studio(
    rgb: NDArray[np.uint8],
    small: NDArray[np.uint8],
    border: BorderModel,
    consult: Callable[[], model.Saliency | None],
    timings: Timings,
    notes: list[str],
    features: dict[str, float],
) -> Matte:
    shape = small.shape[:2]
    pixels = shape[0] * shape[1]
    with timings.step("key"):
        lab = to_lab(small)
        backdrop_lab = border.lab_at(shape)
        plain = weighted_distance(lab, backdrop_lab)
        shaded = shadow_distance(lab, backdrop_lab)
        distance = np.minimum(plain, shaded)
        keyed = _hysteresis_key(distance, border)
        keyed = _keep_components(keyed, 0.02, max(16, pixels // 20000))
        # Pin-holes (glints, noise) only: larger holes may be see-through gaps.
        keyed = _fill_holes(keyed, max(4, round(pixels * TINY_HOLE_SHARE)))
        doubts = _key_doubts(keyed, distance, plain, border)
    method = "border_key"
    hard = keyed
    # On a seamless backdrop the key is exact wherever the subject differs from the paper;
    # u2netp (~0.4 s) is a second opinion, asked when the key itself shows doubt.
    saliency = consult() if doubts or get_settings().verify == "always" else None
    if saliency is None and doubts:
        notes.append("colour key in doubt (" + "; ".join(doubts) + ") and no u2netp to check it")
    elif saliency is None:
        notes.append("clean colour key: u2netp not consulted (AIRFLOW__BGREPLACE__ENGINE_VERIFY=always would)")
    else:
        notes.append("u2netp consulted: " + ("; ".join(doubts) if doubts else "verification always on"))
    if saliency is not None:
        method = "border_key+u2netp"
        with timings.step("fuse"):
            salient = np.clip(_resize(saliency.normalised, shape), 0.0, 1.0)
            hard = _fuse_key_and_saliency(keyed, salient, distance, border)
            sure = salient > 0.9
            missed = float((sure & ~hard).sum()) / max(float(hard.sum()), 1.0)
        features.update({"key_u2netp_iou": round(_iou(hard, salient > 0.5), 4), "u2netp_beyond_key": round(missed, 4)})
    with timings.step("edges"):
        alpha, foreground = _known_backdrop_edges(rgb, small, hard, border)
    area = float(hard.mean())
    features["area"] = round(area, 4)
    confidence = (0.85 if not doubts else 0.7) if border.seamless else 0.45
    if not border.seamless:
        notes.append(f"textured surface keyed by colour without u2netp (texture {border.texture:.1f} dE)")
    if saliency is not None:
        # Two independent cues that agree are worth more than either alone.
        confidence = 0.95 * float(np.clip((features["key_u2netp_iou"] - 0.5) / 0.4, 0.2, 1.0))
        if features["u2netp_beyond_key"] > 0.05:
            notes.append(
                "u2netp sees subject where the colour matches the backdrop: parts of the subject may be "
                "backdrop-coloured and missing from the cut-out"
            )
            confidence = min(confidence, 0.55)
    if area < 0.002:
        confidence = min(confidence, 0.3)
        notes.append("almost nothing differs from the backdrop: the subject may be missing or backdrop-coloured")
    notes.append(f"seamless backdrop (border uniformity {border.uniformity:.2f}, colour {border.border_rgb})")
    return Matte(alpha, method, round(confidence, 3), foreground, notes, timings, features)


def _key_doubts(keyed: Mask, distance: FloatImage, plain: FloatImage, border: BorderModel) -> list[str]:
    """Reasons to ask u2netp about a colour key on a seamless backdrop (empty: the key is clean).

    Calibrated on the dev set's studio variants and the synthetic products: fur and foliage
    score 0.004-0.008 of faint outline, hard-edged products < 0.0002; white labels and
    highlights on white paper put 6-25 % of the key within 2x the threshold of the paper.
    """
    height, width = keyed.shape
    area = float(keyed.sum())
    doubts: list[str] = []
    if area < 0.005 * keyed.size or area > 0.6 * keyed.size:
        return [f"the key covers {area / keyed.size:.1%} of the frame"]
    diagonal = float(np.hypot(height, width))
    smooth = np.asarray(cv2.blur(distance, (3, 3)), dtype=np.float32)
    around = _dilate(keyed, max(2, round(0.03 * diagonal))) & ~_dilate(keyed, 2)
    faint = float((around & (smooth > _weak_threshold(border))).sum()) / area
    if faint > 0.002:
        doubts.append(f"faint or soft outline ({faint:.2%} of the subject)")
    count, _ = cv2.connectedComponents(keyed.view(np.uint8), connectivity=8)
    if count > 2:
        doubts.append(f"{count - 1} separate regions")
    inner = _erode(keyed, 3)
    close = float((inner & (plain < 2.0 * border.threshold)).sum()) / max(float(inner.sum()), 1.0)
    if close > 0.02:
        doubts.append(f"subject colours close to the backdrop ({close:.0%} of it)")
    holes = float((_fill_holes(keyed, keyed.size) & ~keyed).sum()) / area
    if holes > 0.005:
        doubts.append(f"holes showing the backdrop ({holes:.1%} of the subject)")
    strip = max(2, round(0.01 * min(height, width)))
    frame = np.concatenate(
        [keyed[:strip].ravel(), keyed[-strip:].ravel(), keyed[:, :strip].ravel(), keyed[:, -strip:].ravel()]
    )
    if frame.mean() > 0.02:
        doubts.append("the subject touches the frame")
    return doubts


def _weak_threshold(border: BorderModel) -> float:
    """Colour distance that is *measurably* not backdrop on a smoothed image (noise ~1.1 x spread)."""
    return max(3.0, 2.5 * border.noise + 1.0)


def _hysteresis_key(distance: FloatImage, border: BorderModel) -> Mask:
    """Strong key, completed by regions inside it that are measurably not backdrop.

    A specular stripe or a white label on a product shot on white paper differs from the paper
    by only a few dE: too little to key on its own, but not nothing. Candidate regions are the
    non-keyed pixels inside the strong key's closed outline (holes included); those that are
    measurably not backdrop join the subject where they form thick regions. Holes and gaps that
    show the backdrop (a mug handle, between leaves; shadows count as backdrop) stay open, and
    the thin soft fringe along leaves or hair gets its fractional alpha from the edge step.
    """
    strong = distance > border.threshold
    strong = np.asarray(cv2.morphologyEx(strong.view(np.uint8), cv2.MORPH_OPEN, _disk(1)), dtype=bool)
    height, width = distance.shape
    radius = max(2, round(0.02 * float(np.hypot(height, width))))
    hull = np.asarray(cv2.morphologyEx(strong.view(np.uint8), cv2.MORPH_CLOSE, _disk(radius)), dtype=bool)
    # Everything the closed outline encloses, however large (a label joined to a stripe).
    candidates = ~strong & _fill_holes(hull, hull.size)
    backdrop_like = np.asarray(cv2.blur(distance, (3, 3)), dtype=np.float32) <= _weak_threshold(border)
    measurable = candidates & ~backdrop_like
    count, labels, _, _ = cv2.connectedComponentsWithStats(measurable.view(np.uint8), connectivity=4)
    if count <= 1:
        return strong
    # Only thick regions: the soft fringe along leaves or hair is thin and gets its fractional
    # alpha from the edge step instead.
    depth = cv2.distanceTransform(measurable.view(np.uint8), cv2.DIST_L2, 3)
    core = max(2.0, 0.004 * float(np.hypot(height, width)))
    add = np.zeros(count, dtype=bool)
    add[np.unique(labels[depth >= core])] = True
    add[0] = False
    return np.asarray(strong | add[labels], dtype=bool)


def _fuse_key_and_saliency(keyed: Mask, salient: FloatImage, distance: FloatImage, border: BorderModel) -> Mask:
    """Combine the colour key with u2netp on a seamless backdrop.

    The key is precise wherever the subject differs from the paper; u2netp knows where the
    object is. Key components u2netp does not support at all (shadows beyond the tolerance,
    dust, a second prop) are dropped. Regions the key missed but u2netp is sure about are
    added when their colour is measurably *not* the backdrop's (a white label, a specular
    stripe on white paper); regions showing the backdrop exactly are see-through gaps (a mug
    handle, between leaves) even where u2netp blurs over them.
    """
    count, labels, stats, _ = cv2.connectedComponentsWithStats(keyed.view(np.uint8), connectivity=8)
    fused = keyed
    if count > 1:
        areas = np.maximum(stats[:, cv2.CC_STAT_AREA], 1)
        support = np.bincount(labels.ravel(), weights=salient.ravel(), minlength=count) / areas
        keep = support > 0.05
        keep[0] = False
        fused = np.asarray(keep[labels], dtype=bool)
    candidates = ~fused & (salient > 0.9)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(candidates.view(np.uint8), connectivity=4)
    if count > 1:
        areas = np.maximum(stats[:, cv2.CC_STAT_AREA], 1)
        colour = np.bincount(labels.ravel(), weights=distance.ravel(), minlength=count) / areas
        add = colour > _weak_threshold(border)
        add[0] = False
        fused = np.asarray(fused | add[labels], dtype=bool)
    return fused


def _known_backdrop_edges(
    rgb: NDArray[np.uint8], small: NDArray[np.uint8], hard_small: Mask, border: BorderModel
) -> tuple[FloatImage, NDArray[np.uint8]]:
    """Alpha and decontaminated colour along the outline, against a known backdrop.

    Each band pixel is projected between the nearest sure-subject colour and the nearest
    sure-backdrop colour (both spread by normalised convolution on the mask copy; the backdrop
    falls back to the fitted surface where no clear backdrop is in reach, which follows cast
    shadows and vignettes), then unmixed: ``F = (I - (1 - a) B) / a``.
    """
    scale = small.shape[0] / rgb.shape[0]
    band_small = max(1, round(_band(rgb.shape) * scale))
    # The colour fields are smooth: build them on an even smaller copy.
    fields = _mask_copy(small, FIELD_PIXELS)
    fields_f = fields.astype(np.float32)
    k = fields.shape[0] / small.shape[0]
    radius = max(1, round(2 * band_small * k))
    sure_fg = _resize(_erode(hard_small, max(1, band_small // 2)).astype(np.float32), fields.shape, cv2.INTER_AREA)
    interior = spread_colour(fields_f, sure_fg, radius=radius)
    sure_bg = _resize((~_dilate(hard_small, band_small)).astype(np.float32), fields.shape, cv2.INTER_AREA)
    reach = box(sure_bg, radius)
    spread_bg = box(fields_f * sure_bg[..., None], radius) / np.maximum(reach, 1e-6)[..., None]
    trust = np.clip(reach / 0.1, 0.0, 1.0)[..., None]
    local_bg = spread_bg * trust + border.rgb_at(fields.shape[:2]) * (1.0 - trust)
    soft = cv2.GaussianBlur(
        _resize(hard_small.astype(np.float32), fields.shape, cv2.INTER_AREA), (0, 0), max(0.6, band_small * k / 4)
    )
    ring_small = _dilate(hard_small, band_small + 1) & ~_erode(hard_small, band_small + 1)

    alpha = _to_full(hard_small, rgb.shape)
    foreground = rgb.copy()
    band = _band_pixels(ring_small, rgb.shape)
    if band.ys.size == 0:
        return alpha, foreground
    colours = rgb[band.ys, band.xs].astype(np.float32)
    # One gather for all smooth fields: subject colour, backdrop colour, soft hard-mask.
    fy, fx = _rescale(band, small.shape, fields.shape)
    sampled = bilinear(np.dstack([interior, local_bg, soft]).astype(np.float32), fy, fx)
    subject, backdrop, soft_at = sampled[:, :3], sampled[:, 3:6], sampled[:, 6]
    projected = known_background_alpha(colours, backdrop, subject)
    towards = subject - backdrop
    contrast = np.sqrt(np.einsum("...c,...c->...", towards, towards))
    # Below ~10 dE of subject/backdrop contrast the projection divides noise by noise.
    edge = np.where(contrast > 24.0, np.clip(projected, 0.0, 1.0), soft_at)
    # A pixel outside the hard mask that is only a cast shadow must not gain alpha.
    lab = to_lab(colours.astype(np.uint8)[:, None, :])[:, 0, :]
    ly, lx = _rescale(band, small.shape, border.lab_small.shape)
    model_lab = bilinear(border.lab_small, ly, lx)
    shaded = shadow_distance(lab, model_lab)
    plain = weighted_distance(lab, model_lab)
    outside = alpha[band.ys, band.xs] < 0.5
    edge = np.where(outside & (shaded < border.threshold) & (plain >= border.threshold), 0.0, edge)
    edge = _clean_alpha(edge.astype(np.float32))
    alpha[band.ys, band.xs] = edge
    unmixed = unmix_foreground(colours, edge, backdrop, subject)
    unmixed = np.where(edge[:, None] >= 0.999, colours, unmixed)
    foreground[band.ys, band.xs] = np.clip(unmixed + 0.5, 0, 255).astype(np.uint8)
    return alpha, foreground


# --- real-scene path ---------------------------------------------------------------------------


def _scene(
    rgb: NDArray[np.uint8],
    small: NDArray[np.uint8],
    border: BorderModel,
    saliency: model.Saliency | None,
    timings: Timings,
    notes: list[str],
    features: dict[str, float],
) -> Matte:
    shape = small.shape[:2]
    pixels = shape[0] * shape[1]
    if border.uniform:
        notes.append(f"textured uniform surface (texture {border.texture:.1f} dE): real-scene path")
    else:
        notes.append(f"no seamless backdrop (border uniformity {border.uniformity:.2f}): real-scene path")
    hard: Mask | None = None
    method = "grabcut"
    confidence = 0.35
    with timings.step("mask"):
        busy = border_busyness(small)
        features["border_busyness"] = round(busy, 4)
        if saliency is not None:
            salient = _resize(saliency.normalised, shape)
            hard = _keep_components(salient > 0.5, 0.05, max(16, pixels // 20000))
            area = float(hard.mean())
            sal = saliency.normalised
            unsure = float(((sal > 0.1) & (sal < 0.9)).sum()) / max(float((sal > 0.5).sum()), 1.0)
            features.update({"area": round(area, 4), "u2netp_unsure": round(unsure, 4)})
            gate = []
            if saliency.raw_max < 0.95:
                gate.append(f"weak response (max {saliency.raw_max:.2f} < 0.95)")
            if unsure > 1.0:
                gate.append(f"diffuse response (unsure area {unsure:.2f}x the mask)")
            if area < 0.02:
                gate.append(f"tiny mask ({area:.1%} of the image)")
            if gate:
                notes.append("u2netp failed the sanity gate: " + "; ".join(gate) + "; falling back to GrabCut")
                method = "u2netp+gate->grabcut"
                hard = None
            else:
                method = "u2netp"
                confidence = 0.75 * float(np.clip(1.2 - unsure, 0.3, 1.0))
    if hard is None:
        with timings.step("grabcut"):
            hard = _grabcut_from_border(small)
        features["area"] = round(float(hard.mean()), 4)
    with timings.step("edges"):
        alpha, foreground = _guided_edges(rgb, small, hard)
    separation = _colour_separation(small, hard, max(1, round(_band(shape))))
    features["colour_separation"] = round(separation, 4)
    # Calibrated on the dev set: the real scenes u2netp gets wrong have the busiest
    # surroundings (0.048, 0.053) and/or the least colour contrast along the outline (0.45).
    confidence *= float(np.clip((separation - 0.25) / 0.4, 0.0, 1.0))
    confidence *= float(np.clip(1.0 - (busy - 0.02) / 0.06, 0.3, 1.0))
    if busy > 0.04:
        notes.append(f"busy surroundings (edge density {busy:.3f}): the subject outline may be wrong")
    if separation < 0.45:
        notes.append(f"subject and surroundings share colours (separation {separation:.2f})")
    return Matte(alpha, method, round(confidence, 3), foreground, notes, timings, features)


def _guided_edges(
    rgb: NDArray[np.uint8], small: NDArray[np.uint8], hard_small: Mask
) -> tuple[FloatImage, NDArray[np.uint8]]:
    """Alpha by a colour guided filter and colour by blur-fusion, evaluated in the edge band."""
    fields = _mask_copy(small, FIELD_PIXELS)
    scale = fields.shape[0] / rgb.shape[0]
    radius = max(1, round(_band(rgb.shape) * scale))
    guide = fields.astype(np.float32) * (1.0 / 255.0)
    source = _resize(hard_small.astype(np.float32), fields.shape)
    coefficients = guided_coefficients(guide, source, radius=radius, eps=1e-3)
    rough_alpha = np.clip(apply_guided(coefficients, guide), 0.0, 1.0)
    blurred_f, blurred_b = blur_fusion_fields(fields.astype(np.float32), rough_alpha)
    band_small = max(1, round(_band(rgb.shape) * small.shape[0] / rgb.shape[0]))
    ring_small = _dilate(hard_small, band_small + 1) & ~_erode(hard_small, band_small + 1)

    alpha = _to_full(hard_small, rgb.shape)
    foreground = rgb.copy()
    band = _band_pixels(ring_small, rgb.shape)
    if band.ys.size == 0:
        return alpha, foreground
    fy, fx = _rescale(band, small.shape, fields.shape)
    colours = rgb[band.ys, band.xs].astype(np.float32)
    sampled = bilinear(np.dstack([coefficients, blurred_f, blurred_b]).astype(np.float32), fy, fx)
    edge = _clean_alpha(np.clip(apply_guided(sampled[:, :4], colours / 255.0), 0.0, 1.0))
    alpha[band.ys, band.xs] = edge
    estimate = blur_fusion_at(colours, edge, sampled[:, 4:7], sampled[:, 7:10])
    estimate = np.where(edge[:, None] >= 0.999, colours, estimate)
    foreground[band.ys, band.xs] = np.clip(estimate + 0.5, 0, 255).astype(np.uint8)
    return alpha, foreground


def _grabcut_from_border(small: NDArray[np.uint8]) -> Mask:
    """GrabCut with a 2 % border strip as definite background, on a <= 400 px copy, seeded RNG."""
    work = work_image(small, GRABCUT_SIDE)
    height, width = work.shape[:2]
    strip = max(2, round(0.02 * min(height, width)))
    labels = np.full((height, width), cv2.GC_PR_FGD, dtype=np.uint8)
    labels[:strip, :] = labels[-strip:, :] = cv2.GC_BGD
    labels[:, :strip] = labels[:, -strip:] = cv2.GC_BGD
    bgd_model = np.zeros((1, 65), dtype=np.float64)
    fgd_model = np.zeros((1, 65), dtype=np.float64)
    # GrabCut's k-means initialisation draws from OpenCV's global RNG: without a seed the same
    # input gives different masks depending on what ran before in the process.
    cv2.setRNGSeed(GRABCUT_SEED)
    cv2.grabCut(work, labels, (0, 0, 0, 0), bgd_model, fgd_model, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    fg_work = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).astype(np.float32)
    fg = _resize(fg_work, small.shape) > 0.5
    return _keep_components(fg, 0.05, max(16, fg.size // 20000))


def _colour_separation(rgb: NDArray[np.uint8], hard: Mask, band: int) -> float:
    """1 - Bhattacharyya overlap of colour histograms just inside vs just outside the outline.

    Near 1 when subject and surroundings differ in colour, near 0 on camouflage (a product on a
    busy pattern of its own colours): then no method can be sure where the edge is.
    """
    width = max(3, 3 * band)
    inside = hard & ~_erode(hard, width)
    outside = _dilate(hard, width) & ~hard
    if inside.sum() < 50 or outside.sum() < 50:
        return 0.0
    bins = [8, 8, 8]
    ranges = [0, 256, 0, 256, 0, 256]
    hist_in = cv2.calcHist([rgb], [0, 1, 2], inside.view(np.uint8), bins, ranges)
    hist_out = cv2.calcHist([rgb], [0, 1, 2], outside.view(np.uint8), bins, ranges)
    cv2.normalize(hist_in, hist_in, 1.0, 0.0, cv2.NORM_L1)
    cv2.normalize(hist_out, hist_out, 1.0, 0.0, cv2.NORM_L1)
    overlap = float(np.sum(np.sqrt(hist_in * hist_out)))
    return float(np.clip(1.0 - overlap, 0.0, 1.0))
