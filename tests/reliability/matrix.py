"""The fault matrix's tally: one row per cell, printed as a table at the end of the session."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class MatrixRow:
    vendor: str
    cell: str
    items: int
    faults_injected: int
    succeeded: int
    failed: int
    uncertain: int
    #: uncertain items whose submit the sandbox shows it accepted (paid, result not fetched)
    uncertain_accepted: int
    #: jobs the vendor finished well whose item failed with the reason named (e.g. expired URL)
    undelivered_named: int
    duplicates: int
    lost: int
    deferrals: int


ROWS: list[MatrixRow] = []


def record(row: MatrixRow) -> None:
    ROWS.append(row)
    print("FAULT_MATRIX " + json.dumps(asdict(row)))


def table(rows: list[MatrixRow]) -> list[str]:
    """A Markdown table of the cells, then one line of totals."""
    header = (
        "| vendor | cell | items | faults injected | succeeded | failed | uncertain (accepted) "
        "| undelivered, named | duplicates | lost |"
    )
    lines = [header, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r.cell, r.vendor)):
        lines.append(
            f"| {r.vendor} | {r.cell} | {r.items} | {r.faults_injected} | {r.succeeded} | {r.failed} "
            f"| {r.uncertain} ({r.uncertain_accepted}) | {r.undelivered_named} | {r.duplicates} | {r.lost} |"
        )
    total = {
        key: sum(getattr(r, key) for r in rows)
        for key in (
            "items",
            "faults_injected",
            "succeeded",
            "failed",
            "uncertain",
            "uncertain_accepted",
            "undelivered_named",
            "duplicates",
            "lost",
        )
    }
    lines.append(
        f"| **all** | {len(rows)} cells | {total['items']} | {total['faults_injected']} | {total['succeeded']} "
        f"| {total['failed']} | {total['uncertain']} ({total['uncertain_accepted']}) | {total['undelivered_named']} "
        f"| {total['duplicates']} | {total['lost']} |"
    )
    return lines
