"""bench/throughput_real.py runs end to end at a tiny size: the three patterns through a real
scheduler + triggerer on a fresh PostgreSQL database (its figures live in bench/RESULTS.md).

Heavy (a whole Airflow deployment): run it alone, e.g.
``flock /tmp/heavy.lock .venv/bin/pytest tests/bench/test_throughput_real_runs.py``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.postgres_support import require_postgres

REPO = Path(__file__).resolve().parent.parent.parent


def test_throughput_real_runs_tiny() -> None:
    require_postgres()
    done = subprocess.run(
        [
            sys.executable, "bench/throughput_real.py", "--n", "4", "--concurrency", "documented",
            "--latency-mean", "0.5", "--patterns", "a,b,c", "--parallelism", "6", "--timeout", "60", "--no-write",
        ],
        cwd=REPO, capture_output=True, text=True, timeout=170,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {
        match.group(1): match.group(0)
        for match in re.finditer(r"^\| \(([abc])\) .*\| success \|.*$", done.stdout, re.MULTILINE)
    }
    assert set(rows) == {"a", "b", "c"}, done.stdout[-3000:]
    for row in rows.values():
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        # N, submits, duplicate submits, outputs
        assert cells[1] == "4" and cells[12] == "4" and cells[13] == "0" and cells[14] == "4", row
        assert float(cells[16]) > 0, row  # the machine's CPU seconds per image were read
    assert "Worker time (c)/(a)" in done.stdout and "Check on (c)" in done.stdout
