"""A worker killed (SIGKILL) at the worst moments of a submit, then the task run again.

Each run is ``dag.test()`` in a child process (tests/operators/dag_test_child.py) against the
sandbox, with the submission ledger in a SQLite file. The parent kills the child:

* right after the vendor answered and the ledger got the job id, but before the task state store
  did. To hold the child there, the parent takes the metadata database's write lock as soon as
  the submit intent appears, so the store write waits on it; the test checks that the store is
  indeed empty after the kill. The re-run must reattach: one submit, no duplicate.
* while the submit POST itself is in flight (the sandbox delays its answer, then creates the job
  anyway). The re-run must not resubmit that item: it is reported ``uncertain``, the others go on.
* while a batch delivers results, after writing the first. The re-run neither fetches nor writes
  what was written again.

The batch submits a round's items concurrently and delivers the results of an event concurrently,
so at a kill more than one item may be past its submit or its delivery; each test says which.

``dag.test()`` replaces the DAG run it re-runs, and with it the task state store: each re-run here
starts with no store at all, so the ledger (and the batch manifest) alone must prevent a second
submit. A retry that keeps its store is tested in tests/integration/test_crash_restart.py.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from airflow_bgreplace.ledger import LedgerState, SubmissionLedger
from tests.airflow_support import REPO, airflow_db  # noqa: F401 - fixture
from tests.conftest import make_product_photo, sandbox_connection

pytestmark = pytest.mark.slow

WHEN = "2026-11-20T02:00:00+00:00"
DAGS = {
    "crash_single": """
import os
import pendulum
from airflow.sdk import dag
from airflow_bgreplace.operators import FalReplaceBackgroundOperator

@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def crash_single():
    FalReplaceBackgroundOperator(
        task_id="restage",
        image_url=os.environ["CRASH_PHOTOS"] + "/p0.png",
        prompt="on a marble counter",
        output_path=os.environ["CRASH_OUT"] + "/restaged",
        poll_interval=0.2,
    )

crash_single()
""",
    "crash_batch": """
import os
import pendulum
from airflow.sdk import dag
from airflow_bgreplace.operators.batch import BgReplaceBatchOperator

@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def crash_batch():
    BgReplaceBatchOperator(
        task_id="batch",
        vendor="fal",
        items=[
            {"id": f"SKU-{n}", "inputs": {"image_url": os.environ["CRASH_PHOTOS"] + f"/p{n}.png", "prompt": "on slate"}}
            for n in range(3)
        ],
        output_base=os.environ["CRASH_OUT"] + "/batch",
        max_in_flight=3,
        poll_interval=0.2,
    )

crash_batch()
""",
}


class Crash:
    """The children's environment, the ledger they write, and the tools to kill them on cue."""

    def __init__(self, tmp_path: Path, sandbox: Any) -> None:
        self.sandbox = sandbox
        dags = tmp_path / "dags"
        dags.mkdir()
        for dag_id, source in DAGS.items():
            (dags / f"{dag_id}.py").write_text(source)
        photos = tmp_path / "photos"
        photos.mkdir()
        for n in range(3):
            (photos / f"p{n}.png").write_bytes(make_product_photo(colour=(60 * n, 120, 200 - 50 * n)))
        self.outputs = tmp_path / "outputs"
        ledger_url = f"sqlite:///{tmp_path}/bgreplace.db"
        self.ledger = SubmissionLedger(ledger_url)
        self.ledger.ensure_schema()
        self.metadata_db = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")
        self.logs = tmp_path / "logs"
        self.logs.mkdir()
        self.env = {
            **os.environ,
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__BGREPLACE__DATABASE_URL": ledger_url,
            "AIRFLOW__BGREPLACE__OUTPUT_BASE": f"file://{self.outputs}",
            "AIRFLOW_CONN_BGREPLACE_FAL_DEFAULT": sandbox_connection(sandbox, "fal"),
            "CRASH_PHOTOS": str(photos),
            "CRASH_OUT": f"file://{self.outputs}",
        }
        self._runs = 0

    def start(self, dag_id: str) -> subprocess.Popen[bytes]:
        self._runs += 1
        log = (self.logs / f"{dag_id}-{self._runs}.log").open("wb")
        return subprocess.Popen(
            [sys.executable, "-m", "tests.operators.dag_test_child", dag_id, WHEN],
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def run(self, dag_id: str, timeout_s: float = 240.0) -> dict[str, Any]:
        child = self.start(dag_id)
        child.wait(timeout_s)
        text = (self.logs / f"{dag_id}-{self._runs}.log").read_text(errors="replace")
        results = [line for line in text.splitlines() if line.startswith("RESULT ")]
        assert results, text[-4000:]
        return dict(json.loads(results[-1].removeprefix("RESULT ")))

    def wait_until(
        self, what: str, ready: Callable[[], bool], child: subprocess.Popen[bytes], timeout_s: float = 180.0
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            if child.poll() is not None:
                raise AssertionError(f"the child ended (rc {child.returncode}) before {what}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} after {timeout_s:.0f} s")
            time.sleep(0.01)

    @contextmanager
    def metadata_writes_held(self) -> Iterator[sqlite3.Connection]:
        """Hold the metadata database's write lock: the task state store cannot save until released."""
        connection = sqlite3.connect(self.metadata_db, isolation_level=None, timeout=30)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        finally:
            connection.execute("ROLLBACK")
            connection.close()

    def stats(self) -> dict[str, int]:
        return dict(self.sandbox.stats()["vendors"]["fal"])


@pytest.fixture
def crash(airflow_db: None, tmp_path: Path, bgreplace_sandbox: Any) -> Iterator[Crash]:  # noqa: F811
    helper = Crash(tmp_path, bgreplace_sandbox)
    yield helper
    helper.ledger.dispose()


def _kill_after_the_answer_before_the_store(crash: Crash, dag_id: str, task_id: str) -> dict[str, str]:
    """Run ``dag_id``; SIGKILL it once the ledger has the job ids of its submits and the store has
    none. The job id of each item submitted (one for the single operator; a batch submits its
    first round of three concurrently)."""
    crash.sandbox.inject_fault("fal", "slow", route="submit", slow_s=1.5)  # time to take the lock
    child = crash.start(dag_id)
    crash.wait_until("submit intent", lambda: bool(crash.ledger.entries()), child)
    with crash.metadata_writes_held() as metadata:
        crash.wait_until("job ids in the ledger", lambda: all(entry.job_id for entry in crash.ledger.entries()), child)
        time.sleep(0.3)  # the child is now waiting on the store write
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
        stored = metadata.execute(
            "SELECT key FROM task_state_store WHERE dag_id = ? AND task_id = ?", (dag_id, task_id)
        ).fetchall()
        [running] = metadata.execute(
            "SELECT state FROM task_instance WHERE dag_id = ? AND task_id = ?", (dag_id, task_id)
        ).fetchall()
    assert stored == [], "the kill came too late: the task state store already had the job"
    assert running == ("running",)
    entries = crash.ledger.entries()
    assert crash.stats()["submits_accepted"] == len(entries)
    assert all(entry.state is LedgerState.submitted and entry.job_id for entry in entries)
    return {entry.item_id: str(entry.job_id) for entry in entries}


def test_killed_between_the_vendor_answer_and_the_store_the_retry_reattaches(crash: Crash) -> None:
    [job_id] = _kill_after_the_answer_before_the_store(crash, "crash_single", "restage").values()

    result = crash.run("crash_single")

    assert result["state"] == "success"
    stats = crash.stats()
    assert stats["submits_accepted"] == 1 and stats["duplicate_submits"] == 0
    [entry] = crash.ledger.entries()
    assert entry.job_id == job_id and entry.state is LedgerState.succeeded and entry.attempt == 1
    assert entry.output_uri and Path(entry.output_uri.removeprefix("file://")).is_file()
    log = sorted(crash.logs.glob("crash_single-*.log"))[-1].read_text()
    assert f"Reattaching to fal job {job_id}" in log


def test_a_batch_killed_after_a_submit_reattaches_that_item_and_submits_the_rest(crash: Crash) -> None:
    job_ids = _kill_after_the_answer_before_the_store(crash, "crash_batch", "batch")

    result = crash.run("crash_batch")

    assert result["state"] == "success"
    stats = crash.stats()
    assert stats["submits_accepted"] == 3 and stats["duplicate_submits"] == 0
    rows = [json.loads(line) for line in (crash.outputs / "batch" / "manifest.jsonl").read_text().splitlines()]
    assert sorted(row["sku"] for row in rows) == ["SKU-0", "SKU-1", "SKU-2"]
    assert {row["status"] for row in rows} == {"succeeded"}
    assert {row["sku"]: row["job_id"] for row in rows if row["sku"] in job_ids} == job_ids  # reattached
    for row in rows:
        assert Path(row["output_uri"].removeprefix("file://")).is_file()
    assert {entry.state for entry in crash.ledger.entries()} == {LedgerState.succeeded}


def test_a_batch_killed_during_the_submit_post_reports_that_item_uncertain(crash: Crash) -> None:
    crash.sandbox.inject_fault("fal", "slow", route="submit", slow_s=3.0)
    child = crash.start("crash_batch")
    crash.wait_until("the submit in flight", lambda: crash.stats()["faults_injected"] >= 1, child)
    time.sleep(0.2)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(30)
    # The vendor got the request: it creates the job although nobody waits for the answer.
    deadline = time.monotonic() + 30
    while crash.stats()["submits_accepted"] < len(crash.ledger.entries()) and time.monotonic() < deadline:
        time.sleep(0.1)
    # The three went out in one round; the slowed one (whichever POST arrived first) has no job id,
    # the two others were answered and have theirs in the ledger.
    [intent] = [entry for entry in crash.ledger.entries() if entry.state is LedgerState.submitting]
    assert intent.job_id is None
    others = {"SKU-0", "SKU-1", "SKU-2"} - {intent.item_id}
    assert crash.stats()["submits_accepted"] == len(crash.ledger.entries())

    result = crash.run("crash_batch")

    assert result["state"] == "success"  # one doubtful item does not sink the batch
    stats = crash.stats()
    assert stats["submits_accepted"] == 3 and stats["duplicate_submits"] == 0  # none was sent again
    rows = {
        row["sku"]: row
        for row in map(json.loads, (crash.outputs / "batch" / "manifest.jsonl").read_text().splitlines())
    }
    assert {rows[sku]["status"] for sku in others} == {"succeeded"}
    doubtful = rows[intent.item_id]
    assert doubtful["status"] == "failed"
    assert doubtful["error"].startswith("uncertain:") and intent.key in doubtful["error"]
    entry = crash.ledger.get(intent.key)
    assert entry is not None and entry.state is LedgerState.uncertain


def test_a_batch_killed_while_delivering_results_does_not_write_them_twice(crash: Crash) -> None:
    # Every result download takes 2 s: the child dies after writing the first (the results of one
    # trigger event are fetched at once, so one to three rows may be written by then).
    crash.sandbox.inject_fault("fal", "slow", route="file", slow_s=2.0, count=3)
    manifest = crash.outputs / "batch" / "manifest.jsonl"
    child = crash.start("crash_batch")
    crash.wait_until(
        "a first result written", lambda: manifest.is_file() and manifest.read_text().count("\n") >= 1, child
    )
    os.kill(child.pid, signal.SIGKILL)
    child.wait(30)
    written = [json.loads(line)["sku"] for line in manifest.read_text().splitlines()]
    assert 1 <= len(written) <= 3
    time.sleep(2.5)  # downloads in flight at the kill still end (and count) at the sandbox
    downloads_before = crash.stats()["file_downloads"]

    result = crash.run("crash_batch")

    assert result["state"] == "success"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert sorted(row["sku"] for row in rows) == ["SKU-0", "SKU-1", "SKU-2"]  # the first not written again
    assert {row["status"] for row in rows} == {"succeeded"}
    stats = crash.stats()
    assert stats["submits_accepted"] == 3 and stats["duplicate_submits"] == 0
    assert stats["file_downloads"] - downloads_before == 3 - len(written)  # nor fetched again
    assert {entry.state for entry in crash.ledger.entries()} == {LedgerState.succeeded}


def test_mapped_operators_keep_the_retries_that_reattach() -> None:
    """``.partial()`` reads retry defaults from ``__init__``'s signature: mapped tasks must retry too."""
    import pendulum
    from airflow.sdk import DAG

    from airflow_bgreplace.operators import FalReplaceBackgroundOperator
    from airflow_bgreplace.operators.batch import BgReplaceBatchOperator

    with DAG("mapped_retries", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
        batch = BgReplaceBatchOperator.partial(task_id="batch").expand_kwargs([{"vendor": "fal", "items": []}])
        single = FalReplaceBackgroundOperator.partial(task_id="single", prompt="p").expand(image_url=["a", "b"])
        explicit = BgReplaceBatchOperator.partial(task_id="none", retries=0).expand_kwargs([{"vendor": "fal"}])
    assert batch.partial_kwargs["retries"] == single.partial_kwargs["retries"] == 2
    assert explicit.partial_kwargs["retries"] == 0
