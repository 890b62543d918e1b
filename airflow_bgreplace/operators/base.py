"""The operator design every vendor endpoint shares: submit, wait (deferred), deliver.

A vendor operator is a subclass naming its hook, its endpoint and its documented inputs; all the
behaviour lives here:

* ``execute`` submits once. The vendor job id is kept in Airflow 3.3's task state store, so a
  retry of the same task instance (after a worker crash, or Airflow's fast-trigger race
  apache/airflow#67287) reattaches to the job instead of paying for a second one.
* ``deferrable=True`` (default) frees the worker while :class:`BgReplaceJobTrigger` waits in the
  triggerer: by polling the vendor (``wait_for="poll"``), by waiting for the vendor's webhook in
  the provider's store (``"webhook"``), or both (``"webhook_or_poll"``: polling starts when no
  callback came within ``webhook_grace``, so a lost callback never loses a result).
  ``deferrable=False`` polls from the worker with the same loop.
* ``execute_complete`` downloads the result (bounded in bytes and time) to ``output_path`` and
  returns ``{vendor, job_id, status, output_uri, input_uri, width, height, duration_s, cost_usd}``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, ClassVar, Literal

from airflow.sdk import BaseOperator, ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException

from airflow_bgreplace import settings
from airflow_bgreplace.hooks.base import BgReplaceHook
from airflow_bgreplace.ledger import finish_quietly, ledger_for, ledger_key, submit_once
from airflow_bgreplace.operators.delivery import STATE_DEADLINE, STATE_JOB_ID, ResultDeliveryMixin
from airflow_bgreplace.triggers.job import BgReplaceJobTrigger, event_for_status
from airflow_bgreplace.vendors.base import DEFAULT_DOWNLOAD_TIMEOUT_S, DEFAULT_MAX_DOWNLOAD_BYTES
from airflow_bgreplace.vendors.errors import InvalidInputError, RateLimitError, SubmissionUncertainError, TransientError
from airflow_bgreplace.vendors.polling import PollSchedule, wait_for_terminal
from airflow_bgreplace.vendors.status import JobStatus

WaitMode = Literal["poll", "webhook", "webhook_or_poll"]
WAIT_MODES: tuple[str, ...] = ("poll", "webhook", "webhook_or_poll")


class BgReplaceOperator(ResultDeliveryMixin, BaseOperator):
    """Base of the vendor operators (not used directly).

    :param conn_id: the vendor connection; default ``bgreplace_<vendor>_default``.
    :param output_path: where the result goes: an ``ObjectStoragePath`` or a URI (templated);
        without a file extension the content's own is added. Default
        ``<[bgreplace] output_base>/<dag_id>/<run_id>/<task_id>[_<map_index>]``.
    :param deferrable: wait in the triggerer (default) or poll in the worker.
    :param wait_for: ``"poll"``, ``"webhook"`` or ``"webhook_or_poll"``; default
        ``"webhook_or_poll"`` when ``[bgreplace] webhook_base_url`` is set, else ``"poll"``.
        Webhook modes need ``deferrable=True``.
    :param webhook_grace: seconds to wait for the callback before polling (``webhook_or_poll``).
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
        wait_for: WaitMode | None = None,
        webhook_grace: float = 600.0,
        poll_interval: float | None = None,
        poll_interval_cap: float = 15.0,
        timeout: float | timedelta = 3600.0,
        cancel_on_kill: bool = True,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT_S,
        retries: int | None = 2,
        retry_delay: timedelta | float = timedelta(seconds=5),
        **kwargs: Any,
    ) -> None:
        # A retry reattaches to the submitted job (a worker crash, Airflow 3.3.2's fast-trigger race).
        # Defaults in the signature, not in kwargs: Airflow reads them there for .partial()/.expand().
        super().__init__(retries=retries, retry_delay=retry_delay, **kwargs)
        if wait_for is not None and wait_for not in WAIT_MODES:
            raise ValueError(f"{self.task_id}: wait_for must be one of {WAIT_MODES}, got {wait_for!r}")
        if wait_for in ("webhook", "webhook_or_poll") and not deferrable:
            raise ValueError(f"{self.task_id}: wait_for={wait_for!r} needs deferrable=True")
        self.conn_id = conn_id or self.hook_class.default_conn_name
        self.output_path = output_path
        self.deferrable = deferrable
        self.wait_for = wait_for
        self.webhook_grace = webhook_grace
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

        assumed = BY_VENDOR.get(cls.hook_class.vendor_api.vendor)
        return assumed.poll_interval_s if assumed is not None else 1.0  # local jobs end inside submit

    @property
    def vendor(self) -> str:  # type: ignore[override]
        return self.hook_class.vendor_api.vendor

    def effective_wait_mode(self) -> WaitMode:
        if self.wait_for is not None:
            return self.wait_for
        return "webhook_or_poll" if self.deferrable and settings.webhook_base_url() else "poll"

    def vendor_inputs(self) -> dict[str, Any]:
        """The documented inputs that were set (None = leave the vendor's default)."""
        return {name: getattr(self, name) for name in self.input_fields if getattr(self, name) is not None}

    def input_uri(self) -> Any:
        return next((value for field in self.image_fields if (value := getattr(self, field)) is not None), None)

    def get_hook(self) -> BgReplaceHook:
        return self.hook_class(self.conn_id)

    # -- execution --------------------------------------------------------------------
    def execute(self, context: Any) -> dict[str, Any] | None:
        hook = self.get_hook()
        mode = self.effective_wait_mode()
        store = context.get("task_state_store")
        job_id = store.get(STATE_JOB_ID) if store is not None else None
        deadline = store.get(STATE_DEADLINE) if store is not None else None
        if job_id:
            self.log.info("Reattaching to %s job %s submitted by an earlier try (no new submit)", self.vendor, job_id)
            self._job_id = str(job_id)
        else:
            webhook_url = hook.webhook_url(settings.webhook_base_url()) if mode != "poll" else None
            if mode != "poll" and webhook_url is None:
                if self.wait_for is not None:
                    raise AirflowFailException(
                        f"{self.task_id}: wait_for={mode!r} needs [bgreplace] webhook_base_url "
                        f"and a vendor that calls back ({self.vendor} gave no callback URL)"
                    )
                mode = "poll"  # the default only: this vendor has no callbacks (the local engine)
            inputs = self.vendor_inputs()
            try:
                # The ledger covers a crash between the vendor's answer and the store.set below.
                submission = submit_once(
                    ledger_for(self.vendor),
                    ledger_key(context, self.vendor, self.endpoint, "", inputs),
                    functools.partial(hook.submit, self.endpoint, webhook_url=webhook_url, **inputs),
                )
            except InvalidInputError as exc:
                raise AirflowFailException(f"{self.task_id}: {exc}") from exc  # retrying cannot fix bad input
            except SubmissionUncertainError as exc:
                raise AirflowFailException(f"{self.task_id}: {exc}") from exc  # a retry would meet the same doubt
            job = submission.job
            if submission.reattached:
                self.log.info(
                    "Reattaching to %s job %s (submission ledger: %s)", self.vendor, job.job_id, submission.message
                )
            self._job_id = job.job_id
            deadline = job.submitted_at.timestamp() + self.timeout_s
            if store is not None:
                store.set(STATE_JOB_ID, job.job_id)
                store.set(STATE_DEADLINE, deadline)
            self.log.info(
                "Submitted %s %s job %s; waiting (%s) up to %.0f s",
                self.vendor,
                self.endpoint,
                job.job_id,
                mode,
                self.timeout_s,
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
            return self.execute_complete(context, event_for_status(status))

        # One status read first: a job that already ended (a reattach, or a fast vendor) needs no deferral.
        # A read that fails after its retries only skips that shortcut: the trigger tolerates outages.
        try:
            first: JobStatus | None = hook.get_status(self._job_id, self.endpoint)
        except (TransientError, RateLimitError) as exc:
            self.log.warning(
                "%s job %s: first status read failed (%s); waiting in the trigger", self.vendor, self._job_id, exc
            )
            first = None
        if first is not None and first.is_terminal:
            return self.execute_complete(context, event_for_status(first))
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
                wait_for=mode,
                webhook_grace_s=self.webhook_grace,
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
        if isinstance(event, dict) and event.get("job_id"):
            self._job_id = str(event["job_id"])
        ended = event.get("status") if isinstance(event, dict) else None
        result = None
        try:
            result = self.handle_job_event(context, event)
        finally:  # the ledger's outcome: a later run reattaches to a success, submits anew after a failure
            if result is not None or ended in ("failed", "cancelled", "timeout"):
                output_uri = result["output_uri"] if result is not None else None
                finish_quietly(
                    ledger_for(self.vendor),
                    self.vendor,
                    self._job_id,
                    succeeded=result is not None,
                    output_uri=output_uri,
                    message=None if result is not None else ended,
                )
        return result

    def on_kill(self) -> None:
        """Sync mode: the worker is being killed; cancel the vendor job where the vendor can."""
        if self._job_id and self.cancel_on_kill:
            self.cancel_quietly(self._job_id, self.endpoint)
