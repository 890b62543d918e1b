"""The nightly DAG, unchanged, on CeleryExecutor: Redis broker, PostgreSQL metadata and results.

Every process is real and started here: api-server, scheduler, dag-processor, two triggerers,
two Celery workers (``airflow celery worker``) and the vendors' sandbox, on a fresh PostgreSQL
database and a Redis database of the test's own. The catalog names two vendors, so the DAG maps
two batch tasks; each worker takes one task at a time, so both workers get work while both batches
are running. The run must succeed with exactly one submit per item and every output on disk.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_bgreplace.hooks import REMOTE_HOOKS
from airflow_bgreplace.sandbox.stack import AirflowStack, fresh_postgres_database
from tests.conftest import make_product_photo
from tests.postgres_support import skip_or_fail  # postgres_url: tests/integration/conftest.py's fixture
from tests.redis_support import flushed_database, require_redis

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

DAG_FILE = Path(__file__).resolve().parents[2] / "dags_examples" / "nightly_catalog_refresh.py"
DAG_ID = "nightly_catalog_refresh"
#: The broker's Redis database: this test's alone, flushed before and after.
REDIS_DB = 11
ITEMS_PER_VENDOR = {"fal": 12, "imagepipeline": 12}
IMAGEPIPELINE_TREATMENTS = ("remove", "color", "scene")


@pytest.fixture
def broker_url() -> Iterator[str]:
    try:
        import airflow.providers.celery  # noqa: F401
    except ImportError:
        skip_or_fail("apache-airflow-providers-celery is not installed (pip install -e '.[celery]')")
    with flushed_database(require_redis(), REDIS_DB) as url:
        yield url


def _catalog(folder: Path) -> tuple[Path, dict[str, str]]:
    """A manifest of distinct photos, each row naming its vendor; returns it and sku -> vendor."""
    (folder / "images").mkdir(parents=True)
    rows = ["sku,image,treatment,color,prompt,reference,vendor,output_format"]
    vendors: dict[str, str] = {}
    index = 0
    for vendor, count in ITEMS_PER_VENDOR.items():
        for number in range(count):
            sku = f"{vendor.upper()}-{number:02d}"
            image = f"images/{sku}.png"
            # A colour per item: the sandbox counts equal requests as duplicate submits.
            (folder / image).write_bytes(make_product_photo(colour=(10 * index % 250, 200 - 7 * index, 60)))
            treatment = "scene" if vendor == "fal" else IMAGEPIPELINE_TREATMENTS[number % 3]
            color = "#F4F1EA" if treatment == "color" else ""
            prompt = "on a marble counter in soft light" if treatment == "scene" else ""
            rows.append(f"{sku},{image},{treatment},{color},{prompt},,{vendor},")
            vendors[sku] = vendor
            index += 1
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest, vendors


def _executions_per_worker(stack: AirflowStack) -> tuple[Counter[str], float]:
    """Task executions each Celery worker received (one per task start, and one per resume after
    a deferral), and the worker-slot seconds they took in all (Celery's "succeeded in" lines)."""
    executions: Counter[str] = Counter()
    slot_s = 0.0
    for name, process in stack.processes.items():
        if name.startswith("celery-worker-"):
            log = process.log_tail(10**8)
            executions[name.removeprefix("celery-worker-")] = log.count("Executing workload in Celery")
            slot_s += sum(float(seconds) for seconds in re.findall(r"succeeded in ([0-9.]+)s", log))
    return executions, slot_s


def _settled_celery_results(stack: AirflowStack, executions: int, timeout_s: float = 30.0) -> dict[str, int]:
    """Celery's result rows by status, once every execution has one that is no longer STARTED.

    The run is done when its last task reports success to the api-server; the worker writes the
    Celery result a moment later.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        rows = {str(status): int(count) for status, count in stack.query(SQL_CELERY_RESULTS)}
        if (sum(rows.values()) >= executions and "STARTED" not in rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


SQL_CELERY_RESULTS = "SELECT status, count(*) FROM celery_taskmeta GROUP BY status"


def test_nightly_dag_runs_unchanged_on_celery(tmp_path: Path, postgres_url: str, broker_url: str) -> None:
    timings: dict[str, float] = {}
    started = time.monotonic()
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(DAG_FILE, dags / DAG_FILE.name)
    manifest, vendor_of = _catalog(tmp_path / "catalog")
    outputs = tmp_path / "outputs"

    with fresh_postgres_database(postgres_url) as database_url:
        stack = AirflowStack(
            tmp_path / "home",
            dags,
            database_url,
            executor="CeleryExecutor",
            env={
                "AIRFLOW__CELERY__BROKER_URL": broker_url,
                # Celery's SQLAlchemy result backend on the same database (psycopg 3 driver).
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + database_url,
                "AIRFLOW__BGREPLACE__OUTPUT_BASE": f"file://{outputs}",
                # One trigger per triggerer at a time: while both batches wait, each triggerer holds one.
                "AIRFLOW__TRIGGERER__CAPACITY": "1",
            },
        )
        with stack:
            sandbox = stack.start_sandbox("--latency-s", "3")
            for vendor, hook in REMOTE_HOOKS.items():
                stack.env.update(sandbox.connection_env(vendor, hook.default_conn_name))
            # One task at a time per worker: with two batch tasks running, each worker holds one.
            stack.start(triggerers=2, celery_workers=2, celery_concurrency=1)
            timings["stack up"] = time.monotonic() - started

            run_id = stack.trigger(DAG_ID, conf={"manifest_uri": str(manifest), "catalog": "celery", "vendor": "fal"})
            triggerers_seen: set[int] = set()

            def watch(_counts: Counter[str]) -> None:
                # Trigger rows are deleted once fired: sample who holds them while the run goes on.
                rows = stack.query("SELECT triggerer_id FROM trigger WHERE triggerer_id IS NOT NULL")
                triggerers_seen.update(int(row[0]) for row in rows)

            state = stack.wait_for_run(DAG_ID, run_id, timeout_s=240, poll_s=0.5, on_poll=watch)
            timings["run"] = time.monotonic() - started - timings["stack up"]

            task_rows = stack.query(
                "SELECT task_id, map_index, state, hostname FROM task_instance WHERE dag_id = :d AND run_id = :r",
                d=DAG_ID,
                r=run_id,
            )
            triggerer_jobs = stack.query(
                "SELECT id FROM job WHERE job_type = 'TriggererJob' AND state = 'running' "
                "AND latest_heartbeat > now() - interval '30 seconds'"
            )
            [[summary_json]] = stack.query(
                "SELECT value FROM xcom WHERE dag_id = :d AND run_id = :r AND task_id = 'publish' "
                "AND key = 'return_value'",
                d=DAG_ID,
                r=run_id,
            )
            executions, _ = _executions_per_worker(stack)
            # Each triggerer writes a task's trigger log as ``<attempt>.log.trigger.<triggerer job id>.log``.
            triggerers_seen.update(
                int(path.name.rsplit(".", 2)[-2]) for path in stack.task_log_files() if ".log.trigger." in path.name
            )
            celery_results = _settled_celery_results(stack, sum(executions.values()))
            _, slot_s = _executions_per_worker(stack)  # every execution has ended now
            processes_alive = {name: process.alive() for name, process in stack.processes.items()}
            stats = sandbox.stats()["vendors"]
            jobs = {vendor: sandbox.jobs(vendor) for vendor in ITEMS_PER_VENDOR}

    summary = summary_json if isinstance(summary_json, dict) else json.loads(summary_json)
    timings["total"] = time.monotonic() - started
    print(
        f"\ntimings_s={ {k: round(v, 1) for k, v in timings.items()} } tasks={sorted(task_rows)} "
        f"executions_per_worker={dict(executions)} triggerers_running={len(triggerer_jobs)} "
        f"triggerers_that_ran_triggers={sorted(triggerers_seen)} celery_results={celery_results} "
        f"submits={ {v: stats[v]['submits_accepted'] for v in ITEMS_PER_VENDOR} } "
        f"worker_slot_s={slot_s:.1f} ({slot_s / len(vendor_of):.2f} per item)"
    )

    assert state == "success", task_rows
    assert all(row[2] == "success" for row in task_rows), task_rows
    # Both batches ran: one mapped task per vendor.
    assert sorted(row[1] for row in task_rows if row[0] == "process") == [0, 1]

    # The Celery workers ran every task, and both of them ran some.
    assert {row[3] for row in task_rows} <= {"worker1", "worker2"}, task_rows
    assert executions["1"] >= 1 and executions["2"] >= 1, executions
    assert sum(executions.values()) >= len(task_rows)
    # Celery stored its results in PostgreSQL, one row per execution, none failed.
    assert celery_results == {"SUCCESS": sum(executions.values())}, celery_results

    # Both triggerers alive and heartbeating; both held triggers during the run.
    assert processes_alive["triggerer-1"] and processes_alive["triggerer-2"]
    assert len(triggerer_jobs) == 2
    assert triggerers_seen == {int(row[0]) for row in triggerer_jobs}, triggerers_seen

    # Exactly one submit per item, every result on disk.
    for vendor, count in ITEMS_PER_VENDOR.items():
        assert stats[vendor]["submits_accepted"] == count, stats[vendor]
        assert stats[vendor]["duplicate_submits"] == 0, stats[vendor]
        assert len(jobs[vendor]) == count
    assert summary["succeeded"] == len(vendor_of) and summary["failed"] == 0 and summary["invalid"] == 0
    rows = [
        json.loads(line) for line in Path(summary["output_manifest"].removeprefix("file://")).read_text().splitlines()
    ]
    assert sorted(row["sku"] for row in rows) == sorted(vendor_of)
    for row in rows:
        assert row["status"] == "succeeded" and row["vendor"] == vendor_of[row["sku"]], row
        output = Path(row["output_uri"].removeprefix("file://"))
        assert output.is_file() and output.stat().st_size > 0, row
