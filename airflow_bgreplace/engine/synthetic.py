"""Synthetic product photos with exact alpha: the engine's tests, quick benchmark and demos.

Products (bottle, mug with a handle hole, box, ball) are drawn at 4x and averaged down, so their
edges carry true fractional alpha; they are shaded like lit cylinders/spheres with a specular
stripe. Backdrops imitate catalog set-ups: white seamless, grey sweep with vignette, coloured
paper, and a busy multicolour pattern (the hard case). The photo is ``I = a F + (1 - a) B`` plus
sensor noise, with a cast contact shadow on the backdrop that is *not* part of the alpha.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

Backdrop = Literal["white", "grey_sweep", "blue_paper", "busy"]
Product = Literal["bottle", "mug", "box", "ball"]

BACKDROPS: Final[tuple[Backdrop, ...]] = ("white", "grey_sweep", "blue_paper", "busy")
PRODUCTS: Final[tuple[Product, ...]] = ("bottle", "mug", "box", "ball")
_SUPERSAMPLE: Final = 4


@dataclass(frozen=True)
class SyntheticPhoto:
    rgb: NDArray[np.uint8]
    alpha: NDArray[np.float32]
    #: The product's true colours (what a perfect decontamination recovers), float 0-255.
    foreground: NDArray[np.float32]
    product: str
    backdrop: str


def _shape_mask(product: Product, width: int, height: int) -> NDArray[np.float32]:
    """Anti-aliased coverage of the product outline, drawn at 4x and averaged down."""
    s = _SUPERSAMPLE
    big = np.zeros((height * s, width * s), dtype=np.uint8)
    w, h = width * s, height * s

    def pt(x: float, y: float) -> tuple[int, int]:
        return round(x * w), round(y * h)

    if product == "bottle":
        cv2.rectangle(big, pt(0.38, 0.36), pt(0.62, 0.86), 255, -1)
        cv2.ellipse(big, pt(0.5, 0.36), (round(0.12 * w), round(0.07 * h)), 0, 180, 360, 255, -1)
        cv2.ellipse(big, pt(0.5, 0.86), (round(0.12 * w), round(0.025 * h)), 0, 0, 180, 255, -1)
        cv2.rectangle(big, pt(0.46, 0.18), pt(0.54, 0.32), 255, -1)
        cv2.rectangle(big, pt(0.445, 0.13), pt(0.555, 0.2), 255, -1)
    elif product == "mug":
        cv2.rectangle(big, pt(0.3, 0.34), pt(0.62, 0.82), 255, -1)
        cv2.ellipse(big, pt(0.46, 0.82), (round(0.16 * w), round(0.03 * h)), 0, 0, 180, 255, -1)
        cv2.ellipse(big, pt(0.46, 0.34), (round(0.16 * w), round(0.03 * h)), 0, 0, 360, 255, -1)
        # The handle: a thick ring whose hole must stay background.
        cv2.ellipse(big, pt(0.64, 0.56), (round(0.1 * w), round(0.13 * h)), 0, -90, 90, 255, round(0.035 * w))
    elif product == "box":
        quad = np.array([pt(0.26, 0.32), pt(0.66, 0.26), pt(0.74, 0.78), pt(0.3, 0.86)], dtype=np.int32)
        cv2.fillPoly(big, [quad], 255)
    else:
        cv2.circle(big, pt(0.5, 0.55), round(0.27 * min(w, h)), 255, -1)
    small = cv2.resize(big.astype(np.float32) / 255.0, (width, height), interpolation=cv2.INTER_AREA)
    # A touch of defocus, as from a real lens.
    return np.asarray(np.clip(cv2.GaussianBlur(small, (0, 0), 0.6), 0.0, 1.0), dtype=np.float32)


def _product_colours(
    product: Product, width: int, height: int, colour: tuple[int, int, int], rng: np.random.Generator
) -> NDArray[np.float32]:
    """Cylinder-like shading across x, a darker base, a specular stripe and a printed label."""
    x = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    lambert = 0.55 + 0.45 * np.cos(np.clip((x - 0.0) * 2.2, -np.pi / 2, np.pi / 2))
    vertical = 1.0 - 0.18 * y
    shade = lambert * vertical
    base = np.array(colour, dtype=np.float32)[None, None, :]
    rgb = base * shade[..., None]
    highlight = np.exp(-(((x + 0.18) / 0.035) ** 2))[..., None] * (0.9 if product != "box" else 0.3)
    rgb = rgb + (255.0 - rgb) * highlight * np.ones_like(y)[..., None]
    if product in ("bottle", "box"):
        label = np.zeros((height, width), dtype=np.float32)
        lx0, lx1 = round(0.42 * width), round(0.58 * width)
        ly0, ly1 = round(0.5 * height), round(0.66 * height)
        label[ly0:ly1, lx0:lx1] = 1.0
        label = np.asarray(cv2.GaussianBlur(label, (0, 0), 0.8), dtype=np.float32)
        paper = np.array([236, 232, 220], dtype=np.float32) * (0.8 + 0.2 * shade[..., None])
        rgb = rgb * (1.0 - label[..., None]) + paper * label[..., None]
    rgb += rng.normal(0.0, 2.0, size=rgb.shape).astype(np.float32)  # texture
    return np.asarray(np.clip(rgb, 0, 255), dtype=np.float32)


def make_backdrop(kind: Backdrop, width: int, height: int, rng: np.random.Generator) -> NDArray[np.float32]:
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    x = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :, None]
    if kind == "white":
        top, bottom = np.array([249, 249, 247]), np.array([242, 242, 240])
        return np.asarray(top + (bottom - top) * y + 0 * x, dtype=np.float32)
    if kind == "grey_sweep":
        wall, floor = np.array([214, 214, 216]), np.array([196, 196, 198])
        sweep = 1.0 / (1.0 + np.exp(-(y - 0.62) / 0.06))
        rgb = wall + (floor - wall) * sweep
        radius2 = x**2 + ((y - 0.5) * 2.0) ** 2
        return np.asarray(rgb * (1.0 - 0.12 * radius2 / 2.0), dtype=np.float32)
    if kind == "blue_paper":
        base = np.array([172, 204, 232], dtype=np.float32)
        fibres = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), max(2.0, width / 60))
        fibres = np.asarray(fibres / max(float(np.abs(fibres).max()), 1e-6) * 3.0, dtype=np.float32)
        return np.asarray(base * (1.0 - 0.05 * y) + fibres[..., None], dtype=np.float32)
    # busy: random tiles and stripes in saturated colours, several close to the products'.
    palette = np.array(
        [[200, 40, 40], [40, 90, 200], [230, 190, 40], [40, 150, 70], [240, 240, 235], [30, 30, 30], [200, 100, 160]],
        dtype=np.float32,
    )
    tile = max(6, width // 14)
    grid = rng.integers(0, len(palette), size=(height // tile + 2, width // tile + 2))
    tiles = palette[grid].repeat(tile, axis=0).repeat(tile, axis=1)[:height, :width]
    stripes = (np.sin(x[..., 0] * 9.0 + y[..., 0] * 23.0) > 0.2)[..., None]
    return np.asarray(np.where(stripes, tiles, palette[(grid[0, 0] + 3) % len(palette)]), dtype=np.float32)


def make_photo(
    product: Product = "bottle",
    backdrop: Backdrop = "white",
    size: tuple[int, int] = (320, 240),
    *,
    colour: tuple[int, int, int] = (196, 48, 40),
    shadow: bool = True,
    camouflage: bool = False,
    seed: int = 0,
) -> SyntheticPhoto:
    """One synthetic product photo ``size`` = (width, height) with its exact alpha.

    ``camouflage`` prints the busy pattern on the product itself: colour and texture no longer
    tell subject from backdrop (the case where the engine must say it is unsure).
    """
    width, height = size
    rng = np.random.default_rng(seed)
    alpha = _shape_mask(product, width, height)
    fg = _product_colours(product, width, height, colour, rng)
    if camouflage:
        shade = fg.mean(axis=2, keepdims=True) / max(float(fg.mean()), 1.0)
        fg = np.asarray(np.clip(make_backdrop("busy", width, height, rng) * shade, 0, 255), dtype=np.float32)
    bg = make_backdrop(backdrop, width, height, rng)
    if shadow:
        # Contact shadow: the footprint squashed onto the floor, offset and blurred; it darkens
        # the backdrop only (it is not part of the subject's alpha).
        rows = np.nonzero(alpha.max(axis=1) > 0.5)[0]
        bottom = int(rows.max()) if rows.size else height - 1
        foot = np.zeros((height, width), dtype=np.float32)
        cols = np.nonzero(alpha[max(0, bottom - 2)] > 0.3)[0]
        if cols.size:
            centre = (int((cols.min() + cols.max()) / 2 + 0.02 * width), bottom)
            axes = (max(2, int((cols.max() - cols.min()) * 0.6)), max(2, int(0.025 * height)))
            cv2.ellipse(foot, centre, axes, 0, 0, 360, 1.0, -1)
            foot = np.asarray(cv2.GaussianBlur(foot, (0, 0), max(1.0, 0.015 * width)), dtype=np.float32)
        bg = bg * (1.0 - 0.35 * foot[..., None])
    a = alpha[..., None]
    rgb = a * fg + (1.0 - a) * bg + rng.normal(0.0, 1.2, size=(height, width, 3))
    rgb8 = np.asarray(np.clip(rgb + 0.5, 0, 255), dtype=np.uint8)
    return SyntheticPhoto(rgb=rgb8, alpha=alpha, foreground=fg, product=product, backdrop=backdrop)


def make_scene(size: tuple[int, int] = (320, 240), *, seed: int = 0) -> NDArray[np.uint8]:
    """A reference scene for replace: a wall, a table edge and a warm light from the left."""
    width, height = size
    rng = np.random.default_rng(seed)
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
    wall = np.array([170, 150, 120], dtype=np.float32) * (1.1 - 0.3 * x)
    table = np.array([110, 80, 55], dtype=np.float32) * (0.9 + 0.2 * x)
    rgb = np.where(y < 0.62, wall, table) + rng.normal(0, 3, (height, width, 3))
    return np.asarray(np.clip(rgb, 0, 255), dtype=np.uint8)
