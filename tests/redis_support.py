"""Redis for tests: find the local server and hand a test a database number of its own.

The server is expected on 127.0.0.1:6379 without auth; ``BGREPLACE_TEST_REDIS_URL`` (no database
number) overrides that. A test that needs it is skipped when it is absent, except under
``CI=true``, where that is a failure (see :func:`require_redis`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from tests.postgres_support import skip_or_fail

DEFAULT_URL = "redis://127.0.0.1:6379"


def find_redis() -> tuple[str | None, str]:
    """(URL of a reachable server, without a database number, or None; why not)."""
    url = os.environ.get("BGREPLACE_TEST_REDIS_URL", DEFAULT_URL).rstrip("/")
    try:
        import redis
    except ImportError:
        return None, "the redis client is not installed (pip install -e '.[celery]')"
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
        return url, ""
    except redis.RedisError as exc:
        return None, f"Redis not reachable at {url}: {type(exc).__name__}"
    finally:
        client.close()


def require_redis() -> str:
    """The server's URL; skip the test without one (fail under CI=true)."""
    url, reason = find_redis()
    if url is None:
        skip_or_fail(reason)
    assert url is not None
    return url


@contextmanager
def flushed_database(server_url: str, db: int) -> Iterator[str]:
    """``<server_url>/<db>``, emptied before and after: a broker nobody else's keys leak into."""
    import redis

    url = f"{server_url}/{db}"
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
        yield url
    finally:
        client.flushdb()
        client.close()
