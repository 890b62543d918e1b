"""Many images, one task: keep the vendor at its concurrency limit, defer between windows.

Mapping one deferrable task per image costs the scheduler a task instance per SKU, and under
``dag.test()`` the triggers even run one at a time (20 mapped 1-second jobs took 28 s). This
operator keeps a window of jobs at the vendor; one :class:`BgReplaceBatchTrigger` waits on all
of them; the operator downloads the results that ended, submits the next items and defers again.
Per-item outcomes go to a JSONL output manifest; XCom carries only a summary and the manifest's URI.

Pace. A vendor that rejects jobs beyond its limit (FASHN, ImagePipeline) gets exactly its limit,
and the trigger fires on the first end. A vendor that queues them (fal, Runflow) is kept a queue
deep enough to stay busy while the task resumes: the batch measures the vendor's job time and its
own resume (trigger event to window full again, 8-14 s under a real scheduler), the trigger fires
when the vendor's queue (fal reports it) is down to one resume's worth, and the window is topped up
to the vendor's own count of waiting jobs. The last window of short jobs is waited for in the
worker (one final resume would cost more). Within a resume the submits and the deliveries run
``parallel_io`` at a time: one by one, their HTTP and ledger round trips, not the vendor, set the
pace of a large window (bench/RESULTS.md, "real scheduler + triggerer").

Durability: the batch's progress (next item, in-flight job ids, money spent) is saved in the
task state store after every round of submits, and the in-flight ids also live in the trigger's
kwargs, so neither a triggerer restart nor a retried task submits an item twice. The moments
between a submit and that save are covered by the submission ledger
(:mod:`airflow_bgreplace.ledger`), and a try killed while delivering results leaves them in the
manifest, where its retry finds them.
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, overload

from airflow.sdk import BaseOperator, ObjectStoragePath, XComArg
from pydantic import BaseModel, ConfigDict, Field

from airflow_bgreplace import settings
from airflow_bgreplace.catalog.outputs import OutcomeStatus, OutputManifestWriter, OutputRow, read_output_manifest
from airflow_bgreplace.hooks import HOOKS, BgReplaceHook
from airflow_bgreplace.ledger import (
    LedgerScope,
    Submission,
    SubmissionLedger,
    finish_quietly,
    ledger_for,
    ledger_key,
    submit_once,
)
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
#: Default submits (ledger intent, POST, job id) and result deliveries (download, store) of one
#: resume that run at once. One by one, 100 submits took ~7 s in a real deployment, the vendor idle.
IO_THREADS = 8
#: Most jobs kept waiting in a queueing vendor's queue beyond those running.
MAX_QUEUED = 500
#: The resume gap assumed before the first is measured (trigger event to the window full again):
#: 8-14 s under a real scheduler on a small machine (bench/RESULTS.md, "real scheduler").
FIRST_RESUME_GAP_S = 10.0


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
    #: Items refused with "too many requests" in a round of concurrent submits: submitted next.
    requeued: list[int] = Field(default_factory=list)
    #: Measured as the batch runs: the vendor's mean job time, and the seconds from a trigger's
    #: first unseen end to the window full again (what a queueing vendor's queue must cover).
    job_s: float | None = None
    resume_gap_s: float | None = None
    deferred_epoch: float | None = None


class BgReplaceBatchOperator(BaseOperator):
    """Process many images through one vendor at the vendor's concurrency limit.

    :param vendor: ``runflow``, ``fashn``, ``fal``, ``imagepipeline`` or ``local`` (templated).
    :param items: a list of ``{"id", "endpoint", "inputs", "meta"}`` dicts (templated, or an XComArg).
    :param items_uri: instead of ``items``: a JSONL file of such dicts (any ObjectStoragePath URI).
    :param conn_id: the vendor connection (default ``bgreplace_<vendor>_default``).
    :param output_base: folder of the results, ``<output_base>/<id>.<ext>``, and of the manifest
        (default ``<[bgreplace] output_base>/<dag_id>/<run_id>/<task_id>``).
    :param manifest_uri: the JSONL output manifest (default ``<output_base>/manifest.jsonl``).
    :param concurrency: jobs the vendor runs at once for this account; default the documented
        value (``vendors/assumptions.py``). A vendor that rejects jobs beyond it (FASHN,
        ImagePipeline) gets exactly this many; one that queues them (fal, Runflow) also gets a
        queue deep enough to stay busy while the task resumes (from ``concurrency`` more jobs,
        then as measured, at most ``MAX_QUEUED``).
    :param max_in_flight: a fixed number of jobs at the vendor at once instead (no measured queue).
    :param max_cost_usd: stop submitting once this much would be spent (prices in assumptions.py).
    :param timeout: seconds the whole batch may take; jobs still running then are cancelled where
        possible and reported as ``timeout``.
    :param deferrable: wait in the triggerer (default) or poll from the worker.
    :param parallel_io: submits and result deliveries a resume runs at once (default ``IO_THREADS``;
        ``1``: one by one, in item order). Concurrent submits need the submission ledger.
    """

    template_fields: Sequence[str] = (
        "vendor",
        "items",
        "items_uri",
        "conn_id",
        "output_base",
        "manifest_uri",
        "concurrency",
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
        concurrency: int | str | None = None,
        max_in_flight: int | str | None = None,
        max_cost_usd: float | str | None = None,
        timeout: float | timedelta = 8 * 3600.0,
        deferrable: bool = True,
        poll_interval: float | None = None,
        max_download_bytes: int = 100 * 1024 * 1024,
        download_timeout: float = 120.0,
        parallel_io: int = IO_THREADS,
        retries: int | None = 2,
        retry_delay: timedelta | float = timedelta(seconds=5),
        **kwargs: Any,
    ) -> None:
        # Defaults in the signature, not in kwargs: Airflow reads them there for .partial()/.expand(),
        # so mapped batches (the nightly DAG) get the retries that reattach after a crash too.
        super().__init__(retries=retries, retry_delay=retry_delay, **kwargs)
        if (items is None) == (items_uri is None):
            raise ValueError(f"{self.task_id}: give exactly one of items= or items_uri=")
        self.vendor = vendor
        self.items = items
        self.items_uri = items_uri
        self.conn_id = conn_id
        self.output_base = output_base
        self.manifest_uri = manifest_uri
        self.concurrency = concurrency
        self.max_in_flight = max_in_flight
        self.max_cost_usd = max_cost_usd
        self.timeout_s = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_download_bytes = max_download_bytes
        self.download_timeout = download_timeout
        self.parallel_io = max(1, parallel_io)
        self._by_id: Mapping[str, BatchItem] = {}
        self._writer: OutputManifestWriter | None = None
        self._recorded_rows: dict[str, OutputRow] | None = None
        self._gap_began: float | None = None
        self._vendor_queued: int | None = None
        self._pool: ThreadPoolExecutor | None = None

    @property
    def _ledger(self) -> SubmissionLedger | None:
        return ledger_for(self.vendor)

    # -- configuration -------------------------------------------------------------------------
    def get_hook(self) -> BgReplaceHook:
        hook_class = HOOKS[self.vendor]
        return hook_class(self.conn_id or hook_class.default_conn_name)

    def budget(self) -> float | None:
        return _optional_number(self.max_cost_usd)

    def vendor_concurrency(self) -> int:
        if (value := _optional_number(self.concurrency)) is not None:
            return max(1, int(value))
        assumed = BY_VENDOR.get(self.vendor)
        return assumed.concurrency if assumed is not None else 2

    def queues(self) -> bool:
        """The window runs past the vendor's limit: it queues the excess and no fixed window is set."""
        return not _optional_number(self.max_in_flight) and OVER_CONCURRENCY.get(self.vendor) == "queue"

    def window(self, state: BatchState | None = None) -> int:
        """Jobs kept at the vendor. Vendors that reject extra jobs (FASHN, ImagePipeline) get
        exactly their limit. Vendors that queue them (fal, Runflow) also get a queue of three
        resumes' worth of jobs (:meth:`resume_jobs`): one resume's have ended by the time the
        window is refilled (they count as in flight until delivered), the trigger fires when about
        one resume's still wait, and those keep the vendor busy while the task resumes."""
        if _optional_number(self.max_in_flight):
            return int(float(self.max_in_flight))  # type: ignore[arg-type]
        limit = self.vendor_concurrency()
        if not self.queues():
            return limit
        resume_jobs = self.resume_jobs(state)
        depth = limit if resume_jobs is None else math.ceil(3 * resume_jobs)
        return limit + max(limit, min(MAX_QUEUED, depth))

    def resume_jobs(self, state: BatchState | None) -> float | None:
        """Jobs the vendor ends during one resume of the task: its pace (concurrency / job time)
        times the resume gap, as measured, else the typical job time and FIRST_RESUME_GAP_S."""
        job_s, gap_s = self._typical_job_s(), FIRST_RESUME_GAP_S
        if state is not None:
            job_s = state.job_s or job_s
            gap_s = FIRST_RESUME_GAP_S if state.resume_gap_s is None else state.resume_gap_s
        return None if not job_s else self.vendor_concurrency() / job_s * gap_s

    def _typical_job_s(self) -> float | None:
        """The vendor's typical job time (``vendors/assumptions.py``) until the batch has measured it."""
        assumed = BY_VENDOR.get(self.vendor)
        if assumed is None or not assumed.typical_latency_s:
            return None
        return max(assumed.typical_latency_s.values())

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

    def _recorded(self, context: Any) -> dict[str, OutputRow]:
        """Job id -> the row already in the manifest (read once, only after a crash)."""
        if self._recorded_rows is None:
            self._recorded_rows = {
                row.job_id: row for row in read_output_manifest(self._manifest(context), missing_ok=True) if row.job_id
            }
        return self._recorded_rows

    def _count_recorded(self, state: BatchState, row: OutputRow) -> None:
        """Count a row an earlier try wrote, and give the ledger its outcome: that try may have died
        between writing the row and telling the ledger."""
        status = "timeout" if (row.error or "").startswith("timeout:") else row.status.value
        state.counts[status] = state.counts.get(status, 0) + 1
        succeeded = row.status is OutcomeStatus.succeeded
        if succeeded or not (row.error or "").startswith("download:"):  # a failed download: the job did succeed
            finish_quietly(self._ledger, self.vendor, row.job_id, succeeded=succeeded, output_uri=row.output_uri)

    def _skip_recorded(self, context: Any, state: BatchState) -> None:
        """A try killed in ``execute_complete`` may have written results it never saved as done:
        the manifest has them, so they are counted and not fetched (or written) again."""
        if not state.in_flight:
            return
        recorded = self._recorded(context)
        kept = [entry for entry in state.in_flight if entry["job_id"] not in recorded]
        for entry in state.in_flight:
            if entry["job_id"] in recorded:
                self._count_recorded(state, recorded[entry["job_id"]])
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
        self._measure_resume(current, event)
        queued = event.get("queued")
        self._vendor_queued = queued if isinstance(queued, int) else None
        finished_ids = {entry["job_id"] for entry in event.get("finished", [])}
        self._record_all(
            context,
            hook,
            current,
            [
                (entry, JobStatus.model_validate(entry["job"]) if entry.get("job") else None, entry.get("error"))
                for entry in event.get("finished", [])
            ],
        )
        current.in_flight = [job for job in current.in_flight if job["job_id"] not in finished_ids]
        if event.get("timeout"):
            self._time_out(context, hook, current, items)
        self._save_state(context, current)
        return self._advance(context, current, items)

    def _measure_resume(self, state: BatchState, event: dict[str, Any]) -> None:
        """The vendor's job time from the jobs that ended, and when this resume's gap began: before
        the trigger fired by its pickup after the defer and one round of its reads (in which the
        ends it fired on may have gone unseen). The gap closes when the window is full again
        (:meth:`_defer`)."""
        durations = [d for entry in event.get("finished", []) if (d := _job_seconds(entry.get("job")))]
        if durations:
            mean = sum(durations) / len(durations)
            state.job_s = mean if state.job_s is None else 0.7 * state.job_s + 0.3 * mean
        fired, started = event.get("fired_epoch"), event.get("started_epoch")
        if not isinstance(fired, int | float):
            return
        pickup = 0.0
        if isinstance(started, int | float) and state.deferred_epoch:
            pickup = max(0.0, started - state.deferred_epoch)
        read_round = event.get("read_round_s")
        self._gap_began = (
            fired - pickup - (read_round if isinstance(read_round, int | float) else self._poll_interval())
        )
        if state.resume_gap_s is None:  # a first estimate for this resume's refill: the gap so far
            state.resume_gap_s = time.time() - self._gap_began

    def _io(self, work: Callable[[Any], Any], inputs: Sequence[Any]) -> list[Any]:
        """``work`` over ``inputs``, IO_THREADS at a time, in order; each result or the exception raised."""

        def attempt(value: Any) -> Any:
            try:
                return work(value)
            except Exception as exc:  # handed back: the caller decides per item
                return exc

        if len(inputs) <= 1 or self.parallel_io == 1:
            return [attempt(value) for value in inputs]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.parallel_io, thread_name_prefix="bgreplace-batch")
        return list(self._pool.map(attempt, inputs))

    def _advance(self, context: Any, state: BatchState, items: Sequence[BatchItem]) -> dict[str, Any]:
        try:
            return self._run_windows(context, state, items)
        finally:
            self._close_writer()  # also when deferring: an object-storage manifest is uploaded now
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None

    def _more_to_submit(self, state: BatchState, items: Sequence[BatchItem]) -> bool:
        return not state.budget_stopped and (bool(state.requeued) or state.cursor < len(items))

    def _run_windows(self, context: Any, state: BatchState, items: Sequence[BatchItem]) -> dict[str, Any]:
        hook = self.get_hook()
        while True:
            rate_limited = self._fill_window(context, hook, state, items)
            if not state.in_flight and not self._more_to_submit(state, items) and not rate_limited:
                return self._finish(context, state, items)
            if time.time() >= state.deadline_epoch:
                self._time_out(context, hook, state, items)
                return self._finish(context, state, items)
            if self.deferrable and not self._tail_in_worker(state, items):
                self._defer(context, state, items)
            self._poll_in_worker(context, hook, state, items)

    def _tail_in_worker(self, state: BatchState, items: Sequence[BatchItem]) -> bool:
        """The last window of a queueing vendor, when its jobs are short next to a resume: its
        work takes about a job's time plus three resumes (the window), so waiting for it here holds
        the worker that long once per batch, while deferring ends the batch a resume after the last
        end, and the triggerer's paced reads (20 a second) take as long again to see hundreds of
        ends. Longer jobs are waited for in the triggerer."""
        if not self.queues() or self._more_to_submit(state, items) or not state.in_flight:
            return False
        if state.job_s is None or state.resume_gap_s is None:
            return False
        return state.job_s <= 3 * state.resume_gap_s

    def _defer(self, context: Any, state: BatchState, items: Sequence[BatchItem]) -> None:
        now = time.time()
        if self._gap_began is not None:  # rises at once, falls slowly: a starved vendor costs more
            observed = now - self._gap_began
            old = state.resume_gap_s
            state.resume_gap_s = observed if old is None or observed > old else 0.7 * old + 0.3 * observed
            self._gap_began = None
        state.deferred_epoch = now
        self._save_state(context, state)
        min_finished, poll_first, fire_below_queued = 1, None, None
        if self.queues():
            limit = self.vendor_concurrency()
            queued = max(0, len(state.in_flight) - limit)
            # With nothing left to submit: resume once only running jobs are left (see _tail_in_worker).
            more = self._more_to_submit(state, items)
            min_finished = max(1, queued // 2 if more else queued or len(state.in_flight))
            # The running jobs, and those that start and end within a read round (short jobs).
            job_s = state.job_s or self._typical_job_s()
            short = math.ceil(2 * limit / job_s * self._poll_interval()) if job_s else 0
            poll_first = limit + max(1, limit // 4, short)
            resume_jobs = self.resume_jobs(state)
            if more and resume_jobs is not None:
                fire_below_queued = math.ceil(1.2 * resume_jobs)  # a fifth more: the gap varies
        self.log.info(
            "%s batch: %d in flight (window %d), resuming after %d end or %s queued; job %s s, resume gap %s s",
            self.vendor,
            len(state.in_flight),
            self.window(state),
            min_finished,
            fire_below_queued,
            f"{state.job_s:.1f}" if state.job_s else "?",
            f"{state.resume_gap_s:.1f}" if state.resume_gap_s is not None else "?",
        )
        self.defer(
            trigger=BgReplaceBatchTrigger(
                vendor=self.vendor,
                conn_id=self.conn_id or HOOKS[self.vendor].default_conn_name,
                jobs=list(state.in_flight),
                deadline_epoch=state.deadline_epoch,
                poll_interval=self._poll_interval(),
                wake_after_s=self._poll_interval() if not state.in_flight else None,
                min_finished=min_finished,
                poll_first=poll_first,
                fire_below_queued=fire_below_queued,
            ),
            method_name="execute_complete",
            kwargs={"state": state.model_dump(mode="json")},
            timeout=None,
        )

    def _fill_window(self, context: Any, hook: BgReplaceHook, state: BatchState, items: Sequence[BatchItem]) -> bool:
        """Submit until the window is full; True when the vendor said "too many" (retry later).

        With the ledger (paid vendors, in a task instance) a round's submits run IO_THREADS at a
        time and the state is saved once per round: a try killed before that save finds its
        submits in the ledger and reattaches. Without it, one at a time, saved after each.
        """
        concurrent = self.parallel_io > 1 and self._ledger is not None and LedgerScope.from_context(context) is not None
        window = self.window(state)
        if self._vendor_queued is not None and self.queues():
            # The vendor's own count of waiting jobs (from the trigger), not ours: jobs that ended
            # but are not delivered yet are still in flight here. Top its queue up to two resumes'.
            wanted = max(self.vendor_concurrency(), min(MAX_QUEUED, math.ceil(2 * (self.resume_jobs(state) or 0))))
            window = min(len(state.in_flight) + max(0, wanted - self._vendor_queued), window + MAX_QUEUED)
        self._vendor_queued = None
        while len(state.in_flight) < window:
            chosen = self._next_items(state, items, hook, window - len(state.in_flight) if concurrent else 1)
            if not chosen:
                return False
            hook.client  # noqa: B018 - built here: the connection is read through the supervisor, once
            outcomes = self._io(lambda pick: self._submit(context, hook, pick[1]), chosen)
            rate_limited = False
            failure: BaseException | None = None
            for (index, item, price), outcome in zip(chosen, outcomes, strict=True):
                if isinstance(outcome, RateLimitError):
                    state.requeued.append(index)
                    if not rate_limited:
                        self.log.info("%s batch: vendor busy (%s); submitting later", self.vendor, outcome.message)
                    rate_limited = True
                elif isinstance(outcome, SubmissionUncertainError):
                    self._write(
                        context, state, item, "uncertain", error=f"{outcome} (fingerprint {outcome.fingerprint})"
                    )
                elif isinstance(outcome, BgReplaceError):
                    self._write(context, state, item, "failed", error=f"item {item.id!r}: {outcome}")
                elif isinstance(outcome, BaseException):
                    state.requeued.append(index)  # the ledger settles it on the retry
                    failure = failure or outcome
                else:
                    self._take_submission(context, hook, state, items, item, price, outcome)
            state.requeued.sort()
            self._save_state(context, state)
            if failure is not None:
                raise failure
            if rate_limited:
                return True
        return False

    def _next_items(
        self, state: BatchState, items: Sequence[BatchItem], hook: BgReplaceHook, room: int
    ) -> list[tuple[int, BatchItem, float]]:
        """Up to ``room`` items to submit (refused ones first), within the budget."""
        chosen: list[tuple[int, BatchItem, float]] = []
        budget = self.budget()
        planned = state.spent_usd
        while len(chosen) < room and self._more_to_submit(state, items):
            from_queue = bool(state.requeued)
            index = state.requeued.pop(0) if from_queue else state.cursor
            item = items[index]
            price = _price(hook, item.endpoint)
            if budget is not None and planned + price > budget + 1e-9:
                if from_queue:
                    state.requeued.insert(0, index)
                state.budget_stopped = True
                self.log.warning("%s batch: budget $%.2f reached; no more submits", self.vendor, budget)
                break
            if not from_queue:
                state.cursor += 1
            planned += price
            chosen.append((index, item, price))
        return chosen

    def _submit(self, context: Any, hook: BgReplaceHook, item: BatchItem) -> Submission:
        # Intent in the ledger before the POST: a try killed before _save_state reattaches.
        return submit_once(
            self._ledger,
            ledger_key(context, self.vendor, item.endpoint or "", item.id, item.inputs),
            functools.partial(hook.client.submit, item.endpoint, **item.inputs),
        )

    def _take_submission(
        self,
        context: Any,
        hook: BgReplaceHook,
        state: BatchState,
        items: Sequence[BatchItem],
        item: BatchItem,
        price: float,
        submission: Submission,
    ) -> None:
        job = submission.job
        state.spent_usd += price
        if submission.reattached:
            self.log.info("%s item %s: reattached to job %s (%s)", self.vendor, item.id, job.job_id, submission.message)
            if (done := self._recorded(context).get(job.job_id)) is not None:  # its row is written already
                self._count_recorded(state, done)
                return
        entry = {"id": item.id, "endpoint": job.endpoint, "job_id": job.job_id}
        if job.initial_state.is_terminal:  # the local engine finishes inside submit
            self._record(context, hook, state, items, entry, hook.client.get_status(job.job_id, job.endpoint), None)
        else:
            state.in_flight.append(entry)

    def _poll_in_worker(self, context: Any, hook: BgReplaceHook, state: BatchState, items: Sequence[BatchItem]) -> None:
        """``deferrable=False`` (and a queueing vendor's last window): one round of status reads;
        sleep when nothing ended. A queueing vendor's reads go parallel_io at a time (none of them
        documents a status limit)."""
        ended: list[tuple[dict[str, Any], JobStatus | None, str | None]] = []
        entries = list(state.in_flight)
        hook.client  # noqa: B018 - built here: the connection is read through the supervisor, once

        def read(entry: dict[str, Any]) -> JobStatus:
            return hook.client.get_status(entry["job_id"], entry["endpoint"])

        reads = self._io(read, entries) if self.queues() else [_attempt(read, entry) for entry in entries]
        for entry, job in zip(entries, reads, strict=True):
            if isinstance(job, BgReplaceError):
                self.log.warning("%s job %s: status read failed: %s", self.vendor, entry["job_id"], job)
                continue
            if isinstance(job, BaseException):
                raise job
            if job.is_terminal:
                ended.append((entry, job, None))
        self._record_all(context, hook, state, ended)
        done = {entry["job_id"] for entry, _, _ in ended}
        state.in_flight = [entry for entry in state.in_flight if entry["job_id"] not in done]
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
        self._record_all(context, hook, state, [(entry, job, error)])

    def _record_all(
        self,
        context: Any,
        hook: BgReplaceHook,
        state: BatchState,
        ended: Sequence[tuple[dict[str, Any], JobStatus | None, str | None]],
    ) -> None:
        """Record jobs that ended: the results downloaded and stored IO_THREADS at a time, then
        each row written to the manifest, then the ledger told (in that order, as for one job)."""
        cases = [(self._by_id[entry["id"]], entry, job, error) for entry, job, error in ended]
        if cases:
            hook.client  # noqa: B018 - built here: the connection is read through the supervisor, once

        def fetch(case: tuple[BatchItem, dict[str, Any], JobStatus | None, str | None]) -> Any:
            item, _, job, _ = case
            if job is None or job.state is not JobState.succeeded:
                return None
            data, fresh = download_result(
                hook.client, job, max_bytes=self.max_download_bytes, timeout_s=self.download_timeout
            )
            return data, fresh, store_result(data, self._base(context) / safe_path_part(item.id))

        finishes: list[tuple[str, dict[str, Any]]] = []
        failure: BaseException | None = None
        for (item, entry, job, error), fetched in zip(cases, self._io(fetch, cases), strict=True):
            if job is None or job.state is not JobState.succeeded:
                reason = error or (f"{job.state.value}: {job.describe_error()}" if job else "unknown")
                self._write(
                    context, state, item, "failed", job_id=entry["job_id"], endpoint=entry["endpoint"], error=reason
                )
                if job is not None:  # the job ended without a result: a later run may submit anew
                    finishes.append((entry["job_id"], {"succeeded": False, "message": reason}))
                continue
            if isinstance(fetched, BgReplaceError):
                self._write(
                    context,
                    state,
                    item,
                    "failed",
                    job_id=job.job_id,
                    endpoint=job.endpoint,
                    error=f"download: {fetched}",
                )
                continue
            if isinstance(fetched, BaseException):  # not the vendor's doing (e.g. storage): the try fails
                failure = failure or fetched
                continue
            data, job, target = fetched
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
            finishes.append((job.job_id, {"succeeded": True, "output_uri": str(target)}))
        self._io(lambda done: finish_quietly(self._ledger, self.vendor, done[0], **done[1]), finishes)
        if failure is not None:
            raise failure

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
            for index in [*state.requeued, *range(state.cursor, len(items))]:
                self._write(context, state, items[index], "skipped", error="budget reached")
            state.cursor = len(items)
            state.requeued = []
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


def _attempt(work: Callable[[Any], Any], value: Any) -> Any:
    """``work(value)``, or the vendor error it raised."""
    try:
        return work(value)
    except BgReplaceError as exc:
        return exc


def _job_seconds(job: Any) -> float | None:
    """How long an ended job ran at the vendor (its own figure, else its timestamps)."""
    if not isinstance(job, dict):
        return None
    if isinstance(job.get("duration_s"), int | float) and job["duration_s"] > 0:
        return float(job["duration_s"])
    try:
        seconds = (
            datetime.fromisoformat(job["completed_at"]) - datetime.fromisoformat(job["started_at"])
        ).total_seconds()
    except (KeyError, TypeError, ValueError):
        return None
    return seconds if seconds > 0 else None


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
