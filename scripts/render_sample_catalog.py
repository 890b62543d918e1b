#!/usr/bin/env python
"""Render the sample catalog in ``dags_examples/sample_catalog/``: product photos, scene references, manifest.

Everything is drawn with Pillow from a seed, so the photos are ours to ship (same licence as the
project) and the same command re-creates the same files:

    .venv/bin/python scripts/render_sample_catalog.py            # all files
    .venv/bin/python scripts/render_sample_catalog.py --only mug-red,scene-beach --out /tmp/look

How a studio photo is faked: each product is shaded at 2x size (a cylinder or ellipsoid lit from
the upper left, a specular highlight, a reflector rim on the right), composited over a seamless
backdrop with a contact shadow and a softer cast shadow, downsampled, given a little sensor noise
and saved as JPEG under a byte budget. A few photos sit on a busy pattern or on wood, which a
background-removal engine finds hard on purpose.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps

RGB = tuple[int, int, int]
Point = tuple[float, float]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "dags_examples" / "sample_catalog"
DEFAULT_SEED = 20260101
#: Everything is drawn this many times larger, then downsampled: cheap anti-aliasing.
SS = 2
#: Each photo must stay under this many bytes (the folder is committed).
MAX_BYTES = 40_000
#: Light from the upper left and in front of the product (x right, y down, z to the camera).
LIGHT = (-0.55, -0.45, 0.70)


# --------------------------------------------------------------------------- small maths


def clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return max(low, min(high, value))


def smoothstep(edge0: float, edge1: float, x: float) -> float:
    t = clamp((x - edge0) / (edge1 - edge0))
    return t * t * (3 - 2 * t)


def mix(a: RGB, b: RGB, t: float) -> RGB:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def rgba(colour: RGB, alpha: int = 255) -> tuple[int, int, int, int]:
    return (*colour, alpha)


def scale(colour: RGB, factor: float) -> RGB:
    return (
        min(255, round(colour[0] * factor)),
        min(255, round(colour[1] * factor)),
        min(255, round(colour[2] * factor)),
    )


def _normalised(v: tuple[float, float, float]) -> tuple[float, float, float]:
    length = math.sqrt(sum(c * c for c in v))
    return (v[0] / length, v[1] / length, v[2] / length)


_L = _normalised(LIGHT)
_H = _normalised((_L[0], _L[1], _L[2] + 1.0))  # half-vector towards a camera on +z


def lit(colour: RGB, normal: tuple[float, float, float], *, gloss: float, shininess: float, rim: float = 0.12) -> RGB:
    """Lambert plus Blinn-Phong plus a soft reflector on the right: the studio's three lights."""
    nx, ny, nz = normal
    diffuse = max(0.0, nx * _L[0] + ny * _L[1] + nz * _L[2])
    specular = max(0.0, nx * _H[0] + ny * _H[1] + nz * _H[2]) ** shininess * gloss
    reflector = smoothstep(0.55, 0.95, nx) * rim
    base = scale(colour, 0.30 + 0.78 * diffuse + reflector)
    return mix(base, (255, 255, 255), clamp(specular))


def catmull_rom(points: Sequence[Point], *, closed: bool = True, steps: int = 12) -> list[Point]:
    """A smooth curve through ``points`` (for soles, leaves, bottle shoulders)."""
    pts = list(points)
    if closed:
        pts = [pts[-1], *pts, pts[0], pts[1]]
    else:
        pts = [pts[0], *pts, pts[-1]]
    out: list[Point] = []
    for i in range(1, len(pts) - 2):
        p0, p1, p2, p3 = pts[i - 1], pts[i], pts[i + 1], pts[i + 2]
        for s in range(steps):
            t = s / steps
            t2, t3 = t * t, t * t * t
            out.append(
                tuple(  # type: ignore[arg-type]
                    0.5
                    * (
                        2 * p1[k]
                        + (-p0[k] + p2[k]) * t
                        + (2 * p0[k] - 5 * p1[k] + 4 * p2[k] - p3[k]) * t2
                        + (-p0[k] + 3 * p1[k] - 3 * p2[k] + p3[k]) * t3
                    )
                    for k in range(2)
                )
            )
    if not closed:
        out.append(pts[-2])
    return out


# --------------------------------------------------------------------------- images from functions


def field(size: tuple[int, int], fn: Callable[[float, float], RGB], *, grid: int = 48) -> Image.Image:
    """An image from ``fn(u, v)`` (0..1 each), sampled on a small grid and smoothly upscaled."""
    gw = grid
    gh = max(2, round(grid * size[1] / size[0]))
    small = Image.new("RGB", (gw, gh))
    small.putdata([fn(x / (gw - 1), y / (gh - 1)) for y in range(gh) for x in range(gw)])
    return small.resize(size, Image.Resampling.BICUBIC)


def noise(size: tuple[int, int], rng: random.Random, amplitude: float, *, blur: float = 0.0) -> Image.Image:
    """Grey noise centred on 128 (triangular: the sum of two uniforms looks like sensor grain)."""
    w, h = size
    a = Image.frombytes("L", size, rng.randbytes(w * h))
    b = Image.frombytes("L", size, rng.randbytes(w * h))
    grain = ImageChops.add(a, b, scale=2.0)
    if blur:
        grain = grain.filter(ImageFilter.GaussianBlur(blur))
        # Blurring shrinks the spread; stretch it back around the middle.
        grain = ImageOps.autocontrast(grain, cutoff=1)
    return grain.point(lambda v: round(128 + (v - 128) * amplitude / 128))


def add_grain(image: Image.Image, grain: Image.Image) -> Image.Image:
    return ImageChops.add(image, Image.merge("RGB", (grain, grain, grain)), scale=1.0, offset=-128)


def cylinder_strip(colour: RGB, *, gloss: float, shininess: float, width: int = 256, rim: float = 0.12) -> Image.Image:
    """One row of a lit cylinder, left edge to right edge, to be stretched to any width."""
    row = Image.new("RGB", (width, 1))
    pixels = []
    for i in range(width):
        u = (i + 0.5) / width * 2 - 1
        pixels.append(lit(colour, (u, 0.0, math.sqrt(max(0.0, 1 - u * u))), gloss=gloss, shininess=shininess, rim=rim))
    row.putdata(pixels)
    return row


def ellipsoid(size: tuple[int, int], colour: RGB, *, gloss: float, shininess: float, flat: float = 0.0) -> Image.Image:
    """A lit ellipsoid (RGBA); ``flat`` > 0 flattens the front, as on a watch face or a cushion."""
    w, h = size

    def shade(u: float, v: float) -> RGB:
        x, y = u * 2 - 1, v * 2 - 1
        d = min(1.0, x * x + y * y)
        z = math.sqrt(1 - d) * (1 - flat) + flat
        return lit(colour, _normalised((x, y, max(z, 1e-3))), gloss=gloss, shininess=shininess)

    image = field((w, h), shade, grid=64).convert("RGBA")
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, w - 1, h - 1), fill=255)
    image.putalpha(mask)
    return image


def vertical_ramp(size: tuple[int, int], top: float, bottom: float) -> Image.Image:
    """An L image going from ``top`` to ``bottom`` (0..1), for shading whole layers."""
    ramp = Image.linear_gradient("L").resize((1, 256))
    lut = [round(255 * (top + (bottom - top) * i / 255)) for i in range(256)]
    return ramp.point(lut).resize(size, Image.Resampling.BILINEAR)


# --------------------------------------------------------------------------- the studio


@dataclass
class Shot:
    """One photo being made: a backdrop, the floor line and the product layer, at SS scale."""

    width: int
    height: int
    rng: random.Random
    floor_y: float

    def __post_init__(self) -> None:
        self.layer = Image.new("RGBA", (self.width, self.height), (0, 0, 0, 0))
        self.draw = ImageDraw.Draw(self.layer)
        #: Footprints (x0, x1, y, depth) of things standing on the floor, for contact shadows.
        self.footprints: list[tuple[float, float, float, float]] = []
        self.flat_lay = False

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def paste(self, part: Image.Image, xy: tuple[float, float]) -> None:
        self.layer.alpha_composite(part, (round(xy[0]), round(xy[1])))

    def stands(self, x0: float, x1: float, y: float, depth: float | None = None) -> None:
        """Something rests on the floor from ``x0`` to ``x1`` at ``y``, ``depth`` deep (default: as wide)."""
        self.footprints.append((x0, x1, y, x1 - x0 if depth is None else depth))


def lathe(
    shot: Shot,
    cx: float,
    profile: Sequence[Point],
    colour: RGB,
    *,
    gloss: float = 0.35,
    shininess: float = 40,
    tilt: float = 0.16,
    rim: float = 0.12,
    top_face: RGB | None = None,
) -> Image.Image:
    """A body of revolution (mug, bottle, vase, pot...) from ``(y, radius)`` pairs, top to bottom.

    The camera looks slightly down, so the base is an ellipse ``tilt`` times as tall as it is
    wide, curving the bottom edge. ``top_face`` draws the flat top (a lid, wax, a rim) as an ellipse.
    Returns the layer (RGBA) after compositing it onto the shot.
    """
    strip = cylinder_strip(colour, gloss=gloss, shininess=shininess, rim=rim)
    ys = [p[0] for p in profile]
    y0, y1 = ys[0], ys[-1]

    def radius(y: float) -> float:
        for (ya, ra), (yb, rb) in itertools.pairwise(profile):
            if ya <= y <= yb:
                return ra if yb == ya else ra + (rb - ra) * (y - ya) / (yb - ya)
        return profile[-1][1] if y > y1 else profile[0][1]

    r_bottom, r_top = profile[-1][1], profile[0][1]
    body = Image.new("RGBA", shot.size, (0, 0, 0, 0))
    top = int(y0 - tilt * r_top) - 2
    for y in range(max(0, top), min(shot.height, int(y1 + tilt * r_bottom) + 2)):
        r = radius(y)
        if r < 0.5:
            continue
        row = strip.resize((max(1, round(2 * r)), 1), Image.Resampling.BILINEAR)
        body.paste(row, (round(cx - r), y))
    # The outline: left side down, the front half of the base ellipse, right side up, the back of the top.
    outline: list[Point] = [(cx - radius(y), y) for y in _steps(y0, y1)]
    outline += [(cx - r_bottom * math.cos(t), y1 + tilt * r_bottom * math.sin(t)) for t in _steps(0, math.pi)]
    outline += [(cx + radius(y), y) for y in _steps(y1, y0)]
    outline += [(cx + r_top * math.cos(t), y0 - tilt * r_top * math.sin(t)) for t in _steps(0, math.pi)]
    mask = Image.new("L", shot.size, 0)
    ImageDraw.Draw(mask).polygon(outline, fill=255)
    # Vertical falloff: the key light is high, the floor bounce fills the bottom a little.
    shading = vertical_ramp((1, max(1, int(y1 - y0) + 1)), 1.04, 0.86)
    dim = Image.new("L", shot.size, 255)
    dim.paste(shading.resize((shot.width, int(y1 - y0) + 1)), (0, int(y0)))
    dim.paste(shading.getpixel((0, shading.height - 1)), (0, int(y1), shot.width, shot.height))
    rgb = ImageChops.multiply(body.convert("RGB"), Image.merge("RGB", (dim, dim, dim)))
    body = rgb.convert("RGBA")
    body.putalpha(mask)
    if top_face is not None:
        face = ImageDraw.Draw(body)
        face.ellipse((cx - r_top, y0 - tilt * r_top, cx + r_top, y0 + tilt * r_top), fill=rgba(top_face, 255))
    shot.layer.alpha_composite(body)
    return body


def _steps(a: float, b: float, n: int = 64) -> list[float]:
    return [a + (b - a) * i / n for i in range(n + 1)]


def ring(
    shot: Shot, box: tuple[float, float, float, float], width: float, colour: RGB, *, above: float | None = None
) -> None:
    """A handle or headband: a thick elliptical ring, lit across its thickness; cut off below ``above``."""
    part = Image.new("RGBA", shot.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(part)
    x0, y0, x1, y1 = box
    steps = max(3, int(width / 2))
    for i in range(steps):
        t = i / (steps - 1)
        # Across the ring's thickness: dark inside edge, lit middle, darker outside edge.
        shade = 0.55 + 0.5 * math.sin(t * math.pi) - 0.1 * t
        inset = width * t
        draw.ellipse((x0 + inset, y0 + inset, x1 - inset, y1 - inset), outline=rgba(scale(colour, shade), 255), width=3)
    mask = Image.new("L", shot.size, 0)
    ImageDraw.Draw(mask).ellipse(box, fill=255)
    ImageDraw.Draw(mask).ellipse((x0 + width, y0 + width, x1 - width, y1 - width), fill=0)
    if above is not None:
        ImageDraw.Draw(mask).rectangle((0, above, shot.width, shot.height), fill=0)
    part.putalpha(ImageChops.multiply(part.getchannel("A"), mask))
    shot.layer.alpha_composite(part)


def polygon_shaded(
    shot: Shot,
    points: Sequence[Point],
    colour: RGB,
    *,
    top: float = 1.08,
    bottom: float = 0.8,
    outline: RGB | None = None,
) -> None:
    """A flat part (a sneaker upper, a box face) lit more at its top than at its bottom."""
    ys = [p[1] for p in points]
    y0, y1 = int(min(ys)), int(max(ys)) + 1
    fill = Image.new("RGB", shot.size, colour)
    ramp = vertical_ramp((shot.width, max(1, y1 - y0)), top, bottom)
    dim = Image.new("L", shot.size, 255)
    dim.paste(ramp, (0, y0))
    # Above 255 means "brighter": multiply cannot brighten, so split into a screen and a multiply.
    fill = ImageChops.multiply(fill, Image.merge("RGB", (dim, dim, dim)))
    if top > 1.0:
        lift = vertical_ramp((shot.width, max(1, y1 - y0)), (top - 1.0) * 2, 0.0)
        glow = Image.new("L", shot.size, 0)
        glow.paste(lift, (0, y0))
        fill = ImageChops.screen(fill, Image.merge("RGB", (glow, glow, glow)))
    mask = Image.new("L", shot.size, 0)
    ImageDraw.Draw(mask).polygon(list(points), fill=255)
    part = fill.convert("RGBA")
    part.putalpha(mask)
    shot.layer.alpha_composite(part)
    if outline is not None:
        ImageDraw.Draw(shot.layer).line([*points, points[0]], fill=rgba(outline, 255), width=SS)


# --------------------------------------------------------------------------- backdrops


def sweep(
    size: tuple[int, int],
    wall: RGB,
    floor: RGB,
    *,
    horizon: float = 0.62,
    vignette: float = 0.0,
    spot: Point = (0.42, 0.38),
    spot_gain: float = 0.05,
) -> Image.Image:
    """A seamless paper sweep: wall colour curving into floor colour, a soft key-light spot, a vignette."""

    def colour(u: float, v: float) -> RGB:
        base = mix(wall, floor, smoothstep(horizon - 0.25, horizon + 0.2, v))
        d2 = ((u - spot[0]) / 0.55) ** 2 + ((v - spot[1]) / 0.5) ** 2
        gain = 1 + spot_gain * math.exp(-d2 * 2.2)
        corner = ((u - 0.5) ** 2 + (v - 0.5) ** 2) * 2
        return scale(base, gain * (1 - vignette * corner**1.3))

    return field(size, colour)


def paper(size: tuple[int, int], rng: random.Random, tone: RGB) -> Image.Image:
    """Pale paper: a warm sweep with fibre texture (blurred grain, stretched along one direction)."""
    image = sweep(size, scale(tone, 0.97), scale(tone, 1.02), horizon=0.55, vignette=0.12)
    fibres = noise((size[0] // 4, size[1] // 8), rng, 18, blur=0.6).resize(size, Image.Resampling.BICUBIC)
    fibres = fibres.point(lambda v: round(128 + (v - 128) * 0.25))
    return add_grain(image, fibres)


def busy_pattern(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """A loud printed tablecloth: the hard case for background removal (colours like products')."""
    w, h = size
    palette = [(226, 87, 76), (246, 190, 72), (64, 139, 160), (242, 239, 229), (38, 70, 92), (132, 176, 109)]
    image = Image.new("RGB", size, (242, 236, 222))
    draw = ImageDraw.Draw(image)
    cell = w // 9
    for gy in range(-1, h // cell + 2):
        for gx in range(-1, w // cell + 2):
            x, y = gx * cell + (cell // 2 if gy % 2 else 0), gy * cell
            kind = rng.randrange(4)
            colour = rng.choice(palette)
            if kind == 0:
                draw.ellipse((x + cell * 0.1, y + cell * 0.1, x + cell * 0.9, y + cell * 0.9), fill=colour)
                draw.ellipse(
                    (x + cell * 0.32, y + cell * 0.32, x + cell * 0.68, y + cell * 0.68), fill=rng.choice(palette)
                )
            elif kind == 1:
                draw.polygon([(x, y + cell), (x + cell / 2, y), (x + cell, y + cell)], fill=colour)
            elif kind == 2:
                for k in range(4):
                    draw.rectangle((x, y + k * cell / 4, x + cell, y + k * cell / 4 + cell / 9), fill=colour)
            else:
                draw.rectangle((x + cell * 0.15, y + cell * 0.15, x + cell * 0.85, y + cell * 0.85), fill=colour)
    # A shallow depth of field and the light falling off towards the back.
    image = image.filter(ImageFilter.GaussianBlur(SS * 1.2))
    light = vertical_ramp(size, 0.78, 1.0)
    return ImageChops.multiply(image, Image.merge("RGB", (light, light, light)))


def wood(size: tuple[int, int], rng: random.Random, *, horizon: float = 0.5, tone: RGB = (150, 104, 66)) -> Image.Image:
    """A wooden tabletop against a dim plaster wall: grain, planks, warm light."""
    w, h = size
    y_edge = int(h * horizon)
    table = Image.new("RGB", (w, h - y_edge), tone)
    draw = ImageDraw.Draw(table)
    th = h - y_edge
    plank_edges = [0]
    while plank_edges[-1] < th:
        # Planks look narrower towards the back: perspective.
        plank_edges.append(plank_edges[-1] + int((18 + 60 * (plank_edges[-1] / th)) * SS))
    for i, (a, b) in enumerate(itertools.pairwise(plank_edges)):
        plank = scale(tone, 0.86 + 0.2 * rng.random())
        draw.rectangle((0, a, w, b), fill=plank)
        for _ in range(int((b - a) / SS * 1.3)):
            y = rng.uniform(a, b)
            amp, freq, phase = rng.uniform(1, 5) * SS, rng.uniform(0.002, 0.01) / SS, rng.uniform(0, 6.3)
            grain = scale(plank, rng.uniform(0.78, 1.12))
            pts = [(x, y + amp * math.sin(x * freq + phase)) for x in range(0, w + 40, 40)]
            draw.line(pts, fill=grain, width=max(1, int(rng.uniform(0.5, 2.0) * SS)))
        if i:
            draw.line([(0, a), (w, a)], fill=scale(plank, 0.55), width=SS)
    table = table.filter(ImageFilter.GaussianBlur(SS * 0.7))
    light = vertical_ramp(table.size, 0.8, 1.08)
    table = ImageChops.multiply(table, Image.merge("RGB", (light, light, light)))
    if not y_edge:
        return table
    image = Image.new("RGB", size)
    image.paste(sweep((w, y_edge), (176, 164, 150), (150, 138, 124), horizon=0.9, vignette=0.25), (0, 0))
    image.paste(table, (0, y_edge))
    ImageDraw.Draw(image).line([(0, y_edge), (w, y_edge)], fill=scale(tone, 1.25), width=SS * 2)
    return image


BACKDROPS: dict[str, Callable[[tuple[int, int], random.Random], Image.Image]] = {
    "white": lambda size, rng: sweep(size, (236, 236, 234), (250, 250, 248), vignette=0.05),
    "grey": lambda size, rng: sweep(size, (196, 198, 201), (226, 227, 229), vignette=0.35, spot_gain=0.1),
    "paper": lambda size, rng: paper(size, rng, (243, 236, 222)),
    "pink": lambda size, rng: sweep(size, (236, 200, 198), (246, 222, 218), vignette=0.2),
    "blue": lambda size, rng: sweep(size, (192, 212, 228), (218, 230, 240), vignette=0.2),
    "peach": lambda size, rng: sweep(size, (244, 212, 186), (250, 228, 210), vignette=0.18),
    "pattern": busy_pattern,
    "wood": wood,
}


# --------------------------------------------------------------------------- shadows and finishing


def cast_shadows(shot: Shot, backdrop: Image.Image, *, strength: float = 1.0) -> Image.Image:
    """Darken the backdrop under and behind the product: contact shadow, soft cast shadow, ambient."""
    alpha = shot.layer.getchannel("A")
    shade = Image.new("L", shot.size, 0)
    if shot.flat_lay:
        # Lying on the paper, lit from above-left: a drop shadow offset down-right, wide and soft.
        drop = ImageChops.offset(alpha, 9 * SS, 12 * SS).filter(ImageFilter.GaussianBlur(14 * SS))
        near = ImageChops.offset(alpha, 2 * SS, 3 * SS).filter(ImageFilter.GaussianBlur(3 * SS))
        shade = ImageChops.lighter(drop.point(lambda v: v * 0.42), near.point(lambda v: v * 0.35))
    else:
        for x0, x1, y, depth in shot.footprints:
            width = x1 - x0
            # Seen from slightly above, the floor under the product is an ellipse about 0.16 as tall.
            contact = Image.new("L", shot.size, 0)
            ImageDraw.Draw(contact).ellipse(
                (x0 + width * 0.03, y - depth * 0.06, x1 - width * 0.03, y + depth * 0.05), fill=210
            )
            shade = ImageChops.lighter(shade, contact.filter(ImageFilter.GaussianBlur(4 * SS)))
            # The cast shadow: the silhouette squashed onto the floor, thrown back and to the right.
            # A point h above the floor lands squash*h behind it and lean*h to the right.
            squash, lean = 0.22, 0.2
            cast = alpha.transform(
                shot.size,
                Image.Transform.AFFINE,
                (1, lean / squash, -lean * y / squash, 0, 1 / squash, y - y / squash),
                resample=Image.Resampling.BILINEAR,
            )
            cast = ImageChops.multiply(cast, _above(shot.size, y))
            shade = ImageChops.lighter(shade, cast.filter(ImageFilter.GaussianBlur(10 * SS)).point(lambda v: v * 0.32))
            ambient = Image.new("L", shot.size, 0)
            ImageDraw.Draw(ambient).ellipse(
                (x0 - width * 0.2, y - depth * 0.16, x1 + width * 0.3, y + depth * 0.12), fill=90
            )
            shade = ImageChops.lighter(shade, ambient.filter(ImageFilter.GaussianBlur(22 * SS)))
    shade = shade.point(lambda v: round(v * strength))
    keep = ImageOps.invert(shade)
    # A faintly blue-grey shadow, as under a daylight-balanced softbox.
    tint = Image.merge("RGB", (keep, keep.point(lambda v: min(255, v + 3)), keep.point(lambda v: min(255, v + 7))))
    return ImageChops.multiply(backdrop, tint)


def _above(size: tuple[int, int], y: float) -> Image.Image:
    """255 above ``y`` (where a cast shadow may fall, on the floor behind), fading below it."""
    mask = Image.new("L", size, 255)
    ImageDraw.Draw(mask).rectangle((0, int(y) + 2 * SS, size[0], size[1]), fill=0)
    return mask.filter(ImageFilter.GaussianBlur(3 * SS))


def finish(shot: Shot, backdrop_name: str) -> Image.Image:
    backdrop = BACKDROPS[backdrop_name](shot.size, shot.rng)
    photo = cast_shadows(shot, backdrop)
    photo.paste(shot.layer, (0, 0), shot.layer)
    photo = photo.resize((shot.width // SS, shot.height // SS), Image.Resampling.LANCZOS)
    return add_grain(photo, noise(photo.size, shot.rng, 5))


def save_jpeg(image: Image.Image, path: Path, limit: int = MAX_BYTES) -> int:
    """Save at the best JPEG quality that fits ``limit`` bytes; returns the size written."""
    for quality in range(88, 40, -3):
        buffer = BytesIO()
        image.save(buffer, "JPEG", quality=quality, optimize=True, progressive=True, subsampling="4:2:0")
        if buffer.tell() <= limit:
            path.write_bytes(buffer.getvalue())
            return buffer.tell()
    raise SystemExit(f"{path.name} does not fit in {limit} bytes even at low quality")


# --------------------------------------------------------------------------- products
# Each draws at SS scale into ``shot`` around a centre x and a floor line, in units of ``u``
# (one percent of the shorter side), so the same code fits square and oblong photos.


def mug(shot: Shot, colour: RGB) -> None:
    u = min(shot.size) / 100
    cx, floor = shot.width / 2 - 4 * u, shot.floor_y
    r, height = 19 * u, 40 * u
    top = floor - height
    # The handle first, so the body covers its inner end.
    ring(shot, (cx + r * 0.55, top + 7 * u, cx + r + 15 * u, top + 33 * u), 5.5 * u, colour)
    lathe(shot, cx, [(top, r), (floor - 4 * u, r * 0.97), (floor, r * 0.9)], colour, gloss=0.55, shininess=60)
    # The rim and the inside: glazed, darker towards the back wall of the mug.
    draw = shot.draw
    tilt = 0.16
    draw.ellipse((cx - r, top - tilt * r, cx + r, top + tilt * r), fill=rgba(scale(colour, 1.12), 255))
    inner = r - 1.6 * u
    inside = ellipsoid((round(2 * inner), round(2 * tilt * inner)), scale(colour, 0.5), gloss=0.1, shininess=8)
    shot.paste(inside, (cx - inner, top - tilt * inner))
    shot.stands(cx - r, cx + r, floor)


def bottle(shot: Shot, colour: RGB, *, cap: RGB, label: RGB | None, gloss: float = 0.7, slim: float = 1.0) -> None:
    u = min(shot.size) / 100
    cx, floor = shot.width / 2, shot.floor_y
    r = 13 * u * slim
    shoulder, neck_r, top = floor - 52 * u, 4.2 * u * slim, floor - 74 * u
    curve = [
        (shoulder - 11 * u * t, neck_r + (r - neck_r) * (0.5 + 0.5 * math.cos(math.pi * t))) for t in _steps(0, 1, 12)
    ]
    profile = [(top + 7 * u, neck_r), *reversed(curve), (floor - 3 * u, r), (floor, r * 0.92)]
    lathe(shot, cx, profile, colour, gloss=gloss, shininess=90, rim=0.25)
    if label is not None:
        lathe(
            shot,
            cx,
            [(shoulder + 14 * u, r * 1.005), (floor - 12 * u, r * 1.005)],
            label,
            gloss=0.08,
            shininess=10,
            tilt=0.16,
        )
        draw = shot.draw
        for k, width in enumerate((0.9, 0.6, 0.75)):
            y = shoulder + 20 * u + k * 5 * u
            draw.rounded_rectangle(
                (cx - r * width * 0.6, y, cx + r * width * 0.6, y + 2 * u), radius=u, fill=rgba(scale(label, 0.45), 255)
            )
    lathe(
        shot,
        cx,
        [(top, neck_r * 1.25), (top + 8 * u, neck_r * 1.25)],
        cap,
        gloss=0.4,
        shininess=30,
        top_face=scale(cap, 1.1),
    )
    shot.stands(cx - r, cx + r, floor)


def sneaker(shot: Shot, upper: RGB, *, sole: RGB = (244, 242, 236), accent: RGB = (40, 40, 44)) -> None:
    """A low-top trainer seen from the outside, toe to the right."""
    u = min(shot.size) / 100
    floor = shot.floor_y
    x0 = shot.width / 2 - 46 * u

    def at(px: float, py: float) -> Point:
        return (x0 + px * u, floor - py * u)

    upper_pts = catmull_rom(
        [
            at(3, 8),
            at(1, 18),
            at(3, 27),
            at(8, 32),
            at(15, 29.5),
            at(22, 30.5),
            at(26, 37),
            at(31, 36.5),
            at(40, 30),
            at(55, 22.5),
            at(68, 17),
            at(80, 14),
            at(88, 10.5),
            at(89, 7),
            at(60, 7.5),
            at(20, 8),
        ]
    )
    polygon_shaded(shot, upper_pts, upper, top=1.12, bottom=0.8)
    # The heel counter and the toe cap: overlays a shade darker, like a second panel of leather.
    polygon_shaded(
        shot,
        catmull_rom([at(2.5, 9), at(1.5, 18), at(3.5, 25), at(12, 21), at(15, 9)]),
        scale(upper, 0.88),
        top=1.08,
        bottom=0.82,
    )
    polygon_shaded(
        shot,
        catmull_rom([at(70, 8), at(73, 15.5), at(82, 13.5), at(88.5, 10), at(89, 7.5)]),
        scale(upper, 0.92),
        top=1.12,
        bottom=0.85,
    )
    stripe = catmull_rom([at(16, 10), at(34, 19), at(54, 24.5), at(58, 23), at(40, 15.5), at(22, 9)])
    polygon_shaded(shot, stripe, accent, top=1.1, bottom=0.85)
    # The opening: dark lining seen over the collar, the tongue standing above the laces.
    polygon_shaded(
        shot,
        catmull_rom([at(8.5, 31.5), at(15, 29), at(22.5, 30), at(24.5, 33), at(16, 31.2)]),
        scale(upper, 0.3),
        top=0.6,
        bottom=1.0,
    )
    draw = shot.draw
    for k in range(6):
        ax, ay = 31 + k * 5, 32.5 - k * 2.6
        draw.ellipse((*at(ax - 0.9, ay + 0.9), *at(ax + 0.9, ay - 0.9)), fill=rgba(scale(upper, 0.35), 255))
        draw.line([at(ax - 2.6, ay + 2.2), at(ax + 3.4, ay - 0.6)], fill=(250, 250, 247, 255), width=int(1.5 * u))
    sole_pts = catmull_rom(
        [
            at(0, 10.5),
            at(0.5, 4),
            at(5, 0.6),
            at(50, 0),
            at(78, 0.8),
            at(88, 3.2),
            at(92, 7),
            at(89.5, 9.6),
            at(60, 8.4),
            at(20, 9.2),
        ]
    )
    polygon_shaded(shot, sole_pts, sole, top=1.06, bottom=0.8)
    outsole = catmull_rom(
        [at(0.8, 2.6), at(5, 0.4), at(50, -0.2), at(78, 0.6), at(88, 2.8), at(86, 3.6), at(50, 1.6), at(6, 2.2)]
    )
    polygon_shaded(shot, outsole, scale(sole, 0.62), top=1.0, bottom=0.85)
    draw.line([at(4, 6.2), at(50, 5.2), at(86, 6.4)], fill=rgba(scale(sole, 0.8), 255), width=max(1, int(0.45 * u)))
    shot.stands(x0 + 2 * u, x0 + 90 * u, floor, depth=30 * u)


def box(shot: Shot, colour: RGB, *, tape: RGB | None = None, ribbon: RGB | None = None) -> None:
    u = min(shot.size) / 100
    cx, floor = shot.width / 2, shot.floor_y
    fw, sw, h, depth_y = 42 * u, 22 * u, 34 * u, 11 * u
    left = cx - (fw + sw) / 2
    fl, fr = left, left + fw
    front = [(fl, floor - h), (fr, floor - h), (fr, floor), (fl, floor)]
    side = [(fr, floor - h), (fr + sw, floor - h - depth_y), (fr + sw, floor - depth_y), (fr, floor)]
    top = [(fl, floor - h), (fl + sw, floor - h - depth_y), (fr + sw, floor - h - depth_y), (fr, floor - h)]
    polygon_shaded(shot, front, colour, top=1.02, bottom=0.86)
    polygon_shaded(shot, side, scale(colour, 0.72), top=0.95, bottom=0.8)
    polygon_shaded(shot, top, scale(colour, 1.12), top=1.05, bottom=1.0)
    draw = shot.draw
    if tape is not None:
        tw = 5 * u
        mid = fl + fw / 2
        draw.polygon(
            [
                (mid - tw / 2 + sw / 2, floor - h - depth_y / 2 - 0.5 * u),
                (mid + tw / 2 + sw / 2, floor - h - depth_y / 2 - 0.5 * u),
                (mid + tw / 2, floor - h),
                (mid - tw / 2, floor - h),
            ],
            fill=rgba(tape, 235),
        )
        draw.rectangle((mid - tw / 2, floor - h, mid + tw / 2, floor - h + 9 * u), fill=rgba(scale(tape, 0.95), 235))
        # A printed "this side up" mark: two arrows.
        for k in (-1, 1):
            ax = fl + fw * 0.22 + k * 2.2 * u
            draw.line([(ax, floor - 8 * u), (ax, floor - 14 * u)], fill=(60, 50, 40, 200), width=int(0.8 * u))
            draw.polygon(
                [(ax - 1.3 * u, floor - 13 * u), (ax + 1.3 * u, floor - 13 * u), (ax, floor - 15.5 * u)],
                fill=(60, 50, 40, 200),
            )
    if ribbon is not None:
        rw = 4 * u
        mid = fl + fw / 2
        polygon_shaded(
            shot,
            [(mid - rw / 2, floor - h), (mid + rw / 2, floor - h), (mid + rw / 2, floor), (mid - rw / 2, floor)],
            ribbon,
            top=1.1,
            bottom=0.85,
        )
        side_mid = (fr + sw / 2, floor - depth_y / 2)
        polygon_shaded(
            shot,
            [
                (side_mid[0] - rw / 2, side_mid[1] - h - 0.3 * u),
                (side_mid[0] + rw / 2, side_mid[1] - h - 1.3 * u),
                (side_mid[0] + rw / 2, side_mid[1] - 1.2 * u),
                (side_mid[0] - rw / 2, side_mid[1]),
            ],
            scale(ribbon, 0.75),
        )
        knot = (fl + fw / 2 + sw / 2, floor - h - depth_y / 2)
        for sx in (-1, 1):
            loop = ellipsoid((round(13 * u), round(8 * u)), ribbon, gloss=0.5, shininess=25)
            shot.paste(loop, (knot[0] - 6.5 * u + sx * 6.5 * u, knot[1] - 7 * u))
        shot.paste(
            ellipsoid((round(5 * u), round(4.4 * u)), scale(ribbon, 0.9), gloss=0.5, shininess=25),
            (knot[0] - 2.5 * u, knot[1] - 4.2 * u),
        )
    shot.stands(fl, fr + sw, floor - depth_y * 0.3)


def table_lamp(shot: Shot, base: RGB, shade: RGB) -> None:
    u = min(shot.size) / 100
    cx, floor = shot.width / 2, shot.floor_y
    belly = [
        (floor - 30 * u + 30 * u * t, 3 * u + 11 * u * math.sin(math.pi * (0.12 + 0.8 * t))) for t in _steps(0, 1, 16)
    ]
    lathe(shot, cx, [(floor - 33 * u, 2.2 * u), *belly, (floor, 6 * u)], base, gloss=0.6, shininess=70)
    lathe(shot, cx, [(floor - 48 * u, 0.9 * u), (floor - 31 * u, 0.9 * u)], (190, 170, 120), gloss=0.8, shininess=90)
    lathe(
        shot,
        cx,
        [(floor - 78 * u, 13 * u), (floor - 46 * u, 22 * u)],
        shade,
        gloss=0.02,
        shininess=5,
        rim=0.05,
        top_face=scale(shade, 0.8),
    )
    # Light escaping under the shade warms its lower rim.
    glow = Image.new("RGBA", shot.size, (0, 0, 0, 0))
    ImageDraw.Draw(glow).ellipse((cx - 22 * u, floor - 49 * u, cx + 22 * u, floor - 43 * u), fill=(255, 236, 190, 130))
    shot.layer.alpha_composite(glow.filter(ImageFilter.GaussianBlur(1.2 * u)))
    shot.stands(cx - 6 * u, cx + 6 * u, floor)


def desk_lamp(shot: Shot, colour: RGB) -> None:
    u = min(shot.size) / 100
    cx, floor = shot.width / 2 - 10 * u, shot.floor_y
    lathe(
        shot,
        cx,
        [(floor - 4 * u, 14 * u), (floor, 15 * u)],
        colour,
        gloss=0.6,
        shininess=60,
        top_face=scale(colour, 1.15),
    )
    draw = shot.draw
    joints = [(cx, floor - 4 * u), (cx + 10 * u, floor - 40 * u), (cx + 30 * u, floor - 58 * u)]
    for (ax, ay), (bx, by) in itertools.pairwise(joints):
        draw.line([(ax, ay), (bx, by)], fill=rgba(scale(colour, 0.7), 255), width=int(3.2 * u))
        draw.line([(ax - 0.9 * u, ay), (bx - 0.9 * u, by)], fill=rgba(scale(colour, 1.25), 255), width=int(1.0 * u))
    for jx, jy in joints[1:]:
        shot.paste(
            ellipsoid((round(5 * u), round(5 * u)), scale(colour, 0.9), gloss=0.6, shininess=40),
            (jx - 2.5 * u, jy - 2.5 * u),
        )
    # The head: a cone pointing down and to the right.
    hx, hy = joints[-1]
    head = Image.new("RGBA", (round(34 * u), round(34 * u)), (0, 0, 0, 0))
    sub = Shot(head.width, head.height, shot.rng, head.height * 0.9)
    lathe(
        sub,
        head.width / 2,
        [(head.height * 0.1, 3 * u), (head.height * 0.25, 5 * u), (head.height * 0.85, 14 * u)],
        colour,
        gloss=0.7,
        shininess=70,
        top_face=None,
    )
    ImageDraw.Draw(sub.layer).ellipse(
        (head.width / 2 - 14 * u, head.height * 0.85 - 2.3 * u, head.width / 2 + 14 * u, head.height * 0.85 + 2.3 * u),
        fill=(255, 244, 214, 255),
    )
    head = sub.layer.rotate(35, resample=Image.Resampling.BICUBIC, expand=False)
    shot.paste(head, (hx - head.width * 0.42, hy - head.height * 0.22))
    shot.stands(cx - 15 * u, cx + 15 * u, floor)


def vase(shot: Shot, colour: RGB, *, gloss: float = 0.7, tall: float = 1.0) -> None:
    u = min(shot.size) / 100
    cx, floor = shot.width / 2, shot.floor_y
    height = 70 * u * tall
    # (height share from the top, radius in u): lip, neck, full shoulder, narrowing foot.
    keys = [(0.0, 8.5), (0.06, 7.0), (0.2, 6.2), (0.42, 13.5), (0.62, 17.5), (0.85, 13.0), (0.97, 8.5), (1.0, 8.0)]
    curve = catmull_rom([(t, r) for t, r in keys], closed=False, steps=8)
    profile = [(floor - height + height * t, r * u) for t, r in curve]
    lathe(shot, cx, profile, colour, gloss=gloss, shininess=80, rim=0.2)
    y0, r0 = profile[0]
    shot.draw.ellipse((cx - r0, y0 - 0.16 * r0, cx + r0, y0 + 0.16 * r0), fill=rgba(scale(colour, 1.1), 255))
    inner = r0 - 1.4 * u
    shot.draw.ellipse(
        (cx - inner, y0 - 0.16 * inner, cx + inner, y0 + 0.16 * inner), fill=rgba(scale(colour, 0.25), 255)
    )
    shot.stands(cx - 8 * u, cx + 8 * u, floor)


def headphones(shot: Shot, colour: RGB, *, cushion: RGB) -> None:
    u = min(shot.size) / 100
    cx, floor = shot.width / 2, shot.floor_y
    spread, cup_w, cup_h = 25 * u, 17 * u, 27 * u
    cup_y = floor - cup_h
    ring(
        shot,
        (cx - spread - 3 * u, cup_y - 44 * u, cx + spread + 3 * u, cup_y + 30 * u),
        5 * u,
        colour,
        above=cup_y - 4 * u,
    )
    # Yokes from the band down to the cups.
    for sx in (-1, 1):
        x = cx + sx * (spread + 1 * u)
        shot.draw.rounded_rectangle(
            (x - 1.6 * u, cup_y - 8 * u, x + 1.6 * u, cup_y + 6 * u), radius=u, fill=(170, 170, 174, 255)
        )
    for sx in (-1, 1):
        x = cx + sx * spread
        pad = ellipsoid((round(cup_w * 0.8), round(cup_h * 0.95)), cushion, gloss=0.15, shininess=12)
        shot.paste(pad, (x - cup_w * 0.4 - sx * 3.5 * u, cup_y + cup_h * 0.03))
        cup = ellipsoid((round(cup_w), round(cup_h)), colour, gloss=0.55, shininess=50, flat=0.35)
        shot.paste(cup, (x - cup_w / 2 + sx * 1.5 * u, cup_y))
    shot.stands(cx - spread - cup_w / 2, cx + spread + cup_w / 2, floor)


def watch(shot: Shot, case: RGB, *, dial: RGB, strap: RGB) -> None:
    shot.flat_lay = True
    u = min(shot.size) / 100
    cx, cy = shot.width / 2, shot.height / 2
    for sy in (-1, 1):
        y0 = cy + sy * 14 * u
        y1 = cy + sy * 46 * u
        top, bottom = min(y0, y1), max(y0, y1)
        part = Image.new("RGBA", (round(18 * u), round(bottom - top)), (0, 0, 0, 0))
        strip = cylinder_strip(strap, gloss=0.15, shininess=12, rim=0.05).resize(part.size)
        mask = Image.new("L", part.size, 0)
        ImageDraw.Draw(mask).rounded_rectangle((0, 0, part.width - 1, part.height - 1), radius=3 * u, fill=255)
        part.paste(strip, (0, 0), mask)
        # Stitching along both edges.
        d = ImageDraw.Draw(part)
        for x in (1.6 * u, part.width - 1.6 * u):
            for y in range(int(2 * u), part.height - int(2 * u), int(2.4 * u)):
                d.line([(x, y), (x, y + 1.2 * u)], fill=rgba(scale(strap, 1.5), 255), width=max(1, int(0.35 * u)))
        shot.paste(part, (cx - 9 * u, top))
    shot.draw.rounded_rectangle(
        (cx + 19 * u, cy - 3 * u, cx + 23 * u, cy + 3 * u), radius=u, fill=rgba(scale(case, 0.9), 255)
    )
    bezel = ellipsoid((round(42 * u), round(42 * u)), case, gloss=0.9, shininess=60, flat=0.2)
    shot.paste(bezel, (cx - 21 * u, cy - 21 * u))
    face = ellipsoid((round(34 * u), round(34 * u)), dial, gloss=0.25, shininess=20, flat=0.85)
    shot.paste(face, (cx - 17 * u, cy - 17 * u))
    draw = shot.draw
    ink = (40, 40, 44, 255) if sum(dial) > 380 else (236, 230, 214, 255)
    for k in range(12):
        a = k * math.pi / 6
        inner, outer = (11.5 if k % 3 else 10.0) * u, 14.5 * u
        draw.line(
            [
                (cx + inner * math.sin(a), cy - inner * math.cos(a)),
                (cx + outer * math.sin(a), cy - outer * math.cos(a)),
            ],
            fill=ink,
            width=int((1.1 if k % 3 else 1.8) * u),
        )
    for angle, length, width in ((305, 9 * u, 1.6 * u), (52, 13 * u, 1.1 * u)):
        a = math.radians(angle)
        draw.line([(cx, cy), (cx + length * math.sin(a), cy - length * math.cos(a))], fill=ink, width=int(width))
    draw.ellipse((cx - 1.3 * u, cy - 1.3 * u, cx + 1.3 * u, cy + 1.3 * u), fill=ink)
    # The crystal catches the window: one soft streak.
    glare = Image.new("RGBA", shot.size, (0, 0, 0, 0))
    ImageDraw.Draw(glare).ellipse((cx - 12 * u, cy - 15 * u, cx + 2 * u, cy - 6 * u), fill=(255, 255, 255, 60))
    shot.layer.alpha_composite(glare.filter(ImageFilter.GaussianBlur(2 * u)))


def books(shot: Shot, colours: Sequence[RGB]) -> None:
    u = min(shot.size) / 100
    cx, floor = shot.width / 2, shot.floor_y
    y = floor
    for k, colour in enumerate(colours):
        thick = (11 + 3 * (k % 2)) * u
        width = (68 - 6 * k) * u
        x0 = cx - width / 2 + (k - 1) * 2.5 * u
        pages = [
            (x0 + 1.5 * u, y - thick + 1 * u),
            (x0 + width + 6 * u, y - thick - 4 * u),
            (x0 + width + 6 * u, y - 4 * u),
            (x0 + width, y),
        ]
        polygon_shaded(shot, pages, (238, 232, 214), top=1.0, bottom=0.9)
        for line in range(1, 6):
            ly = y - thick + thick * line / 6
            shot.draw.line([(x0 + width, ly), (x0 + width + 6 * u, ly - 4 * u)], fill=(214, 206, 186, 255), width=1)
        part = Image.new("RGBA", (round(width), round(thick)), (0, 0, 0, 0))
        # A spine is rounded: shade it like a lying cylinder.
        strip = cylinder_strip(colour, gloss=0.3, shininess=30, rim=0.05).rotate(90, expand=True)
        part.paste(strip.resize(part.size))
        d = ImageDraw.Draw(part)
        d.rectangle((width * 0.12, thick * 0.3, width * 0.14, thick * 0.7), fill=(214, 180, 96, 255))
        d.rectangle((width * 0.3, thick * 0.42, width * 0.7, thick * 0.58), fill=(214, 180, 96, 255))
        shot.paste(part, (x0, y - thick))
        if k == len(colours) - 1:
            cover = [
                (x0, y - thick),
                (x0 + 6 * u, y - thick - 4 * u),
                (x0 + width + 6 * u, y - thick - 4 * u),
                (x0 + width, y - thick),
            ]
            polygon_shaded(shot, cover, scale(colour, 1.15), top=1.0, bottom=1.0)
        y -= thick
    shot.stands(cx - 36 * u, cx + 40 * u, floor, depth=40 * u)


def potted_plant(shot: Shot, pot: RGB, *, kind: str) -> None:
    u = min(shot.size) / 100
    cx, floor = shot.width / 2, shot.floor_y
    pot_top = floor - 26 * u
    rng = shot.rng
    green = (58, 112, 62)
    if kind == "snake":
        blades = []
        for _ in range(9):
            lean = rng.uniform(-0.45, 0.45)
            height = rng.uniform(40, 62) * u
            base_x = cx + rng.uniform(-9, 9) * u
            width = rng.uniform(3.6, 5.5) * u
            tip = (base_x + lean * height * 0.5, pot_top - height)
            blades.append((abs(lean), base_x, width, tip))
        for _, base_x, width, tip in sorted(blades, reverse=True):
            pts = catmull_rom(
                [
                    (base_x - width, pot_top + 2 * u),
                    ((base_x + tip[0]) / 2 - width * 1.1, (pot_top + tip[1]) / 2),
                    tip,
                    ((base_x + tip[0]) / 2 + width * 1.1, (pot_top + tip[1]) / 2),
                    (base_x + width, pot_top + 2 * u),
                ],
                closed=False,
            )
            polygon_shaded(
                shot, pts, scale(green, rng.uniform(0.85, 1.15)), top=1.15, bottom=0.75, outline=(196, 188, 92)
            )
            # The pale cross-bands that make it a snake plant.
            for band in range(5):
                t = (band + 0.5) / 6
                by = pot_top + (tip[1] - pot_top) * t
                bx = base_x + (tip[0] - base_x) * t
                shot.draw.line(
                    [(bx - width * 0.7, by + u), (bx + width * 0.7, by - u)],
                    fill=(120, 160, 100, 150),
                    width=max(1, int(0.8 * u)),
                )
    else:  # succulent rosette, seen from slightly above
        leaves = []
        for ring_k, (count, length, lift) in enumerate(((11, 17, 0.0), (8, 12, 3.0), (5, 7, 5.5))):
            for k in range(count):
                a = 2 * math.pi * (k + 0.5 * ring_k) / count
                leaves.append((math.sin(a), a, length, lift))
        # Back leaves first (sorted by how far in front they sit), so front leaves cover them.
        for _depth, a, length, lift in sorted(leaves):
            leaf = ellipsoid(
                (round(length * u * 0.9), round(length * u * 0.42)), (136, 176, 138), gloss=0.35, shininess=20
            )
            leaf = leaf.rotate(-math.degrees(a), expand=True, resample=Image.Resampling.BICUBIC)
            lx = cx + math.cos(a) * length * 0.5 * u
            ly = pot_top - 5 * u - lift * u + math.sin(a) * length * 0.22 * u
            shot.paste(leaf, (lx - leaf.width / 2, ly - leaf.height / 2))
    lathe(
        shot,
        cx,
        [(pot_top - 1 * u, 17 * u), (pot_top + 4 * u, 17 * u), (pot_top + 4.5 * u, 15 * u), (floor, 12 * u)],
        pot,
        gloss=0.12,
        shininess=12,
    )
    shot.stands(cx - 12 * u, cx + 12 * u, floor)


def candle(shot: Shot, glass: RGB, *, wax: RGB, label: RGB) -> None:
    u = min(shot.size) / 100
    cx, floor = shot.width / 2, shot.floor_y
    r, top = 17 * u, floor - 38 * u
    lathe(shot, cx, [(top, r), (floor, r)], glass, gloss=0.9, shininess=120, rim=0.35, top_face=wax)
    lathe(shot, cx, [(top + 12 * u, r * 1.004), (top + 28 * u, r * 1.004)], label, gloss=0.05, shininess=8)
    shot.draw.line([(cx, top - 4 * u), (cx + 0.6 * u, top)], fill=(40, 34, 30, 255), width=int(0.8 * u))
    shot.stands(cx - r, cx + r, floor)


def perfume(shot: Shot, liquid: RGB, *, cap: RGB) -> None:
    u = min(shot.size) / 100
    cx, floor = shot.width / 2, shot.floor_y
    w, h = 34 * u, 40 * u
    glass_box = (cx - w / 2, floor - h, cx + w / 2, floor)
    part = Image.new("RGBA", shot.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(part)
    d.rounded_rectangle(glass_box, radius=4 * u, fill=(226, 232, 236, 255))
    d.rounded_rectangle(
        (glass_box[0] + 3 * u, glass_box[1] + 8 * u, glass_box[2] - 3 * u, glass_box[3] - 3 * u),
        radius=2 * u,
        fill=rgba(liquid, 255),
    )
    shot.layer.alpha_composite(part)
    # Glass: bright edges, a vertical reflection, a darker refraction band at the bottom.
    shine = Image.new("RGBA", shot.size, (0, 0, 0, 0))
    s = ImageDraw.Draw(shine)
    s.rectangle(
        (glass_box[0] + 5 * u, glass_box[1] + 4 * u, glass_box[0] + 8 * u, glass_box[3] - 5 * u),
        fill=(255, 255, 255, 150),
    )
    s.rectangle(
        (glass_box[2] - 6 * u, glass_box[1] + 6 * u, glass_box[2] - 5 * u, glass_box[3] - 6 * u),
        fill=(255, 255, 255, 110),
    )
    s.rectangle(
        (glass_box[0] + 3 * u, glass_box[3] - 6 * u, glass_box[2] - 3 * u, glass_box[3] - 3 * u),
        fill=rgba(scale(liquid, 0.6), 110),
    )
    shot.layer.alpha_composite(shine.filter(ImageFilter.GaussianBlur(0.7 * u)))
    shot.draw.rounded_rectangle(
        (cx - 12 * u, floor - h + 14 * u, cx + 12 * u, floor - h + 24 * u), radius=u, fill=(250, 248, 244, 230)
    )
    shot.draw.rectangle((cx - 7 * u, floor - h + 18 * u, cx + 7 * u, floor - h + 19.5 * u), fill=(60, 56, 52, 255))
    lathe(
        shot, cx, [(floor - h - 4 * u, 4 * u), (floor - h + 0.5 * u, 4 * u)], (200, 200, 204), gloss=0.9, shininess=80
    )
    lathe(
        shot,
        cx,
        [(floor - h - 17 * u, 8 * u), (floor - h - 4 * u, 8 * u)],
        cap,
        gloss=0.9,
        shininess=90,
        rim=0.3,
        top_face=scale(cap, 1.15),
    )
    shot.stands(cx - w / 2, cx + w / 2, floor)


def can(shot: Shot, colour: RGB, *, band: RGB) -> None:
    u = min(shot.size) / 100
    cx, floor = shot.width / 2, shot.floor_y
    r, top = 14 * u, floor - 52 * u
    metal = (196, 198, 202)
    lathe(
        shot,
        cx,
        [(top - 2 * u, r * 0.82), (top + 2 * u, r), (floor - 3 * u, r), (floor, r * 0.85)],
        colour,
        gloss=0.85,
        shininess=90,
        rim=0.3,
    )
    lathe(shot, cx, [(top + 18 * u, r * 1.003), (top + 30 * u, r * 1.003)], band, gloss=0.8, shininess=90)
    lathe(
        shot,
        cx,
        [(top - 3 * u, r * 0.82), (top - 0.5 * u, r * 0.82)],
        metal,
        gloss=0.9,
        shininess=60,
        top_face=scale(metal, 0.92),
    )
    shot.draw.rounded_rectangle(
        (cx - 3 * u, top - 3.2 * u, cx + 4 * u, top - 1.4 * u), radius=u, fill=(170, 172, 176, 255)
    )
    shot.stands(cx - r, cx + r, floor)


def speaker(shot: Shot, fabric: RGB) -> None:
    u = min(shot.size) / 100
    cx, floor = shot.width / 2, shot.floor_y
    r, top = 15 * u, floor - 50 * u
    body = lathe(shot, cx, [(top, r), (floor, r)], fabric, gloss=0.05, shininess=6, rim=0.06)
    # Woven fabric: fine horizontal ribs, only where the body is.
    ribs = Image.new("RGBA", shot.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(ribs)
    for y in range(int(top), int(floor), max(2, int(0.9 * u))):
        d.line([(cx - r, y), (cx + r, y)], fill=(0, 0, 0, 26), width=1)
    ribs.putalpha(ImageChops.multiply(ribs.getchannel("A"), body.getchannel("A")))
    shot.layer.alpha_composite(ribs)
    lathe(shot, cx, [(top - 3 * u, r), (top, r)], (52, 52, 56), gloss=0.4, shininess=30, top_face=(66, 66, 70))
    for k in range(3):  # volume down, play, volume up
        bx = cx + (k - 1) * 6 * u
        shot.draw.ellipse((bx - 1.6 * u, top - 3.5 * u, bx + 1.6 * u, top - 2.2 * u), fill=(90, 90, 96, 255))
    shot.stands(cx - r, cx + r, floor)


def teapot(shot: Shot, colour: RGB) -> None:
    u = min(shot.size) / 100
    cx, floor = shot.width / 2 - 3 * u, shot.floor_y
    height = 34 * u
    top = floor - height
    spout = catmull_rom(
        [
            (cx + 14 * u, floor - 16 * u),
            (cx + 26 * u, floor - 24 * u),
            (cx + 33 * u, floor - 36 * u),
            (cx + 35 * u, floor - 35 * u),
            (cx + 29 * u, floor - 20 * u),
            (cx + 16 * u, floor - 8 * u),
        ],
        closed=False,
    )
    polygon_shaded(shot, spout, colour, top=1.1, bottom=0.7)
    ring(shot, (cx - 33 * u, floor - 29 * u, cx - 12 * u, floor - 7 * u), 4.5 * u, colour)
    profile = [(top + height * t, (10 + 12 * math.sin(math.pi * (0.18 + 0.78 * t))) * u) for t in _steps(0, 1, 30)]
    profile[-1] = (floor, 12 * u)
    lathe(shot, cx, profile, colour, gloss=0.65, shininess=70)
    lathe(
        shot,
        cx,
        [(top - 3 * u, 8 * u), (top + 1 * u, 10.5 * u)],
        scale(colour, 1.05),
        gloss=0.65,
        shininess=70,
        top_face=scale(colour, 1.1),
    )
    knob = ellipsoid((round(6 * u), round(5 * u)), colour, gloss=0.7, shininess=60)
    shot.paste(knob, (cx - 3 * u, top - 7 * u))
    shot.stands(cx - 14 * u, cx + 14 * u, floor)


def bowl(shot: Shot, colour: RGB, *, inside: RGB) -> None:
    u = min(shot.size) / 100
    cx, floor = shot.width / 2, shot.floor_y
    top = floor - 22 * u
    profile = [(top + 22 * u * t, (30 - 16 * t**2.2) * u) for t in _steps(0, 1, 24)]
    lathe(shot, cx, profile, colour, gloss=0.5, shininess=50, tilt=0.3)
    inner = ellipsoid((round(57 * u), round(17 * u)), inside, gloss=0.3, shininess=25, flat=0.6)
    shot.draw.ellipse((cx - 30 * u, top - 9 * u, cx + 30 * u, top + 9 * u), fill=rgba(scale(colour, 1.12), 255))
    shot.paste(inner, (cx - 28.5 * u, top - 8.3 * u))
    shot.stands(cx - 14 * u, cx + 14 * u, floor)


def sunglasses(shot: Shot, frame: RGB, *, lens: RGB) -> None:
    shot.flat_lay = True
    u = min(shot.size) / 100
    cx, cy = shot.width / 2, shot.height / 2
    draw = shot.draw
    for sx in (-1, 1):
        # Folded temples show above the lenses.
        draw.line(
            [(cx + sx * 40 * u, cy - 8 * u), (cx + sx * 6 * u, cy - 15 * u)], fill=rgba(frame, 255), width=int(2.2 * u)
        )
    for sx in (-1, 1):
        lx = cx + sx * 21 * u
        shape = catmull_rom(
            [
                (lx - 17 * u, cy - 9 * u),
                (lx + 17 * u, cy - 10 * u),
                (lx + 15 * u, cy + 6 * u),
                (lx, cy + 13 * u),
                (lx - 14 * u, cy + 7 * u),
            ]
        )
        polygon_shaded(shot, shape, frame, top=1.25, bottom=0.8)
        inner = [(cx + sx * 21 * u + (x - lx) * 0.86, cy + (y - cy) * 0.84) for x, y in shape]
        polygon_shaded(shot, inner, lens, top=1.35, bottom=0.7)
        glare = Image.new("RGBA", shot.size, (0, 0, 0, 0))
        ImageDraw.Draw(glare).ellipse((lx - 11 * u, cy - 7 * u, lx - 2 * u, cy - 2 * u), fill=(255, 255, 255, 70))
        shot.layer.alpha_composite(glare.filter(ImageFilter.GaussianBlur(1.2 * u)))
    draw.arc((cx - 7 * u, cy - 11 * u, cx + 7 * u, cy + 1 * u), 200, 340, fill=rgba(frame, 255), width=int(2.2 * u))


# --------------------------------------------------------------------------- scene references


def scene_marble(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """A white marble counter in front of a softly lit, out-of-focus kitchen wall."""
    w, h = size
    edge = int(h * 0.52)
    wall = sweep(
        (w, edge), (222, 218, 210), (204, 198, 188), horizon=0.8, vignette=0.2, spot=(0.3, 0.4), spot_gain=0.08
    )
    wall_draw = ImageDraw.Draw(wall)
    for x in range(0, w, int(w / 7)):  # tile joints, blurred away by the depth of field below
        wall_draw.line([(x, 0), (x, edge)], fill=(188, 184, 176), width=SS)
    wall = wall.filter(ImageFilter.GaussianBlur(6 * SS))
    slab = sweep((w, h - edge), (236, 236, 234), (246, 246, 245), horizon=0.5, vignette=0.15)
    veins = Image.new("L", slab.size, 0)
    halos = Image.new("L", slab.size, 0)
    vd, hd = ImageDraw.Draw(veins), ImageDraw.Draw(halos)
    for k in range(30):
        x, y = rng.uniform(-0.2, 1.0) * w, rng.uniform(0, 1) * slab.height
        angle = rng.uniform(-0.4, 0.4)
        pts = []
        for _step in range(70):
            pts.append((x, y))
            angle += rng.uniform(-0.3, 0.3)
            x += math.cos(angle) * 12 * SS
            y += math.sin(angle) * 3.5 * SS  # the counter recedes: veins flatten vertically
        bold = k < 6
        vd.line(
            pts,
            fill=rng.randrange(170, 240) if bold else rng.randrange(70, 140),
            width=max(1, int(rng.uniform(1.6, 3.6) * SS if bold else SS)),
        )
        if bold:  # a bold vein bleeds into the stone around it
            hd.line(pts, fill=130, width=14 * SS)
    veins = ImageChops.lighter(
        veins.filter(ImageFilter.GaussianBlur(0.8 * SS)), halos.filter(ImageFilter.GaussianBlur(9 * SS))
    )
    grey = Image.new("RGB", slab.size, (132, 134, 142))
    slab = Image.composite(grey, slab, veins.point(lambda v: v * 3 // 5))
    image = Image.new("RGB", size)
    image.paste(wall, (0, 0))
    image.paste(slab, (0, edge))
    ImageDraw.Draw(image).line([(0, edge), (w, edge)], fill=(170, 168, 164), width=SS * 2)
    return image


def scene_shelf(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """A sage plaster wall with an oak shelf casting a soft shadow."""
    w, h = size
    image = sweep(size, (172, 184, 164), (150, 162, 144), horizon=0.7, vignette=0.3, spot=(0.4, 0.3), spot_gain=0.1)
    plaster = noise((w // 3, h // 3), rng, 30, blur=1.0).resize(size, Image.Resampling.BICUBIC)
    image = add_grain(image, plaster.point(lambda v: round(128 + (v - 128) * 0.08)))
    shelf_y = int(h * 0.64)
    top = wood((w, int(h * 0.16)), rng, horizon=0.0, tone=(176, 128, 82))
    shadow = Image.new("L", size, 0)
    ImageDraw.Draw(shadow).rectangle((0, shelf_y + top.height, w, shelf_y + top.height + 16 * SS), fill=120)
    shadow = shadow.filter(ImageFilter.GaussianBlur(10 * SS))
    image = ImageChops.multiply(image, ImageOps.invert(shadow).convert("RGB"))
    image.paste(top, (0, shelf_y))
    front = Image.new("RGB", (w, 14 * SS), (122, 84, 52))
    image.paste(front, (0, shelf_y + top.height))
    return image


def scene_beach(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """Late-morning beach: sky, a band of sea with foam, rippled sand in the foreground."""
    w, h = size
    horizon, shore = int(h * 0.42), int(h * 0.58)
    image = field(size, lambda u, v: mix((118, 170, 214), (226, 236, 240), smoothstep(0.0, 0.42, v)))
    sun = Image.new("L", size, 0)
    ImageDraw.Draw(sun).ellipse((w * 0.72, -h * 0.2, w * 1.1, h * 0.25), fill=150)
    image = ImageChops.screen(image, Image.merge("RGB", [sun.filter(ImageFilter.GaussianBlur(40 * SS))] * 3))
    sea = field((w, shore - horizon), lambda u, v: mix((46, 110, 140), (92, 168, 172), v))
    sd = ImageDraw.Draw(sea)
    for _ in range(70):
        y = rng.uniform(0, sea.height)
        x = rng.uniform(0, w)
        length = rng.uniform(20, 90) * SS * (0.4 + y / sea.height)
        sd.line([(x, y), (x + length, y)], fill=(170, 210, 214), width=SS)
    image.paste(sea.filter(ImageFilter.GaussianBlur(0.8 * SS)), (0, horizon))
    sand = field((w, h - shore), lambda u, v: mix((214, 192, 156), (232, 214, 182), v))
    sand = add_grain(sand, noise(sand.size, rng, 22, blur=0.8))
    ripples = ImageDraw.Draw(sand)
    for k in range(26):
        y = (k / 26) ** 1.6 * sand.height
        pts = [(x, y + 3 * SS * math.sin(x / (30 * SS) + k)) for x in range(0, w + 20, 20)]
        ripples.line(pts, fill=(198, 176, 140), width=SS)
    image.paste(sand.filter(ImageFilter.GaussianBlur(0.6 * SS)), (0, shore))
    foam = Image.new("L", size, 0)
    ImageDraw.Draw(foam).line(
        [(x, shore + 2 * SS * math.sin(x / (50 * SS))) for x in range(0, w + 20, 20)], fill=230, width=4 * SS
    )
    image = Image.composite(
        Image.new("RGB", size, (246, 248, 246)), image, foam.filter(ImageFilter.GaussianBlur(2 * SS))
    )
    return image


# --------------------------------------------------------------------------- the catalog


@dataclass(frozen=True)
class Photo:
    name: str
    size: tuple[int, int]
    backdrop: str
    paint: Callable[[Shot], None]
    #: Where the floor meets the product, as a share of the height.
    floor: float = 0.8


SQUARE, LANDSCAPE, PORTRAIT = (600, 600), (640, 480), (480, 640)

PHOTOS: tuple[Photo, ...] = (
    Photo("mug-red", SQUARE, "white", lambda s: mug(s, (196, 48, 44))),
    Photo("mug-teal", SQUARE, "grey", lambda s: mug(s, (38, 128, 136))),
    Photo("mug-cream-pattern", SQUARE, "pattern", lambda s: mug(s, (236, 226, 204))),
    Photo(
        "bottle-steel",
        PORTRAIT,
        "white",
        lambda s: bottle(s, (176, 180, 186), cap=(40, 40, 44), label=None, gloss=0.95),
        floor=0.88,
    ),
    Photo(
        "bottle-olive",
        PORTRAIT,
        "paper",
        lambda s: bottle(s, (46, 86, 48), cap=(172, 140, 60), label=(236, 228, 204)),
        floor=0.88,
    ),
    Photo(
        "bottle-amber",
        PORTRAIT,
        "pink",
        lambda s: bottle(s, (150, 84, 30), cap=(30, 30, 32), label=(250, 248, 244), slim=0.8),
        floor=0.88,
    ),
    Photo("sneaker-white", LANDSCAPE, "white", lambda s: sneaker(s, (236, 236, 232), accent=(40, 82, 160)), floor=0.74),
    Photo("sneaker-red", LANDSCAPE, "grey", lambda s: sneaker(s, (200, 52, 48), accent=(250, 250, 246)), floor=0.74),
    Photo(
        "sneaker-black-wood",
        LANDSCAPE,
        "wood",
        lambda s: sneaker(s, (44, 44, 48), sole=(210, 190, 150), accent=(200, 200, 196)),
        floor=0.74,
    ),
    Photo("box-kraft", SQUARE, "white", lambda s: box(s, (190, 150, 104), tape=(214, 190, 150))),
    Photo("box-gift", SQUARE, "blue", lambda s: box(s, (242, 242, 238), ribbon=(196, 40, 60))),
    Photo("lamp-table", PORTRAIT, "paper", lambda s: table_lamp(s, (62, 96, 120), (238, 230, 214)), floor=0.9),
    Photo("lamp-desk", SQUARE, "grey", lambda s: desk_lamp(s, (230, 186, 52)), floor=0.84),
    Photo("vase-blue", PORTRAIT, "white", lambda s: vase(s, (44, 78, 150)), floor=0.86),
    Photo("vase-terracotta-wood", PORTRAIT, "wood", lambda s: vase(s, (186, 98, 64), gloss=0.15, tall=0.9), floor=0.84),
    Photo("headphones-black", SQUARE, "white", lambda s: headphones(s, (36, 36, 40), cushion=(58, 58, 62)), floor=0.8),
    Photo(
        "headphones-mint", SQUARE, "grey", lambda s: headphones(s, (168, 214, 196), cushion=(236, 236, 230)), floor=0.8
    ),
    Photo("watch-steel", SQUARE, "paper", lambda s: watch(s, (190, 194, 200), dial=(24, 34, 58), strap=(60, 62, 66))),
    Photo("watch-gold", SQUARE, "white", lambda s: watch(s, (212, 174, 92), dial=(246, 242, 230), strap=(120, 72, 40))),
    Photo(
        "books-stack", LANDSCAPE, "white", lambda s: books(s, [(32, 58, 96), (150, 44, 40), (44, 98, 72)]), floor=0.82
    ),
    Photo(
        "books-pastel",
        LANDSCAPE,
        "paper",
        lambda s: books(s, [(224, 180, 170), (170, 200, 210), (232, 214, 150)]),
        floor=0.82,
    ),
    Photo("plant-snake", PORTRAIT, "white", lambda s: potted_plant(s, (232, 228, 220), kind="snake"), floor=0.9),
    Photo(
        "plant-succulent-wood", SQUARE, "wood", lambda s: potted_plant(s, (186, 104, 70), kind="succulent"), floor=0.84
    ),
    Photo("candle-jar", SQUARE, "grey", lambda s: candle(s, (120, 70, 40), wax=(240, 232, 214), label=(244, 240, 230))),
    Photo("perfume-rose", PORTRAIT, "white", lambda s: perfume(s, (230, 160, 170), cap=(200, 170, 110)), floor=0.82),
    Photo("can-citrus-pattern", PORTRAIT, "pattern", lambda s: can(s, (240, 196, 40), band=(40, 120, 60)), floor=0.86),
    Photo("speaker-grey", PORTRAIT, "grey", lambda s: speaker(s, (120, 124, 130)), floor=0.86),
    Photo("teapot-white", SQUARE, "paper", lambda s: teapot(s, (246, 246, 242))),
    Photo("bowl-sage", SQUARE, "white", lambda s: bowl(s, (156, 176, 146), inside=(236, 232, 222)), floor=0.76),
    Photo("sunglasses", LANDSCAPE, "peach", lambda s: sunglasses(s, (40, 32, 28), lens=(70, 60, 50))),
)

SCENES: dict[str, Callable[[tuple[int, int], random.Random], Image.Image]] = {
    "marble-counter": scene_marble,
    "wooden-shelf": scene_shelf,
    "beach": scene_beach,
}

_PROMPT_MORNING = "on a light oak kitchen counter, soft morning window light"

#: The manifest: (sku, image, treatment, color, prompt, reference, vendor, output_format).
#: The last rows are wrong on purpose; README.md beside the manifest says how.
MANIFEST_ROWS: tuple[tuple[str, ...], ...] = (
    ("MUG-RED-01", "images/mug-red.jpg", "remove", "", "", "", "", "png"),
    ("MUG-TEAL-01", "images/mug-teal.jpg", "color", "#F4F1EA", "", "", "runflow", ""),
    ("MUG-CREAM-01", "images/mug-cream-pattern.jpg", "remove", "", "", "", "local", "png"),
    (
        "BTL-STEEL-01",
        "images/bottle-steel.jpg",
        "scene",
        "",
        "on a dark slate counter beside a lemon, studio light",
        "",
        "fal",
        "",
    ),
    ("BTL-OLIVE-01", "images/bottle-olive.jpg", "scene", "", "", "scenes/marble-counter.jpg", "runflow", "jpeg"),
    ("BTL-AMBER-01", "images/bottle-amber.jpg", "color", "255,255,255", "", "", "", ""),
    ("SNK-WHT-01", "images/sneaker-white.jpg", "remove", "", "", "", "imagepipeline", "png"),
    ("SNK-RED-01", "images/sneaker-red.jpg", "color", "FFD6C9", "", "", "", "webp"),
    ("SNK-BLK-01", "images/sneaker-black-wood.jpg", "remove", "", "", "", "local", "png"),
    ("BOX-KRAFT-01", "images/box-kraft.jpg", "remove", "", "", "", "", "webp"),
    (
        "BOX-GIFT-01",
        "images/box-gift.jpg",
        "scene",
        "",
        "on a wooden shelf with fairy lights, cosy evening",
        "scenes/wooden-shelf.jpg",
        "",
        "",
    ),
    ("LMP-TABLE-01", "images/lamp-table.jpg", "scene", "", "", "scenes/wooden-shelf.jpg", "", ""),
    ("LMP-DESK-01", "images/lamp-desk.jpg", "color", "#1F2A44", "", "", "", ""),
    (
        "VAS-BLUE-01",
        "images/vase-blue.jpg",
        "scene",
        "",
        "on a sunlit windowsill, white linen curtain",
        "",
        "fashn",
        "",
    ),
    ("VAS-TERRA-01", "images/vase-terracotta-wood.jpg", "remove", "", "", "", "local", ""),
    ("HPH-BLK-01", "images/headphones-black.jpg", "remove", "", "", "", "imagepipeline", ""),
    ("HPH-MINT-01", "images/headphones-mint.jpg", "color", "#ffffff", "", "", "", "jpeg"),
    ("WCH-STEEL-01", "images/watch-steel.jpg", "scene", "", "on dark slate with soft window light", "", "", ""),
    ("WCH-GOLD-01", "images/watch-gold.jpg", "color", "240, 235, 225", "", "", "runflow", ""),
    ("BOK-STACK-01", "images/books-stack.jpg", "scene", "", "", "scenes/wooden-shelf.jpg", "", ""),
    ("BOK-PASTEL-01", "images/books-pastel.jpg", "remove", "", "", "", "", "png"),
    (
        "PLT-SNAKE-01",
        "images/plant-snake.jpg",
        "scene",
        "",
        "in a bright living room beside a linen sofa",
        "",
        "imagepipeline",
        "",
    ),
    ("PLT-SUCC-01", "images/plant-succulent-wood.jpg", "remove", "", "", "", "local", "png"),
    ("CND-JAR-01", "images/candle-jar.jpg", "scene", "", "", "scenes/marble-counter.jpg", "", ""),
    (
        "PRF-ROSE-01",
        "images/perfume-rose.jpg",
        "scene",
        "",
        "on white marble with scattered rose petals",
        "scenes/marble-counter.jpg",
        "",
        "webp",
    ),
    ("CAN-CITRUS-01", "images/can-citrus-pattern.jpg", "remove", "", "", "", "local", "png"),
    ("SPK-GRY-01", "images/speaker-grey.jpg", "color", "#E8EEF2", "", "", "", ""),
    ("TEA-WHT-01", "images/teapot-white.jpg", "scene", "", _PROMPT_MORNING, "", "", ""),
    ("BWL-SAGE-01", "images/bowl-sage.jpg", "remove", "", "", "", "", "png"),
    ("SUN-01", "images/sunglasses.jpg", "scene", "", "", "scenes/beach.jpg", "runflow", ""),
    # Deliberately bad rows (see README.md): each must be reported and must not stop the others.
    ("MUG-BLU-01", "images/mug-teal.jpg", "blur", "", "", "", "", ""),
    ("TEE-009", "images/mug-red.jpg", "color", "#GG0000", "", "", "", ""),
    ("MUG-BLK-01", "images/mug-black.jpg", "remove", "", "", "", "", ""),
    ("MUG-RED-01", "images/mug-red.jpg", "color", "#000000", "", "", "", ""),
    ("VAS-GRN-01", "images/vase-blue.jpg", "scene", "", "", "", "", ""),
)
MANIFEST_HEADER = ("sku", "image", "treatment", "color", "prompt", "reference", "vendor", "output_format")


def render_photo(photo: Photo, seed: int) -> Image.Image:
    rng = random.Random(f"{seed}:{photo.name}")
    w, h = photo.size
    shot = Shot(w * SS, h * SS, rng, floor_y=h * SS * photo.floor)
    photo.paint(shot)
    return finish(shot, photo.backdrop)


def render_scene(name: str, seed: int, size: tuple[int, int] = (640, 427)) -> Image.Image:
    rng = random.Random(f"{seed}:scene:{name}")
    big = SCENES[name]((size[0] * SS, size[1] * SS), rng)
    image = big.resize(size, Image.Resampling.LANCZOS)
    return add_grain(image, noise(size, rng, 4))


def write_manifest(path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(MANIFEST_HEADER)
        writer.writerows(MANIFEST_ROWS)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="same seed, same files (default: %(default)s)")
    parser.add_argument("--only", default="", help="comma-separated photo/scene names (scene names: scene-<name>)")
    args = parser.parse_args(argv)
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    (args.out / "images").mkdir(parents=True, exist_ok=True)
    (args.out / "scenes").mkdir(parents=True, exist_ok=True)
    total = 0
    for photo in PHOTOS:
        if only and photo.name not in only:
            continue
        size = save_jpeg(render_photo(photo, args.seed), args.out / "images" / f"{photo.name}.jpg")
        total += size
        print(f"images/{photo.name}.jpg  {size / 1000:5.1f} kB")
    for name in SCENES:
        if only and f"scene-{name}" not in only:
            continue
        size = save_jpeg(render_scene(name, args.seed), args.out / "scenes" / f"{name}.jpg")
        total += size
        print(f"scenes/{name}.jpg  {size / 1000:5.1f} kB")
    if not only:
        write_manifest(args.out / "manifest.csv")
        print("manifest.csv")
    print(f"{total / 1000:.0f} kB of images in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
