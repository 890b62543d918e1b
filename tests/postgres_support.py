"""PostgreSQL for tests and benches: find the local server, and a throwaway schema per run.

The server is expected on 127.0.0.1:5432 with trust auth and a database ``test`` (user
``postgres`` or ``root``); ``BGREPLACE_TEST_POSTGRES_URL`` overrides that. A test that needs it
is skipped when it is absent, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

CANDIDATE_URLS = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg://root@127.0.0.1:5432/test",
)


def find_postgres() -> tuple[str | None, str]:
    """(URL of a reachable server, or None; why not)."""
    import sqlalchemy as sa

    override = os.environ.get("BGREPLACE_TEST_POSTGRES_URL")
    urls = [override] if override else CANDIDATE_URLS
    reasons = []
    for url in urls:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3}, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
            return url, ""
        except Exception as exc:  # any failure means "not usable here"
            reasons.append(f"{sa.engine.make_url(url).render_as_string(hide_password=True)}: {type(exc).__name__}")
        finally:
            engine.dispose()
    return None, "PostgreSQL not reachable (" + "; ".join(reasons) + ")"


def skip_or_fail(reason: str) -> None:
    """Skip a test whose service is missing; under ``CI=true`` a missing service is a failure."""
    import pytest

    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run the tests that need it")
    pytest.skip(reason)


def require_postgres() -> str:
    """The reachable server's URL; skip the test without one (fail under CI=true)."""
    url, reason = find_postgres()
    if url is None:
        skip_or_fail(reason)
    assert url is not None
    return url


@contextmanager
def temporary_schema(base_url: str, prefix: str = "bgreplace_test") -> Iterator[str]:
    """A URL whose tables land in a new schema (via ``search_path``), dropped afterwards."""
    import sqlalchemy as sa

    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base_url, poolclass=sa.pool.NullPool)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield sa.engine.make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
