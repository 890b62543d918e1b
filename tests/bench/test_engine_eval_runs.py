"""``bench/engine_eval.py --quick`` runs end to end (synthetic photos only, a few seconds)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "engine_eval.py"


def test_quick_evaluation_writes_its_results_section(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## Someone else's section\n\nkept as is\n")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--results", str(results)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    text = results.read_text()
    assert "## Someone else's section\n\nkept as is" in text
    assert text.count("<!-- engine_eval:start -->") == 1
    for group in ("studio-white", "studio-grey", "studio-blue", "busy"):
        assert f"| {group} |" in text
    assert "| remove | studio |" in text and "peak RSS" in text

    # A second run replaces the section instead of appending another one.
    again = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--no-speed", "--results", str(results)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert results.read_text().count("<!-- engine_eval:start -->") == 1
