"""Engine settings, read from the environment on every call (cheap, and tests can change them).

The variable names follow Airflow's ``AIRFLOW__{SECTION}__{KEY}`` convention (section
``bgreplace``), so they are set like any other Airflow option in a deployment, without the
engine importing Airflow.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

#: The vendored u2netp weights (see ``models/NOTICE``).
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "models" / "u2netp.onnx"

ENV_MODEL_PATH = "AIRFLOW__BGREPLACE__ENGINE_MODEL_PATH"
ENV_THREADS = "AIRFLOW__BGREPLACE__ENGINE_THREADS"
ENV_MAX_PIXELS = "AIRFLOW__BGREPLACE__ENGINE_MAX_PIXELS"
ENV_VERIFY = "AIRFLOW__BGREPLACE__ENGINE_VERIFY"

#: Working memory is ~60 bytes per pixel at peak; 40 MP keeps a call under ~2.5 GB.
DEFAULT_MAX_PIXELS = 40_000_000


@dataclass(frozen=True)
class EngineSettings:
    #: ``None`` disables the ML path on purpose (value ``none`` or ``off``).
    model_path: Path | None
    threads: int
    max_pixels: int
    #: ``auto``: on a seamless backdrop consult u2netp only when the colour key shows doubt;
    #: ``always``: consult it on every image (slower, a second opinion on clean keys too).
    verify: str = "auto"


def available_cores() -> int:
    """CPUs this process may actually use: affinity mask, capped by a cgroup v2 CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def get_settings() -> EngineSettings:
    raw_path = os.environ.get(ENV_MODEL_PATH, "").strip()
    model_path: Path | None
    if raw_path.lower() in ("none", "off", "disabled"):
        model_path = None
    else:
        model_path = Path(raw_path).expanduser() if raw_path else DEFAULT_MODEL_PATH
    threads = _positive_int(os.environ.get(ENV_THREADS), available_cores())
    max_pixels = _positive_int(os.environ.get(ENV_MAX_PIXELS), DEFAULT_MAX_PIXELS)
    verify = "always" if os.environ.get(ENV_VERIFY, "").strip().lower() == "always" else "auto"
    return EngineSettings(model_path=model_path, threads=threads, max_pixels=max_pixels, verify=verify)


def _positive_int(raw: str | None, default: int) -> int:
    try:
        value = int(raw) if raw else default
    except ValueError:
        return default
    return value if value > 0 else default
