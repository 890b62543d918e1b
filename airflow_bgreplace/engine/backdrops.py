"""Studio backdrops derived deterministically from a prompt: the offline stand-in for generation.

The vendors' replace-by-prompt runs a diffusion model; offline, the engine reads the prompt for
*colour words* (a palette) and *scene words* (a material or a setting) and paints a simple
procedural scene: a wall and a floor meeting at a horizon, or an outdoor gradient. The same
prompt and seed always give the same pixels; without a seed, the seed is a hash of the prompt.

Recognised scene words (others are ignored): marble, wood/oak/walnut/table, concrete/stone/
slate, brick, beach/sand/seaside, sunset/dusk/golden, sky/cloud, grass/garden/forest/nature/
leaves, water/pool/ocean/sea, snow/winter/ice, kitchen/counter, velvet/silk/satin/fabric/linen,
neon, bokeh/lights/christmas/party, studio/seamless/plain/paper. Colour words: the basic names
plus light/dark/pastel modifiers (see :data:`COLOURS`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import cv2
import numpy as np
from numpy.typing import NDArray

FloatImage = NDArray[np.float32]
RGB = tuple[int, int, int]

COLOURS: Final[dict[str, RGB]] = {
    "white": (244, 243, 240),
    "ivory": (246, 241, 226),
    "cream": (241, 232, 210),
    "beige": (226, 212, 186),
    "sand": (222, 200, 160),
    "black": (28, 28, 30),
    "charcoal": (54, 56, 60),
    "grey": (150, 152, 156),
    "gray": (150, 152, 156),
    "silver": (192, 194, 198),
    "red": (186, 40, 44),
    "burgundy": (112, 28, 44),
    "coral": (240, 128, 112),
    "peach": (246, 190, 160),
    "orange": (236, 130, 44),
    "terracotta": (190, 98, 70),
    "gold": (212, 170, 80),
    "golden": (222, 176, 84),
    "yellow": (240, 210, 70),
    "mustard": (206, 162, 46),
    "olive": (120, 124, 60),
    "green": (70, 140, 80),
    "sage": (156, 176, 146),
    "mint": (176, 226, 200),
    "emerald": (30, 130, 90),
    "teal": (30, 128, 128),
    "turquoise": (64, 200, 200),
    "cyan": (90, 200, 220),
    "blue": (60, 110, 200),
    "navy": (26, 40, 90),
    "sky": (150, 196, 236),
    "lavender": (190, 170, 220),
    "lilac": (200, 162, 200),
    "purple": (120, 70, 150),
    "violet": (140, 90, 190),
    "pink": (236, 168, 190),
    "magenta": (200, 50, 150),
    "brown": (120, 82, 56),
    "chocolate": (92, 58, 38),
}
_MODIFIERS: Final[dict[str, Callable[[NDArray[np.float32]], NDArray[np.float32]]]] = {
    "light": lambda c: c + (255.0 - c) * 0.45,
    "pale": lambda c: c + (255.0 - c) * 0.55,
    "pastel": lambda c: c + (255.0 - c) * 0.6,
    "soft": lambda c: c + (255.0 - c) * 0.3,
    "dark": lambda c: c * 0.55,
    "deep": lambda c: c * 0.7,
}
SCENES: Final[dict[str, tuple[str, ...]]] = {
    "marble": ("marble",),
    "wood": ("wood", "wooden", "oak", "walnut", "timber", "table", "tabletop", "plank"),
    "concrete": ("concrete", "stone", "slate", "cement", "granite", "terrazzo"),
    "brick": ("brick", "bricks"),
    "beach": ("beach", "sand", "sandy", "seaside", "shore", "coast", "tropical"),
    "sunset": ("sunset", "sunrise", "dusk", "dawn", "golden"),
    "sky": ("sky", "cloud", "clouds", "cloudy", "heaven"),
    "nature": ("grass", "garden", "forest", "nature", "leaves", "leaf", "jungle", "park", "moss", "plants"),
    "water": ("water", "pool", "ocean", "sea", "lake", "river", "splash"),
    "snow": ("snow", "snowy", "winter", "ice", "frost", "frozen"),
    "kitchen": ("kitchen", "counter", "countertop", "worktop"),
    "fabric": ("velvet", "silk", "satin", "fabric", "linen", "cloth", "drape", "curtain"),
    "neon": ("neon", "cyberpunk", "club", "night"),
    "bokeh": ("bokeh", "lights", "christmas", "party", "festive", "glitter", "sparkle"),
    "studio": ("studio", "seamless", "plain", "paper", "minimal", "minimalist", "backdrop"),
}
#: When several scene words appear, the first of this order wins (settings before materials).
_PRIORITY: Final = (
    "sunset",
    "beach",
    "snow",
    "nature",
    "water",
    "sky",
    "neon",
    "bokeh",
    "kitchen",
    "marble",
    "wood",
    "concrete",
    "brick",
    "fabric",
    "studio",
)
#: Backdrops are painted on at most this many pixels, then scaled to the output size.
RENDER_PIXELS: Final = 600_000
#: Horizon (wall/floor seam) and where products stand, as shares of the height.
HORIZON: Final = 0.62
GROUND: Final = 0.88


@dataclass(frozen=True)
class SceneSpec:
    """What a prompt asks for, as the engine understood it (reported in the result's notes)."""

    scene: str
    palette: tuple[RGB, ...]
    seed: int
    words: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        colours = ", ".join(f"#{r:02x}{g:02x}{b:02x}" for r, g, b in self.palette) or "none"
        matched = ", ".join(self.words) or "none"
        return f"prompt backdrop '{self.scene}' (words: {matched}; palette: {colours}; seed {self.seed})"


def prompt_seed(prompt: str) -> int:
    return int.from_bytes(hashlib.sha256(prompt.strip().lower().encode("utf-8")).digest()[:4], "big")


def parse_prompt(prompt: str, seed: int | None = None) -> SceneSpec:
    words = re.findall(r"[a-z]+", prompt.lower())
    palette: list[RGB] = []
    matched: list[str] = []
    for index, word in enumerate(words):
        if word in COLOURS:
            colour = np.array(COLOURS[word], dtype=np.float32)
            previous = words[index - 1] if index else ""
            if previous in _MODIFIERS:
                colour = _MODIFIERS[previous](colour)
                matched.append(f"{previous} {word}")
            else:
                matched.append(word)
            rgb = tuple(int(v) for v in np.clip(colour, 0, 255))
            palette.append((rgb[0], rgb[1], rgb[2]))
    found = {name for name, keys in SCENES.items() if any(w in keys for w in words)}
    scene = next((name for name in _PRIORITY if name in found), "studio")
    matched += [w for w in words if any(w in SCENES[name] for name in found)]
    return SceneSpec(scene, tuple(palette[:4]), prompt_seed(prompt) if seed is None else int(seed), tuple(matched))


# --- procedural pieces -------------------------------------------------------------------------


def _noise(rng: np.random.Generator, size: tuple[int, int], cells: int, octaves: int = 4) -> FloatImage:
    """Fractal value noise in [-1, 1]: random grids upsampled (bicubic) and summed by octave."""
    width, height = size
    out = np.zeros((height, width), dtype=np.float32)
    amplitude, total = 1.0, 0.0
    for octave in range(octaves):
        n = cells * (2**octave)
        grid = rng.uniform(-1.0, 1.0, (max(2, round(n * height / max(width, 1))) + 1, n + 1)).astype(np.float32)
        out += amplitude * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        total += amplitude
        amplitude *= 0.5
    return np.asarray(out / total, dtype=np.float32)


def _grid(size: tuple[int, int]) -> tuple[FloatImage, FloatImage]:
    width, height = size
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None] * np.ones((1, width), dtype=np.float32)
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :] * np.ones((height, 1), dtype=np.float32)
    return xs, ys


def _mix(a: NDArray[np.float32] | RGB, b: NDArray[np.float32] | RGB, t: FloatImage) -> FloatImage:
    ca = np.asarray(a, dtype=np.float32)
    cb = np.asarray(b, dtype=np.float32)
    return np.asarray(ca + (cb - ca) * t[..., None], dtype=np.float32)


def _tone(colour: RGB, factor: float) -> RGB:
    c = np.clip(np.asarray(colour, dtype=np.float32) * factor, 0, 255)
    return int(c[0]), int(c[1]), int(c[2])


def _lighten(colour: RGB, amount: float) -> RGB:
    c = np.asarray(colour, dtype=np.float32)
    c = c + (255.0 - c) * amount
    return int(c[0]), int(c[1]), int(c[2])


def _marble(size: tuple[int, int], rng: np.random.Generator, base: RGB) -> FloatImage:
    width = size[0]
    xs, ys = _grid(size)
    turbulence = _noise(rng, size, 3, 5)
    angle = rng.uniform(0.4, 1.2)
    wave = np.sin((xs * np.cos(angle) + ys * np.sin(angle)) * 7.0 + turbulence * 4.0)
    fine = np.sin((xs * np.sin(angle) - ys * np.cos(angle)) * 13.0 + _noise(rng, size, 5, 4) * 5.0)
    veins = 0.55 * np.exp(-((wave / 0.16) ** 2)) + 0.25 * np.exp(-((fine / 0.1) ** 2))
    veins = cv2.GaussianBlur(veins.astype(np.float32), (0, 0), max(0.6, width / 700))
    veins *= 0.6 + 0.4 * _noise(rng, size, 6, 3)
    cloud = 0.035 * _noise(rng, size, 4, 4)
    out = _mix(base, _tone(base, 0.7), np.clip(veins, 0, 1))
    return np.asarray(out * (1.0 + cloud[..., None]), dtype=np.float32)


def _wood(size: tuple[int, int], rng: np.random.Generator, base: RGB) -> FloatImage:
    width, height = size
    xs, ys = _grid(size)
    warp = _noise(rng, size, 2, 4)
    rings = np.sin((ys * 26.0 + warp * 2.5 + xs * 0.6) * np.pi)
    grain = _noise(rng, (width, max(2, height // 8)), 60, 2)
    grain = np.asarray(cv2.resize(grain, (width, height), interpolation=cv2.INTER_LINEAR), dtype=np.float32)
    light, dark = _lighten(base, 0.15), _tone(base, 0.72)
    t = np.clip(0.5 + 0.35 * rings + 0.25 * grain, 0, 1)
    out = _mix(light, dark, t)
    plank = max(8, height // 5)
    seams = (np.arange(height) % plank < max(1, plank // 40)).astype(np.float32)[:, None]
    return np.asarray(out * (1.0 - 0.25 * seams[..., None]), dtype=np.float32)


def _concrete(size: tuple[int, int], rng: np.random.Generator, base: RGB) -> FloatImage:
    width, height = size
    blotches = _noise(rng, size, 4, 5)
    speckle = rng.normal(0.0, 1.0, (height, width)).astype(np.float32)
    shade = 1.0 + 0.07 * blotches + 0.025 * speckle
    return np.asarray(np.asarray(base, dtype=np.float32) * shade[..., None], dtype=np.float32)


def _brick(size: tuple[int, int], rng: np.random.Generator, base: RGB) -> FloatImage:
    width, height = size
    course = max(6, height // 14)
    brick_w = course * 3
    ys, xs = np.mgrid[0:height, 0:width]
    row = ys // course
    shifted = xs + (row % 2) * (brick_w // 2)
    mortar = ((ys % course) < max(1, course // 7)) | ((shifted % brick_w) < max(1, course // 7))
    tint = rng.uniform(0.85, 1.1, size=(height // course + 2, width // brick_w + 3)).astype(np.float32)
    brick_tint = tint[row, shifted // brick_w]
    colour = np.asarray(base, dtype=np.float32) * brick_tint[..., None]
    colour = colour * (1.0 + 0.05 * _noise(rng, size, 16, 2))[..., None]
    return np.asarray(np.where(mortar[..., None], np.float32(205.0), colour), dtype=np.float32)


def _fabric(size: tuple[int, int], rng: np.random.Generator, base: RGB) -> FloatImage:
    xs, ys = _grid(size)
    folds = np.sin(xs * 7.0 + _noise(rng, size, 2, 3) * 3.0 + ys * 1.5)
    sheen = 0.82 + 0.18 * folds
    return np.asarray(np.asarray(base, dtype=np.float32) * sheen[..., None], dtype=np.float32)


def _bokeh(
    size: tuple[int, int], rng: np.random.Generator, palette: tuple[RGB, ...], ground: RGB, count: int = 28
) -> FloatImage:
    width, height = size
    out = np.empty((height, width, 3), dtype=np.float32)
    out[:] = np.asarray(ground, dtype=np.float32)
    glow = np.zeros((height, width, 3), dtype=np.float32)
    for _ in range(count):
        colour = np.asarray(palette[int(rng.integers(0, len(palette)))], dtype=np.float32)
        centre = (int(rng.uniform(0, width)), int(rng.uniform(0, height * 0.8)))
        radius = max(2, int(rng.uniform(0.02, 0.07) * width))
        disc = np.zeros((height, width), dtype=np.float32)
        cv2.circle(disc, centre, radius, float(rng.uniform(0.25, 0.6)), -1)
        glow += disc[..., None] * colour
    glow = np.asarray(cv2.GaussianBlur(glow, (0, 0), max(1.0, width / 250)), dtype=np.float32)
    return np.asarray(out + glow, dtype=np.float32)


def _glows(size: tuple[int, int], rng: np.random.Generator, palette: tuple[RGB, ...], ground: RGB) -> FloatImage:
    width, height = size
    out = np.empty((height, width, 3), dtype=np.float32)
    out[:] = np.asarray(ground, dtype=np.float32)
    for index in range(3):
        colour = np.asarray(palette[index % len(palette)], dtype=np.float32)
        blob = np.zeros((height, width), dtype=np.float32)
        centre = (int(rng.uniform(0.1, 0.9) * width), int(rng.uniform(0.1, 0.6) * height))
        cv2.ellipse(blob, centre, (int(0.25 * width), int(0.18 * height)), 0, 0, 360, 1.0, -1)
        blob = np.asarray(cv2.GaussianBlur(blob, (0, 0), max(2.0, 0.12 * width)), dtype=np.float32)
        out += blob[..., None] * colour * 0.8
    return out


# --- scenes ------------------------------------------------------------------------------------


def _wall_and_floor(size: tuple[int, int], wall: FloatImage, floor: FloatImage) -> FloatImage:
    """A wall meeting a floor at the horizon, with a soft seam and the floor darkening forwards."""
    _, ys = _grid(size)
    seam = 1.0 / (1.0 + np.exp(-(ys - HORIZON) / 0.012))
    depth = np.clip((ys - HORIZON) / (1.0 - HORIZON), 0.0, 1.0)
    floor_lit = floor * (1.0 - 0.12 * depth)[..., None]
    wall_lit = wall * (1.0 - 0.1 * (1.0 - ys / HORIZON).clip(0, 1))[..., None]
    return np.asarray(wall_lit * (1.0 - seam[..., None]) + floor_lit * seam[..., None], dtype=np.float32)


def _out_of_focus(image: FloatImage, amount: float) -> FloatImage:
    sigma = max(0.5, amount * image.shape[1])
    return np.asarray(cv2.GaussianBlur(image, (0, 0), sigma), dtype=np.float32)


def _vignette(image: FloatImage, strength: float = 0.18) -> FloatImage:
    xs, ys = _grid((image.shape[1], image.shape[0]))
    radius = ((xs - 0.5) * 2.0) ** 2 + ((ys - 0.45) * 2.0) ** 2
    return np.asarray(image * (1.0 - strength * np.clip(radius / 2.0, 0, 1))[..., None], dtype=np.float32)


def render_backdrop(spec: SceneSpec, size: tuple[int, int]) -> NDArray[np.uint8]:
    """Paint the scene ``spec`` at ``size`` = (W, H) as 8-bit RGB.

    Scenes are soft (out-of-focus walls, blurred veins and grain): they are painted on at most
    :data:`RENDER_PIXELS` and scaled up, which keeps a 4 MP backdrop at ~0.1 s.
    """
    width, height = size
    scale = min(1.0, float(np.sqrt(RENDER_PIXELS / float(width * height))))
    painted = _paint(spec, (max(8, round(width * scale)), max(8, round(height * scale))))
    rgb = np.asarray(cv2.convertScaleAbs(np.clip(painted, 0.0, 255.0)), dtype=np.uint8)
    if rgb.shape[:2] != (height, width):
        rgb = np.asarray(cv2.resize(rgb, (width, height), interpolation=cv2.INTER_CUBIC), dtype=np.uint8)
    return rgb


def _paint(spec: SceneSpec, size: tuple[int, int]) -> FloatImage:
    rng = np.random.default_rng(spec.seed)
    palette = spec.palette
    first = palette[0] if palette else None
    second = palette[1] if len(palette) > 1 else None
    width, height = size
    xs, ys = _grid(size)
    scene = spec.scene

    def flat(colour: RGB) -> FloatImage:
        out = np.empty((height, width, 3), dtype=np.float32)
        out[:] = np.asarray(colour, dtype=np.float32)
        return out

    if scene == "sunset":
        top, glow = second or (70, 60, 130), first or (246, 150, 70)
        sky = _mix(glow, top, np.clip((HORIZON - ys) / HORIZON, 0, 1) ** 0.8)
        sun = np.exp(-(((xs - 0.62) / 0.09) ** 2 + ((ys - HORIZON + 0.04) / 0.09) ** 2))
        sky = np.asarray(sky + sun[..., None] * np.array([255, 220, 160], dtype=np.float32) * 0.7, dtype=np.float32)
        ground = _mix(_tone(glow, 0.55), _tone(top, 0.35), np.clip((ys - HORIZON) / (1 - HORIZON), 0, 1))
        out = np.where((ys < HORIZON)[..., None], sky, ground)
        out = _out_of_focus(out, 0.004)
    elif scene == "beach":
        sky = _mix((200, 226, 244), (110, 168, 226), np.clip((0.45 - ys) / 0.45, 0, 1))
        sea = _mix((64, 160, 180), (40, 120, 160), np.clip((ys - 0.45) / 0.12, 0, 1))
        sand_colour = first or (226, 204, 164)
        sand = np.asarray(_concrete(size, rng, sand_colour), dtype=np.float32)
        out = np.where((ys < 0.45)[..., None], sky, np.where((ys < 0.57)[..., None], sea, sand))
        out = _out_of_focus(out, 0.003)
    elif scene == "sky":
        sky = _mix(_lighten(first or (120, 170, 230), 0.5), first or (120, 170, 230), np.clip(1 - ys, 0, 1))
        clouds = np.clip((_noise(rng, size, 3, 5) - 0.05) * 2.5, 0, 1)
        out = sky * (1 - clouds[..., None]) + 245.0 * clouds[..., None]
    elif scene == "nature":
        leaf = first or (70, 130, 70)
        wall = _bokeh(size, rng, (leaf, _lighten(leaf, 0.4), (230, 230, 170)), _tone(leaf, 0.55), 24)
        floor = _concrete(size, rng, second or (120, 150, 80))
        out = _wall_and_floor(size, _out_of_focus(wall, 0.01), floor)
    elif scene == "water":
        water = first or (60, 150, 190)
        ripples = np.sin(ys * 80.0 + _noise(rng, size, 6, 3) * 6.0) * 0.06
        out = _mix(_lighten(water, 0.35), water, ys) * (1.0 + ripples[..., None])
    elif scene == "snow":
        wall = _mix((214, 226, 240), (176, 196, 222), np.clip(1 - ys / HORIZON, 0, 1))
        floor = _concrete(size, rng, first or (244, 246, 250))
        out = _wall_and_floor(size, wall, floor)
    elif scene == "neon":
        out = _glows(size, rng, palette or ((240, 40, 160), (40, 160, 255), (140, 60, 240)), second or (18, 14, 30))
    elif scene == "bokeh":
        colours = palette or ((255, 210, 120), (255, 170, 90), (250, 240, 200))
        wall = _bokeh(size, rng, colours, (40, 30, 36), 40)
        out = _wall_and_floor(size, wall, flat((58, 46, 50)))
    elif scene == "kitchen":
        wall = flat(second or (236, 234, 228))
        tiles = ((xs * width) % max(8, width // 12) < 1.5) | ((ys * height) % max(8, width // 12) < 1.5)
        wall = wall * (1.0 - 0.08 * tiles.astype(np.float32))[..., None]
        out = _wall_and_floor(size, _out_of_focus(wall, 0.003), _marble(size, rng, first or (236, 234, 230)))
    elif scene in ("marble", "wood", "concrete", "brick", "fabric"):
        painters = {"marble": _marble, "wood": _wood, "concrete": _concrete, "brick": _brick, "fabric": _fabric}
        defaults: dict[str, RGB] = {
            "marble": (238, 236, 232),
            "wood": (164, 112, 70),
            "concrete": (168, 166, 162),
            "brick": (160, 72, 52),
            "fabric": (150, 40, 60),
        }
        material = painters[scene](size, rng, first or defaults[scene])
        if scene in ("brick", "fabric"):
            out = material  # a wall or a drape fills the frame
        else:
            wall_colour = second or _lighten(first or defaults[scene], 0.35)
            wall = _mix(_lighten(wall_colour, 0.1), wall_colour, ys)
            out = _wall_and_floor(size, wall, material)
    else:  # studio sweep in the first colour, or a soft neutral picked by the seed
        base = first or _pastel_from_seed(spec.seed)
        wall = _mix(_lighten(base, 0.12), base, np.clip(ys / HORIZON, 0, 1))
        sweep = 1.0 / (1.0 + np.exp(-(ys - HORIZON) / 0.08))
        floor = np.asarray(_tone(base, 0.93), dtype=np.float32)
        out = wall * (1.0 - sweep[..., None]) + floor * sweep[..., None]
    out = _vignette(np.asarray(out, dtype=np.float32))
    return np.asarray(np.clip(out, 0.0, 255.0), dtype=np.float32)


def _pastel_from_seed(seed: int) -> RGB:
    hue = (seed % 360) / 2.0  # OpenCV hue is 0-180
    hsv = np.array([[[hue, 40, 235]]], dtype=np.uint8)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
    return int(rgb[0]), int(rgb[1]), int(rgb[2])
