"""Worker-slot seconds one operator holds per image: deferrable vs sync, against the sandbox.

The deferrable task holds a worker only in ``execute`` (submit, one status read, defer) and in
``execute_complete`` (download, store); the wait runs in the trigger. The sync task holds the
worker for the whole job. Both run the real operator code against the sandbox over HTTP.

    .venv/bin/python bench/worker_time_single.py --latency 5 --images 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import append_section


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=5.0, help="sandbox job latency (s)")
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch RESULTS.md")
    args = parser.parse_args()
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))

    from airflow.sdk.exceptions import TaskDeferred

    from airflow_bgreplace.operators import FalReplaceBackgroundOperator
    from airflow_bgreplace.sandbox import SandboxServer, SandboxSettings

    photo = Path(__file__).resolve().parent.parent / "dags_examples" / "images" / "mug.png"
    out = Path(tempfile.mkdtemp(prefix="bench-out-"))
    settings = SandboxSettings(latency_s=args.latency, latency_distribution="fixed", concurrency={"fal": 0})
    rows: dict[str, list[float]] = {"deferrable": [], "sync": []}
    wall: dict[str, list[float]] = {"deferrable": [], "sync": []}
    with SandboxServer(settings) as sandbox:
        os.environ["AIRFLOW_CONN_BGREPLACE_FAL_DEFAULT"] = json.dumps(
            {"conn_type": "bgreplace_fal", "host": sandbox.vendor_url("fal"), "password": "bench"}
        )
        for index in range(args.images):
            for mode in ("deferrable", "sync"):
                op = FalReplaceBackgroundOperator(
                    task_id=f"{mode}_{index}", image_url=str(photo), prompt="studio", poll_interval=0.5,
                    deferrable=mode == "deferrable", output_path=str(out / f"{mode}_{index}"),
                )
                started = time.perf_counter()
                if mode == "sync":
                    op.execute(context={})
                    held = time.perf_counter() - started
                else:
                    try:
                        op.execute(context={})
                        raise AssertionError("a job of several seconds must defer")
                    except TaskDeferred as deferred:
                        held = time.perf_counter() - started
                        event: Any = asyncio.run(_first_event(deferred.trigger))
                    resumed = time.perf_counter()
                    op.execute_complete(context={}, event=event)
                    held += time.perf_counter() - resumed
                rows[mode].append(held)
                wall[mode].append(time.perf_counter() - started)
    deferred_s, sync_s = statistics.mean(rows["deferrable"]), statistics.mean(rows["sync"])
    table = [
        "| mode | worker-slot s per image (mean) | wall s per image (mean) |",
        "|---|---|---|",
        f"| deferrable (trigger waits) | {deferred_s:.3f} | {statistics.mean(wall['deferrable']):.2f} |",
        f"| sync (`deferrable=False`) | {sync_s:.3f} | {statistics.mean(wall['sync']):.2f} |",
        "",
        f"Sync holds the worker {sync_s / deferred_s:.0f}x longer per image at {args.latency:.0f} s job latency.",
    ]
    print("\n".join(table))
    if not args.no_write:
        append_section(
            "Worker time per image, one operator (fal, sandbox)",
            f".venv/bin/python bench/worker_time_single.py --latency {args.latency:g} --images {args.images}",
            table,
        )
    return 0


async def _first_event(trigger: Any) -> Any:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("no event")


if __name__ == "__main__":
    sys.exit(main())
