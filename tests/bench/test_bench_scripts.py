"""Bench scripts run end to end at a tiny size (their figures live in bench/RESULTS.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent


def test_webhook_burst_runs_tiny() -> None:
    done = subprocess.run(
        [sys.executable, "bench/webhook_burst.py", "--n", "50", "--concurrency", "10", "--no-write"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "sqlite: 50/50 accepted" in done.stdout and "lost 0" in done.stdout


def test_trigger_memory_runs_tiny() -> None:
    done = subprocess.run(
        [sys.executable, "bench/trigger_memory.py", "--triggers", "30", "--window", "2", "--no-write"],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "KB per trigger" in done.stdout and "0 triggers ended" in done.stdout
