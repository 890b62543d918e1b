"""The classical path when the model is unavailable, and the GrabCut gate path."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_bgreplace import engine
from airflow_bgreplace.engine import model, synthetic
from airflow_bgreplace.engine.settings import ENV_MODEL_PATH
from tests.engine.conftest import encode, iou

pytestmark = pytest.mark.usefixtures("missing_model")


def test_studio_photo_without_the_model_uses_the_border_key(
    photo: Callable[..., synthetic.SyntheticPhoto], missing_model: Path
) -> None:
    truth = photo("mug", "grey_sweep")
    result = engine.remove_background(encode(truth.rgb))
    assert result.method == "border_key"
    assert any("model file not found" in note and str(missing_model) in note for note in result.notes)
    matte = engine.segment(encode(truth.rgb))
    assert iou(matte.alpha, truth.alpha) >= 0.97
    assert not matte.low_confidence


def test_real_scene_without_the_model_uses_grabcut_and_says_it_is_unsure() -> None:
    truth = synthetic.make_photo("ball", "busy", (240, 180), seed=2)
    matte = engine.segment(encode(truth.rgb))
    assert matte.method == "grabcut"
    assert matte.low_confidence
    assert any("u2netp unavailable" in note for note in matte.notes)
    assert iou(matte.alpha, truth.alpha) > 0.5  # GrabCut still finds roughly the right thing


def test_model_disabled_on_purpose(
    monkeypatch: pytest.MonkeyPatch, photo: Callable[..., synthetic.SyntheticPhoto]
) -> None:
    monkeypatch.setenv(ENV_MODEL_PATH, "none")
    matte = engine.segment(encode(photo("box", "white").rgb))
    assert matte.method == "border_key"
    assert any("disabled" in note for note in matte.notes)


def test_a_model_file_with_the_wrong_checksum_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, photo: Callable[..., synthetic.SyntheticPhoto]
) -> None:
    impostor = tmp_path / "u2netp.onnx"
    impostor.write_bytes(b"not the u2netp weights")
    monkeypatch.setenv(ENV_MODEL_PATH, str(impostor))
    session, reason = model.get_session()
    assert session is None and reason is not None and "sha256" in reason
    matte = engine.segment(encode(photo("box", "white").rgb))
    assert matte.method == "border_key"
    assert any("sha256" in note for note in matte.notes)


def test_without_onnxruntime_the_classical_path_runs() -> None:
    """A fresh interpreter where ``import onnxruntime`` fails, as on an install without the extra."""
    code = (
        "import sys; sys.modules['onnxruntime'] = None\n"
        "from airflow_bgreplace import engine\n"
        "from airflow_bgreplace.engine import synthetic\n"
        "from PIL import Image\n"
        "photo = synthetic.make_photo('box', 'blue_paper', (160, 120))\n"
        "result = engine.remove_background(Image.fromarray(photo.rgb))\n"
        "print(result.method, '|'.join(result.notes))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    method, notes = done.stdout.strip().split(" ", 1)
    assert method == "border_key"
    assert "onnxruntime is not installed" in notes and "engine-ml" in notes
