"""Fixtures for the local engine: synthetic product photos with exact alpha, and model switches.

Everything is generated here (``airflow_bgreplace.engine.synthetic``); the third-party
development set is never needed. u2netp costs ~0.4 s per call whatever the image size, so
results that several tests inspect are computed once per session.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from airflow_bgreplace import engine
from airflow_bgreplace.engine import model, synthetic
from airflow_bgreplace.engine.settings import ENV_MODEL_PATH

PHOTO_SIZE = (400, 300)


def encode(rgb: NDArray[np.uint8], fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def iou(pred: NDArray[np.float32], truth: NDArray[np.float32]) -> float:
    a, b = pred > 0.5, truth > 0.5
    return float((a & b).sum()) / float((a | b).sum())


def sad_k(pred: NDArray[np.float32], truth: NDArray[np.float32]) -> float:
    return float(np.abs(pred - truth).sum()) / 1000.0


@pytest.fixture(scope="session")
def photo() -> Callable[..., synthetic.SyntheticPhoto]:
    cache: dict[tuple[object, ...], synthetic.SyntheticPhoto] = {}

    def make(product: str = "bottle", backdrop: str = "white", **kwargs: object) -> synthetic.SyntheticPhoto:
        key = (product, backdrop, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = synthetic.make_photo(product, backdrop, PHOTO_SIZE, **kwargs)  # type: ignore[arg-type]
        return cache[key]

    return make


@pytest.fixture(scope="session")
def matte_of(photo: Callable[..., synthetic.SyntheticPhoto]) -> Callable[..., engine.Matte]:
    """``segment`` of a synthetic photo (with the bundled model), cached for the session."""
    cache: dict[tuple[object, ...], engine.Matte] = {}

    def run(product: str = "bottle", backdrop: str = "white", **kwargs: object) -> engine.Matte:
        key = (product, backdrop, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = engine.segment(encode(photo(product, backdrop, **kwargs).rgb))
        return cache[key]

    return run


@pytest.fixture
def missing_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Point the model setting at a file that does not exist: the real no-model code path."""
    missing = tmp_path / "no-such-u2netp.onnx"
    monkeypatch.setenv(ENV_MODEL_PATH, str(missing))
    yield missing
    model.reset_sessions()
