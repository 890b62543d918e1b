"""Many images, one task: keep the vendor at its concurrency limit, defer between windows.

Mapping one deferrable task per image costs the scheduler a task instance per SKU, and under
``dag.test()`` the triggers even run one at a time (20 mapped 1-second jobs took 28 s). This
operator keeps up to ``max_in_flight`` jobs at the vendor; one :class:`BgReplaceBatchTrigger`
waits on all of them and fires as soon as any end; the operator downloads those results, submits
the next items and defers again. Per-item outcomes go to a JSONL output manifest; XCom carries
only a summary and the manifest's URI.

Durability: the batch's progress (next item, in-flight job ids, money spent) is saved in the
task state store after every submit, and the in-flight ids also live in the trigger's kwargs, so
neither a triggerer restart nor a retried task submits an item twice. The moment between a submit
and that save is covered by the submission ledger (:mod:`airflow_bgreplace.ledger`), and a try
killed while delivering results leaves them in the manifest, where its retry finds them.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any, overload

from airflow.sdk import BaseOperator, ObjectStoragePath, XComArg
from pydantic import BaseModel, ConfigDict, Field

from airflow_bgreplace import settings
from airflow_bgreplace.catalog.outputs import OutcomeStatus, OutputManifestWriter, OutputRow, read_output_manifest
from airflow_bgreplace.hooks import HOOKS, BgReplaceHook
from airflow_bgreplace.ledger import SubmissionLedger, finish_quietly, ledger_for, ledger_key, submit_once
from airflow_bgreplace.results import download_result, image_size, safe_path_part, store_result
from airflow_bgreplace.triggers.batch import BgReplaceBatchTrigger
from airflow_bgreplace.vendors.assumptions import BY_VENDOR, OVER_CONCURRENCY
from airflow_bgreplace.vendors.errors import (
    BgReplaceError,
    CancelNotSupportedError,
    RateLimitError,
    SubmissionUncertainError,
)
from airflow_bgreplace.vendors.status import JobState, JobStatus

STATE_KEY = "bgreplace_batch"


class BatchItem(BaseModel):
    """One job of a batch: the vendor endpoint and its documented inputs."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, description="Unique within the batch (e.g. the SKU); names the output file.")
    endpoint: str | None = None
    inputs: dict[str, Any]
    #: Carried into the manifest row untouched (e.g. the item's fingerprint for incremental runs).
    meta: dict[str, Any] = Field(default_factory=dict)


class BatchState(BaseModel):
    """Progress of a batch, saved after every change (JSON in the task state store)."""

    cursor: int = 0
    in_flight: list[dict[str, Any]] = Field(default_factory=list)
    spent_usd: float = 0.0
    deadline_epoch: float
    started_epoch: float
    budget_stopped: bool = False
    counts: dict[str, int] = Field(default_factory=dict)


class BgReplaceBatchOperator(BaseOperator):
    """Process many images through one vendor at the vendor's concurrency limit.

    :param vendor: ``runflow``, ``fashn``, ``fal``, ``imagepipeline`` or ``local`` (templated).
    :param items: a list of ``{"id", "endpoint", "inputs", "meta"}`` dicts (templated, or an XComArg).
    :param items_uri: instead of ``items``: a JSONL file of such dicts (any ObjectStoragePath URI).
    :param conn_id: the vendor connection (default ``bgreplace_<vendor>_default``).
    :param output_base: folder of the results, ``<output_base>/<id>.<ext>``, and of the manifest
        (default ``<[bgreplace] output_base>/<dag_id>/<run_id>/<task_id>``).
    :param manifest_uri: the JSONL output manifest (default ``<output_base>/manifest.jsonl``).
    :param max_in_flight: jobs at the vendor at once; default the vendor's documented concurrency.
    :param max_cost_usd: stop submitting once this much would be spent (prices in assumptions.py).
    :param timeout: seconds the whole batch may take; jobs still running then are cancelled where
        possible and reported as ``timeout``.
    :param deferrable: wait in the triggerer (default) or poll from the worker.
    """

    template_fields: Sequence[str] = (
        "vendor",
        "items",
        "items_uri",
        "conn_id",
        "output_base",
        "manifest_uri",
        "max_in_flight",
        "max_cost_usd",
    )
    ui_color = "#e3f4ea"

    def __init__(
        self,
        *,
        vendor: str,
        items: list[dict[str, Any]] | XComArg | None = None,
        items_uri: str | None = None,
        conn_id: str | None = None,
        output_base: str | ObjectStoragePath | None = None,
        manifest_uri: str | None = None,
        max_in_flight: int | str | None = None,
        max_cost_usd: float | str | None = None,
        timeout: float | timedelta = 8 * 3600.0,
        deferrable: bool = True,
        poll_interval: float | None = None,
        max_download_bytes: int = 100 * 1024 * 1024,
        download_timeout: float = 120.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retries", 2)
        kwargs.setdefault("retry_delay", timedelta(seconds=5))
        super().__init__(**kwargs)
        if (items is None) == (items_uri is None):
            raise ValueError(f"{self.task_id}: give exactly one of items= or items_uri=")
        self.vendor = vendor
        self.items = items
        self.items_uri = items_uri
        self.conn_id = conn_id
        self.output_base = output_base
        self.manifest_uri = manifest_uri
        self.max_in_flight = max_in_flight
        self.max_cost_usd = max_cost_usd
        self.timeout_s = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_download_bytes = max_download_bytes
        self.download_timeout = download_timeout
        self._by_id: Mapping[str, BatchItem] = {}
        self._writer: OutputManifestWriter | None = None
        self._recorded_outcomes: dict[str, str] | None = None

    @property
    def _ledger(self) -> SubmissionLedger | None:
        return ledger_for(self.vendor)

    # -- configuration -------------------------------------------------------------------------
    def get_hook(self) -> BgReplaceHook:
        hook_class = HOOKS[self.vendor]
        return hook_class(self.conn_id or hook_class.default_conn_name)

    def budget(self) -> float | None:
        return _optional_number(self.max_cost_usd)

    def window(self) -> int:
        """Jobs kept at the vendor. Vendors that queue extra jobs (fal, Runflow) get twice their
        concurrency, so the next job is already waiting there while the task resumes and submits;
        vendors that reject extra jobs (FASHN, ImagePipeline) get exactly their limit."""
        if _optional_number(self.max_in_flight):
            return int(float(self.max_in_flight))  # type: ignore[arg-type]
        assumed = BY_VENDOR.get(self.vendor)
        if assumed is None:
            return 2
        queues = OVER_CONCURRENCY.get(self.vendor) == "queue"
        return assumed.concurrency * (2 if queues else 1)

    def _poll_interval(self) -> float:
        if self.poll_interval:
            return float(self.poll_interval)
        assumed = BY_VENDOR.get(self.vendor)
        return assumed.poll_interval_s if assumed else 1.0

    def _base(self, context: Any) -> ObjectStoragePath:
        if self.output_base:
            return ObjectStoragePath(self.output_base) if isinstance(self.output_base, str) else self.output_base
        run_id = safe_path_part(str(context.get("run_id") or "manual"))
        return ObjectStoragePath(f"{settings.output_base()}/{self.dag_id}/{run_id}/{self.task_id}")

    def _manifest(self, context: Any) -> ObjectStoragePath:
        return ObjectStoragePath(self.manifest_uri) if self.manifest_uri else self._base(context) / "manifest.jsonl"

    def load_items(self, *, validate_all: bool = True) -> Sequence[BatchItem]:
        """The batch's items. From ``items_uri`` they are validated on first use unless
        ``validate_all`` (the first try checks them all before its first submit)."""
        if self.items is None:
            assert self.items_uri is not None
            text = ObjectStoragePath(self.items_uri).read_text()
            plan = _PlanItems([line for line in text.splitlines() if line.strip()])
            if len(plan.ids) != len(plan):
                raise ValueError(f"{self.task_id}: item ids must be unique")
            if validate_all:
                for _item in plan:
                    pass
            self._by_id = _ItemsById(plan)
            return plan
        assert not isinstance(self.items, XComArg), "resolved by Airflow before execute"
        raw: Iterable[Any] = self.items
        items = [BatchItem.model_validate(item) for item in raw]
        self._by_id = {item.id: item for item in items}
        if len(self._by_id) != len(items):
            raise ValueError(f"{self.task_id}: item ids must be unique")
        return items

    # -- state -------------------------------------------------------------------------------
    def _load_state(self, context: Any) -> BatchState | None:
        store = context.get("task_state_store")
        raw = store.get(STATE_KEY) if store is not None else None
        return BatchState.model_validate(raw) if raw else None

    def _save_state(self, context: Any, state: BatchState) -> None:
        store = context.get("task_state_store")
        if store is not None:
            store.set(STATE_KEY, state.model_dump(mode="json"))

    # -- execution ---------------------------------------------------------------------------
    def execute(self, context: Any) -> dict[str, Any]:
        state = self._load_state(context)
        items = self.load_items(validate_all=state is None)
        if state is None:
            now = time.time()
            state = BatchState(deadline_epoch=now + self.timeout_s, started_epoch=now)
            self.log.info(
                "%s batch: %d items, up to %d in flight, budget %s",
                self.vendor,
                len(items),
                self.window(),
                f"${self.budget():.2f}" if self.budget() is not None else "none",
            )
        else:
            self._skip_recorded(context, state)
            self.log.info(
                "%s batch resumed: %d/%d submitted, %d in flight (no resubmission)",
                self.vendor,
                state.cursor,
                len(items),
                len(state.in_flight),
            )
        return self._advance(context, state, items)

    def _recorded(self, context: Any) -> dict[str, str]:
        """Job id -> outcome of the rows already in the manifest (read once, only after a crash)."""
        if self._recorded_outcomes is None:
            self._recorded_outcomes = {
                row.job_id: "timeout" if (row.error or "").startswith("timeout:") else row.status.value
                for row in read_output_manifest(self._manifest(context), missing_ok=True)
                if row.job_id
            }
        return self._recorded_outcomes

    def _skip_recorded(self, context: Any, state: BatchState) -> None:
        """A try killed in ``execute_complete`` may have written results it never saved as done:
        the manifest has them, so they are counted and not fetched (or written) again."""
        if not state.in_flight:
            return
        recorded = self._recorded(context)
        kept = [entry for entry in state.in_flight if entry["job_id"] not in recorded]
        for entry in state.in_flight:
            if entry["job_id"] in recorded:
                status = recorded[entry["job_id"]]
                state.counts[status] = state.counts.get(status, 0) + 1
        if len(kept) < len(state.in_flight):
            self.log.info(
                "%s batch: %d results already written by an earlier try", self.vendor, len(state.in_flight) - len(kept)
            )
            state.in_flight = kept
            self._save_state(context, state)

    def execute_complete(
        self, context: Any, event: dict[str, Any], state: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        # The task state store has the newest progress; the defer kwargs are the fallback without
        # one (``dag.test()`` passes only the event, but it has a store).
        current = self._load_state(context) or (BatchState.model_validate(state) if state else None)
        if current is None:
            raise RuntimeError(f"{self.task_id}: resumed without its batch state (no task state store?)")
        items = self.load_items(validate_all=False)
        hook = self.get_hook()
        finished_ids = {entry["job_id"] for entry in event.get("finished", [])}
        for entry in event.get("finished", []):
            job = JobStatus.model_validate(entry["job"]) if entry.get("job") else None
            self._record(context, hook, current, items, entry, job, entry.get("error"))
        current.in_flight = [job for job in current.in_flight if job["job_id"] not in finished_ids]
        if event.get("timeout"):
            self._time_out(context, hook, current, items)
        self._save_state(context, current)
        return self._advance(context, current, items)

    def _advance(self, context: Any, state: BatchState, items: Sequence[BatchItem]) -> dict[str, Any]:
        try:
            return self._run_windows(context, state, items)
        finally:
            self._close_writer()  # also when deferring: an object-storage manifest is uploaded now

    def _run_windows(self, context: Any, state: BatchState, items: Sequence[BatchItem]) -> dict[str, Any]:
        hook = self.get_hook()
        while True:
            rate_limited = self._fill_window(context, hook, state, items)
            if not state.in_flight and (state.cursor >= len(items) or state.budget_stopped) and not rate_limited:
                return self._finish(context, state, items)
            if time.time() >= state.deadline_epoch:
                self._time_out(context, hook, state, items)
                return self._finish(context, state, items)
            if self.deferrable:
                self.defer(
                    trigger=BgReplaceBatchTrigger(
                        vendor=self.vendor,
                        conn_id=self.conn_id or HOOKS[self.vendor].default_conn_name,
                        jobs=list(state.in_flight),
                        deadline_epoch=state.deadline_epoch,
                        poll_interval=self._poll_interval(),
                        wake_after_s=self._poll_interval() if not state.in_flight else None,
                    ),
                    method_name="execute_complete",
                    kwargs={"state": state.model_dump(mode="json")},
                    timeout=None,
                )
            self._poll_in_worker(context, hook, state, items)

    def _fill_window(self, context: Any, hook: BgReplaceHook, state: BatchState, items: Sequence[BatchItem]) -> bool:
        """Submit until the window is full; True when the vendor said "too many" (retry later)."""
        while len(state.in_flight) < self.window() and state.cursor < len(items) and not state.budget_stopped:
            item = items[state.cursor]
            price = _price(hook, item.endpoint)
            budget = self.budget()
            if budget is not None and state.spent_usd + price > budget + 1e-9:
                state.budget_stopped = True
                self.log.warning("%s batch: budget $%.2f reached; no more submits", self.vendor, budget)
                break
            try:
                # Intent in the ledger before the POST: a try killed before _save_state reattaches.
                submission = submit_once(
                    self._ledger,
                    ledger_key(context, self.vendor, item.endpoint or "", item.id, item.inputs),
                    functools.partial(hook.client.submit, item.endpoint, **item.inputs),
                )
            except RateLimitError as exc:
                self.log.info("%s batch: vendor busy (%s); waiting before the next submit", self.vendor, exc.message)
                return True
            except SubmissionUncertainError as exc:
                state.cursor += 1
                self._write(context, state, item, "uncertain", error=f"{exc} (fingerprint {exc.fingerprint})")
                continue
            except BgReplaceError as exc:
                state.cursor += 1
                self._write(context, state, item, "failed", error=f"item {item.id!r}: {exc}")
                continue
            job = submission.job
            state.cursor += 1
            state.spent_usd += price
            if submission.reattached:
                self.log.info(
                    "%s item %s: reattached to job %s (%s)", self.vendor, item.id, job.job_id, submission.message
                )
                if (done := self._recorded(context).get(job.job_id)) is not None:  # its row is written already
                    state.counts[done] = state.counts.get(done, 0) + 1
                    self._save_state(context, state)
                    continue
            entry = {"id": item.id, "endpoint": job.endpoint, "job_id": job.job_id}
            if job.initial_state.is_terminal:  # the local engine finishes inside submit
                self._record(context, hook, state, items, entry, hook.client.get_status(job.job_id, job.endpoint), None)
            else:
                state.in_flight.append(entry)
            self._save_state(context, state)
        return False

    def _poll_in_worker(self, context: Any, hook: BgReplaceHook, state: BatchState, items: Sequence[BatchItem]) -> None:
        """``deferrable=False``: one round of status reads; sleep when nothing ended."""
        ended = False
        for entry in list(state.in_flight):
            try:
                job = hook.client.get_status(entry["job_id"], entry["endpoint"])
            except BgReplaceError as exc:
                self.log.warning("%s job %s: status read failed: %s", self.vendor, entry["job_id"], exc)
                continue
            if job.is_terminal:
                self._record(context, hook, state, items, entry, job, None)
                state.in_flight.remove(entry)
                ended = True
        self._save_state(context, state)
        if not ended:
            time.sleep(self._poll_interval())

    def _record(
        self,
        context: Any,
        hook: BgReplaceHook,
        state: BatchState,
        items: Sequence[BatchItem],
        entry: dict[str, Any],
        job: JobStatus | None,
        error: str | None,
    ) -> None:
        item = self._by_id[entry["id"]]
        if job is None or job.state is not JobState.succeeded:
            reason = error or (f"{job.state.value}: {job.describe_error()}" if job else "unknown")
            self._write(
                context, state, item, "failed", job_id=entry["job_id"], endpoint=entry["endpoint"], error=reason
            )
            if job is not None:  # the job ended without a result: a later run may submit anew
                finish_quietly(self._ledger, self.vendor, entry["job_id"], succeeded=False, message=reason)
            return
        try:
            data, job = download_result(
                hook.client, job, max_bytes=self.max_download_bytes, timeout_s=self.download_timeout
            )
            target = store_result(data, self._base(context) / safe_path_part(item.id))
        except BgReplaceError as exc:
            self._write(
                context, state, item, "failed", job_id=job.job_id, endpoint=job.endpoint, error=f"download: {exc}"
            )
            return
        width, height = image_size(data)
        engine = job.raw.get("engine") if isinstance(job.raw, dict) else None
        self._write(
            context,
            state,
            item,
            "succeeded",
            job_id=job.job_id,
            endpoint=job.endpoint,
            output_uri=str(target),
            width=width,
            height=height,
            duration_s=job.duration_s,
            cost_usd=job.cost_usd if job.cost_usd is not None else _price(hook, job.endpoint),
            engine=engine,
        )
        finish_quietly(self._ledger, self.vendor, job.job_id, succeeded=True, output_uri=str(target))

    def _time_out(self, context: Any, hook: BgReplaceHook, state: BatchState, items: Sequence[BatchItem]) -> None:
        for entry in state.in_flight:
            try:
                hook.client.cancel(entry["job_id"], entry["endpoint"])
            except CancelNotSupportedError:
                pass
            except BgReplaceError as exc:
                self.log.warning("cancelling %s job %s failed: %s", self.vendor, entry["job_id"], exc)
            item = self._by_id[entry["id"]]
            self._write(
                context,
                state,
                item,
                "timeout",
                job_id=entry["job_id"],
                endpoint=entry["endpoint"],
                error=f"still running after the batch timeout of {self.timeout_s:.0f} s",
            )
        state.in_flight = []

    def _write(self, context: Any, state: BatchState, item: BatchItem, status: str, **fields: Any) -> None:
        """One line of the output manifest (the catalog's format), flushed before going on."""
        if self._writer is None:
            self._writer = OutputManifestWriter(self._manifest(context))
        error = fields.pop("error", None)
        if status in ("uncertain", "timeout"):  # the manifest knows failed; the summary keeps the detail
            error = f"{status}: {error}"
        self._writer.write(
            OutputRow(
                sku=item.id,
                status=OutcomeStatus.failed if status in ("uncertain", "timeout") else OutcomeStatus(status),
                treatment=item.meta.get("treatment"),
                vendor=self.vendor,
                endpoint=fields.pop("endpoint", None) or item.endpoint,
                input_uri=item.meta.get("input_uri") or _image_input(item.inputs),
                fingerprint=item.meta.get("fingerprint"),
                error=error,
                **fields,
            )
        )
        state.counts[status] = state.counts.get(status, 0) + 1
        done = sum(state.counts.values())
        if status != "succeeded":
            self.log.warning("%s item %s %s: %s", self.vendor, item.id, status, error)
        if done % 25 == 0:
            self.log.info(
                "%s batch progress: %d done, %d in flight, $%.2f spent",
                self.vendor,
                done,
                len(state.in_flight),
                state.spent_usd,
            )

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _finish(self, context: Any, state: BatchState, items: Sequence[BatchItem]) -> dict[str, Any]:
        if state.budget_stopped:
            for item in items[state.cursor :]:
                self._write(context, state, item, "skipped", error="budget reached")
            state.cursor = len(items)
        self._save_state(context, state)
        summary = {
            "vendor": self.vendor,
            "items": len(items),
            **{
                status: state.counts.get(status, 0)
                for status in ("succeeded", "failed", "uncertain", "timeout", "skipped")
            },
            "spent_usd": round(state.spent_usd, 4),
            "wall_s": round(time.time() - state.started_epoch, 2),
            "manifest_uri": str(self._manifest(context)),
            "output_base": str(self._base(context)),
        }
        self.log.info("%s batch done: %s", self.vendor, json.dumps(summary))
        return summary


#: A plan line that starts with its id (as the nightly run writes them): the id without a full parse.
_LEADING_ID = re.compile(r'\s*\{\s*"id"\s*:\s*("(?:[^"\\]|\\.)*")')


class _PlanItems(Sequence[BatchItem]):
    """The items of a JSONL plan, each parsed and validated when first used.

    A resumed batch needs the next window and the jobs in flight, not the whole plan: parsing
    and validating a 100,000-item plan took ~2 s on every resume. Every id is still read (for
    uniqueness and to find the jobs in flight), cheaply when lines start with their ``"id"``.
    """

    def __init__(self, lines: list[str]) -> None:
        self._lines = lines
        self._items: dict[int, BatchItem] = {}
        self.ids: dict[str, int] = {}
        for position, line in enumerate(lines):
            match = _LEADING_ID.match(line)
            if match is None:
                item_id = self[position].id
            else:
                quoted = match.group(1)
                item_id = json.loads(quoted) if "\\" in quoted else quoted[1:-1]
            self.ids.setdefault(item_id, position)

    def __len__(self) -> int:
        return len(self._lines)

    @overload
    def __getitem__(self, index: int) -> BatchItem: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[BatchItem]: ...

    def __getitem__(self, index: int | slice) -> BatchItem | Sequence[BatchItem]:
        if isinstance(index, slice):
            return [self[position] for position in range(*index.indices(len(self)))]
        position = index + len(self) if index < 0 else index
        item = self._items.get(position)
        if item is None:
            item = self._items[position] = BatchItem.model_validate(json.loads(self._lines[position]))
        return item


class _ItemsById(Mapping[str, BatchItem]):
    def __init__(self, plan: _PlanItems) -> None:
        self._plan = plan

    def __getitem__(self, item_id: str) -> BatchItem:
        return self._plan[self._plan.ids[item_id]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._plan.ids)

    def __len__(self) -> int:
        return len(self._plan.ids)


def _image_input(inputs: dict[str, Any]) -> str | None:
    for field in ("image", "image_url", "input_image", "zip_url"):
        if isinstance(inputs.get(field), str):
            return str(inputs[field])
    return None


def _price(hook: BgReplaceHook, endpoint: str | None) -> float:
    try:
        return hook.client.api.endpoint(endpoint).price_usd
    except BgReplaceError:
        return 0.0


def _optional_number(value: Any) -> float | None:
    """Template fields render to strings: "None" and "" mean unset."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "None", "null")):
        return None
    return float(value)
