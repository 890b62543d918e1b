"""The operator design every vendor endpoint shares: submit, wait (deferred), deliver.

A vendor operator is a subclass naming its hook, its endpoint and its documented inputs; all the
behaviour lives here:

* ``execute`` submits once. The vendor job id is kept in Airflow 3.3's task state store, so a
  retry of the same task instance (after a worker crash, or Airflow's fast-trigger race
  apache/airflow#67287) reattaches to the job instead of paying for a second one.
* ``deferrable=True`` (default) frees the worker while :class:`BgReplaceJobTrigger` polls in the
  triggerer; ``deferrable=False`` runs the same polling loop in the worker.
* ``execute_complete`` downloads the result (bounded in bytes and time) to ``output_path`` and
  returns ``{vendor, job_id, status, output_uri, input_uri, width, height, duration_s, cost_usd}``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, ClassVar

from airflow.sdk import BaseOperator, ObjectStoragePath
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_bgreplace.hooks.base import BgReplaceHook
from airflow_bgreplace.results import describe_input, download_result, image_size, store_result
from airflow_bgreplace.triggers.job import EVENT_STATUSES, BgReplaceJobTrigger, event_for_status
from airflow_bgreplace.vendors.base import DEFAULT_DOWNLOAD_TIMEOUT_S, DEFAULT_MAX_DOWNLOAD_BYTES
from airflow_bgreplace.vendors.errors import BgReplaceError, CancelNotSupportedError, InvalidInputError
from airflow_bgreplace.vendors.polling import PollSchedule, wait_for_terminal
from airflow_bgreplace.vendors.status import JobStatus

#: Task-state-store keys (per task instance, kept across its tries).
STATE_JOB_ID = "bgreplace_job_id"
STATE_DEADLINE = "bgreplace_deadline_epoch"


class BgReplaceJobError(AirflowException):
    """A vendor job ended without a result; the message names vendor, job, code and reason."""


def default_output_base() -> str:
    from airflow.sdk.configuration import conf

    home = conf.get("core", "airflow_home", fallback=None) or "."
    return str(conf.get("bgreplace", "output_base", fallback=f"file://{home}/bgreplace/outputs"))


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", part)


class BgReplaceOperator(BaseOperator):
    """Base of the vendor operators (not used directly).

    :param conn_id: the vendor connection; default ``bgreplace_<vendor>_default``.
    :param output_path: where the result goes: an ``ObjectStoragePath`` or a URI (templated);
        without a file extension the content's own is added. Default
        ``<[bgreplace] output_base>/<dag_id>/<run_id>/<task_id>[_<map_index>]``.
    :param deferrable: wait in the triggerer (default) or poll in the worker.
    :param poll_interval: first delay between status reads (default: the vendor's, see
        ``vendors/assumptions.py``); the delay grows up to ``poll_interval_cap``.
    :param timeout: overall time the job may take, from submission (seconds or timedelta).
        On timeout the vendor job is cancelled where the vendor can cancel.
    :param cancel_on_kill: cancel the vendor job when the task is killed (where possible).
    :param max_download_bytes: bound on the result download.
    :param download_timeout: bound on the result download time (seconds).
    """

    hook_class: ClassVar[type[BgReplaceHook]]
    endpoint: ClassVar[str]
    #: The vendor's documented input names this operator takes (all templated).
    input_fields: ClassVar[tuple[str, ...]]
    #: The inputs that may hold the product image; the first one set is reported as ``input_uri``.
    image_fields: ClassVar[tuple[str, ...]]

    template_fields: Sequence[str] = ("conn_id", "output_path")
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        conn_id: str | None = None,
        output_path: str | ObjectStoragePath | None = None,
        deferrable: bool = True,
        poll_interval: float | None = None,
        poll_interval_cap: float = 15.0,
        timeout: float | timedelta = 3600.0,
        cancel_on_kill: bool = True,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT_S,
        **kwargs: Any,
    ) -> None:
        # The fast-trigger race of Airflow 3.3.2 can fail a resumed task; a retry reattaches safely.
        kwargs.setdefault("retries", 2)
        kwargs.setdefault("retry_delay", timedelta(seconds=5))
        super().__init__(**kwargs)
        self.conn_id = conn_id or self.hook_class.default_conn_name
        self.output_path = output_path
        self.deferrable = deferrable
        self.poll_interval = poll_interval or self.default_poll_interval()
        self.poll_interval_cap = poll_interval_cap
        self.timeout_s = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
        self.cancel_on_kill = cancel_on_kill
        self.max_download_bytes = max_download_bytes
        self.download_timeout = download_timeout
        self._job_id: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "input_fields" in cls.__dict__:
            cls.template_fields = (*BgReplaceOperator.template_fields, *cls.input_fields)

    @classmethod
    def default_poll_interval(cls) -> float:
        from airflow_bgreplace.vendors.assumptions import BY_VENDOR

        return BY_VENDOR[cls.hook_class.vendor_api.vendor].poll_interval_s

    @property
    def vendor(self) -> str:
        return self.hook_class.vendor_api.vendor

    def vendor_inputs(self) -> dict[str, Any]:
        """The documented inputs that were set (None = leave the vendor's default)."""
        return {name: getattr(self, name) for name in self.input_fields if getattr(self, name) is not None}

    def get_hook(self) -> BgReplaceHook:
        return self.hook_class(self.conn_id)

    # -- execution --------------------------------------------------------------------
    def execute(self, context: Any) -> dict[str, Any] | None:
        hook = self.get_hook()
        store = context.get("task_state_store")
        job_id = store.get(STATE_JOB_ID) if store is not None else None
        deadline = store.get(STATE_DEADLINE) if store is not None else None
        if job_id:
            self.log.info("Reattaching to %s job %s submitted by an earlier try (no new submit)", self.vendor, job_id)
            self._job_id = str(job_id)
        else:
            try:
                job = hook.submit(self.endpoint, **self.vendor_inputs())
            except InvalidInputError as exc:
                raise AirflowFailException(f"{self.task_id}: {exc}") from exc  # retrying cannot fix bad input
            self._job_id = job.job_id
            deadline = time.time() + self.timeout_s
            if store is not None:
                store.set(STATE_JOB_ID, job.job_id)
                store.set(STATE_DEADLINE, deadline)
            self.log.info(
                "Submitted %s %s job %s; waiting up to %.0f s", self.vendor, self.endpoint, job.job_id, self.timeout_s
            )
        assert self._job_id is not None
        deadline_epoch = float(deadline) if deadline is not None else time.time() + self.timeout_s

        if not self.deferrable:
            status = hook.client.run(
                wait_for_terminal(
                    hook.client.api,
                    self.endpoint,
                    self._job_id,
                    self._schedule(),
                    deadline_epoch,
                    on_status=self._log_status,
                )
            )
            return self.execute_complete(context, event_for_status(status, timed_out=not status.is_terminal))

        # One status read first: a job that already ended (a reattach, or a fast vendor) needs no deferral.
        status = hook.get_status(self._job_id, self.endpoint)
        if status.is_terminal:
            return self.execute_complete(context, event_for_status(status, timed_out=False))
        self.defer(
            trigger=BgReplaceJobTrigger(
                vendor=self.vendor,
                conn_id=self.conn_id,
                endpoint=self.endpoint,
                job_id=self._job_id,
                deadline_epoch=deadline_epoch,
                poll_interval=self.poll_interval,
                poll_interval_cap=self.poll_interval_cap,
                cancel_on_kill=self.cancel_on_kill,
            ),
            method_name="execute_complete",
            timeout=None,  # the trigger owns the deadline: Airflow's timeout would skip the cancel
        )

    def _schedule(self) -> PollSchedule:
        return PollSchedule(first_s=self.poll_interval, cap_s=max(self.poll_interval, self.poll_interval_cap))

    def _log_status(self, job: JobStatus) -> None:
        position = f", queue position {job.queue_position}" if job.queue_position is not None else ""
        self.log.info("%s job %s: %s%s", self.vendor, job.job_id, job.state.value, position)

    def execute_complete(self, context: Any, event: dict[str, Any] | None) -> dict[str, Any]:
        if not isinstance(event, dict) or event.get("status") not in EVENT_STATUSES or not event.get("job_id"):
            raise AirflowException(f"{self.task_id}: unexpected trigger event {event!r}")
        status, job_id = event["status"], event["job_id"]
        self._job_id = job_id
        where = f"{self.vendor} {self.endpoint} job {job_id}"
        if status == "succeeded":
            return self._deliver(context, JobStatus.model_validate(event["job"]))
        if status == "timeout":
            self._cancel_quietly(job_id)
            raise BgReplaceJobError(f"{where} timed out after {self.timeout_s:.0f} s: {event.get('message')}")
        if status == "error":
            raise BgReplaceJobError(
                f"{where}: could not follow the job: {event.get('error_type')}: {event.get('message')}"
            )
        job = event.get("job") or {}
        message = f"{where} {status}: [{job.get('error_code') or 'no code'}] {job.get('error_message') or ''}"
        if job.get("retryable"):
            self._forget_job(context)  # a retry may submit again: the vendor says it could succeed
            raise BgReplaceJobError(message + " (retryable: a retry will submit again)")
        raise AirflowFailException(message)

    def _deliver(self, context: Any, job: JobStatus) -> dict[str, Any]:
        hook = self.get_hook()
        data, job = download_result(
            hook.client, job, max_bytes=self.max_download_bytes, timeout_s=self.download_timeout
        )
        target = store_result(data, self._output_path(context))
        width, height = image_size(data)
        price = hook.client.api.endpoint(self.endpoint).price_usd
        result = {
            "vendor": self.vendor,
            "job_id": job.job_id,
            "status": job.state.value,
            "output_uri": str(target),
            "input_uri": describe_input(self._input_image()),
            "width": width,
            "height": height,
            "duration_s": job.duration_s,
            "cost_usd": job.cost_usd if job.cost_usd is not None else price,
        }
        self.log.info("%s job %s: %d bytes, %sx%s -> %s", self.vendor, job.job_id, len(data), width, height, target)
        return result

    def _input_image(self) -> Any:
        return next((value for field in self.image_fields if (value := getattr(self, field)) is not None), None)

    def _output_path(self, context: Any) -> ObjectStoragePath:
        if self.output_path:
            return ObjectStoragePath(self.output_path) if isinstance(self.output_path, str) else self.output_path
        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        name = self.task_id + (f"_{map_index}" if map_index is not None and map_index >= 0 else "")
        run_id = _safe(str(context.get("run_id") or ti.run_id))
        return ObjectStoragePath(f"{default_output_base()}/{_safe(self.dag_id)}/{run_id}/{_safe(name)}")

    def _forget_job(self, context: Any) -> None:
        store = context.get("task_state_store")
        if store is not None:
            store.delete(STATE_JOB_ID)
            store.delete(STATE_DEADLINE)

    def _cancel_quietly(self, job_id: str) -> None:
        try:
            accepted = self.get_hook().cancel(job_id, self.endpoint)
            self.log.info("%s job %s: cancel %s", self.vendor, job_id, "requested" if accepted else "not needed")
        except CancelNotSupportedError:
            self.log.warning("%s has no public cancel: job %s keeps running (and may be billed)", self.vendor, job_id)
        except BgReplaceError as exc:
            self.log.warning("cancelling %s job %s failed: %s", self.vendor, job_id, exc)

    def on_kill(self) -> None:
        """Sync mode: the worker is being killed; cancel the vendor job where the vendor can."""
        if self._job_id and self.cancel_on_kill:
            self._cancel_quietly(self._job_id)
