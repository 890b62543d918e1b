"""Recolour (shading, drop shadow), replace onto a reference, and prompt backdrops."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from airflow_bgreplace import engine
from airflow_bgreplace.engine import backdrops, composite, synthetic
from tests.engine.conftest import PHOTO_SIZE, decode, encode


def _disc_alpha(size: tuple[int, int] = (200, 150)) -> np.ndarray:
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width]
    return ((xs - width / 2) ** 2 + (ys - height / 2) ** 2 < (0.3 * height) ** 2).astype(np.float32)


def test_flat_colour_without_shading_is_exact() -> None:
    flat = composite.shaded_colour((12, 200, 99), (64, 48), 0.0, _disc_alpha((64, 48)))
    assert flat.dtype == np.uint8 and np.all(flat == np.array([12, 200, 99], dtype=np.uint8))


def test_runflow_shading_darkens_the_far_corner_by_the_shading_share() -> None:
    alpha = _disc_alpha()
    shaded = composite.shaded_colour((200, 200, 200), (200, 150), 0.30, alpha)
    corners = [shaded[0, 0], shaded[0, -1], shaded[-1, 0], shaded[-1, -1]]
    assert min(float(c.mean()) for c in corners) == pytest.approx(140.0, abs=2.0)  # 70 % of 200
    assert shaded[60, 100].mean() > 195  # lit behind the subject


def test_drop_shadow_follows_imagepipeline_parameters() -> None:
    alpha = _disc_alpha()
    shadow = composite.drop_shadow(alpha, opacity=0.38, blur=0.0, dx=0.1, dy=0.2)
    assert shadow.max() == pytest.approx(0.38, abs=1e-3)
    rows, cols = np.nonzero(shadow > 0.19)
    # The disc's centre (100, 75) moves by (0.1 x 200, 0.2 x 150) = (20, 30).
    assert cols.mean() == pytest.approx(120, abs=1.0) and rows.mean() == pytest.approx(105, abs=1.0)


def test_shadow_darkens_the_background_layer_only() -> None:
    alpha = _disc_alpha()
    foreground = np.full((*alpha.shape, 3), 90, np.uint8)
    backdrop = np.full((*alpha.shape, 3), 240, np.uint8)
    shadow = composite.drop_shadow(alpha, opacity=0.5, blur=0.02, dx=0.0, dy=0.05)
    out = composite.composite(foreground, alpha, composite.apply_shadow(backdrop, shadow))
    assert np.all(out[alpha == 1] == 90)  # the subject is untouched
    below = composite.subject_box(alpha)[3] + 3  # type: ignore[index]
    assert out[below, 100].mean() < 220


@pytest.mark.usefixtures("missing_model")
def test_recolor_end_to_end_with_drop_shadow(photo: Callable[..., synthetic.SyntheticPhoto]) -> None:
    data = encode(photo("box", "white").rgb)
    plain = np.asarray(decode(engine.recolor(data, "#F0F0F0", shading=0.0).data), np.int16)
    shadowed = engine.recolor(data, "F0F0F0", shading=0.0, drop_shadow=True)
    shaded = np.asarray(decode(shadowed.data), np.int16)
    assert tuple(plain[3, 3]) == (240, 240, 240)
    assert (shaded < plain - 3).any() and not (shaded > plain + 1).any()
    assert any("drop shadow" in note for note in shadowed.notes)


def test_placement_stands_a_small_subject_on_the_floor_line() -> None:
    alpha = np.zeros((300, 400), np.float32)
    alpha[100:160, 180:220] = 1.0  # 20 % of the height, floating
    plan = composite.plan_placement(alpha, (400, 300), ground=0.9)
    placed = composite.place(alpha, plan, (400, 300))
    x0, y0, x1, y1 = composite.subject_box(placed)  # type: ignore[misc]
    assert y1 == pytest.approx(270, abs=2) and (y1 - y0) / 300 == pytest.approx(0.55, abs=0.02)
    assert (x0 + x1) / 2 == pytest.approx(200, abs=2)


def test_placement_keeps_the_framing_of_a_cropped_subject() -> None:
    alpha = np.zeros((300, 400), np.float32)
    alpha[120:300, 150:250] = 1.0  # cut by the bottom edge
    plan = composite.plan_placement(alpha, (400, 300))
    assert plan.scale == 1.0 and plan.offset == (0, 0) and "framing kept" in plan.reason


@pytest.mark.usefixtures("missing_model")
def test_replace_with_reference_keeps_the_photo_size_and_the_subject(
    photo: Callable[..., synthetic.SyntheticPhoto],
) -> None:
    truth = photo("ball", "white")
    scene = encode(synthetic.make_scene((640, 360)))
    result = engine.replace_with_reference(encode(truth.rgb), scene, prompt="on the left")
    out = np.asarray(decode(result.data), np.float32)
    assert out.shape[:2] == truth.alpha.shape
    assert any("covers the frame" in note for note in result.notes)
    # The ball moved left (prompt) and kept its red, slightly warmed by the scene.
    reddish = (out[..., 0] > out[..., 1] + 60) & (out[..., 0] > out[..., 2] + 60)
    assert reddish.sum() > 0.5 * (truth.alpha > 0.5).sum()
    assert np.nonzero(reddish)[1].mean() < 0.45 * PHOTO_SIZE[0]


@pytest.mark.usefixtures("missing_model")
def test_replace_with_prompt_reports_what_it_understood(photo: Callable[..., synthetic.SyntheticPhoto]) -> None:
    result = engine.replace_with_prompt(
        encode(photo("bottle", "white").rgb), "a pale pink marble counter", size=(320, 400)
    )
    assert (result.width, result.height) == (320, 400)
    assert any("'kitchen'" in note and "pale pink" in note for note in result.notes)
    assert any("offline stand-in" in note for note in result.notes)


def test_prompt_parsing() -> None:
    spec = backdrops.parse_prompt("Perfume bottle on a WOODEN table at sunset, light blue sky", seed=None)
    assert spec.scene == "sunset"  # settings win over materials
    assert spec.palette[0] == tuple(
        int(v) for v in np.clip(np.float32(backdrops.COLOURS["blue"]) * 0.55 + 255 * 0.45, 0, 255)
    )
    assert spec.seed == backdrops.prompt_seed("Perfume bottle on a WOODEN table at sunset, light blue sky")
    assert backdrops.parse_prompt("nothing recognisable").scene == "studio"


@pytest.mark.parametrize("scene", [*backdrops.SCENES, "unknown words"])
def test_every_scene_renders(scene: str) -> None:
    word = backdrops.SCENES[scene][0] if scene in backdrops.SCENES else scene
    spec = backdrops.parse_prompt(f"red {word}", seed=3)
    image = backdrops.render_backdrop(spec, (96, 64))
    assert image.shape == (64, 96, 3) and image.dtype == np.uint8 and image.std() > 1.0


def test_large_backdrops_are_painted_small_and_scaled_up() -> None:
    spec = backdrops.parse_prompt("white marble counter", seed=1)
    large = backdrops.render_backdrop(spec, (1600, 1200))
    assert large.shape == (1200, 1600, 3) and large.std() > 1.0
