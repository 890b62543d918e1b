"""Prints the fault matrix's table after the session (cells that ran, with their counts)."""

from __future__ import annotations

from typing import Any

from tests.reliability.matrix import ROWS, table


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if ROWS:
        terminalreporter.section("fault matrix")
        for line in table(ROWS):
            terminalreporter.write_line(line)
