"""What every task that waits on a vendor job does with the trigger's event.

Shared by the operators and :class:`~airflow_bgreplace.sensors.BgReplaceWebhookSensor`, so both
return the same XCom and fail with the same messages.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.sdk import ObjectStoragePath
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_bgreplace import settings
from airflow_bgreplace.hooks.base import BgReplaceHook
from airflow_bgreplace.results import describe_input, download_result, image_size, safe_path_part, store_result
from airflow_bgreplace.triggers.job import EVENT_STATUSES
from airflow_bgreplace.vendors.errors import BgReplaceError, CancelNotSupportedError
from airflow_bgreplace.vendors.status import JobStatus

#: Task-state-store keys (per task instance, kept across its tries).
STATE_JOB_ID = "bgreplace_job_id"
STATE_DEADLINE = "bgreplace_deadline_epoch"


class BgReplaceJobError(AirflowException):
    """A vendor job ended without a result; the message names vendor, job, code and reason."""


class ResultDeliveryMixin:
    """Turns a job event into the task's XCom, or into an error an operator on call can act on.

    Expects on the task: ``vendor``, ``endpoint``, ``output_path``, ``max_download_bytes``,
    ``download_timeout``, ``timeout_s``, ``task_id``, ``dag_id``, ``log`` and ``get_hook()``.
    """

    #: Whether the task submitted the job itself: only then may it cancel the job on timeout, or
    #: forget it so that a retry submits again. A sensor waiting on someone else's job does neither.
    owns_job: ClassVar[bool] = True

    vendor: str
    output_path: Any
    max_download_bytes: int
    download_timeout: float
    timeout_s: float
    task_id: str
    dag_id: str
    log: Any

    def get_hook(self) -> BgReplaceHook:  # pragma: no cover - provided by the task
        raise NotImplementedError

    def input_uri(self) -> str | None:
        return None

    def handle_job_event(self, context: Any, event: dict[str, Any] | None) -> dict[str, Any]:
        if not isinstance(event, dict) or event.get("status") not in EVENT_STATUSES or not event.get("job_id"):
            raise AirflowException(f"{self.task_id}: unexpected trigger event {event!r}")
        status, job_id = event["status"], event["job_id"]
        endpoint = event.get("endpoint") or getattr(self, "endpoint", None)
        where = " ".join(part for part in (self.vendor, endpoint, "job", job_id) if part)
        if status == "succeeded":
            return self.deliver(context, JobStatus.model_validate(event["job"]))
        if status == "timeout":
            if self.owns_job:
                self.cancel_quietly(job_id, endpoint)
            raise BgReplaceJobError(f"{where} timed out after {self.timeout_s:.0f} s: {event.get('message')}")
        if status == "error":
            raise BgReplaceJobError(
                f"{where}: could not follow the job: {event.get('error_type')}: {event.get('message')}"
            )
        job = event.get("job") or {}
        message = f"{where} {status}: [{job.get('error_code') or 'no code'}] {job.get('error_message') or ''}"
        if job.get("retryable") and self.owns_job:
            self.forget_job(context)  # the vendor says a new submit could succeed: let the retry submit
            raise BgReplaceJobError(message + " (retryable: a retry will submit again)")
        raise AirflowFailException(message)

    def deliver(self, context: Any, job: JobStatus) -> dict[str, Any]:
        hook = self.get_hook()
        data, job = download_result(
            hook.client, job, max_bytes=self.max_download_bytes, timeout_s=self.download_timeout
        )
        target = store_result(data, self.resolve_output_path(context))
        width, height = image_size(data)
        price = hook.client.api.endpoint(job.endpoint).price_usd
        self.log.info("%s job %s: %d bytes, %sx%s -> %s", self.vendor, job.job_id, len(data), width, height, target)
        return {
            "vendor": self.vendor,
            "job_id": job.job_id,
            "status": job.state.value,
            "output_uri": str(target),
            "input_uri": describe_input(self.input_uri()),
            "width": width,
            "height": height,
            "duration_s": job.duration_s,
            "cost_usd": job.cost_usd if job.cost_usd is not None else price,
        }

    def resolve_output_path(self, context: Any) -> ObjectStoragePath:
        if self.output_path:
            return ObjectStoragePath(self.output_path) if isinstance(self.output_path, str) else self.output_path
        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        name = self.task_id + (f"_{map_index}" if map_index is not None and map_index >= 0 else "")
        run_id = safe_path_part(str(context.get("run_id") or ti.run_id))
        return ObjectStoragePath(
            f"{settings.output_base()}/{safe_path_part(self.dag_id)}/{run_id}/{safe_path_part(name)}"
        )

    def forget_job(self, context: Any) -> None:
        store = context.get("task_state_store")
        if store is not None:
            store.delete(STATE_JOB_ID)
            store.delete(STATE_DEADLINE)

    def cancel_quietly(self, job_id: str, endpoint: str | None) -> None:
        try:
            accepted = self.get_hook().cancel(job_id, endpoint)
            self.log.info("%s job %s: cancel %s", self.vendor, job_id, "requested" if accepted else "not needed")
        except CancelNotSupportedError:
            self.log.warning("%s has no public cancel: job %s keeps running (and may be billed)", self.vendor, job_id)
        except BgReplaceError as exc:
            self.log.warning("cancelling %s job %s failed: %s", self.vendor, job_id, exc)
