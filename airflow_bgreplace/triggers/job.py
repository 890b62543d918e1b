"""One trigger waits on one vendor job, for every vendor.

The vendor differences live in the client; this loop only asks for the status with backoff
(:func:`~airflow_bgreplace.vendors.polling.wait_for_terminal`) and fires exactly one event.
In the webhook modes it first waits for the vendor's callback to reach the provider's webhook
store (a cheap local read), then confirms the final state with the vendor: one status call,
which also brings fresh result URLs (a callback's URLs may already have expired).

The job triggers of one triggerer process share, per connection, one HTTP client and one pace
of status reads, and per vendor one reader of the webhook store (:mod:`.shared`): thousands of
jobs in flight cost the vendor and the triggerer a bounded number of reads a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_bgreplace.hooks import HOOKS, BgReplaceHook
from airflow_bgreplace.triggers.shared import CallbackWatcher, status_client
from airflow_bgreplace.vendors.errors import BgReplaceError, CancelNotSupportedError
from airflow_bgreplace.vendors.polling import PollSchedule, wait_for_terminal
from airflow_bgreplace.vendors.status import JobStatus

#: Event statuses a trigger may fire; execute_complete accepts nothing else.
EVENT_STATUSES = frozenset({"succeeded", "failed", "cancelled", "timeout", "error"})
#: Past the deadline, the read under way may still finish (its answer may say the job ended).
FINAL_READ_GRACE_S = 10.0


def job_event(
    status: str,
    *,
    vendor: str,
    endpoint: str | None,
    job_id: str,
    message: str = "",
    job: JobStatus | None = None,
    error_type: str | None = None,
) -> dict[str, Any]:
    """The payload every trigger and the sync path produce (plain JSON: it goes through the DB)."""
    assert status in EVENT_STATUSES
    return {
        "status": status,
        "vendor": vendor,
        "endpoint": endpoint,
        "job_id": job_id,
        "message": message,
        "error_type": error_type,
        "job": job.model_dump(mode="json", exclude={"raw"}) if job is not None else None,
    }


def event_for_status(job: JobStatus) -> dict[str, Any]:
    """Terminal state -> event; a non-terminal last status means the deadline passed."""
    if not job.is_terminal:
        message = f"still {job.state.value} when the timeout passed"
        return job_event(
            "timeout", vendor=job.vendor, endpoint=job.endpoint, job_id=job.job_id, message=message, job=job
        )
    message = "" if job.state.value == "succeeded" else job.describe_error()
    return job_event(
        job.state.value, vendor=job.vendor, endpoint=job.endpoint, job_id=job.job_id, message=message, job=job
    )


class BgReplaceJobTrigger(BaseTrigger):
    """Follows one vendor job until it ends or ``deadline_epoch`` passes; fires one event.

    :param vendor: ``runflow``, ``fashn``, ``fal`` or ``imagepipeline``.
    :param conn_id: the vendor connection (read through async access only).
    :param endpoint: the vendor endpoint the job runs on (needed to poll ImagePipeline).
    :param job_id: the vendor's job id.
    :param deadline_epoch: absolute wall-clock deadline (Unix seconds), so a triggerer restart
        does not extend it.
    :param poll_interval: first delay between status reads; grows up to ``poll_interval_cap``.
    :param cancel_on_kill: cancel the vendor job when a user kills the deferred task (where the
        vendor can cancel).
    :param wait_for: ``"poll"``: read the status with backoff. ``"webhook"``: wait for the job's
        final callback in the webhook store, then confirm with one status read; no callback by
        the deadline is a ``timeout`` event, without reading the vendor. ``"webhook_or_poll"``:
        like ``"webhook"``, but poll when no callback came within ``webhook_grace_s``.
    :param webhook_grace_s: seconds to wait for the callback before polling (``webhook_or_poll``).
    :param store_check_s: seconds between reads of the webhook store (a local database).
    """

    def __init__(
        self,
        *,
        vendor: str,
        conn_id: str,
        endpoint: str | None,
        job_id: str,
        deadline_epoch: float | None,
        poll_interval: float = 1.0,
        poll_interval_cap: float = 15.0,
        cancel_on_kill: bool = True,
        wait_for: str = "poll",
        webhook_grace_s: float = 600.0,
        store_check_s: float = 1.0,
        **_retired: Any,  # accept and ignore kwargs of older versions: in-flight triggers survive upgrades
    ) -> None:
        super().__init__()
        self.vendor = vendor
        self.conn_id = conn_id
        self.endpoint = endpoint
        self.job_id = job_id
        self.deadline_epoch = deadline_epoch
        self.poll_interval = poll_interval
        self.poll_interval_cap = poll_interval_cap
        self.cancel_on_kill = cancel_on_kill
        self.wait_for = wait_for
        self.webhook_grace_s = webhook_grace_s
        self.store_check_s = store_check_s
        self._last_status: JobStatus | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "vendor": self.vendor,
                "conn_id": self.conn_id,
                "endpoint": self.endpoint,
                "job_id": self.job_id,
                "deadline_epoch": self.deadline_epoch,
                "poll_interval": self.poll_interval,
                "poll_interval_cap": self.poll_interval_cap,
                "cancel_on_kill": self.cancel_on_kill,
                "wait_for": self.wait_for,
                "webhook_grace_s": self.webhook_grace_s,
                "store_check_s": self.store_check_s,
            },
        )

    def _hook(self) -> BgReplaceHook:
        return HOOKS[self.vendor](self.conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        schedule = PollSchedule(first_s=self.poll_interval, cap_s=max(self.poll_interval, self.poll_interval_cap))
        try:
            if self.wait_for in ("webhook", "webhook_or_poll"):
                called_back = await self._wait_for_callback()
                if not called_back and self.wait_for == "webhook":
                    # "webhook" never reads the vendor without a callback: a lost one must show.
                    yield TriggerEvent(self._no_callback_event())
                    return
            job = await self._poll(schedule)
            if job is None:
                yield TriggerEvent(self._timeout_unread_event())
                return
        except BgReplaceError as exc:
            yield TriggerEvent(
                job_event(
                    "error",
                    vendor=self.vendor,
                    endpoint=self.endpoint,
                    job_id=self.job_id,
                    message=str(exc),
                    error_type=type(exc).__name__,
                )
            )
            return
        yield TriggerEvent(event_for_status(job))

    async def _poll(self, schedule: PollSchedule) -> JobStatus | None:
        """Read the status until it is terminal or the deadline passes, through the shared paced client."""
        async with status_client(self._hook()) as client:
            polling = client.run(
                wait_for_terminal(
                    client.api,
                    self.endpoint,
                    self.job_id,
                    schedule,
                    self.deadline_epoch,
                    on_status=self._log_progress,
                )
            )
            if self.deadline_epoch is None:
                return await polling
            # A read may wait its turn at the pace past the deadline: the deadline still holds.
            remaining = self.deadline_epoch - time.time() + FINAL_READ_GRACE_S
            try:
                return await asyncio.wait_for(polling, timeout=max(remaining, 0.0))
            except asyncio.TimeoutError:
                return self._last_status  # not terminal, or None: a timeout event either way

    async def _wait_for_callback(self) -> bool:
        """Until a final callback is stored, the deadline passes or (``webhook_or_poll``) the grace ends.

        A progress callback (a stored non-terminal status) is not the end of the job.
        """
        from airflow_bgreplace.webhooks.store import WebhookStore

        watcher = CallbackWatcher.for_vendor(WebhookStore.shared(), self.vendor)
        end = self.deadline_epoch if self.deadline_epoch is not None else float("inf")
        if self.wait_for == "webhook_or_poll":
            end = min(end, time.time() + self.webhook_grace_s)
        waiting = watcher.wait(self.job_id, self.store_check_s)
        try:
            if end == float("inf"):
                stored = await waiting
            else:
                stored = await asyncio.wait_for(waiting, timeout=max(end - time.time(), 0.0))
        except asyncio.TimeoutError:
            pass
        else:
            self.log.info("%s job %s: callback received (%s)", self.vendor, self.job_id, stored.status.state.value)
            return True
        if self.wait_for == "webhook_or_poll":
            self.log.warning(
                "%s job %s: no callback within %.0f s; polling the vendor",
                self.vendor,
                self.job_id,
                self.webhook_grace_s,
            )
        return False

    def _no_callback_event(self) -> dict[str, Any]:
        return job_event(
            "timeout",
            vendor=self.vendor,
            endpoint=self.endpoint,
            job_id=self.job_id,
            message="no callback came before the deadline (waiting for webhooks only, the vendor was not polled)",
        )

    def _timeout_unread_event(self) -> dict[str, Any]:
        return job_event(
            "timeout",
            vendor=self.vendor,
            endpoint=self.endpoint,
            job_id=self.job_id,
            message="the deadline passed before the status could be read (status reads are paced per connection)",
        )

    def _log_progress(self, job: JobStatus) -> None:
        last, self._last_status = self._last_status, job
        # Only what changed: in the triggerer every log line crosses to the supervisor process and
        # into the trigger's log file, and thousands of jobs are read many times while nothing changes.
        if last is not None and (last.state, last.queue_position) == (job.state, job.queue_position):
            return
        extra = f" (queue position {job.queue_position})" if job.queue_position is not None else ""
        self.log.info("%s job %s: %s%s", self.vendor, self.job_id, job.state.value, extra)

    async def on_kill(self) -> None:
        """A user killed, cleared or marked the deferred task: cancel the vendor job where possible."""
        if not self.cancel_on_kill:
            return
        try:
            accepted = await self._hook().acancel(self.job_id, self.endpoint)
        except CancelNotSupportedError:
            self.log.warning("%s cannot cancel job %s; it keeps running at the vendor", self.vendor, self.job_id)
        except BgReplaceError as exc:
            self.log.warning("cancelling %s job %s failed: %s", self.vendor, self.job_id, exc)
        else:
            self.log.info("%s job %s: cancel %s", self.vendor, self.job_id, "requested" if accepted else "not needed")
