"""The provider's own memory per job trigger, apart from Airflow's triggerer.

The triggerer footprint bench (``triggerer_footprint.py``) measures whole ``airflow triggerer``
processes: Airflow's bookkeeping per trigger and the provider's trigger code together. This script
isolates the provider's part. It submits N fal jobs to the sandbox (jobs that never end), builds
N :class:`~airflow_bgreplace.triggers.job.BgReplaceJobTrigger` objects, and runs their ``run()``
coroutines in one asyncio loop as the trigger runner would (one task per trigger, the shared
paced client, status reads against the sandbox) for a window. ``tracemalloc`` compares the
Python heap before the triggers start with the heap at the end of the window (after a GC). The
figure is the growth per trigger, and the biggest allocation sites show where it goes.

    .venv/bin/python bench/trigger_memory.py --triggers 2000 --window 45
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from results import append_section  # noqa: E402

ENDPOINT = "bria/replace-background"
CONN_ID = "bgreplace_fal_default"


async def drive(trigger: Any) -> None:
    async for _event in trigger.run():
        return


async def measure(job_ids: list[str], window_s: float, top: int) -> tuple[int, list[tuple[int, int, str, int]], int]:
    """(heap growth in bytes, [(bytes, blocks, file, line)] of the largest sites, triggers that ended)."""
    from airflow_bgreplace.triggers.job import BgReplaceJobTrigger

    deadline = time.time() + 3600
    warm_up, *measured = (
        BgReplaceJobTrigger(vendor="fal", conn_id=CONN_ID, endpoint=ENDPOINT, job_id=job_id, deadline_epoch=deadline)
        for job_id in job_ids
    )
    # One trigger first, so that the modules a trigger imports lazily and the shared client are
    # in place before the first snapshot: the growth is then what each further trigger costs.
    first = asyncio.create_task(drive(warm_up))
    await asyncio.sleep(2.0)
    gc.collect()
    tracemalloc.start(8)
    before = tracemalloc.take_snapshot()
    tasks = [asyncio.create_task(drive(trigger)) for trigger in measured]
    await asyncio.sleep(window_s)
    ended = sum(task.done() for task in tasks)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    for task in [first, *tasks]:
        task.cancel()
    await asyncio.gather(first, *tasks, return_exceptions=True)
    growth = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    sites = [
        (stat.size_diff, stat.count_diff, stat.traceback[0].filename, stat.traceback[0].lineno)
        for stat in after.compare_to(before, "lineno")[:top]
    ]
    return growth, sites, ended


def site_name(filename: str, line: int) -> str:
    short = re.sub(r".*/site-packages/|.*/lib/python3\.\d+/", "", filename.replace(f"{REPO}/", ""))
    return f"{short}:{line}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--triggers", type=int, default=2000)
    parser.add_argument("--window", type=float, default=45.0, help="seconds the triggers run before the snapshot")
    parser.add_argument("--top", type=int, default=8, help="allocation sites listed")
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to RESULTS.md")
    args = parser.parse_args()

    # The triggers' "queued" lines (one per job) say nothing here.
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    from airflow_bgreplace.sandbox.config import SandboxSettings
    from airflow_bgreplace.sandbox.fal import SAMPLE_IMAGE_URL
    from airflow_bgreplace.sandbox.server import SandboxServer

    settings = SandboxSettings.model_validate(
        {"latency_s": {"fal": 86_400.0}, "concurrency": {"fal": 1_000_000}, "seed": 1}
    )
    with SandboxServer(settings) as sandbox:
        os.environ.update(sandbox.connection_env("fal", CONN_ID))
        from airflow_bgreplace.hooks import FalHook

        hook = FalHook()
        job_ids = [
            hook.submit(image_url=SAMPLE_IMAGE_URL, prompt=f"scene {i}").job_id for i in range(args.triggers + 1)
        ]
        reads_before = int(sandbox.stats()["vendors"]["fal"]["status_calls"])
        growth, sites, ended = asyncio.run(measure(job_ids, args.window, args.top))
        reads = int(sandbox.stats()["vendors"]["fal"]["status_calls"]) - reads_before

    per_trigger = growth / args.triggers
    lines = [
        f"- {args.triggers} job triggers (fal, jobs that never end) in one asyncio loop for {args.window:g} s: "
        f"Python heap growth {growth / 2**20:.1f} MB = **{per_trigger / 1024:.1f} KB per trigger**; "
        f"{reads} status reads in all; {ended} triggers ended (0 expected).",
        "- The trigger objects themselves were built before the first snapshot; the growth is what running "
        "them holds: coroutine frames, asyncio tasks, the shared client's waiters, the last status read.",
        "",
        "| bytes per trigger | blocks | allocation site |",
        "|---|---|---|",
        *(f"| {size / args.triggers:.0f} | {count} | `{site_name(name, line)}` |" for size, count, name, line in sites),
    ]
    print("\n".join(lines))
    if not args.no_write:
        append_section(
            "Provider memory per job trigger (tracemalloc, one event loop, sandbox)",
            f".venv/bin/python bench/trigger_memory.py --triggers {args.triggers} --window {args.window:g}",
            lines,
        )
    return 0 if ended == 0 and growth > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
