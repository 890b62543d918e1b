"""What the triggers of one triggerer process share per vendor connection.

Airflow's triggerer runs every trigger of the process as a task of one event loop. Left to
themselves, 10,000 job triggers held 10,000 HTTP clients and read fal 10,000 / 15 s = 667 times
a second, each webhook-mode trigger queried the store once a second, and ten batch triggers each
took the vendor's whole status limit for themselves (figures: ``bench/RESULTS.md``, "Triggerer
footprint"). Per event loop, so per triggerer process, this module gives them:

* :class:`StatusPace`: at most so many status reads a second per connection, in the order they
  were asked: the vendor's documented status limit with a margin (FASHN: 50 per 10 s), else
  :data:`~airflow_bgreplace.vendors.assumptions.STATUS_READS_PER_S`. Below ``rate x poll
  interval cap`` jobs nothing changes; past it, each job is read less often instead of the vendor
  being read more often (and the triggerer's CPU growing with the number of jobs).
* :func:`status_client`: one :class:`~airflow_bgreplace.vendors.base.AsyncVendorClient` (one
  connection pool, one TLS context) for the status reads of every trigger of a connection,
  paced by its :class:`StatusPace`; closed when its last trigger ends, and not handed to new
  triggers after :data:`CLIENT_MAX_AGE_S`, so a changed connection (a rotated key) is read again.
* :class:`CallbackWatcher`: in the webhook modes, one read of the store's new events per interval
  for every waiting job of a vendor, instead of one query per job.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from airflow_bgreplace.vendors.assumptions import BY_VENDOR, STATUS_RATE_MARGIN, STATUS_READS_PER_S

if TYPE_CHECKING:
    from airflow_bgreplace.hooks.base import BgReplaceHook
    from airflow_bgreplace.vendors.base import AsyncVendorClient
    from airflow_bgreplace.webhooks.store import StoredJobEvent, WebhookStore

#: A shared client is handed to new triggers for this long; then a new one reads the connection again.
CLIENT_MAX_AGE_S = 600.0
#: Job ids per store query when the watcher looks up newly registered jobs.
LOOKUP_CHUNK = 500


def status_reads_per_s(vendor: str) -> float:
    """Status reads a second one process allows itself on one connection of ``vendor``."""
    assumed = BY_VENDOR.get(vendor)
    if assumed is not None and assumed.status_rate:
        return assumed.status_rate / assumed.status_rate_window_s * STATUS_RATE_MARGIN
    return STATUS_READS_PER_S


class StatusPace:
    """Spaces calls ``1 / rate_per_s`` apart, with a burst of one second's worth; first come, first served.

    A virtual-scheduling (GCRA) limiter: each call reserves the next free slot when it asks, so
    waiting calls go in the order they asked, and an idle connection answers at once.
    """

    def __init__(self, rate_per_s: float) -> None:
        if rate_per_s <= 0:
            raise ValueError(f"rate_per_s must be positive, got {rate_per_s}")
        self.rate_per_s = rate_per_s
        self._interval = 1.0 / rate_per_s
        self._tolerance = max(0.0, (max(1.0, rate_per_s) - 1.0) * self._interval)
        self._next = 0.0  # the theoretical time of the next call

    def reserve(self, now: float) -> float:
        """Reserve a slot for a call asked at ``now``; returns the seconds to wait for it."""
        send_at = max(now, self._next - self._tolerance)
        self._next = max(self._next, send_at) + self._interval
        return send_at - now

    async def wait(self) -> None:
        delay = self.reserve(time.monotonic())
        if delay > 0:
            await asyncio.sleep(delay)


class PacedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that waits for its :class:`StatusPace` before each request (retries too)."""

    def __init__(self, pace: StatusPace, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.pace = pace
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self.pace.wait()
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class _SharedClient:
    client: AsyncVendorClient
    created: float
    users: int = 0


@dataclass
class _LoopShared:
    """Everything shared by the triggers of one event loop."""

    paces: dict[tuple[str, str], StatusPace] = field(default_factory=dict)
    clients: dict[tuple[str, str], _SharedClient] = field(default_factory=dict)
    building: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)
    watchers: dict[tuple[str, str], CallbackWatcher] = field(default_factory=dict)


_BY_LOOP: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopShared] = weakref.WeakKeyDictionary()


def _loop_shared() -> _LoopShared:
    loop = asyncio.get_running_loop()
    shared = _BY_LOOP.get(loop)
    if shared is None:
        shared = _BY_LOOP[loop] = _LoopShared()
    return shared


def status_pace(vendor: str, conn_id: str) -> StatusPace:
    """The pace of status reads on one connection, in this event loop."""
    paces = _loop_shared().paces
    key = (vendor, conn_id)
    if key not in paces:
        paces[key] = StatusPace(status_reads_per_s(vendor))
    return paces[key]


@asynccontextmanager
async def status_client(hook: BgReplaceHook) -> AsyncIterator[AsyncVendorClient]:
    """The connection's shared, paced client for status reads, for as long as the block runs."""
    shared = _loop_shared()
    key = (hook.vendor, hook.conn_id)
    lock = shared.building.setdefault(key, asyncio.Lock())
    async with lock:  # 10,000 triggers starting at once must build one client, not 10,000
        entry = shared.clients.get(key)
        if entry is None or time.monotonic() - entry.created > CLIENT_MAX_AGE_S:
            pace = status_pace(hook.vendor, hook.conn_id)
            http = httpx.AsyncClient(transport=PacedTransport(pace), follow_redirects=False)
            try:
                client = await hook.aget_client(http_client=http)
            except BaseException:
                await http.aclose()
                raise
            entry = shared.clients[key] = _SharedClient(client, time.monotonic())
        entry.users += 1
    try:
        yield entry.client
    finally:
        entry.users -= 1
        if entry.users == 0:
            if shared.clients.get(key) is entry:
                del shared.clients[key]
            await entry.client.aclose()


class CallbackWatcher:
    """Waits for final callbacks of many jobs of one vendor with one store read per interval.

    Each interval it reads the events stored since its cursor (``events_after``: sequences are
    handed out in commit order, so none is skipped) and looks up the jobs registered since the
    last interval (their callback may have come before they were registered). A stored
    non-terminal status (a progress callback) does not end a wait.
    """

    def __init__(self, store: WebhookStore, vendor: str) -> None:
        self.store = store
        self.vendor = vendor
        self._waiters: dict[str, list[asyncio.Future[StoredJobEvent]]] = {}
        self._new: set[str] = set()
        self._cursor: int | None = None
        self._check_s = float("inf")
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @classmethod
    def for_vendor(cls, store: WebhookStore, vendor: str) -> CallbackWatcher:
        """The watcher of (store, vendor) in this event loop."""
        watchers = _loop_shared().watchers
        key = (repr(store.url), vendor)
        if key not in watchers:
            watchers[key] = cls(store, vendor)
        return watchers[key]

    @property
    def waiting(self) -> int:
        return sum(1 for futures in self._waiters.values() for future in futures if not future.done())

    async def wait(self, job_id: str, check_s: float) -> StoredJobEvent:
        """Until a final callback of ``job_id`` is stored; cancel it (e.g. ``wait_for``) to stop waiting."""
        future: asyncio.Future[StoredJobEvent] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, []).append(future)
        self._new.add(job_id)
        if check_s < self._check_s:
            self._check_s = check_s
            self._wake.set()  # a shorter interval than the one being slept applies at once
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"bgreplace {self.vendor} callbacks")
        try:
            return await future
        finally:
            self._forget(job_id, future)

    def _forget(self, job_id: str, future: asyncio.Future[StoredJobEvent]) -> None:
        futures = self._waiters.get(job_id)
        if futures is None:
            return
        if future in futures:
            futures.remove(future)
        if not futures:
            del self._waiters[job_id]
            self._new.discard(job_id)

    async def _run(self) -> None:
        try:
            while self._waiters:
                await self._check()
                self._wake.clear()
                with suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._check_s)
        except Exception as exc:  # the store cannot be read: every waiter learns why, as with its own query
            for futures in self._waiters.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
        finally:
            self._cursor = None
            self._check_s = float("inf")

    async def _check(self) -> None:
        if self._cursor is None:
            self._cursor = await self.store.alatest_sequence(self.vendor)
        new, self._new = self._new, set()
        while True:  # every event since the cursor, oldest first
            events = await self.store.aevents_after(self._cursor, self.vendor, limit=LOOKUP_CHUNK)
            for event in events:
                self._resolve(event)
            if events:
                self._cursor = events[-1].sequence
            if len(events) < LOOKUP_CHUNK:
                break
        pending = sorted(job_id for job_id in new if job_id in self._waiters)
        for start in range(0, len(pending), LOOKUP_CHUNK):
            found = await self.store.aget_many(self.vendor, pending[start : start + LOOKUP_CHUNK])
            for event in found.values():
                self._resolve(event)

    def _resolve(self, event: StoredJobEvent) -> None:
        if not event.status.is_terminal:
            return
        for future in self._waiters.get(event.job_id, []):
            if not future.done():
                future.set_result(event)
