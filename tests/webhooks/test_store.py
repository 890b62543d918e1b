"""The webhook store on SQLite and PostgreSQL: idempotent records, sequences, purge, async twins."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from airflow_bgreplace.database import DatabaseError, normalize_url
from airflow_bgreplace.vendors import JobState, JobStatus
from airflow_bgreplace.webhooks.store import (
    SCHEMA_VERSION,
    TABLE_PREFIX,
    RecordResult,
    WebhookStore,
    WebhookStoreError,
)


def _status(job_id: str, state: JobState = JobState.succeeded, vendor: str = "fal") -> JobStatus:
    urls = ["https://cdn.example/out.png"] if state is JobState.succeeded else []
    return JobStatus(vendor=vendor, endpoint="e", job_id=job_id, state=state, result_urls=urls, raw={"id": job_id})


def _record(
    store: WebhookStore,
    job_id: str,
    state: JobState = JobState.succeeded,
    vendor: str = "fal",
    received_at: datetime | None = None,
) -> RecordResult:
    status = _status(job_id, state, vendor)
    return store.record(vendor, job_id, b'{"x": 1}', {}, status, "ed25519", received_at=received_at)


def test_first_delivery_creates_the_event_and_a_duplicate_only_counts(store: WebhookStore) -> None:
    headers = {
        "Content-Type": "application/json",
        "Authorization": "Bearer k",
        "X-Api-Key": "k",
        "X-Fal-Webhook-User-Id": "u",
    }
    first = store.record("fal", "req-1", b'{"a": 1}', headers, _status("req-1"), "ed25519", delivery_id="d-1")
    again = store.record("fal", "req-1", b'{"a": 2}', {}, _status("req-1", JobState.failed), "ed25519")

    assert first.new and not again.new and again.sequence == first.sequence
    event = store.get("fal", "req-1")
    assert event is not None
    assert event.status == _status("req-1") and event.delivery_count == 2 and event.verified_by == "ed25519"
    assert event.first_received_at.tzinfo is not None
    deliveries = store.deliveries_of("fal", "req-1")
    assert [(d["duplicate"], d["raw_body"], d["delivery_id"]) for d in deliveries] == [
        (False, b'{"a": 1}', "d-1"),
        (True, b'{"a": 2}', None),
    ]
    assert deliveries[0]["headers"] == {"content-type": "application/json", "x-fal-webhook-user-id": "u"}
    assert store.get("fal", "other") is None and store.get("fashn", "req-1") is None


def test_events_after_a_cursor_come_in_sequence_order(store: WebhookStore) -> None:
    sequences = [_record(store, f"job-{i}", vendor="fal" if i % 2 else "fashn").sequence for i in range(6)]
    assert sequences == sorted(sequences) and len(set(sequences)) == 6

    everything = store.events_after(0)
    assert [event.job_id for event in everything] == [f"job-{i}" for i in range(6)]
    assert [event.job_id for event in store.events_after(sequences[2])] == ["job-3", "job-4", "job-5"]
    assert [event.job_id for event in store.events_after(0, vendor="fal")] == ["job-1", "job-3", "job-5"]
    assert [event.job_id for event in store.events_after(0, limit=2)] == ["job-0", "job-1"]
    assert store.events_after(sequences[-1]) == []
    assert store.latest_sequence() == sequences[-1] and store.latest_sequence("fashn") == sequences[4]
    assert store.latest_sequence("runflow") == 0


def test_a_terminal_status_replaces_a_non_terminal_one_with_a_new_sequence(store: WebhookStore) -> None:
    running = _record(store, "job-r", JobState.running)
    _record(store, "job-other")
    done = _record(store, "job-r", JobState.succeeded)
    late = _record(store, "job-r", JobState.running)

    assert running.new and done.new and not late.new
    assert done.sequence > running.sequence and late.sequence == done.sequence
    event = store.get("fal", "job-r")
    assert event is not None and event.status.state is JobState.succeeded and event.delivery_count == 3
    assert store.events_after(running.sequence)[-1].job_id == "job-r"


def test_purge_removes_old_rows_only_and_sequences_keep_growing(store: WebhookStore) -> None:
    old = datetime.now(timezone.utc) - timedelta(days=40)
    _record(store, "old-1", received_at=old)
    _record(store, "old-1", received_at=old)
    last_old = _record(store, "old-2", received_at=old).sequence
    _record(store, "new-1")

    removed = store.purge(timedelta(days=30))

    assert removed == 3 + 2  # three deliveries and two job events
    assert store.get("fal", "old-1") is None and store.get("fal", "new-1") is not None
    assert store.counts() == {"deliveries": 1, "job_events": 1}
    assert _record(store, "new-2").sequence > last_old
    assert store.purge(timedelta(days=30)) == 0


@pytest.mark.anyio
async def test_async_twins_give_the_same_answers(store: WebhookStore) -> None:
    result = await store.arecord("fashn", "p-1", b"{}", {}, _status("p-1", vendor="fashn"), "token")
    event = await store.aget("fashn", "p-1")
    events = await store.aevents_after(0, vendor="fashn")

    assert result.new and event is not None and event.sequence == result.sequence
    assert [e.job_id for e in events] == ["p-1"]
    assert await store.alatest_sequence() == result.sequence
    assert await store.apurge(timedelta(seconds=-1)) == 2


def test_concurrent_writers_get_unique_increasing_sequences(store: WebhookStore) -> None:
    def write(worker: int) -> list[int]:
        return [_record(store, f"w{worker}-{i}").sequence for i in range(10)]

    with ThreadPoolExecutor(8) as pool:
        per_worker = list(pool.map(write, range(8)))

    flat = [sequence for sequences in per_worker for sequence in sequences]
    assert len(set(flat)) == 80 and all(s == sorted(s) for s in per_worker)
    assert [e.sequence for e in store.events_after(0, limit=1000)] == sorted(flat)


def test_schema_is_created_once_versioned_and_shared_by_instances(store: WebhookStore) -> None:
    _record(store, "job-1")
    other = WebhookStore(store.url)
    other.ensure_schema()
    try:
        assert other.get("fal", "job-1") is not None
        with other.engine.connect() as connection:
            versions = connection.execute(sa.text(f"SELECT version FROM {TABLE_PREFIX}schema_version")).scalars().all()
        assert versions == [SCHEMA_VERSION]
    finally:
        other.dispose()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/w.db"
    WebhookStore(url).ensure_schema()
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(f"INSERT INTO {TABLE_PREFIX}schema_version (version, applied_at) VALUES (:v, '2030-01-01')"),
            {"v": SCHEMA_VERSION + 1},
        )
    engine.dispose()

    with pytest.raises(WebhookStoreError, match="schema version"):
        WebhookStore(url).get("fal", "x")


def test_sqlite_runs_in_wal_mode(sqlite_store: WebhookStore) -> None:
    sqlite_store.ensure_schema()
    with sqlite_store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_urls_are_normalised_and_other_databases_refused() -> None:
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    with pytest.raises(DatabaseError, match="unsupported"):
        normalize_url("mysql://u@h/db")
    assert "secret" not in repr(WebhookStore("postgresql://u:secret@h/db"))


def test_the_store_location_comes_from_the_airflow_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AIRFLOW__BGREPLACE__WEBHOOK_STORE_URL", raising=False)
    assert str(WebhookStore.from_airflow_config().url).endswith("/bgreplace.db")

    monkeypatch.setenv("AIRFLOW__BGREPLACE__WEBHOOK_STORE_URL", f"sqlite:///{tmp_path}/configured.db")
    assert WebhookStore.from_airflow_config().url.database == f"{tmp_path}/configured.db"
    assert WebhookStore.shared() is WebhookStore.shared()
