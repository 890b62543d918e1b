"""The triggerer footprint bench runs end to end at a tiny size (its figures live in bench/RESULTS.md).

A real stack: PostgreSQL, ``airflow api-server``, one ``airflow triggerer`` per shape, the sandbox.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.postgres_support import require_postgres

REPO = Path(__file__).resolve().parent.parent.parent


def test_triggerer_footprint_runs_tiny(tmp_path: Path) -> None:
    server = require_postgres()
    out = tmp_path / "footprint.json"

    done = subprocess.run(
        [
            sys.executable,
            "bench/triggerer_footprint.py",
            "--jobs", "20",
            "--shapes", "job", "batch",
            "--window", "4",
            "--settle", "2",
            "--postgres-url", server,
            "--json", str(out),
            "--no-write",
        ],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    rows = {row["shape"]: row for row in json.loads(out.read_text())}
    assert set(rows) == {"job", "batch"}
    assert (rows["job"]["triggers"], rows["batch"]["triggers"]) == (20, 1)  # every seeded trigger started
    for row in rows.values():
        assert row["jobs"] == 20 and row["events_fired"] == 0  # the jobs stayed in flight
        assert row["cpu_core_s_per_s"] > 0 and row["rss_mb_mean"] > 0
        assert row["status_calls_per_s"] > 0  # the triggers did read the vendor
        assert any(name.startswith("airflow") for name in row["per_process"])
    assert "| job | 20 | 20 |" in done.stdout  # all 20 started: no "(started)" count


class _Process:
    """What ``describe`` reads of a psutil process."""

    def __init__(self, pid: int, cmdline: list[str]) -> None:
        self.pid = pid
        self._cmdline = cmdline

    def cmdline(self) -> list[str]:
        return self._cmdline

    def name(self) -> str:
        return self._cmdline[0]


def test_skip_serve_logs_flag_is_not_taken_for_the_log_server() -> None:
    sys.path.insert(0, str(REPO / "bench"))
    from triggerer_footprint import describe

    # The triggerer and its forked runner carry the flag; neither is the log server.
    assert describe(_Process(11, ["airflow", "triggerer", "--skip-serve-logs"])) == "airflow 11"
    assert describe(_Process(12, ["airflow", "serve-logs"])) == "log server"
    assert describe(_Process(13, ["airflow", "triggerer"])) == "airflow 13"
