"""Throughput against the vendor limit, and worker time per image, through a real Airflow deployment.

Three ways to push N images through fal (sandbox) under a concurrency limit C, each a DAG in
``bench/dags/`` run by a real scheduler, dag-processor, triggerer and api-server (LocalExecutor)
on a fresh PostgreSQL database, so Airflow's own overheads count:

* (a) ``bench_throughput_batch``: one :class:`BgReplaceBatchOperator` over the N items;
* (b) ``bench_throughput_mapped``: ``FalReplaceBackgroundOperator`` (deferrable) mapped per image;
* (c) ``bench_throughput_naive``: what users write today, a mapped ``@task`` that submits with
  httpx, polls with ``time.sleep`` and downloads the result, holding its worker slot throughout.

Vendor: fal. Its queue never rejects a submit (jobs beyond C wait ``IN_QUEUE``), it has no
submit or status rate limit, so C is the only limit; it is the vendor whose window the batch
operator widens beyond C. The input images are tiny PNGs served on 127.0.0.1 by this script.

Figures per pattern: wall time (``dag_run`` start to end), ideal = N x mean latency / C (the
realised mean of the sandbox's drawn latencies), worker-slot seconds per image (the ``log``
table's ``running`` -> ``deferred``/``success``/... intervals of every task instance and try,
cross-checked by sampling the LocalExecutor workers' process titles), vendor submits and
duplicate submits.

    flock /tmp/heavy.lock .venv/bin/python bench/throughput_real.py --n 2000 --concurrency 50 \\
        --latency-mean 1.5 --patterns a
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests"))
from results import append_section  # noqa: E402

VENDOR = "fal"
PATTERNS: dict[str, tuple[str, str]] = {
    "a": ("bench_throughput_batch", "(a) batch operator"),
    "b": ("bench_throughput_mapped", "(b) deferrable operator, mapped"),
    "c": ("bench_throughput_naive", "(c) naive mapped sync task"),
}
#: ``log`` events that end a stretch of worker time begun by ``running``.
END_EVENTS = ("deferred", "success", "failed", "up_for_retry", "up_for_reschedule", "skipped", "removed")
WORKER_TITLE = "airflow worker -- LocalExecutor"


# -- input images -------------------------------------------------------------------------------------
def tiny_png(name: str) -> bytes:
    """A 64x64 "product shot": a coloured block on a light backdrop (colour from the name)."""
    from PIL import Image, ImageDraw

    hue = zlib.crc32(name.encode()) & 0xFFFFFF
    image = Image.new("RGB", (64, 64), (236, 234, 228))
    ImageDraw.Draw(image).rectangle((18, 12, 46, 54), fill=(hue >> 16, (hue >> 8) & 0xFF, hue & 0xFF))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class ImageServer:
    """Serves ``/img/<name>.png`` on 127.0.0.1 for the sandbox to fetch; counts the fetches."""

    def __init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                if not (self.path.startswith("/img/") and name.endswith(".png")):
                    self.send_error(404)
                    return
                body = tiny_png(name)
                server.fetches += 1
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.fetches = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> ImageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def write_items(path: Path, n: int, image_base: str) -> None:
    with path.open("w") as out:
        for index in range(n):
            sku = f"sku-{index:05d}"
            item = {
                "id": sku,
                "endpoint": "bria/replace-background",
                "inputs": {"image_url": f"{image_base}/img/{sku}.png", "prompt": "studio backdrop"},
            }
            out.write(json.dumps(item) + "\n")


# -- machine CPU --------------------------------------------------------------------------------------
def machine_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy since boot (``/proc/stat``: all but idle, iowait).

    Every process of the deployment counts (task processes, scheduler, api-server, triggerer,
    sandbox, this script): on a CPU-bound machine, the deployment's CPU per image is what sets the
    wall time, whatever the worker slots.
    """
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


# -- worker slots, sampled -----------------------------------------------------------------------------
class WorkerSampler:
    """Busy LocalExecutor workers (children of the scheduler whose title names a workload), sampled.

    A worker's title is ``... LocalExecutor: <idle>`` between workloads and names the task while it
    runs one (fork, task process, final state call, exit): the literal slot occupancy.
    """

    def __init__(self, scheduler_pid: int, period_s: float = 0.2) -> None:
        self.scheduler_pid = scheduler_pid
        self.period_s = period_s
        self.busy_s = 0.0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _busy_now(self) -> int:
        busy = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
                if ppid != self.scheduler_pid:
                    continue
                with open(f"/proc/{entry.name}/cmdline", "rb") as cmdline:
                    title = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
            except (OSError, ValueError, IndexError):
                continue
            if title.startswith(WORKER_TITLE) and "<idle>" not in title:
                busy += 1
        return busy

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.period_s):
            now = time.monotonic()
            busy = self._busy_now()
            self.busy_s += busy * (now - last)
            self.peak = max(self.peak, busy)
            last = now

    def __enter__(self) -> WorkerSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# -- figures ---------------------------------------------------------------------------------------------
@dataclass
class PatternResult:
    pattern: str
    state: str
    n: int
    concurrency: int
    wall_s: float
    mean_latency_s: float
    slot_s_total: float  # vendor slot time of every job (started -> finished)
    worker_s_log: float
    worker_s_sampled: float
    worker_peak: int
    task_runs: int  # executions that held a worker (first runs and resumptions, all tries)
    unended: int  # of those, runs closed at their try's end_date (no end event in the log table)
    task_instances: int
    tries: int
    deferrals: int
    submits: int
    duplicates: int
    jobs_succeeded: int
    outputs: int
    load_before: float
    load_after: float
    cpu_s: float  # machine CPU seconds over the run (all processes)
    per_ti_worker_s: list[float] = field(default_factory=list)
    ti_duration_s: list[float] = field(default_factory=list)

    @property
    def runs_note(self) -> str:
        notes = []
        if self.tries > self.task_instances:
            notes.append(f"{self.tries - self.task_instances} retries")
        if self.unended:
            notes.append(f"{self.unended} without an end event")
        return f" ({', '.join(notes)})" if notes else ""

    @property
    def ideal_s(self) -> float:
        return self.n * self.mean_latency_s / self.concurrency

    @property
    def ratio(self) -> float:
        return self.ideal_s / self.wall_s if self.wall_s else 0.0

    @property
    def vendor_busy(self) -> float:
        """Share of the vendor's C slots that held a job during the run."""
        return self.slot_s_total / (self.concurrency * self.wall_s) if self.wall_s else 0.0


@dataclass
class WorkerTime:
    held: dict[tuple[str, int, int], float]  # worker seconds per (task, map index, try)
    runs: int  # task runs (a first run or a resumption) that held a worker
    deferrals: int
    unended_events: list[str]  # runs with no end event in the log: closed at their try's end_date instead

    @property
    def unended(self) -> int:
        return len(self.unended_events)


def worker_intervals(stack: Any, dag_id: str, run_id: str) -> WorkerTime:
    """Worker seconds per (task, map index, try) from the ``log`` table.

    A run ends at its try's next state event. A try that Airflow ends without one (the scheduler
    failing a task whose heartbeat stopped, or Airflow's fast-trigger race) is closed at that try's
    ``end_date`` (``task_instance``, or ``task_instance_history`` for earlier tries) and counted.
    """
    rows = stack.query(
        "SELECT task_id, map_index, try_number, event, dttm FROM log WHERE dag_id = :d AND run_id = :r "
        "AND task_id IS NOT NULL ORDER BY dttm, id",
        d=dag_id,
        r=run_id,
    )
    open_since: dict[tuple[str, int, int], Any] = {}
    held: dict[tuple[str, int, int], float] = defaultdict(float)
    runs = deferrals = 0
    other_events: dict[tuple[str, int, int], list[str]] = defaultdict(list)
    for task_id, map_index, try_number, event, dttm in rows:
        key = (str(task_id), int(map_index if map_index is not None else -1), int(try_number or 0))
        if event == "running":
            if key not in open_since:  # a repeated start request of the same run keeps the first
                open_since[key] = dttm
                runs += 1
        elif event in END_EVENTS and key in open_since:
            held[key] += (dttm - open_since.pop(key)).total_seconds()
            deferrals += event == "deferred"
        else:
            other_events[key].append(str(event))
    ends: dict[tuple[str, int, int], Any] = {}
    for table in ("task_instance_history", "task_instance"):
        for task_id, map_index, try_number, end_date in stack.query(
            f"SELECT task_id, map_index, try_number, end_date FROM {table} WHERE dag_id = :d AND run_id = :r",
            d=dag_id,
            r=run_id,
        ):
            if end_date is not None:
                ends[(str(task_id), int(map_index), int(try_number))] = end_date
    described = []
    for key, since in open_since.items():
        end = ends.get(key)
        if end is not None and end > since:
            held[key] += (end - since).total_seconds()
        described.append(f"{key}: running at {since:%H:%M:%S}, then {other_events.get(key) or 'no event'}")
    return WorkerTime(dict(held), runs, deferrals, described)


def run_pattern(
    stack: Any, sandbox: Any, pattern: str, args: argparse.Namespace, conf: dict[str, Any]
) -> PatternResult:
    dag_id, _ = PATTERNS[pattern]
    sandbox.reset()
    load_before = os.getloadavg()[0]
    cpu_before = machine_cpu_s()
    profiler = None
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
        profiler = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                *("record", "--subprocesses", "--idle", "--nonblocking", "--rate", "50", "--format", "raw"),
                *("-o", str(Path(args.profile) / f"pattern_{pattern}.txt")),
                *("-p", str(stack.processes["scheduler"].pid)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    with WorkerSampler(stack.processes["scheduler"].pid) as sampler:
        run_id = stack.trigger(dag_id, conf=conf)
        last: dict[str, int] = {}

        def progress(counts: Any) -> None:
            if dict(counts) != last:
                last.clear()
                last.update(counts)
                print(f"  [{pattern}] {time.strftime('%H:%M:%S')} {dict(counts)}", flush=True)

        state = stack.wait_for_run(dag_id, run_id, args.timeout, poll_s=2.0, on_poll=progress)
        time.sleep(1.0)  # the last worker writes its final state before it frees the slot
    cpu_s = machine_cpu_s() - cpu_before
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        profiler.wait(timeout=60)
    (start, end), *_ = stack.query(
        "SELECT start_date, end_date FROM dag_run WHERE dag_id = :d AND run_id = :r", d=dag_id, r=run_id
    )
    worker = worker_intervals(stack, dag_id, run_id)
    for line in worker.unended_events:
        print(f"  [{pattern}] run without an end event: {line}", flush=True)
    stats = sandbox.stats()
    if args.diagnose:
        diagnose(stack, dag_id, run_id, start, end, stats, args.c)
    tis = stack.query(
        "SELECT task_id, map_index, try_number, start_date, end_date FROM task_instance "
        "WHERE dag_id = :d AND run_id = :r",
        d=dag_id,
        r=run_id,
    )
    durations = [(e - s).total_seconds() for *_, s, e in tis if s is not None and e is not None]
    counters = stats["vendors"][VENDOR]
    jobs = [job for job in stats["jobs"] if job["vendor"] == VENDOR]
    latencies = [float(job["latency_s"]) for job in jobs]
    slot_s = sum(job["finished_at"] - job["started_at"] for job in jobs if job["finished_at"] and job["started_at"])
    outputs = sum(1 for p in (Path(conf["output_base"])).rglob("sku-*") if p.is_file())
    outputs += sum(1 for p in Path(conf["operator_output_base"]).rglob("*") if p.is_file() and p.suffix == ".png")
    return PatternResult(
        pattern=pattern,
        state=state,
        n=args.n,
        concurrency=args.c,
        wall_s=(end - start).total_seconds(),
        mean_latency_s=statistics.mean(latencies) if latencies else args.latency_mean,
        slot_s_total=slot_s,
        worker_s_log=sum(worker.held.values()),
        worker_s_sampled=sampler.busy_s,
        worker_peak=sampler.peak,
        task_runs=worker.runs,
        unended=worker.unended,
        task_instances=len(tis),
        tries=len(tis)
        + int(
            stack.query(
                "SELECT count(*) FROM task_instance_history WHERE dag_id = :d AND run_id = :r", d=dag_id, r=run_id
            )[0][0]
        ),
        deferrals=worker.deferrals,
        submits=int(counters["submits_accepted"]),
        duplicates=int(counters["duplicate_submits"]),
        jobs_succeeded=int(counters["jobs_succeeded"]),
        outputs=outputs,
        load_before=load_before,
        load_after=os.getloadavg()[0],
        cpu_s=cpu_s,
        per_ti_worker_s=list(worker.held.values()),
        ti_duration_s=durations,
    )


def diagnose(stack: Any, dag_id: str, run_id: str, start: Any, end: Any, stats: dict[str, Any], c: int) -> None:
    """Task runs (worker) and deferrals against the vendor's busy slots, on one time line."""
    t0 = start.timestamp()
    rows = stack.query(
        "SELECT task_id, map_index, event, dttm FROM log WHERE dag_id = :d AND run_id = :r AND task_id IS NOT NULL "
        "ORDER BY dttm, id",
        d=dag_id,
        r=run_id,
    )
    print(f"  timeline (s from run start; run ends {end.timestamp() - t0:.1f})")
    for task_id, map_index, event, dttm in rows[:400]:
        print(f"    {dttm.timestamp() - t0:7.2f} {task_id}[{map_index}] {event}")
    jobs = [job for job in stats["jobs"] if job["started_at"] and job["finished_at"]]
    if not jobs:
        return
    step = max(1.0, (end.timestamp() - t0) / 40)
    line = []
    t = 0.0
    while t < end.timestamp() - t0:
        lo, hi = t0 + t, t0 + t + step
        busy = sum(max(0.0, min(hi, j["finished_at"]) - max(lo, j["started_at"])) for j in jobs) / (step * c)
        queued = sum(1 for j in jobs if j["submitted_at"] <= lo < j["started_at"])
        line.append(f"{t:5.0f}s busy {busy:4.2f} queued {queued}")
        t += step
    print("  vendor slots busy per interval:\n    " + "\n    ".join(line))


def table(results: list[PatternResult]) -> list[str]:
    lines = [
        "| pattern | N | C | mean latency s | ideal s | wall s | ideal/wall | vendor slots busy | worker-slot s "
        "per image (log) | (sampled) | task runs | deferrals | submits | duplicate submits | outputs | state "
        "| machine CPU-s per image | load 1-min before/after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {PATTERNS[r.pattern][1]} | {r.n} | {r.concurrency} | {r.mean_latency_s:.3f} | {r.ideal_s:.1f} "
            f"| {r.wall_s:.1f} | {r.ratio:.2f} | {r.vendor_busy:.2f} | {r.worker_s_log / r.n:.3f} "
            f"| {r.worker_s_sampled / r.n:.3f} | {r.task_runs}{r.runs_note} | {r.deferrals} | {r.submits} "
            f"| {r.duplicates} "
            f"| {r.outputs} | {r.state} | {r.cpu_s / r.n:.3f} | {r.load_before:.1f}/{r.load_after:.1f} |"
        )
    return lines


def ratios(results: list[PatternResult]) -> list[str]:
    by = {r.pattern: r for r in results}
    lines = []
    naive = by.get("c")
    for other in ("a", "b"):
        if naive is not None and other in by and by[other].worker_s_log:
            per_naive = naive.worker_s_log / naive.n
            per_other = by[other].worker_s_log / by[other].n
            lines.append(
                f"- Worker time (c)/({other}): {per_naive / per_other:.3g}x "
                f"({per_naive:.3f} vs {per_other:.3f} worker-slot s per image)"
            )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100, help="images per pattern")
    parser.add_argument("--concurrency", default="50", help="fal concurrency C: a number, or 'documented'")
    parser.add_argument("--latency-mean", type=float, default=1.5, help="mean sandbox job latency (s)")
    parser.add_argument("--distribution", default="uniform", choices=("fixed", "uniform", "exponential", "lognormal"))
    parser.add_argument("--spread", type=float, default=0.25, help="uniform: +/- fraction; lognormal: sigma")
    parser.add_argument("--patterns", default="a,b,c", help="comma-separated subset of a,b,c (run in that order)")
    parser.add_argument("--parallelism", type=int, default=None, help="LocalExecutor slots (default C + 8)")
    parser.add_argument("--max-in-flight", type=int, default=None, help="(a) only: override the batch window")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per pattern")
    parser.add_argument("--keep", action="store_true", help="keep AIRFLOW_HOME (logs) after the run")
    parser.add_argument("--log-level", default="WARNING", help="Airflow's logging level (INFO to read task logs)")
    parser.add_argument("--diagnose", action="store_true", help="print the timeline of pattern (a)'s cycles")
    parser.add_argument(
        "--profile", metavar="DIR", help="py-spy every LocalExecutor workload (collapsed stacks, one file per pattern)"
    )
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch RESULTS.md")
    args = parser.parse_args()
    patterns = [p.strip() for p in args.patterns.split(",") if p.strip()]
    if not patterns or any(p not in PATTERNS for p in patterns):
        parser.error(f"--patterns: choose from {','.join(PATTERNS)}")

    from postgres_support import find_postgres

    from airflow_bgreplace.sandbox.stack import AirflowStack, fresh_postgres_database
    from airflow_bgreplace.vendors.assumptions import BY_VENDOR

    documented = BY_VENDOR[VENDOR].concurrency
    args.c = documented if args.concurrency == "documented" else int(args.concurrency)
    parallelism = args.parallelism or args.c + 8
    server_url, why = find_postgres()
    if server_url is None:
        print(f"throughput_real: {why}", file=sys.stderr)
        return 2

    home = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    dags = home / "dags"
    shutil.copytree(REPO / "bench" / "dags", dags, ignore=shutil.ignore_patterns("__pycache__"))
    items_uri = home / "items.jsonl"
    results: list[PatternResult] = []
    started = time.monotonic()
    try:
        with ImageServer() as images, fresh_postgres_database(server_url, prefix="bench_throughput") as db_url:
            write_items(items_uri, args.n, images.base_url)
            stack = AirflowStack(
                home / "airflow",
                dags,
                db_url,
                parallelism=parallelism,
                env={
                    "AIRFLOW__BGREPLACE__OUTPUT_BASE": f"file://{home}/outputs/operators",
                    "AIRFLOW__LOGGING__LOGGING_LEVEL": args.log_level,
                    # The deployment docs/reliability.md recommends: without it Airflow 3.3's
                    # fast-trigger race fails tries of short deferrals (apache/airflow#67287).
                    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
                },
            )
            with stack:
                sandbox = stack.start_sandbox(
                    "--concurrency", f"{VENDOR}={args.c}",
                    "--latency-s", f"{VENDOR}={args.latency_mean}",
                    "--latency-distribution", args.distribution,
                    "--latency-spread", str(args.spread),
                    "--seed", str(args.seed),
                )  # fmt: skip
                stack.env.update(sandbox.connection_env(VENDOR, f"bgreplace_{VENDOR}_default", "bench-key"))
                stack.env.update({"FAL_BASE_URL": sandbox.vendor_url(VENDOR), "FAL_KEY": "bench-key"})
                stack.start()
                print(f"stack up in {time.monotonic() - started:.0f} s (parallelism {parallelism})", flush=True)
                for pattern in patterns:
                    out = home / "outputs" / pattern
                    operator_out = home / "outputs" / "operators"
                    shutil.rmtree(operator_out, ignore_errors=True)
                    operator_out.mkdir(parents=True)
                    conf = {
                        "items_uri": str(items_uri),
                        "output_base": str(out),
                        "operator_output_base": str(operator_out),
                        "concurrency": args.c,
                        "max_in_flight": args.max_in_flight,
                    }
                    print(f"pattern {PATTERNS[pattern][1]}: N={args.n}, C={args.c}", flush=True)
                    result = run_pattern(stack, sandbox, pattern, args, conf)
                    results.append(result)
                    print("\n".join(table([result])), flush=True)
                    if result.state != "success":
                        print(f"  run {result.state}; logs under {stack.home}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
        else:
            print(f"kept {home}")

    lines = table(results)
    lines += ["", *ratios(results)]
    lines += [
        f"- Vendor: fal (sandbox), C = {args.c} ({'documented, fal.md §9' if args.c == documented else 'set'}); "
        "jobs beyond C wait `IN_QUEUE` (never 429), no submit or status limit: C is the only limit. "
        f"Latency {args.distribution} (spread {args.spread:g}), mean {args.latency_mean:g} s; LocalExecutor "
        f"parallelism {parallelism}; one stack for the patterns run, the sandbox reset between them; "
        "`AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL=1` as docs/reliability.md recommends.",
        "- Machine CPU-s per image: the whole machine's busy CPU seconds over the run (`/proc/stat`: "
        "every process of the deployment, the sandbox and this script) / N. When it times N exceeds "
        "cores x ideal, the run is CPU-bound here and its wall time is set by CPU, not by the vendor.",
        "- ideal = N x realised mean latency / C. The sandbox's fal spends 10% of a job's latency `IN_QUEUE` "
        "without a slot, so a saturated fal ends jobs at C / (0.9 x mean) and ideal/wall can pass 1; "
        "'vendor slots busy' = slot-seconds of all jobs / (C x wall) is the strict share of the limit.",
        "- Worker-slot seconds: per task run (first run and every resumption, all tries), the `log` table's "
        "`running` -> `deferred`/`success`/`failed`/`up_for_retry` interval (task_instance.start_date survives "
        "a deferral, so end - start would count the wait in the triggerer); '(sampled)': LocalExecutor "
        "workers whose process title names a workload, every 0.2 s (also counts the task process start).",
    ]
    verification = next((r for r in results if r.pattern == "c"), None)
    if verification is not None and verification.ti_duration_s:
        mapped = sorted(verification.per_ti_worker_s)
        lines.append(
            f"- Check on (c): worker-slot s per task run from the log table, median {statistics.median(mapped):.2f}; "
            f"task_instance end - start, median {statistics.median(verification.ti_duration_s):.2f}; "
            f"sampled total {verification.worker_s_sampled:.0f} s vs log total {verification.worker_s_log:.0f} s "
            f"(mean latency {verification.mean_latency_s:.2f} s, poll every 1 s)."
        )
    print("\n".join(lines))
    ok = all(r.state == "success" and r.duplicates == 0 and r.outputs >= r.n for r in results)
    if not args.no_write and results:
        command = (
            f"flock /tmp/heavy.lock .venv/bin/python bench/throughput_real.py --n {args.n} --concurrency "
            f"{args.concurrency} --latency-mean {args.latency_mean:g} --distribution {args.distribution} "
            f"--spread {args.spread:g} --patterns {','.join(patterns)}"
            + (f" --parallelism {args.parallelism}" if args.parallelism else "")
            + (f" --max-in-flight {args.max_in_flight}" if args.max_in_flight else "")
        )
        append_section("Throughput and worker time through a real scheduler + triggerer (fal, sandbox)", command, lines)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
