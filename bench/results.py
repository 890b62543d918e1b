"""Appends a dated section to ``bench/RESULTS.md``: date, machine, the command, the figures."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine() -> str:
    return f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"


def append_section(title: str, command: str, lines: list[str]) -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nEach section: when, on what, the command that produced it.\n")
    body = "\n".join(lines)
    with RESULTS.open("a") as out:
        out.write(f"\n## {title}\n\n{stamp} · {machine()} · `{command}`\n\n{body}\n")
