"""The last successful state of every catalog item, durable in the provider database.

An item is reprocessed only when its fingerprint (image content plus treatment parameters)
differs from the one recorded at its last success; a failed item is never recorded, so it is
retried the next night. To keep an unchanged night cheap on large catalogs, the image's content
hash is reused while its size and modification time are unchanged (the rsync rule), so a
100,000-item catalog is not re-read every night.

Table ``bgreplace_catalog_items``: (catalog, sku) → fingerprint, image key (path, size, mtime),
image content hash, reference hash, output URI, vendor, job id, time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import URL

from airflow_bgreplace.database import ProviderDatabase

TABLE = "bgreplace_catalog_items"


@dataclass(frozen=True)
class ItemState:
    """What is known of one item since its last success."""

    sku: str
    fingerprint: str
    image_key: str | None
    image_hash: str
    output_uri: str | None = None
    vendor: str | None = None
    job_id: str | None = None
    updated_at: datetime | None = None


class CatalogStateStore(ProviderDatabase):
    """Reads and writes :class:`ItemState` rows per catalog name (several catalogs share a database)."""

    schema_key: ClassVar[str] = TABLE

    def __init__(self, url: str | URL) -> None:
        super().__init__(url)
        self.items = sa.Table(
            TABLE,
            self.metadata,
            sa.Column("catalog", sa.String(255), primary_key=True),
            sa.Column("sku", sa.String(255), primary_key=True),
            sa.Column("fingerprint", sa.String(64), nullable=False),
            sa.Column("image_key", sa.Text, nullable=True),
            sa.Column("image_hash", sa.String(80), nullable=False),
            sa.Column("output_uri", sa.Text, nullable=True),
            sa.Column("vendor", sa.String(32), nullable=True),
            sa.Column("job_id", sa.String(255), nullable=True),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        )

    @classmethod
    def shared(cls) -> CatalogStateStore:
        from airflow_bgreplace import settings

        return cls.shared_at(settings.database_url())

    def load(self, catalog: str) -> dict[str, ItemState]:
        """Every recorded item of ``catalog`` (one query; ~100k rows load in well under a second)."""
        self.ensure_schema()
        columns = self.items.c
        query = sa.select(
            columns.sku,
            columns.fingerprint,
            columns.image_key,
            columns.image_hash,
            columns.output_uri,
            columns.vendor,
            columns.job_id,
            columns.updated_at,
        ).where(columns.catalog == catalog)
        with self.transaction(write=False) as connection:
            # Positional construction: ~2x faster than Row._asdict() per row at 100k rows.
            return {row[0]: ItemState(*row) for row in connection.execute(query)}

    def record_successes(self, catalog: str, states: Iterable[ItemState]) -> int:
        """Upsert the items that succeeded tonight (in batches; one transaction)."""
        self.ensure_schema()
        now = datetime.now(timezone.utc)
        rows = [
            {"catalog": catalog, **{k: v for k, v in state.__dict__.items() if k != "updated_at"}, "updated_at": now}
            for state in states
        ]
        if not rows:
            return 0
        with self.transaction(write=True) as connection:
            skus = [row["sku"] for row in rows]
            for start in range(0, len(skus), 500):
                chunk = skus[start : start + 500]
                connection.execute(
                    self.items.delete().where(self.items.c.catalog == catalog, self.items.c.sku.in_(chunk))
                )
            connection.execute(self.items.insert(), rows)
        return len(rows)

    def forget(self, catalog: str, skus: Iterable[str] | None = None) -> int:
        """Drop recorded state (all of a catalog, or some items): they are reprocessed next run."""
        self.ensure_schema()
        query = self.items.delete().where(self.items.c.catalog == catalog)
        if skus is not None:
            query = query.where(self.items.c.sku.in_(list(skus)))
        with self.transaction(write=True) as connection:
            return int(connection.execute(query).rowcount or 0)
