"""The provider's own database: SQLite by default, PostgreSQL where configured.

Two stores live in it: the webhook store (:mod:`airflow_bgreplace.webhooks.store`) and the
catalog state (:mod:`airflow_bgreplace.catalog.state`). It never touches Airflow's metadata
tables. One engine (and, on SQLite, one writer lock) per URL per process, shared by both stores.

SQLite runs in WAL mode (readers never wait for the writer) with a busy timeout, and writers
take the lock up front (``BEGIN IMMEDIATE``): a deferred transaction that reads then writes can
fail with "database is locked" instead of waiting.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from airflow_bgreplace.vendors.errors import BgReplaceError

#: How long a SQLite writer waits for the lock of another process (the api-server has several workers).
SQLITE_BUSY_TIMEOUT_S = 30.0
_WRITE = "bgreplace_write"  # execution option: SQLite starts the transaction with BEGIN IMMEDIATE

_engines: dict[str, tuple[Engine, threading.Lock]] = {}
_engines_lock = threading.Lock()

S = TypeVar("S", bound="ProviderDatabase")


class DatabaseError(BgReplaceError):
    """The provider database cannot be used (an unsupported URL, or a schema newer than this code)."""


def normalize_url(url: str | URL) -> URL:
    """``postgresql://`` and ``postgres://`` mean psycopg 3 (psycopg2 is not a dependency)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseError(f"unsupported database {parsed.get_backend_name()!r} (use SQLite or PostgreSQL)")
    return parsed


def _create_engine(url: URL) -> Engine:
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    database = url.database
    in_memory = not database or database == ":memory:"
    if not in_memory:
        Path(str(database)).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
        **({"poolclass": StaticPool} if in_memory else {}),
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (pysqlite's implicit transactions cannot BEGIN IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA synchronous=FULL")  # a 2xx to a vendor promises the delivery survives a power cut
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(_WRITE)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def engine_for(url: URL) -> tuple[Engine, threading.Lock]:
    """The process-wide engine of ``url`` and its writer lock."""
    key = url.render_as_string(hide_password=False)
    with _engines_lock:
        if key not in _engines:
            _engines[key] = (_create_engine(url), threading.Lock())
        return _engines[key]


class ProviderDatabase:
    """Base of a store: its tables in ``metadata``, created on first use (safe to race)."""

    #: Names the store in messages and in PostgreSQL's advisory lock for the first schema creation.
    schema_key: ClassVar[str]

    _shared: ClassVar[dict[tuple[type, str], ProviderDatabase]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, url: str | URL) -> None:
        self.url = normalize_url(url)
        self.metadata = sa.MetaData()
        self._ready = False
        self._lock = threading.RLock()

    def __repr__(self) -> str:  # never shows a database password
        return f"{type(self).__name__}({self.url.render_as_string(hide_password=True)!r})"

    @classmethod
    def shared_at(cls: type[S], url: str) -> S:
        """One store per class and URL per process (engines and pools are reused)."""
        with ProviderDatabase._shared_lock:
            key = (cls, url)
            if key not in ProviderDatabase._shared:
                ProviderDatabase._shared[key] = cls(url)
            store = ProviderDatabase._shared[key]
        assert isinstance(store, cls)
        return store

    @property
    def engine(self) -> Engine:
        return engine_for(self.url)[0]

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Connection]:
        # SQLite has one writer at a time; its busy handler makes waiting writers sleep in steps of
        # up to 100 ms, so writers of this process queue on a lock instead (other processes still
        # wait through busy_timeout).
        engine, writers = engine_for(self.url)
        queue = writers if write and self.url.get_backend_name() == "sqlite" else nullcontext()
        with queue, engine.connect() as connection:
            if write:
                connection.execution_options(**{_WRITE: True})
            with connection.begin():
                yield connection

    def ensure_schema(self) -> None:
        """Create the tables once (idempotent, safe when several processes start together)."""
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            with self.transaction(write=True) as connection:
                if connection.dialect.name == "postgresql":
                    # DDL is transactional there; the lock makes concurrent first uses wait, not fail.
                    connection.execute(
                        sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": self.schema_key}
                    )
                self.metadata.create_all(connection, checkfirst=True)
                self.migrate(connection)
            self._ready = True

    def migrate(self, connection: Connection) -> None:
        """Bring older schemas up to date (called inside the creating transaction)."""

    def drop(self) -> None:
        """Drop every table of the store (tests, uninstall)."""
        with self.transaction(write=True) as connection:
            self.metadata.drop_all(connection, checkfirst=True)
        self._ready = False

    def dispose(self) -> None:
        """Close the connection pool of this store's URL."""
        key = self.url.render_as_string(hide_password=False)
        with _engines_lock:
            entry = _engines.pop(key, None)
        if entry is not None:
            entry[0].dispose()
