"""The bundled u2netp saliency network, run with onnxruntime when it is installed.

The session is created lazily, once per process and per (model path, threads), and reused; the
file's sha256 is checked before it is handed to onnxruntime. Anything that makes the model
unusable (onnxruntime missing, file missing, wrong checksum, load failure) is reported as a
reason string so that :func:`~airflow_bgreplace.engine.segment.segment` can fall back to the
classical path and say why in the result's ``notes``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
from numpy.typing import NDArray

from airflow_bgreplace.engine.settings import get_settings

log = logging.getLogger(__name__)

U2NETP_SHA256: Final = "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8"
INPUT_SIZE: Final = 320
_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

_lock = threading.Lock()
_sessions: dict[tuple[str, int], Any] = {}
_failures: dict[tuple[str, int], str] = {}


@dataclass(frozen=True)
class Saliency:
    """u2netp's main output at 320x320: the raw sigmoid and its min-max normalised form."""

    raw: NDArray[np.float32]
    normalised: NDArray[np.float32]
    raw_max: float


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def get_session() -> tuple[Any | None, str | None]:
    """The shared onnxruntime session, or ``(None, reason)`` when the ML path is unavailable."""
    settings = get_settings()
    if settings.model_path is None:
        return None, "ML path disabled by AIRFLOW__BGREPLACE__ENGINE_MODEL_PATH"
    key = (str(settings.model_path), settings.threads)
    with _lock:
        if key in _sessions:
            return _sessions[key], None
        if key in _failures:
            return None, _failures[key]
        session, reason = _create_session(settings.model_path, settings.threads)
        if session is None:
            assert reason is not None
            _failures[key] = reason
            log.warning("local engine: u2netp unavailable, classical path only: %s", reason)
        else:
            _sessions[key] = session
        return session, reason


def reset_sessions() -> None:
    """Forget cached sessions and failures (after installing onnxruntime or moving the model)."""
    with _lock:
        _sessions.clear()
        _failures.clear()


def _create_session(path: Path, threads: int) -> tuple[Any | None, str | None]:
    try:
        import onnxruntime as ort
    except ImportError:
        return None, "onnxruntime is not installed (pip install 'airflow-provider-bgreplace[engine-ml]')"
    if not path.is_file():
        return None, f"model file not found: {path}"
    actual = _sha256(path)
    if actual != U2NETP_SHA256:
        return None, f"model file {path} has sha256 {actual[:16]}..., expected {U2NETP_SHA256[:16]}..."
    options = ort.SessionOptions()
    # Without the arena every run maps ~0.3 GB of intermediate tensors afresh and page-faults
    # through them: ~0.1 s of system time per image (a fifth of a 1 MP removal on one core).
    # With the arena they are reused; turning the memory pattern off keeps the arena from also
    # holding one up-front block per run, so peak RSS stays that of no arena (~350 MB).
    options.enable_cpu_mem_arena = True
    options.enable_mem_pattern = False
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # Idle worker threads spin-wait by default and steal the CPU from the numpy/OpenCV steps
    # that follow each inference.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        return None, f"onnxruntime cannot load {path}: {exc}"
    return session, None


def predict(session: Any, rgb: NDArray[np.uint8]) -> Saliency:
    """Run u2netp on an RGB image (any size): the whole frame squashed to 320x320, as rembg does."""
    small = cv2.resize(rgb, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA).astype(np.float32)
    small /= max(float(small.max()), 1.0)
    tensor = ((small - _MEAN) / _STD).transpose(2, 0, 1)[None]
    inputs = {session.get_inputs()[0].name: np.ascontiguousarray(tensor, dtype=np.float32)}
    output_name = session.get_outputs()[0].name  # d0, the fused map
    raw = np.asarray(session.run([output_name], inputs)[0][0, 0], dtype=np.float32)
    low, high = float(raw.min()), float(raw.max())
    normalised = (raw - low) / max(high - low, 1e-6)
    return Saliency(raw=raw, normalised=normalised.astype(np.float32), raw_max=high)
