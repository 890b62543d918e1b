"""Wait for a vendor job submitted elsewhere, by its webhook (with a polling fallback)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseSensorOperator, ObjectStoragePath, PokeReturnValue
from airflow.sdk.exceptions import AirflowSensorTimeout

from airflow_bgreplace.hooks import HOOKS, BgReplaceHook
from airflow_bgreplace.operators.delivery import ResultDeliveryMixin
from airflow_bgreplace.triggers.job import BgReplaceJobTrigger, event_for_status
from airflow_bgreplace.vendors.base import DEFAULT_DOWNLOAD_TIMEOUT_S, DEFAULT_MAX_DOWNLOAD_BYTES

STATE_FIRST_POKE = "bgreplace_first_poke_epoch"


class BgReplaceWebhookSensor(ResultDeliveryMixin, BaseSensorOperator):
    """Waits for the callback of one vendor job, then delivers its result like the operators do.

    For DAGs that submit in one task (e.g. ``hook.submit(..., webhook_url=hook.webhook_url(base))``)
    and wait in another. Deferrable by default; ``deferrable=False`` pokes (``mode="poke"`` or
    ``"reschedule"``). Either way the webhook store is read first; once the callback is there the
    final state is confirmed with one vendor status call. When no callback came within
    ``poll_after`` seconds the sensor polls the vendor instead (``poll_after=None``: never), so a
    lost callback never loses a result.

    Returns the operators' XCom: ``{vendor, job_id, status, output_uri, input_uri, width, height,
    duration_s, cost_usd}``. A job that failed at the vendor fails the sensor (no retries: waiting
    again cannot change it); ``timeout`` raises ``AirflowSensorTimeout`` in every mode
    (``soft_fail`` applies). The sensor did not submit the job, so it never cancels it.

    :param vendor: ``runflow``, ``fashn``, ``fal`` or ``imagepipeline`` (templated).
    :param job_id: the vendor job id (templated, e.g. from an upstream XCom).
    :param endpoint: the vendor endpoint of the job (templated; required for ImagePipeline).
    :param conn_id: the vendor connection (default ``bgreplace_<vendor>_default``).
    :param output_path: where the result goes (see the operators).
    :param poll_after: seconds without a callback before polling the vendor; None = webhook only.
    """

    template_fields: Sequence[str] = ("vendor", "job_id", "endpoint", "conn_id", "output_path")
    ui_color = "#fdf2e3"
    owns_job = False  # never cancels the job, and a failed job fails the sensor without retries

    def __init__(
        self,
        *,
        vendor: str,
        job_id: str,
        endpoint: str | None = None,
        conn_id: str | None = None,
        output_path: str | ObjectStoragePath | None = None,
        deferrable: bool = True,
        poll_after: float | None = 600.0,
        poll_interval: float = 2.0,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT_S,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("timeout", 3600.0)
        kwargs.setdefault("poke_interval", 5.0)
        super().__init__(**kwargs)
        self.vendor = vendor
        self.job_id = job_id
        self.endpoint = endpoint
        self.conn_id = conn_id
        self.output_path = output_path
        self.deferrable = deferrable
        self.poll_after = poll_after
        self.poll_interval = poll_interval
        self.max_download_bytes = max_download_bytes
        self.download_timeout = download_timeout
        self._first_poke_epoch: float | None = None

    @property
    def timeout_s(self) -> float:  # type: ignore[override]
        return float(self.timeout)

    def get_hook(self) -> BgReplaceHook:
        hook_class = HOOKS[self.vendor]
        return hook_class(self.conn_id or hook_class.default_conn_name)

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        self.defer(
            trigger=BgReplaceJobTrigger(
                vendor=self.vendor,
                conn_id=self.conn_id or HOOKS[self.vendor].default_conn_name,
                endpoint=self.endpoint,
                job_id=self.job_id,
                deadline_epoch=time.time() + self.timeout_s,
                poll_interval=self.poll_interval,
                cancel_on_kill=False,
                wait_for="webhook" if self.poll_after is None else "webhook_or_poll",
                webhook_grace_s=self.poll_after or 0.0,
            ),
            method_name="execute_complete",
            timeout=None,
        )

    def poke(self, context: Any) -> PokeReturnValue | bool:
        from airflow_bgreplace.webhooks.store import WebhookStore

        if WebhookStore.shared().get(self.vendor, self.job_id) is None and not self._polling_due(context):
            self.log.info("%s job %s: no callback yet", self.vendor, self.job_id)
            return False
        status = self.get_hook().get_status(self.job_id, self.endpoint)
        if not status.is_terminal:
            return False
        return PokeReturnValue(is_done=True, xcom_value=self.handle_job_event(context, event_for_status(status)))

    def _polling_due(self, context: Any) -> bool:
        """Whether ``poll_after`` has passed since the first poke (kept in the task state store,
        which survives reschedules; without one, on the instance, which survives pokes)."""
        if self.poll_after is None:
            return False
        store = context.get("task_state_store")
        now = time.time()
        first = store.get(STATE_FIRST_POKE) if store is not None else self._first_poke_epoch
        if first is None:
            first = self._first_poke_epoch = now
            if store is not None:
                store.set(STATE_FIRST_POKE, now)
        return now - float(first) >= self.poll_after

    def execute_complete(self, context: Any, event: dict[str, Any] | None) -> Any:
        if isinstance(event, dict) and event.get("status") == "timeout":
            # A sensor timeout, as in poke mode: soft_fail applies, and retries do not.
            raise AirflowSensorTimeout(
                f"{self.task_id}: {self.vendor} job {event.get('job_id')}: {event.get('message')}"
            )
        return self.handle_job_event(context, event)
