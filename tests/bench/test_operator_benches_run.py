"""The worker-time bench script runs end to end at a tiny size (its figures live in bench/RESULTS.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent


def test_worker_time_single_runs_tiny() -> None:
    done = subprocess.run(
        [sys.executable, "bench/worker_time_single.py", "--latency", "1", "--images", "1", "--no-write"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| deferrable (trigger waits) |" in done.stdout


def test_batch_throughput_runs_tiny() -> None:
    done = subprocess.run(
        [sys.executable, "bench/batch_throughput.py", "--vendor", "fal", "--n", "4", "--latency", "0.2", "--no-write"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| fal | 4 |" in done.stdout
