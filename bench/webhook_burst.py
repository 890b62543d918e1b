"""A burst of signed webhook deliveries against the receiver over loopback: how many per second,
and proof that none is lost (every 2xx answer has its stored row).

    .venv/bin/python bench/webhook_burst.py --n 2000 --concurrency 50

The receiver runs as ``bgreplace-webhooks`` (uvicorn, one process) on 127.0.0.1, on the default
SQLite store and, when PostgreSQL answers on 127.0.0.1:5432, on PostgreSQL too (a throwaway
schema). This process fires the burst with ``httpx.AsyncClient``: Runflow callbacks, each a new
job, HMAC-signed as Runflow signs them. A section of figures is appended to ``bench/RESULTS.md``
(``--no-write``: printed only).
Exit status 1 if any delivery was refused, failed or lost.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]  # results.py beside this file; tests.postgres_support

from results import append_section  # noqa: E402

from airflow_bgreplace.serving import free_port, wait_until_healthy  # noqa: E402
from airflow_bgreplace.vendors.webhooks import callback_url  # noqa: E402
from airflow_bgreplace.webhooks.store import WebhookStore  # noqa: E402
from tests.postgres_support import find_postgres, temporary_schema  # noqa: E402

SECRET = f"whsec_bench_{uuid.uuid4().hex}"


@dataclass
class Outcome:
    store: str
    n: int
    concurrency: int
    wall_s: float
    accepted: int  # 2xx answers
    refused: int  # other HTTP answers
    errors: int  # no answer (transport error, timeout)
    stored: int  # job events stored by the burst
    latencies_ms: list[float]

    @property
    def lost(self) -> int:
        return self.accepted - self.stored

    @property
    def rate(self) -> float:
        return self.accepted / self.wall_s if self.wall_s else 0.0

    def row(self) -> str:
        quantiles = statistics.quantiles(self.latencies_ms, n=100) if len(self.latencies_ms) > 1 else [0.0] * 99
        cells = [self.store, self.n, self.concurrency, f"{self.wall_s:.2f}", f"{self.rate:.0f}", self.accepted]
        cells += [self.refused, self.errors, self.stored, self.lost, f"{quantiles[49]:.1f}", f"{quantiles[98]:.1f}"]
        return "| " + " | ".join(str(cell) for cell in cells) + " |"


def delivery(run: str, index: int) -> tuple[bytes, dict[str, str]]:
    """A Runflow callback for a new job, signed as Runflow signs (HMAC-SHA256 hex of the raw body)."""
    body = json.dumps(
        {
            "event": "run.completed",
            "run_id": f"{run}-{index}",
            "status": "succeeded",
            "output": {"image_urls": [f"https://cdn.example/{run}/{index}.png"]},
            "duration_ms": 1234,
            "created_at": "2026-05-06T10:00:00.000+00:00",
            "completed_at": "2026-05-06T10:00:01.234+00:00",
            "metadata": None,
        }
    ).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "Runflow-Signature": signature}


@dataclass
class Receiver:
    """``bgreplace-webhooks`` in its own process."""

    process: subprocess.Popen[bytes]
    port: int

    @classmethod
    def start(cls, store_url: str, home: Path) -> Receiver:
        port = free_port()
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_BGREPLACE_RUNFLOW_DEFAULT": json.dumps(
                {"conn_type": "bgreplace_runflow", "extra": {"webhook_secret": SECRET}}
            ),
        }
        command = [sys.executable, "-m", "airflow_bgreplace.webhooks.cli", "--port", str(port)]
        return cls(subprocess.Popen([*command, "--store-url", store_url, "--log-level", "warning"], env=env), port)

    @property
    def url(self) -> str:
        return callback_url(f"http://127.0.0.1:{self.port}", "runflow", "bgreplace_runflow_default")

    def ready(self) -> str:
        wait_until_healthy(f"http://127.0.0.1:{self.port}/bgreplace/health", self.process)
        return self.url

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(15)


async def burst(
    url: str, run: str, n: int, concurrency: int, timeout_s: float
) -> tuple[int, int, int, list[float], float]:
    """(2xx, other answers, no answer, latencies in ms, wall seconds) of ``n`` deliveries."""
    slots = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    counts = {"accepted": 0, "refused": 0, "errors": 0}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30.0, trust_env=False) as client:

        async def send(index: int) -> None:
            body, headers = delivery(run, index)
            async with slots:
                started = time.perf_counter()
                try:
                    answer = await client.post(url, content=body, headers=headers)
                except httpx.HTTPError:
                    counts["errors"] += 1
                    return
                latencies.append((time.perf_counter() - started) * 1000)
                counts["accepted" if answer.is_success else "refused"] += 1

        started = time.perf_counter()
        tasks = [asyncio.create_task(send(index)) for index in range(n)]
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        counts["errors"] += len(pending)
        wall = time.perf_counter() - started
    return counts["accepted"], counts["refused"], counts["errors"], latencies, wall


def measure(name: str, store_url: str, receiver: Receiver, n: int, concurrency: int, timeout_s: float) -> Outcome:
    run = f"bench-{uuid.uuid4().hex[:8]}"
    url = receiver.ready()
    # One warm-up delivery (not counted): the first one opens the store and reads the connection.
    body, headers = delivery(run, -1)
    httpx.post(url, content=body, headers=headers, timeout=60, trust_env=False).raise_for_status()
    accepted, refused, errors, latencies, wall = asyncio.run(burst(url, run, n, concurrency, timeout_s))
    store = WebhookStore(store_url)
    try:
        stored = store.counts()["job_events"] - 1
    finally:
        store.dispose()
    return Outcome(name, n, concurrency, wall, accepted, refused, errors, stored, latencies)


COLUMNS = ["store", "deliveries", "concurrency", "wall s", "accepted/s", "2xx", "refused", "errors", "stored", "lost"]
COLUMNS += ["p50 ms", "p99 ms"]


def table(outcomes: list[Outcome], notes: list[str]) -> list[str]:
    return [
        "- Receiver: `bgreplace-webhooks` (uvicorn, 1 process) on 127.0.0.1; client: httpx.AsyncClient in another "
        "process; HMAC-signed Runflow callbacks, each a new job; every 2xx is sent after the commit.",
        *[f"- {note}." for note in notes],
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *[outcome.row() for outcome in outcomes],
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="deliveries in the burst (default 2000)")
    parser.add_argument("--concurrency", type=int, default=50, help="deliveries in flight at once (default 50)")
    parser.add_argument("--timeout", type=float, default=300.0, help="bound on the burst, seconds (default 300)")
    parser.add_argument(
        "--stores", default="auto", help="comma list of sqlite,postgres; auto = sqlite, plus postgres when reachable"
    )
    parser.add_argument("--no-write", action="store_true", help="print the figures only")
    args = parser.parse_args(argv)
    if not 0 < args.n <= 100_000 or not 0 < args.concurrency <= 1000:
        parser.error("--n must be in 1..100000 and --concurrency in 1..1000")

    wanted = ["sqlite", "postgres"] if args.stores == "auto" else args.stores.split(",")
    # Other work on the machine moves these figures: say how busy it was.
    notes = [f"Load average (1 min) before the run: {os.getloadavg()[0]:.2f}"]
    postgres_url, reason = find_postgres() if "postgres" in wanted else (None, "")
    if "postgres" in wanted and postgres_url is None:
        if args.stores != "auto":
            parser.error(reason)
        notes.append(f"PostgreSQL skipped: {reason}")
    outcomes = []
    with ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bgreplace-bench-")))
        urls = {}
        if "sqlite" in wanted:
            urls["sqlite"] = f"sqlite:///{home}/bgreplace_webhooks.db"
        if "postgres" in wanted and postgres_url is not None:
            urls["postgres"] = stack.enter_context(temporary_schema(postgres_url, prefix="bgreplace_bench"))
        # All receivers start at once (each imports Airflow for seconds); the bursts run one at a time.
        receivers = {name: Receiver.start(url, home) for name, url in urls.items()}
        for started in receivers.values():
            stack.callback(started.stop)
        for name, url in urls.items():
            outcome = measure(name, url, receivers[name], args.n, args.concurrency, args.timeout)
            outcomes.append(outcome)
            print(
                f"{name}: {outcome.accepted}/{args.n} accepted in {outcome.wall_s:.2f} s = {outcome.rate:.0f}/s, "
                f"refused {outcome.refused}, errors {outcome.errors}, stored {outcome.stored}, lost {outcome.lost}"
            )
    arguments = sys.argv[1:] if argv is None else argv
    command = " ".join([".venv/bin/python", "bench/webhook_burst.py", *map(shlex.quote, arguments)])
    lines = table(outcomes, notes)
    print("\n".join(lines))
    if not args.no_write:
        append_section("Webhook receiver burst (loopback)", command, lines)
    failed = any(o.lost or o.refused or o.errors or o.stored != o.n for o in outcomes)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
