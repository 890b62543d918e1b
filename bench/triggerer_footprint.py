"""Triggerer footprint: CPU and memory of one real ``airflow triggerer`` awaiting many in-flight jobs.

    flock /tmp/heavy.lock .venv/bin/python bench/triggerer_footprint.py --jobs 1000 10000 --window 60

What runs (all separate processes on this machine):

* a fresh PostgreSQL database, migrated by ``airflow db migrate``; ``bench/dags/`` serialized
  into it by ``airflow dags reserialize``;
* ``airflow api-server`` (1 worker) and, per case, a fresh ``airflow triggerer`` — no scheduler,
  no dag-processor, no worker: the deferred work is seeded (below);
* ``bgreplace-sandbox`` as fal.ai: fixed job latency 86,400 s and no concurrency cap, so every
  job stays in flight (fal reports ``IN_QUEUE`` with queue position 0 for the whole case).

How the work is seeded, per case (``seed`` sub-command, run with the stack's environment so
that it writes through Airflow's ORM with the stack's Fernet key):

1. this process submits N jobs to the sandbox's fal queue API (``AsyncVendorClient``);
2. ``SerializedDAG.create_dagrun`` makes a running DagRun of ``bench_triggerer_footprint``
   (its ``verify_integrity`` makes the task instances of the serialized DAG); the upstream
   tasks are marked success, and the unexpanded placeholder (map_index -1) of the seeded mapped
   task is replaced by its expansion: one row per trigger (``TaskInstance.insert_mapping``,
   as the scheduler's expansion does), ``try_number`` 1;
3. per task instance, the trigger object the operator would defer with, stored as
   ``Trigger.from_object(trigger)`` (classpath + Fernet-encrypted ``serialize()`` kwargs); the
   task instance is set ``state=deferred``, ``trigger_id``, ``next_method="execute_complete"``,
   exactly the columns the Execution API's deferral route (``ti_update_state``) writes;
4. a new ``airflow triggerer`` assigns the triggers to itself (``triggerer_id`` set on every
   row is checked) and starts each one (its "trigger ... starting" log file is counted).

Shapes:

* ``job``: one ``BgReplaceJobTrigger`` per job (mapped ``FalReplaceBackgroundOperator``),
  polling with the operator's defaults (fal: first read after 1 s, backing off to 15 s);
* ``job-webhook``: the same with ``wait_for="webhook"``: each waits for its callback in the
  webhook store (the stack's PostgreSQL) and reads the vendor only once it came; none comes;
* ``batch``: ``BgReplaceBatchTrigger`` tasks of ``--batch-size`` jobs each (mapped
  ``BgReplaceBatchOperator`` with ``max_in_flight=1000``: 10 triggers for 10,000 jobs);
* ``floor``: ``DateTimeTrigger`` (``DateTimeSensorAsync``) a day ahead, one per task: what the
  triggerer costs with no provider code at all, for reference.

Measured over ``--window`` seconds after every trigger started and ``--settle`` more seconds:
CPU (user + system core-seconds per wall second) and RSS (mean and peak of the sum, sampled each
second), PSS and USS at the end, summed over the triggerer process and all its children (the
trigger runner subprocess, the log server); the sandbox's status calls per second during the
window (what the design costs the vendor's rate limit); task instances that left ``deferred``
(events fired). ``--profile DIR`` also records the trigger runner with py-spy (not in .venv by
default: ``.venv/bin/pip install py-spy``); a profiled case is not written to RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]  # results.py beside this file; tests.postgres_support

from results import append_section  # noqa: E402

DAG_ID = "bench_triggerer_footprint"
DAGS = ROOT / "bench" / "dags"
VENDOR = "fal"
CONN_ID = "bgreplace_fal_default"
ENDPOINT = "bria/replace-background"
#: The mapped task a shape's task instances belong to, and the source tasks marked done.
TASK_OF_SHAPE = {"job": "restage", "job-webhook": "restage", "batch": "batch", "floor": "wait_until"}
SOURCE_TASKS = ("images", "batches", "moments")
SHAPES = tuple(TASK_OF_SHAPE)
JOB_LATENCY_S = 86_400.0
DEADLINE_S = 86_400.0


# --------------------------------------------------------------------------- seeding (child process)


def build_triggers(spec: dict[str, Any]) -> list[Any]:
    """The trigger objects the operators would defer with, one per task instance."""
    from airflow_bgreplace.operators import FalReplaceBackgroundOperator
    from airflow_bgreplace.triggers.batch import BgReplaceBatchTrigger
    from airflow_bgreplace.triggers.job import BgReplaceJobTrigger
    from airflow_bgreplace.vendors.assumptions import BY_VENDOR

    shape, job_ids, deadline = spec["shape"], spec["job_ids"], spec["deadline_epoch"]
    poll_interval = FalReplaceBackgroundOperator.default_poll_interval()
    if shape in ("job", "job-webhook"):
        return [
            BgReplaceJobTrigger(
                vendor=VENDOR,
                conn_id=CONN_ID,
                endpoint=ENDPOINT,
                job_id=job_id,
                deadline_epoch=deadline,
                poll_interval=poll_interval,
                poll_interval_cap=15.0,  # the operator's default
                wait_for="webhook" if shape == "job-webhook" else "poll",
            )
            for job_id in job_ids
        ]
    if shape == "batch":
        size = spec["batch_size"]
        jobs = [{"id": f"sku-{i}", "endpoint": ENDPOINT, "job_id": job_id} for i, job_id in enumerate(job_ids)]
        return [
            BgReplaceBatchTrigger(
                vendor=VENDOR,
                conn_id=CONN_ID,
                jobs=jobs[start : start + size],
                deadline_epoch=deadline,
                poll_interval=BY_VENDOR[VENDOR].poll_interval_s,  # what the batch operator passes
            )
            for start in range(0, len(jobs), size)
        ]
    if shape == "floor":
        from datetime import datetime, timezone

        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        moment = datetime.fromtimestamp(deadline, timezone.utc)
        return [DateTimeTrigger(moment=moment) for _ in range(spec["jobs"])]
    raise ValueError(f"unknown shape {shape!r}")


def seed(spec: dict[str, Any]) -> dict[str, Any]:
    """A running DagRun whose mapped task instances are deferred on ``build_triggers(spec)``."""
    import sqlalchemy as sa
    from airflow._shared.timezones import timezone
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    triggers = build_triggers(spec)
    task_id = TASK_OF_SHAPE[spec["shape"]]
    started = time.monotonic()
    with create_session() as session:
        dag = SerializedDagModel.get_dag(DAG_ID, session=session)
        if dag is None:
            raise RuntimeError(f"{DAG_ID} is not serialized in this database")
        now = timezone.utcnow()
        run = dag.create_dagrun(
            run_id=spec["run_id"],
            run_after=now,
            start_date=now,
            run_type=DagRunType.MANUAL,
            triggered_by=DagRunTriggeredByType.CLI,
            state=DagRunState.RUNNING,
            session=session,
        )
        ti = TaskInstance
        of_run = (ti.dag_id == DAG_ID) & (ti.run_id == run.run_id)
        session.execute(
            sa.update(ti).where(of_run & ti.task_id.in_(SOURCE_TASKS)).values(state=TaskInstanceState.SUCCESS)
        )
        # The unexpanded placeholder gives way to one task instance per trigger, as expansion does.
        session.execute(sa.delete(ti).where(of_run & (ti.task_id == task_id)))
        rows = [Trigger.from_object(trigger) for trigger in triggers]
        session.add_all(rows)
        session.flush()
        task = dag.get_task(task_id)
        template = TaskInstance.insert_mapping(
            run.run_id, task, 0, dag_version_id=run.created_dag_version_id, dag_run=run
        )
        mappings = [
            {
                **template,
                "map_index": index,
                "state": TaskInstanceState.DEFERRED,
                "try_number": 1,
                "start_date": now,
                "trigger_id": row.id,
                "next_method": "execute_complete",
                "next_kwargs": None,
            }
            for index, row in enumerate(rows)
        ]
        session.execute(sa.insert(TaskInstance), mappings)
    return {"run_id": spec["run_id"], "triggers": len(rows), "task_instances": len(mappings),
            "seconds": round(time.monotonic() - started, 1)}


# --------------------------------------------------------------------------- the vendor's side


async def submit_jobs(base_url: str, n: int, concurrency: int = 32) -> list[str]:
    """N fal jobs at the sandbox, each on fal's own sample image (nothing to upload)."""
    from airflow_bgreplace.sandbox.fal import SAMPLE_IMAGE_URL
    from airflow_bgreplace.sandbox.server import DEFAULT_API_KEY
    from airflow_bgreplace.vendors.base import AsyncVendorClient
    from airflow_bgreplace.vendors.fal import FalApi

    gate = asyncio.Semaphore(concurrency)
    async with AsyncVendorClient(FalApi(), api_key=DEFAULT_API_KEY, base_url=base_url) as client:

        async def one(i: int) -> str:
            async with gate:
                job = await client.submit(ENDPOINT, image_url=SAMPLE_IMAGE_URL, prompt=f"bench scene {i}")
                return job.job_id

        return list(await asyncio.gather(*(one(i) for i in range(n))))


def status_calls(sandbox: Any) -> int:
    return int(sandbox.stats()["vendors"][VENDOR]["status_calls"])


# --------------------------------------------------------------------------- measuring


@dataclass
class Footprint:
    shape: str
    jobs: int
    triggers: int
    #: Triggers that had started (logged "trigger ... starting") when the window began.
    started: int
    window_s: float
    cpu_core_s_per_s: float
    rss_mb_mean: float
    rss_mb_peak: float
    pss_mb: float | None
    uss_mb: float | None
    status_calls_per_s: float
    events_fired: int
    load_1m: float
    startup_s: float
    per_process: dict[str, dict[str, float]] = field(default_factory=dict)
    profiled: bool = False


def process_tree(pid: int) -> list[Any]:
    import psutil

    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def describe(process: Any) -> str:
    try:
        cmdline = " ".join(process.cmdline())
    except Exception:  # gone, or a zombie
        return f"pid {process.pid}"
    # The flag `--skip-serve-logs` on the triggerer (and its forked runner) is not the log server.
    if "serve-logs" in cmdline.replace("--skip-serve-logs", "") or "serve_logs" in cmdline:
        return "log server"
    return f"{process.name()} {process.pid}"


def measure(
    pid: int, window_s: float
) -> tuple[float, list[float], dict[str, dict[str, float]], float | None, float | None]:
    """(core-seconds per second, RSS samples in MB, per-process figures, PSS MB, USS MB) over the window."""
    import psutil

    processes = process_tree(pid)

    def cpu(process: Any) -> float:
        times = process.cpu_times()
        return float(times.user + times.system)

    before = {p.pid: cpu(p) for p in processes}
    started = time.monotonic()
    samples: list[float] = []
    while time.monotonic() - started < window_s:
        rss = 0
        for process in processes:
            with suppress(psutil.NoSuchProcess):
                rss += process.memory_info().rss
        samples.append(rss / 2**20)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started) % 1.0))
    elapsed = time.monotonic() - started
    per_process: dict[str, dict[str, float]] = {}
    total = 0.0
    pss = uss = 0.0
    full = True
    for process in processes:
        try:
            used = cpu(process) - before[process.pid]
            info = process.memory_full_info()
        except psutil.NoSuchProcess:
            continue
        except psutil.AccessDenied:
            full = False
            continue
        total += used
        pss += getattr(info, "pss", 0.0)
        uss += info.uss
        per_process[describe(process)] = {
            "cpu_core_s_per_s": round(used / elapsed, 4),
            "rss_mb": round(info.rss / 2**20, 1),
            "uss_mb": round(info.uss / 2**20, 1),
        }
    return total / elapsed, samples, per_process, (pss / 2**20 if full else None), (uss / 2**20 if full else None)


def started_trigger_logs(home: Path, run_id: str) -> int:
    """Triggers that started: each writes "trigger ... starting" to its own log file first."""
    folder = home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}"
    return sum(1 for _ in folder.rglob("*.trigger.*.log")) if folder.exists() else 0


# --------------------------------------------------------------------------- one case


def run_case(stack: Any, sandbox: Any, shape: str, jobs: int, args: argparse.Namespace) -> Footprint:
    import sqlalchemy as sa

    engine = sa.create_engine(stack.database_url, poolclass=sa.pool.NullPool)
    sandbox.reset()
    job_ids: list[str] = []
    if shape != "floor":
        submitted = time.monotonic()
        job_ids = asyncio.run(submit_jobs(sandbox.vendor_url(VENDOR), jobs))
        print(f"  {jobs} jobs submitted to the sandbox in {time.monotonic() - submitted:.0f} s", flush=True)
    run_id = f"bench__{shape}_{jobs}_{int(time.time())}"
    spec = {
        "shape": shape,
        "jobs": jobs,
        "job_ids": job_ids,
        "batch_size": args.batch_size,
        "deadline_epoch": time.time() + DEADLINE_S,
        "run_id": run_id,
    }
    spec_path = stack.home / f"{run_id}.json"
    spec_path.write_text(json.dumps(spec))
    done = subprocess.run(
        [sys.executable, __file__, "seed", str(spec_path)],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"seeding failed:\n{done.stderr[-4000:]}")
    seeded = json.loads(done.stdout.strip().splitlines()[-1])
    triggers = int(seeded["triggers"])
    print(f"  seeded {seeded}", flush=True)

    started = time.monotonic()
    if args.skip_serve_logs:
        index = 1 + sum(1 for name in stack.processes if name.startswith("triggerer-"))
        triggerer = stack.spawn_airflow(f"triggerer-{index}", "triggerer", "--skip-serve-logs")
    else:
        triggerer = stack.start_triggerer()
    deadline = started + args.startup_timeout
    while True:
        stack.check_alive()
        with engine.connect() as connection:
            assigned = connection.execute(
                sa.text("SELECT count(*) FROM trigger WHERE triggerer_id IS NOT NULL")
            ).scalar_one()
        running = started_trigger_logs(stack.home, run_id)
        if assigned >= triggers and running >= triggers:
            break
        if time.monotonic() > deadline:  # measured all the same: a triggerer that cannot start them is a finding
            print(f"  only {assigned}/{triggers} assigned, {running} started after {args.startup_timeout:.0f} s",
                  flush=True)
            break
        time.sleep(2.0)
    startup_s = time.monotonic() - started
    print(f"  {running} of {triggers} triggers assigned and started after {startup_s:.0f} s; "
          f"settling {args.settle:.0f} s", flush=True)
    time.sleep(args.settle)
    running = started_trigger_logs(stack.home, run_id)

    profilers: list[subprocess.Popen[bytes]] = []
    if args.profile:  # the supervisor (the triggerer process itself) and the trigger runner
        args.profile.mkdir(parents=True, exist_ok=True)
        watched = [p for p in process_tree(triggerer.pid) if describe(p) != "log server"]
        for role, process in zip(("supervisor", "runner"), watched, strict=False):
            profilers.append(
                subprocess.Popen(
                    [shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"), "record", "--pid",
                     str(process.pid), "--duration", str(int(args.window)), "--rate", "50", "--format", "raw",
                     "--output", str(args.profile / f"{shape}_{jobs}_{role}.txt"), "--nonblocking"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
    calls_before = status_calls(sandbox)
    load_before = os.getloadavg()[0]
    cpu, rss, per_process, pss, uss = measure(triggerer.pid, args.window)
    calls = status_calls(sandbox) - calls_before
    load = max(load_before, os.getloadavg()[0])
    for profiler in profilers:
        profiler.wait(timeout=args.window + 60)
    with engine.connect() as connection:
        fired = connection.execute(
            sa.text("SELECT count(*) FROM task_instance WHERE run_id = :r AND state != 'deferred' "
                    "AND map_index >= 0"),
            {"r": run_id},
        ).scalar_one()
    stack.kill(triggerer.name)  # SIGKILL: the next case starts a new triggerer on a clean slate
    with engine.begin() as connection:  # nothing of this case may be picked up by the next triggerer
        connection.execute(
            sa.text("UPDATE task_instance SET state = 'success', trigger_id = NULL WHERE run_id = :r"),
            {"r": run_id},
        )
        connection.execute(sa.text("UPDATE dag_run SET state = 'success' WHERE run_id = :r"), {"r": run_id})
        connection.execute(sa.text("DELETE FROM trigger"))
    engine.dispose()
    return Footprint(
        shape=shape,
        jobs=jobs,
        triggers=triggers,
        started=running,
        window_s=args.window,
        cpu_core_s_per_s=round(cpu, 3),
        rss_mb_mean=round(statistics.fmean(rss), 1),
        rss_mb_peak=round(max(rss), 1),
        pss_mb=round(pss, 1) if pss is not None else None,
        uss_mb=round(uss, 1) if uss is not None else None,
        status_calls_per_s=round(calls / args.window, 1),
        events_fired=int(fired),
        load_1m=round(load, 2),
        startup_s=round(startup_s, 1),
        per_process=per_process,
        profiled=args.profile is not None,
    )


# --------------------------------------------------------------------------- the bench


def table(results: list[Footprint]) -> list[str]:
    lines = [
        "| shape | jobs | triggers (started) | startup s | CPU core-s/s | RSS MB mean (peak) | PSS MB | USS MB "
        "| status calls/s | events | load 1m |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.shape} | {r.jobs} | {r.triggers}{'' if r.started >= r.triggers else f' ({r.started})'} "
            f"| {r.startup_s:.0f} | {r.cpu_core_s_per_s:.3f} | {r.rss_mb_mean:.0f} "
            f"({r.rss_mb_peak:.0f}) | {r.pss_mb if r.pss_mb is not None else '-'} | "
            f"{r.uss_mb if r.uss_mb is not None else '-'} | {r.status_calls_per_s:.1f} | {r.events_fired} "
            f"| {r.load_1m:.2f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["seed"]:
        print(json.dumps(seed(json.loads(Path(argv[1]).read_text()))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--shapes", nargs="+", choices=SHAPES, default=["job", "batch"])
    parser.add_argument("--batch-size", type=int, default=1000, help="jobs per batch trigger")
    parser.add_argument("--window", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds after every trigger started")
    parser.add_argument("--startup-timeout", type=float, default=600.0)
    parser.add_argument(
        "--skip-serve-logs",
        action="store_true",
        help="triggerer without its log server (logs on shared or remote storage)",
    )
    parser.add_argument("--postgres-url", default=None, help="server URL (default: the test server)")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the trigger runner into this folder")
    parser.add_argument(
        "--source",
        type=Path,
        default=None,
        help="import the provider from this checkout (e.g. a `git worktree` of the commit to measure)",
    )
    parser.add_argument("--label", default="", help="added to the RESULTS.md section title")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to RESULTS.md")
    args = parser.parse_args(argv)

    from airflow_bgreplace.sandbox.stack import AirflowStack, fresh_postgres_database
    from tests.postgres_support import find_postgres

    server = args.postgres_url or find_postgres()[0]
    if server is None:
        print("PostgreSQL is needed (127.0.0.1:5432, or --postgres-url)", file=sys.stderr)
        return 2
    home = Path(tempfile.mkdtemp(prefix="bench-triggerer-"))
    results: list[Footprint] = []
    try:
        with fresh_postgres_database(server, prefix="bgreplace_footprint") as url:
            stack = AirflowStack(
                home,
                DAGS,
                url,
                env={
                    # Pick up a 10,000-trigger backlog in seconds rather than 50 per loop.
                    "AIRFLOW__TRIGGERER__MAX_TRIGGER_TO_SELECT_PER_LOOP": "2000",
                    "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                    # Ahead of the editable install: every process of the stack runs that code.
                    **({"PYTHONPATH": str(args.source.resolve())} if args.source else {}),
                },
            )
            with stack:
                sandbox = stack.start_sandbox(
                    "--latency-s", str(JOB_LATENCY_S), "--latency-distribution", "fixed", "--concurrency", "0"
                )
                stack.env.update(sandbox.connection_env(VENDOR, CONN_ID))
                stack.migrate()
                stack.run_cli("dags", "reserialize", timeout_s=300)
                stack.spawn_airflow("api-server", "api-server", "--port", str(stack.api_port), "--workers", "1")
                stack.wait_for_http(f"http://127.0.0.1:{stack.api_port}/api/v2/monitor/health", 120)
                for jobs in args.jobs:
                    for shape in args.shapes:
                        print(f"{shape}, {jobs} jobs:", flush=True)
                        result = run_case(stack, sandbox, shape, jobs, args)
                        print("  " + json.dumps(asdict(result)), flush=True)
                        results.append(result)
    finally:
        shutil.rmtree(home, ignore_errors=True)

    lines = table(results)
    print("\n".join(lines))
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    if not args.no_write and not args.profile:
        command = "flock /tmp/heavy.lock .venv/bin/python bench/triggerer_footprint.py " + shlex.join(argv)
        notes = [
            "",
            f"One `airflow triggerer` (+ its trigger runner{'' if args.skip_serve_logs else ' and log server'}), "
            f"{args.window:.0f} s window after every "
            f"trigger started and {args.settle:.0f} s more; fal in the sandbox with {JOB_LATENCY_S:.0f} s jobs. "
            "Target at 10,000 jobs: <= 0.2 core, <= 300 MB.",
            "",
            "Per process (CPU core-s/s, RSS MB): "
            + "; ".join(
                f"{r.shape} {r.jobs}: "
                + ", ".join(f"{name} {v['cpu_core_s_per_s']}/{v['rss_mb']}" for name, v in r.per_process.items())
                for r in results
            ),
        ]
        title = "Triggerer footprint" + (f" ({args.label})" if args.label else "")
        append_section(title, command, lines + notes)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a killed bench still stops its stack
    raise SystemExit(main())
