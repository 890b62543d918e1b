"""Same input, same bytes: with the model, on the GrabCut path, and for prompt backdrops."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest

from airflow_bgreplace import engine
from airflow_bgreplace.engine import synthetic
from tests.engine.conftest import encode


def test_remove_background_is_byte_identical_across_calls(photo: Callable[..., synthetic.SyntheticPhoto]) -> None:
    data = encode(photo("bottle", "grey_sweep").rgb)
    first = engine.remove_background(data)
    second = engine.remove_background(data)
    assert first.data == second.data
    assert first.method == second.method == "border_key+u2netp"


@pytest.mark.usefixtures("missing_model")
def test_grabcut_path_ignores_the_global_rng_state() -> None:
    """OpenCV's GrabCut draws from the global RNG; the engine seeds it before every call."""
    data = encode(synthetic.make_photo("box", "busy", (200, 150), seed=4).rgb)
    first = engine.remove_background(data)
    assert first.method == "grabcut"
    cv2.setRNGSeed(12345)  # what some other code in the same process might leave behind
    noise = np.random.default_rng(1).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    labels = np.full((60, 80), cv2.GC_PR_FGD, np.uint8)
    labels[:5] = cv2.GC_BGD
    cv2.grabCut(noise, labels, None, np.zeros((1, 65)), np.zeros((1, 65)), 1, cv2.GC_INIT_WITH_MASK)
    assert engine.remove_background(data).data == first.data


@pytest.mark.usefixtures("missing_model")
def test_prompt_backdrops_are_deterministic_and_seedable(photo: Callable[..., synthetic.SyntheticPhoto]) -> None:
    data = encode(photo("ball", "white").rgb)
    marble = engine.replace_with_prompt(data, "white marble counter")
    assert marble.data == engine.replace_with_prompt(data, "white marble counter").data
    assert marble.data != engine.replace_with_prompt(data, "white marble counter", seed=7).data
    assert marble.data != engine.replace_with_prompt(data, "sunset beach").data
