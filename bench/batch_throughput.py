"""Batch operator throughput against the vendor's concurrency limit (sandbox, in-process driver).

Drives the real BgReplaceBatchOperator and BgReplaceBatchTrigger the way Airflow does (execute ->
defer -> trigger event -> execute_complete -> ...) without a scheduler, so the figure is the
operator's own efficiency: achieved wall time vs the ideal N x latency / C. The scheduler's
overhead per deferral is measured separately by the real-scheduler benchmark.

    .venv/bin/python bench/batch_throughput.py --vendor imagepipeline --n 60 --latency 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import append_section

PROMPT_JOBS = {
    "fal": ("bria/replace-background", "image_url"),
    "fashn": ("background-change", "image"),
    "imagepipeline": ("background/change", "input_image"),
}


def drive(operator: Any) -> tuple[dict[str, Any], int]:
    """Run an operator to the end like Airflow would, returning (result, deferrals)."""
    from airflow.sdk.exceptions import TaskDeferred

    async def first_event(trigger: Any) -> Any:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    deferrals = 0
    try:
        return operator.execute(context={}), deferrals
    except TaskDeferred as deferred:
        pending = deferred
    while True:
        deferrals += 1
        event = asyncio.run(first_event(pending.trigger))
        try:
            return operator.execute_complete({}, event, **(pending.kwargs or {})), deferrals
        except TaskDeferred as deferred:
            pending = deferred


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vendor", default="imagepipeline", choices=sorted(PROMPT_JOBS))
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=None, help="vendor limit (default: documented)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))

    from airflow_bgreplace.operators.batch import BgReplaceBatchOperator
    from airflow_bgreplace.sandbox import SandboxServer, SandboxSettings
    from airflow_bgreplace.vendors.assumptions import BY_VENDOR

    limit = args.concurrency or BY_VENDOR[args.vendor].concurrency
    photo = Path(__file__).resolve().parent.parent / "dags_examples" / "images" / "mug.png"
    endpoint, field = PROMPT_JOBS[args.vendor]
    items = [
        {"id": f"sku-{i}", "endpoint": endpoint, "inputs": {field: str(photo), "prompt": f"scene {i}"}}
        for i in range(args.n)
    ]
    settings = SandboxSettings(
        latency_s=args.latency,
        latency_distribution="fixed",
        concurrency={args.vendor: limit},
        submit_rate={args.vendor: 0},
        status_rate={args.vendor: 0},
    )
    with SandboxServer(settings) as sandbox:
        os.environ[f"AIRFLOW_CONN_BGREPLACE_{args.vendor.upper()}_DEFAULT"] = sandbox.connection_uri(args.vendor)
        operator = BgReplaceBatchOperator(
            task_id="bench",
            vendor=args.vendor,
            items=items,
            max_in_flight=limit,
            output_base=tempfile.mkdtemp(prefix="bench-batch-"),
        )
        started = time.perf_counter()
        summary, deferrals = drive(operator)
        wall = time.perf_counter() - started
        stats = sandbox.stats()["vendors"][args.vendor]
    ideal = args.n * args.latency / limit
    table = [
        "| vendor | N | latency s | limit C | ideal s (N*lat/C) | wall s | ideal/wall | deferrals | submits "
        "| duplicates |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {args.vendor} | {args.n} | {args.latency:g} | {limit} | {ideal:.1f} | {wall:.1f} | {ideal / wall:.2f} "
        f"| {deferrals} | {stats['submits_accepted']} | {stats['duplicate_submits']} |",
    ]
    print("\n".join(table))
    print(json.dumps({k: summary[k] for k in ("succeeded", "failed")}))
    if not args.no_write:
        append_section(
            "Batch operator vs the vendor limit (in-process driver, sandbox)",
            f".venv/bin/python bench/batch_throughput.py --vendor {args.vendor} --n {args.n} "
            f"--latency {args.latency:g}",
            table,
        )
    return 0 if summary["succeeded"] == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
