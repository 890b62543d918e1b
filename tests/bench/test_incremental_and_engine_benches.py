"""``bench/incremental_run.py`` and ``bench/engine_speed.py`` end to end at a tiny size.

Their figures live in bench/RESULTS.md; here only that they run and that what they count is
right: no vendor call on an unchanged night, exactly the changed rows submitted, a named engine
path and a positive speed for every case.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _table(stdout: str) -> list[list[str]]:
    rows = [line for line in stdout.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    return [[cell.strip().strip("*") for cell in row.strip("|").split("|")] for row in rows[1:]]


def test_incremental_run_counts_no_call_unchanged_and_exactly_the_changed_rows(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "bench/incremental_run.py", "--rows", "40", "--changed", "6", "--stores", "sqlite",
         "--cache-dir", str(tmp_path / "catalog"), "--no-write"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {row[1]: row for row in _table(done.stdout)}
    # columns: store, night, planned, submits made, vendor calls, plan s, publish s, minus vendor s, process s, resumes
    assert rows["seed (first night, all hashed)"][2] == "40"
    assert rows["unchanged"][2] == "0" and rows["unchanged"][4] == "0"
    assert rows["6 changed"][2] == "6" and rows["6 changed"][3] == "6"
    assert rows["the night after"][2] == "0" and rows["the night after"][4] == "0"
    assert float(rows["unchanged"][7]) > 0
    assert "load_items` on a 40-item plan" in done.stdout and done.stdout.rstrip().endswith("OK")
    # The catalog is made once and reused; the changed photos are put back.
    assert len(list((tmp_path / "catalog" / "rows-40" / "images").rglob("*.jpg"))) == 40


def test_engine_speed_names_the_path_and_pins_the_worker(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "bench/engine_speed.py", "--ops", "remove,recolor,replace,prompt", "--sizes", "0.05",
         "--cores", "1", "--photos", "1", "--repeats", "1", "--inputs-kinds", "studio,scene-no-model", "--no-write"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = _table(done.stdout)
    # columns: op, input, MP, cores, MP per CPU-s, MP/s wall, per core, cpu/wall, cold s, peak RSS, paths
    assert [(row[0], row[1]) for row in rows] == [
        ("remove", "studio"), ("recolor", "studio"), ("replace", "studio"), ("prompt", "studio"),
        ("remove", "scene-no-model"),
    ]  # fmt: skip
    for row in rows:
        assert row[3] == "1" and float(row[4]) > 0 and float(row[9].split()[0]) > 50
        # One thread on one core: never more than one CPU-second per wall second (rounding aside).
        assert float(row[7]) <= 1.1
    assert "mug-red: border_key" in rows[0][10]
    assert "u2netp" not in rows[4][10]  # the model disabled: the classical path ran
