"""The webhook store: every accepted delivery, and the latest status of each vendor job.

The receiver writes here before it answers 2xx; triggers and sensors read here instead of
polling the vendor. The database is the Airflow setting ``[bgreplace] webhook_store_url``
(env ``AIRFLOW__BGREPLACE__WEBHOOK_STORE_URL``), by default the SQLite file
``$AIRFLOW_HOME/bgreplace.db`` (the provider database, ``[bgreplace] database_url``);
PostgreSQL works too (``postgresql://...`` uses psycopg 3).
The store never touches Airflow's own metadata tables.

Tables (created and versioned on first use, safe to race from several processes):

``bgreplace_webhook_schema_version``  one row per applied schema version
``bgreplace_webhook_sequence``        one counter row: the last sequence handed out
``bgreplace_webhook_deliveries``      every accepted delivery: vendor, job id, the vendor's delivery
                                      id, body hash, time, raw body, headers (secrets removed), how
                                      it was verified, whether it was a duplicate
``bgreplace_webhook_job_events``      one row per (vendor, job id): the status as JSON, first
                                      receipt, delivery count and ``sequence``

``sequence`` grows with every new event (or a terminal status replacing a non-terminal one), in
commit order: writers take the counter row's lock until they commit, so a reader of
:meth:`WebhookStore.events_after` never skips a row that commits late. A duplicate delivery only
increments ``delivery_count``.

Every method has an async twin (``arecord``, ``aget``, ``aget_many``, ``aevents_after``,
``alatest_sequence``, ``apurge``) that runs the same code in a worker thread, so an event loop
(the triggerer, the api-server) never blocks.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import IntegrityError

from airflow_bgreplace.database import DatabaseError, ProviderDatabase
from airflow_bgreplace.vendors.status import JobState, JobStatus

#: Bumped with every schema change; :meth:`WebhookStore.ensure_schema` migrates older stores.
SCHEMA_VERSION = 1
TABLE_PREFIX = "bgreplace_webhook_"
#: Header names never stored (our own or a proxy's credentials; the URL token is never stored).
_SECRET_HEADER_WORDS = ("authorization", "cookie", "token", "secret", "api-key", "apikey", "password")



class WebhookStoreError(DatabaseError):
    """The store cannot be used (an unsupported URL, or a schema newer than this code)."""


@dataclass(frozen=True)
class RecordResult:
    """What :meth:`WebhookStore.record` did: ``new`` is False for a duplicate delivery."""

    new: bool
    #: The event's sequence (for a duplicate: the one it already had).
    sequence: int


@dataclass(frozen=True)
class StoredJobEvent:
    """The stored status of one vendor job."""

    vendor: str
    job_id: str
    sequence: int
    status: JobStatus
    first_received_at: datetime
    delivery_count: int
    #: How the delivery that set ``status`` was authenticated (e.g. ``"ed25519"``).
    verified_by: str


def _tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table, sa.Table, sa.Table]:
    # BigInteger ids, except on SQLite where only INTEGER PRIMARY KEY autoincrements.
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    schema_version = sa.Table(
        f"{TABLE_PREFIX}schema_version",
        metadata,
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    )
    sequence = sa.Table(
        f"{TABLE_PREFIX}sequence",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last", sa.BigInteger, nullable=False),
    )
    deliveries = sa.Table(
        f"{TABLE_PREFIX}deliveries",
        metadata,
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column("vendor", sa.String(32), nullable=False),
        sa.Column("job_id", sa.String(255), nullable=False),
        sa.Column("delivery_id", sa.String(255)),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("raw_body", sa.LargeBinary, nullable=False),
        sa.Column("headers", sa.Text, nullable=False),
        sa.Column("verified_by", sa.String(64), nullable=False),
        sa.Column("duplicate", sa.Boolean, nullable=False),
        sa.Index(f"{TABLE_PREFIX}deliveries_job", "vendor", "job_id"),
    )
    job_events = sa.Table(
        f"{TABLE_PREFIX}job_events",
        metadata,
        sa.Column("vendor", sa.String(32), primary_key=True),
        sa.Column("job_id", sa.String(255), primary_key=True),
        sa.Column("sequence", sa.BigInteger, nullable=False, unique=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("verified_by", sa.String(64), nullable=False),
        sa.Column("first_received_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("delivery_count", sa.Integer, nullable=False),
    )
    return schema_version, sequence, deliveries, job_events


def safe_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers worth keeping for audit and replay tests, without credentials."""
    return {
        name.lower(): value
        for name, value in headers.items()
        if not any(word in name.lower() for word in _SECRET_HEADER_WORDS)
    }


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


class WebhookStore(ProviderDatabase):
    """Deliveries and job events in the provider database (thread-safe; one per process is enough)."""

    schema_key: ClassVar[str] = TABLE_PREFIX

    def __init__(self, url: str | URL) -> None:
        super().__init__(url)
        self._schema_version, self._sequence, self.deliveries, self.job_events = _tables(self.metadata)

    @classmethod
    def from_airflow_config(cls) -> WebhookStore:
        """A new store at ``[bgreplace] webhook_store_url`` (default: the provider database)."""
        from airflow_bgreplace import settings

        return cls(settings.webhook_store_url())

    @classmethod
    def shared(cls) -> WebhookStore:
        """The process-wide store at the configured URL (its engine and connection pool are reused)."""
        from airflow_bgreplace import settings

        return cls.shared_at(settings.webhook_store_url())

    def migrate(self, connection: Connection) -> None:
        version = connection.execute(sa.select(sa.func.max(self._schema_version.c.version))).scalar()
        if version is not None and version > SCHEMA_VERSION:
            raise WebhookStoreError(
                f"webhook store {self!r} has schema version {version}; this code knows {SCHEMA_VERSION}: upgrade it"
            )
        # Version 1 is the first: nothing to migrate from yet.
        if version is None:
            connection.execute(
                self._schema_version.insert().values(version=SCHEMA_VERSION, applied_at=datetime.now(timezone.utc))
            )
        if connection.execute(sa.select(self._sequence.c.id)).first() is None:
            highest = connection.execute(sa.select(sa.func.max(self.job_events.c.sequence))).scalar() or 0
            connection.execute(self._sequence.insert().values(id=1, last=highest))

    # -- writing -------------------------------------------------------------------
    def record(
        self,
        vendor: str,
        job_id: str,
        raw_body: bytes,
        headers: Mapping[str, str],
        status: JobStatus,
        verified_by: str,
        *,
        delivery_id: str | None = None,
        body_sha256: str | None = None,
        received_at: datetime | None = None,
    ) -> RecordResult:
        """Store one accepted delivery durably; returns whether it was new, and its event's sequence.

        The event of (vendor, job_id) is created by the first delivery. Later deliveries are
        duplicates: they are kept in ``deliveries`` and only increment ``delivery_count``, except
        that a terminal status replaces a non-terminal one (and gets a new sequence).
        """
        self.ensure_schema()
        received = received_at or datetime.now(timezone.utc)
        events = self.job_events
        values = {
            "state": status.state.value,
            "status": status.model_dump_json(),
            "verified_by": verified_by,
        }
        with self.transaction(write=True) as connection:
            existing = self._locked_event(connection, vendor, job_id)
            if existing is None:
                sequence = self._next_sequence(connection)
                try:
                    with connection.begin_nested():
                        connection.execute(
                            events.insert().values(
                                vendor=vendor,
                                job_id=job_id,
                                sequence=sequence,
                                first_received_at=received,
                                delivery_count=1,
                                **values,
                            )
                        )
                    new = True
                except IntegrityError:  # PostgreSQL: another worker stored the same job first
                    existing = self._locked_event(connection, vendor, job_id)
                    if existing is None:
                        raise
            if existing is not None:
                where = (events.c.vendor == vendor) & (events.c.job_id == job_id)
                replace = not JobState(existing.state).is_terminal and status.is_terminal
                update = events.update().where(where).values(delivery_count=events.c.delivery_count + 1)
                if replace:
                    sequence = self._next_sequence(connection)
                    update = update.values(sequence=sequence, **values)
                else:
                    sequence = int(existing.sequence)
                connection.execute(update)
                new = replace
            connection.execute(
                self.deliveries.insert().values(
                    vendor=vendor,
                    job_id=job_id,
                    delivery_id=delivery_id,
                    body_sha256=body_sha256 or hashlib.sha256(raw_body).hexdigest(),
                    received_at=received,
                    raw_body=raw_body,
                    headers=json.dumps(safe_headers(headers), sort_keys=True),
                    verified_by=verified_by,
                    duplicate=not new,
                )
            )
        return RecordResult(new=new, sequence=sequence)

    def _locked_event(self, connection: Connection, vendor: str, job_id: str) -> Any:
        events = self.job_events
        query = (
            sa.select(events.c.sequence, events.c.state)
            .where((events.c.vendor == vendor) & (events.c.job_id == job_id))
            .with_for_update()  # PostgreSQL row lock; SQLite already holds the database lock
        )
        return connection.execute(query).first()

    def _next_sequence(self, connection: Connection) -> int:
        # The counter row stays locked until commit, so sequences are handed out in commit order.
        counter = self._sequence
        query = counter.update().where(counter.c.id == 1).values(last=counter.c.last + 1).returning(counter.c.last)
        return int(connection.execute(query).scalar_one())

    def purge(self, older_than: timedelta) -> int:
        """Remove deliveries received, and job events first received, more than ``older_than`` ago.

        Returns the number of rows removed (deliveries plus job events).
        """
        self.ensure_schema()
        cutoff = datetime.now(timezone.utc) - older_than
        with self.transaction(write=True) as connection:
            deliveries = connection.execute(self.deliveries.delete().where(self.deliveries.c.received_at < cutoff))
            events = connection.execute(self.job_events.delete().where(self.job_events.c.first_received_at < cutoff))
        return int(deliveries.rowcount or 0) + int(events.rowcount or 0)

    # -- reading -------------------------------------------------------------------
    def get(self, vendor: str, job_id: str) -> StoredJobEvent | None:
        """The stored status of one job, or None when no delivery for it was accepted."""
        self.ensure_schema()
        events = self.job_events
        with self.transaction(write=False) as connection:
            row = connection.execute(
                sa.select(events).where((events.c.vendor == vendor) & (events.c.job_id == job_id))
            ).first()
        return _event(row) if row is not None else None

    def get_many(self, vendor: str, job_ids: Sequence[str]) -> dict[str, StoredJobEvent]:
        """The stored status of each of ``job_ids`` that has one, by job id (one query)."""
        if not job_ids:
            return {}
        self.ensure_schema()
        events = self.job_events
        with self.transaction(write=False) as connection:
            rows = connection.execute(
                sa.select(events).where((events.c.vendor == vendor) & events.c.job_id.in_(list(job_ids)))
            ).all()
        return {row.job_id: _event(row) for row in rows}

    def events_after(self, sequence: int, vendor: str | None = None, limit: int = 100) -> list[StoredJobEvent]:
        """Events with a sequence above ``sequence``, oldest first: pass the last one's as the next cursor."""
        self.ensure_schema()
        events = self.job_events
        query = sa.select(events).where(events.c.sequence > sequence)
        if vendor is not None:
            query = query.where(events.c.vendor == vendor)
        with self.transaction(write=False) as connection:
            rows = connection.execute(query.order_by(events.c.sequence).limit(max(1, limit))).all()
        return [_event(row) for row in rows]

    def latest_sequence(self, vendor: str | None = None) -> int:
        """The highest sequence stored (0 when none): where a new reader starts to see only new events."""
        self.ensure_schema()
        events = self.job_events
        query = sa.select(sa.func.max(events.c.sequence))
        if vendor is not None:
            query = query.where(events.c.vendor == vendor)
        with self.transaction(write=False) as connection:
            return int(connection.execute(query).scalar() or 0)

    def deliveries_of(self, vendor: str, job_id: str) -> list[dict[str, Any]]:
        """Every stored delivery of one job, oldest first (audit, tests): raw body and headers included."""
        self.ensure_schema()
        table = self.deliveries
        with self.transaction(write=False) as connection:
            rows = connection.execute(
                sa.select(table).where((table.c.vendor == vendor) & (table.c.job_id == job_id)).order_by(table.c.id)
            ).all()
        return [
            {**row._asdict(), "headers": json.loads(row.headers), "received_at": _utc(row.received_at)} for row in rows
        ]

    def counts(self) -> dict[str, int]:
        """Rows per table: ``{"deliveries": n, "job_events": m}``."""
        self.ensure_schema()
        with self.transaction(write=False) as connection:
            return {
                table.name.removeprefix(TABLE_PREFIX): int(
                    connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                )
                for table in (self.deliveries, self.job_events)
            }

    # -- async twins: the same calls in a worker thread --------------------------------
    async def arecord(
        self,
        vendor: str,
        job_id: str,
        raw_body: bytes,
        headers: Mapping[str, str],
        status: JobStatus,
        verified_by: str,
        **kwargs: Any,
    ) -> RecordResult:
        return await asyncio.to_thread(self.record, vendor, job_id, raw_body, headers, status, verified_by, **kwargs)

    async def aget(self, vendor: str, job_id: str) -> StoredJobEvent | None:
        return await asyncio.to_thread(self.get, vendor, job_id)

    async def aget_many(self, vendor: str, job_ids: Sequence[str]) -> dict[str, StoredJobEvent]:
        return await asyncio.to_thread(self.get_many, vendor, job_ids)

    async def aevents_after(
        self, sequence: int, vendor: str | None = None, limit: int = 100
    ) -> list[StoredJobEvent]:
        return await asyncio.to_thread(self.events_after, sequence, vendor, limit)

    async def alatest_sequence(self, vendor: str | None = None) -> int:
        return await asyncio.to_thread(self.latest_sequence, vendor)

    async def apurge(self, older_than: timedelta) -> int:
        return await asyncio.to_thread(self.purge, older_than)


def _event(row: Any) -> StoredJobEvent:
    return StoredJobEvent(
        vendor=row.vendor,
        job_id=row.job_id,
        sequence=int(row.sequence),
        status=JobStatus.model_validate_json(row.status),
        first_received_at=_utc(row.first_received_at),
        delivery_count=int(row.delivery_count),
        verified_by=row.verified_by,
    )
