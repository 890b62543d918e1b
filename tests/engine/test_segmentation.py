"""Matte quality on synthetic catalog photos, and the paths the engine reports."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageDraw

from airflow_bgreplace import engine
from airflow_bgreplace.engine import synthetic
from airflow_bgreplace.engine.settings import ENV_VERIFY
from tests.engine.conftest import encode, iou, sad_k

STUDIO = ("white", "grey_sweep", "blue_paper")


@pytest.mark.parametrize("backdrop", STUDIO)
@pytest.mark.parametrize("product", synthetic.PRODUCTS)
def test_studio_photos_meet_the_quality_bar(
    product: str,
    backdrop: str,
    photo: Callable[..., synthetic.SyntheticPhoto],
    matte_of: Callable[..., engine.Matte],
) -> None:
    truth = photo(product, backdrop)
    matte = matte_of(product, backdrop)
    assert matte.method in ("border_key", "border_key+u2netp")
    assert iou(matte.alpha, truth.alpha) >= 0.985
    # 120k pixels: 0.3k SAD is a mean alpha error of 0.25 %.
    assert sad_k(matte.alpha, truth.alpha) <= 0.3
    assert not matte.low_confidence


def test_u2netp_is_consulted_only_when_the_key_is_in_doubt(matte_of: Callable[..., engine.Matte]) -> None:
    clean = matte_of("ball", "blue_paper")  # a red ball on blue paper: nothing to doubt
    assert clean.method == "border_key"
    assert any("u2netp not consulted" in note for note in clean.notes)
    white_on_white = matte_of("bottle", "white")  # a cream label and a white highlight on white paper
    assert white_on_white.method == "border_key+u2netp"
    assert any("colours close to the backdrop" in note for note in white_on_white.notes)
    assert matte_of("mug", "blue_paper").method == "border_key+u2netp"  # the handle is a separate region


def test_verification_can_be_forced(
    monkeypatch: pytest.MonkeyPatch, photo: Callable[..., synthetic.SyntheticPhoto]
) -> None:
    monkeypatch.setenv(ENV_VERIFY, "always")
    matte = engine.segment(encode(photo("ball", "blue_paper").rgb))
    assert matte.method == "border_key+u2netp"
    assert any("verification always on" in note for note in matte.notes)


def test_alpha_is_soft_on_anti_aliased_edges(
    photo: Callable[..., synthetic.SyntheticPhoto], matte_of: Callable[..., engine.Matte]
) -> None:
    truth = photo("ball", "blue_paper")
    alpha = matte_of("ball", "blue_paper").alpha
    edge = (truth.alpha > 0.1) & (truth.alpha < 0.9)
    assert ((alpha[edge] > 0.05) & (alpha[edge] < 0.95)).mean() > 0.6
    assert np.abs(alpha[edge] - truth.alpha[edge]).mean() < 0.12


def test_mug_handle_hole_stays_background(matte_of: Callable[..., engine.Matte]) -> None:
    alpha = matte_of("mug", "white").alpha
    height, width = alpha.shape
    # Centre of the handle's ring (see synthetic._shape_mask): backdrop seen through it.
    hole = alpha[round(0.53 * height) : round(0.59 * height), round(0.655 * width) : round(0.685 * width)]
    assert hole.size and hole.max() < 0.1


def test_white_label_and_highlight_on_white_paper_are_kept(
    photo: Callable[..., synthetic.SyntheticPhoto], matte_of: Callable[..., engine.Matte]
) -> None:
    alpha = matte_of("bottle", "white").alpha
    height, width = alpha.shape
    label = alpha[round(0.52 * height) : round(0.64 * height), round(0.44 * width) : round(0.56 * width)]
    assert label.min() > 0.9
    truth = photo("bottle", "white").alpha
    inside = truth > 0.99
    assert (alpha[inside] > 0.5).mean() > 0.995


def test_cast_shadow_is_not_part_of_the_subject(
    photo: Callable[..., synthetic.SyntheticPhoto], matte_of: Callable[..., engine.Matte]
) -> None:
    truth = photo("box", "grey_sweep").alpha
    alpha = matte_of("box", "grey_sweep").alpha
    below = truth == 0
    assert alpha[below].max() < 0.5
    assert alpha[below].sum() < 100


def test_edge_colours_are_decontaminated(
    photo: Callable[..., synthetic.SyntheticPhoto], matte_of: Callable[..., engine.Matte]
) -> None:
    """On blue paper the naive edge colour carries blue spill; the unmixed one does not."""
    truth = photo("ball", "blue_paper")
    matte = matte_of("ball", "blue_paper")
    edge = (truth.alpha > 0.15) & (truth.alpha < 0.85)
    naive_error = np.abs(truth.rgb[edge].astype(np.float32) - truth.foreground[edge]).mean()
    unmixed_error = np.abs(matte.foreground[edge].astype(np.float32) - truth.foreground[edge]).mean()
    assert unmixed_error < 0.5 * naive_error


def test_real_scene_path_on_a_busy_background(
    photo: Callable[..., synthetic.SyntheticPhoto], matte_of: Callable[..., engine.Matte]
) -> None:
    matte = matte_of("ball", "busy")
    assert matte.method == "u2netp"
    assert iou(matte.alpha, photo("ball", "busy").alpha) >= 0.95
    assert any("real-scene" in note for note in matte.notes)


def test_camouflaged_product_on_a_busy_pattern_is_flagged(matte_of: Callable[..., engine.Matte]) -> None:
    matte = matte_of("box", "busy", camouflage=True)
    assert matte.low_confidence
    assert matte.confidence < 0.5
    assert any("busy" in note or "colours" in note for note in matte.notes)


def test_existing_transparency_is_used_as_the_matte() -> None:
    image = Image.new("RGBA", (64, 48), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((16, 8, 48, 40), fill=(200, 30, 30, 255))
    rgba = np.asarray(image)
    matte = engine.segment(encode(rgba))
    assert matte.method == "input_alpha"
    assert matte.confidence == 1.0
    assert np.array_equal(matte.alpha_u8(), rgba[..., 3])
