"""``bench/engine_eval.py --quick`` runs end to end (synthetic photos only, a few seconds)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "engine_eval.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("engine_eval", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("engine_eval", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


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


def test_a_new_run_replaces_the_section_instead_of_appending(tmp_path: Path) -> None:
    script = _script()
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## Other\n\nx\n")
    for run in ("first", "second"):
        script.write_section(results, f"{script.SECTION_START}\n{run}\n{script.SECTION_END}\n")
    text = results.read_text()
    assert text.count(script.SECTION_START) == 1 and "second" in text and "first" not in text
    assert text.startswith("# Benchmark results\n\n## Other\n\nx\n")
