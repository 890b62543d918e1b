"""The nightly DAG through a triggerer crash and a worker crash, with no job paid for twice.

Every process is real: api-server, scheduler, dag-processor and triggerer on a fresh PostgreSQL
database with the LocalExecutor, and the vendors' sandbox as its own process (jobs of 1-2 s,
concurrency raised so that a few hundred items take a couple of minutes). While the run goes on:

1. the triggerer is killed with SIGKILL while batch triggers wait on jobs, and a new one started;
2. a batch task's process is killed with SIGKILL in ``execute_complete`` while it fetches the
   results of that resume (result downloads are slowed to widen the window); its retry resumes
   from the task state store and fetches them again, without submitting anything again.

The run must succeed with exactly one accepted submit per item (the sandbox counts duplicates),
every output on disk and a valid image, and one succeeded row per item in the output manifest.
Run it alone on the machine: ``flock /tmp/heavy.lock .venv/bin/pytest tests/integration/test_crash_restart.py``.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from airflow_bgreplace.hooks import REMOTE_HOOKS
from airflow_bgreplace.ledger import LedgerState, SubmissionLedger
from airflow_bgreplace.results import safe_path_part
from airflow_bgreplace.sandbox.stack import AirflowStack
from tests.integration.conftest import EXAMPLES, StackFactory, write_catalog

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DAG_ID = "nightly_catalog_refresh"
ITEMS = {"fal": 150, "fashn": 150}
CATALOG = "crash"
WINDOW = 12  # jobs in flight per vendor batch
RUN_TIMEOUT_S = 300.0
#: A task supervisor notices its task's exit after a deferral up to ``min_heartbeat_interval``
#: (5 s) late; a trigger that fires within that time re-queues the task before the scheduler saw
#: the exit, and Airflow 3.3.2 then fails the running try (apache/airflow#67287, #71580).
RACE_GUARD = {"AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1"}


class Watch:
    """Samples the metadata database while the run goes on, and fires the two kills on cue."""

    def __init__(self, stack: AirflowStack, run_id: str, run_folder: Path, ledger: SubmissionLedger, sandbox: Any):
        self.stack = stack
        self.run_id = run_id
        self.run_folder = run_folder
        self.ledger = ledger
        self.sandbox = sandbox
        self.started = time.monotonic()
        self.events: list[str] = []
        self.triggerer_killed = False
        self.old_triggerer_id: int | None = None
        self.triggerer_ids_after: set[int] = set()
        self.downloads_slowed = False
        self.worker_killed: dict[str, Any] | None = None
        self._baseline: dict[tuple[int, int], tuple[int, int]] = {}
        self._vendors: list[str] | None = None
        self._last_trace = 0.0

    def note(self, text: str) -> None:
        self.events.append(f"{time.monotonic() - self.started:6.1f}s {text}")

    def vendors(self) -> list[str]:
        """Vendor of each map index of ``process`` (the ``batches`` task's XCom)."""
        if self._vendors is None:
            rows = self.stack.query(
                "SELECT value FROM xcom WHERE dag_id = :d AND run_id = :r AND task_id = 'batches'",
                d=DAG_ID,
                r=self.run_id,
            )
            if rows:
                value = rows[0][0]
                batches = json.loads(value) if isinstance(value, str) else value
                self._vendors = [batch["vendor"] for batch in batches]
        return self._vendors or []

    def manifest_rows(self, vendor: str) -> int:
        path = self.run_folder / "manifests" / f"{vendor}.jsonl"
        return sum(1 for line in path.read_text().splitlines() if line.strip()) if path.is_file() else 0

    def __call__(self, counts: Counter[str]) -> None:
        now = time.monotonic()
        if now - self._last_trace >= 5.0:
            self._last_trace = now
            triggers = self.stack.query("SELECT count(*), count(triggerer_id) FROM trigger")[0]
            self.note(
                f"tasks {dict(counts)}, triggers {triggers[0]} ({triggers[1]} assigned), "
                f"ledger {len(self.ledger.entries(run_id=self.run_id))}"
            )
        if not self.triggerer_killed:
            self._maybe_kill_triggerer()
        elif self.worker_killed is None:
            self._maybe_kill_worker()
        rows = self.stack.query("SELECT DISTINCT triggerer_id FROM trigger WHERE triggerer_id IS NOT NULL")
        if self.triggerer_killed:
            self.triggerer_ids_after.update(int(row[0]) for row in rows)

    def _maybe_kill_triggerer(self) -> None:
        waiting = self.stack.query(
            "SELECT t.triggerer_id FROM trigger t JOIN task_instance ti ON ti.trigger_id = t.id "
            "WHERE ti.dag_id = :d AND ti.run_id = :r AND ti.task_id = 'process' AND t.triggerer_id IS NOT NULL",
            d=DAG_ID,
            r=self.run_id,
        )
        submitted = len(self.ledger.entries(run_id=self.run_id))
        if waiting and submitted >= 2 * WINDOW:
            self.old_triggerer_id = int(waiting[0][0])
            self.stack.kill("triggerer-1")
            self.stack.start_triggerer()
            self.triggerer_killed = True
            self.note(
                f"kill -9 triggerer-1 (job {self.old_triggerer_id}) with {len(waiting)} batch triggers "
                f"waiting, {submitted} items submitted; triggerer-2 started"
            )

    def _maybe_kill_worker(self) -> None:
        if not self.downloads_slowed:
            for vendor in ITEMS:  # every result download of the next resumes takes ~0.8 s: a wide window
                self.sandbox.inject_fault(vendor, "slow", route="file", slow_s=0.8, count=60)
            self.downloads_slowed = True
        running = self.stack.query(
            "SELECT map_index, try_number, pid FROM task_instance WHERE dag_id = :d AND run_id = :r "
            "AND task_id = 'process' AND state = 'running' AND next_method = 'execute_complete' AND pid IS NOT NULL",
            d=DAG_ID,
            r=self.run_id,
        )
        vendors = self.vendors()
        stats = self.sandbox.stats()["vendors"] if running else {}
        live = set()
        for map_index, try_number, pid in running:
            if map_index >= len(vendors):
                continue
            vendor = vendors[map_index]
            key = (int(map_index), int(try_number))
            live.add(key)
            now = (int(stats[vendor]["faults_injected"]), self.manifest_rows(vendor))
            slowed, rows = self._baseline.setdefault(key, now)
            if now[0] > slowed or now[1] > rows:  # this resume is fetching (or has written) its results
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    continue
                self.worker_killed = {
                    "vendor": vendor,
                    "map_index": key[0],
                    "try_number": key[1],
                    "pid": int(pid),
                    "downloads_started": now[0] - slowed,
                    "rows_written": now[1] - rows,
                }
                self.note(
                    f"kill -9 task process {pid} ({vendor} batch, try {key[1]}) in execute_complete: "
                    f"{now[0] - slowed} result downloads started, {now[1] - rows} rows written"
                )
                return
        for key in list(self._baseline):  # a resume that deferred again starts a new baseline
            if key not in live:
                del self._baseline[key]


def test_nightly_dag_survives_triggerer_and_worker_kills_without_double_billing(
    tmp_path: Path, make_stack: StackFactory
) -> None:
    timings: dict[str, float] = {}
    started = time.monotonic()
    manifest, vendor_of = write_catalog(tmp_path / "catalog", ITEMS)
    outputs = tmp_path / "outputs"
    stack = make_stack([EXAMPLES / "nightly_catalog_refresh.py"], parallelism=4, env=RACE_GUARD)
    sandbox = stack.start_sandbox("--latency-s", "2", "--latency-spread", "0.25", "--concurrency", "fal=40,fashn=40")
    for vendor, hook in REMOTE_HOOKS.items():
        stack.env.update(sandbox.connection_env(vendor, hook.default_conn_name))
    stack.start(triggerers=1)
    timings["stack_up_s"] = time.monotonic() - started
    ledger = SubmissionLedger(stack.database_url)  # the provider database is the metadata database here

    run_id = stack.trigger(
        DAG_ID,
        conf={
            "manifest_uri": str(manifest),
            "catalog": CATALOG,
            "vendor": "fal",
            "output_base": f"file://{outputs}",
            "max_in_flight": WINDOW,
        },
    )
    run_folder = outputs / CATALOG / safe_path_part(run_id)
    watch = Watch(stack, run_id, run_folder, ledger, sandbox)
    try:
        state = stack.wait_for_run(DAG_ID, run_id, timeout_s=RUN_TIMEOUT_S, poll_s=0.25, on_poll=watch)
    finally:
        timings["run_s"] = time.monotonic() - started - timings["stack_up_s"]
        print("\n".join(watch.events))
    tries = stack.query(
        "SELECT task_id, map_index, state, try_number FROM task_instance WHERE dag_id = :d AND run_id = :r",
        d=DAG_ID,
        r=run_id,
    )
    assert state == "success", (tries, _tail(stack))

    # The two kills happened where intended.
    assert watch.triggerer_killed and watch.worker_killed is not None, watch.events
    assert watch.triggerer_ids_after - {watch.old_triggerer_id}, "no trigger ran on the new triggerer"
    killed = watch.worker_killed
    [[retried_try]] = [[row[3]] for row in tries if row[0] == "process" and row[1] == killed["map_index"]]
    assert retried_try > killed["try_number"], "the killed task was not retried"

    # Exactly one submit per item, at the vendors and in the ledger.
    stats = sandbox.stats()["vendors"]
    for vendor, count in ITEMS.items():
        assert stats[vendor]["submits_accepted"] == count, (vendor, stats[vendor])
        assert stats[vendor]["duplicate_submits"] == 0, (vendor, stats[vendor])
    entries = ledger.entries(run_id=run_id)
    assert len(entries) == sum(ITEMS.values())
    assert Counter(entry.state for entry in entries) == {LedgerState.succeeded: sum(ITEMS.values())}

    # Every item has exactly one succeeded row and its image.
    rows = [json.loads(line) for line in (run_folder / "output_manifest.jsonl").read_text().splitlines() if line]
    succeeded = Counter(row["sku"] for row in rows if row["status"] == "succeeded")
    assert succeeded == Counter(dict.fromkeys(vendor_of, 1))
    for row in rows:
        if row["status"] == "succeeded":
            with Image.open(row["output_uri"].removeprefix("file://")) as image:
                image.verify()
    lost = [sku for sku in vendor_of if sku not in succeeded]

    timings["total_s"] = time.monotonic() - started
    print(
        json.dumps(
            {
                "items": len(vendor_of),
                "kills": {"triggerer": 1, "worker": 1, "worker_detail": killed},
                "submits": {vendor: stats[vendor]["submits_accepted"] for vendor in ITEMS},
                "duplicates": sum(stats[vendor]["duplicate_submits"] for vendor in ITEMS),
                "lost": len(lost),
                "tries": sorted((row[0], row[1], row[3]) for row in tries),
                "timings": {key: round(value, 1) for key, value in timings.items()},
                "load_avg_1m": os.getloadavg()[0],
            }
        )
    )


def _tail(stack: AirflowStack) -> str:
    return "\n".join(f"--- {name}\n{process.log_tail(1500)}" for name, process in stack.processes.items())
