"""One trigger waits on every in-flight job of a batch, and fires once enough of them have ended.

The batch operator keeps up to ``max_in_flight`` jobs at the vendor; between windows it defers to
this trigger, whose serialized kwargs hold the in-flight job ids, so a triggerer or worker restart
resumes the same jobs without a second submit.

A vendor that rejects jobs beyond its limit has a slot idle from the moment a job ends, so the
trigger fires on the first end (``min_finished=1``). A vendor that queues them keeps working from
its queue while the task resumes, so the trigger waits until that queue runs low: it reads the
newest job too, whose ``queue_position`` (fal) says how many wait ahead of it, and fires once at
most ``fire_below_queued`` wait (a vendor that reports no position: after ``min_finished`` ends).
Jobs start in the order they were submitted, so it reads only the ``poll_first`` oldest jobs not
seen ending: the k-th end of a FIFO queue with C slots is among its first C + k - 1 jobs, and the
paced status reads go where jobs can end.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_bgreplace.hooks import HOOKS
from airflow_bgreplace.triggers.shared import status_client, status_reads_per_s
from airflow_bgreplace.vendors.base import AsyncVendorClient
from airflow_bgreplace.vendors.errors import BgReplaceError, RateLimitError, TransientError
from airflow_bgreplace.vendors.polling import PollSchedule
from airflow_bgreplace.vendors.status import JobState, JobStatus

#: Failed polls in a row after which a job is given up (its own retries come first).
MAX_FAILED_POLLS = 5


class BgReplaceBatchTrigger(BaseTrigger):
    """Polls ``jobs`` (``[{"id", "endpoint", "job_id"}]``) and fires with every job that has ended.

    Event: ``{"finished": [{"id", "endpoint", "job_id", "job": JobStatus | None, "error": str | None}],
    "timeout": bool, "queued": int | None, "started_epoch": float, "fired_epoch": float,
    "read_round_s": float}``: the jobs waiting at the vendor when it fired (where known), when it
    began and fired, and how far apart its reads of a job were (the operator measures its resume).
    With no jobs it just sleeps ``wake_after_s`` (a rate-limited batch waits).

    :param min_finished: fire once this many jobs have ended (or every job, if fewer).
    :param fire_below_queued: fire once a job has ended and at most this many jobs wait in the
        vendor's queue (read from the newest job's queue position, where the vendor reports one).
    :param poll_first: read only the oldest this many jobs not seen ending (``jobs`` are in
        submission order); default all of them.
    """

    def __init__(
        self,
        *,
        vendor: str,
        conn_id: str,
        jobs: list[dict[str, Any]],
        deadline_epoch: float | None,
        poll_interval: float = 1.0,
        max_concurrent_polls: int = 16,
        wake_after_s: float | None = None,
        min_finished: int = 1,
        poll_first: int | None = None,
        fire_below_queued: int | None = None,
        **_retired: Any,
    ) -> None:
        super().__init__()
        self.vendor = vendor
        self.conn_id = conn_id
        self.jobs = jobs
        self.deadline_epoch = deadline_epoch
        self.poll_interval = poll_interval
        self.max_concurrent_polls = max_concurrent_polls
        self.wake_after_s = wake_after_s
        self.min_finished = max(1, min_finished)
        self.poll_first = poll_first
        self.fire_below_queued = fire_below_queued

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "vendor": self.vendor,
                "conn_id": self.conn_id,
                "jobs": self.jobs,
                "deadline_epoch": self.deadline_epoch,
                "poll_interval": self.poll_interval,
                "max_concurrent_polls": self.max_concurrent_polls,
                "wake_after_s": self.wake_after_s,
                "min_finished": self.min_finished,
                "poll_first": self.poll_first,
                "fire_below_queued": self.fire_below_queued,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        started = time.time()
        interval = self.poll_interval
        queued: int | None = None

        def event(finished: list[dict[str, Any]], timeout: bool = False) -> TriggerEvent:
            times = {"started_epoch": started, "fired_epoch": time.time(), "read_round_s": interval}
            return TriggerEvent({"finished": finished, "timeout": timeout, "queued": queued, **times})

        if not self.jobs:
            await asyncio.sleep(self.wake_after_s or self.poll_interval)
            yield event([])
            return
        wanted = min(self.min_finished, len(self.jobs))
        per_round = min(len(self.jobs), self.poll_first or len(self.jobs))
        # A steady interval, not a growing one: jobs end all the time in a batch, and a late read
        # leaves the vendor idle. It never goes below what the connection's pace of status reads
        # allows (the vendor's documented limit, else an assumed one; shared by every trigger of
        # the process, so ten batches on one connection do not read ten times as fast).
        interval = max(self.poll_interval, _min_round_interval(self.vendor, per_round))
        schedule = PollSchedule(first_s=interval, factor=1.0, cap_s=interval)
        failed_polls = {job["job_id"]: 0 for job in self.jobs}
        gate = asyncio.Semaphore(self.max_concurrent_polls)
        hook = HOOKS[self.vendor](self.conn_id)
        async with status_client(hook) as client:  # shared by the process's triggers, paced
            round_number = 0
            finished: list[dict[str, Any]] = []
            ended: set[str] = set()
            while True:
                round_started = time.monotonic()
                unseen = [job for job in self.jobs if job["job_id"] not in ended]
                polled = unseen[:per_round]
                if self.fire_below_queued is not None and unseen and unseen[-1] not in polled:
                    polled.append(unseen[-1])  # the newest: its queue position is the vendor's queue
                results = await asyncio.gather(*(self._poll(client, gate, job) for job in polled))
                queued = _waiting(results[-1]) if self.fire_below_queued is not None and results else None
                for job, outcome in zip(polled, results, strict=True):
                    if isinstance(outcome, JobStatus):
                        failed_polls[job["job_id"]] = 0
                        if outcome.is_terminal:
                            ended.add(job["job_id"])
                            finished.append({**job, "job": outcome.model_dump(mode="json", exclude={"raw"})})
                        continue
                    failed_polls[job["job_id"]] += 1
                    if failed_polls[job["job_id"]] > MAX_FAILED_POLLS or not _transient(outcome):
                        ended.add(job["job_id"])
                        finished.append({**job, "job": None, "error": f"{type(outcome).__name__}: {outcome}"})
                low = queued is not None and self.fire_below_queued is not None and queued <= self.fire_below_queued
                if len(finished) >= (len(self.jobs) if queued is not None else wanted) or (finished and low):
                    self.log.info("%s batch: %d of %d in-flight jobs ended", self.vendor, len(finished), len(self.jobs))
                    yield event(finished)
                    return
                if self.deadline_epoch is not None and time.time() >= self.deadline_epoch:
                    yield event(finished, timeout=True)  # what ended is delivered; the rest time out
                    return
                # From the round's start: a round that waited its turn at the pace has spent the interval.
                delay = max(0.0, schedule.delay_s(round_number) - (time.monotonic() - round_started))
                if self.deadline_epoch is not None:
                    delay = max(0.0, min(delay, self.deadline_epoch - time.time()))
                await asyncio.sleep(delay)
                round_number += 1

    async def _poll(
        self, client: AsyncVendorClient, gate: asyncio.Semaphore, job: dict[str, Any]
    ) -> JobStatus | BgReplaceError:
        async with gate:
            try:
                return await client.get_status(job["job_id"], job.get("endpoint"))
            except BgReplaceError as exc:
                return exc


def _min_round_interval(vendor: str, jobs: int) -> float:
    """Seconds one round of ``jobs`` status reads takes at the connection's pace of status reads."""
    return jobs / status_reads_per_s(vendor)


def _waiting(outcome: JobStatus | BgReplaceError) -> int | None:
    """Jobs waiting in the vendor's queue as the newest job sees it (itself included); None: unknown."""
    if not isinstance(outcome, JobStatus):
        return None
    if outcome.state is not JobState.queued:
        return 0  # the newest runs or ended: nothing waits
    return None if outcome.queue_position is None else outcome.queue_position + 1


def _transient(error: BaseException) -> bool:
    return isinstance(error, TransientError | RateLimitError)
