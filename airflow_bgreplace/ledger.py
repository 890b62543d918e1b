"""The submission ledger: a vendor job is paid for once, even when a worker dies mid-submit.

Airflow runs a task at least once: a worker killed after the vendor accepted a job but before the
task saved the job id would, on its retry, submit (and pay for) the same image again. Airflow 3.3's
task state store keeps the id across tries, but only once it is written; the ledger covers the
moment before that. It lives in the provider database (``[bgreplace] database_url``), one row per
submission key, and every submit follows one protocol (:func:`submit_once`):

1. **intent**: the row is written in state ``submitting``, in a committed transaction, *before*
   the vendor POST (if a row exists already, it decides instead; see below);
2. the POST;
3. **job id**: the vendor's id is recorded right away (``submitted``);
4. **finish**: once the result is stored (``succeeded``) or the job ended without one (``failed``).

The key is a hash of the task instance (dag, run, task, map index; not the try), the vendor, the
endpoint, the item id, and the inputs with every local image replaced by its content hash. So a
retry or a cleared re-run of the same task instance for the same content finds its row; a new
run, or a changed photo, gets a new key and a new job.

What a try finds in the ledger (the task state store is always read first):

=====================================  ==========================================================
no row                                 submit (the normal case)
a job id, submitted within the         **reattach**: follow that job, no new POST. The window is the
vendor's result TTL                    vendor's result-URL lifetime (``vendors/assumptions.py``)
a job id older than that, or a job     submit anew (``attempt`` + 1); the old id is kept in
that failed, or a refused submit       ``previous_job_ids``
``submitting`` from a live writer      wait (bounded) for it to record its job id, then decide
``submitting`` from a dead writer      **uncertain**: the POST may have reached the vendor and no
                                       id came back. Never resubmitted automatically (that is the
                                       "never billed twice" rule); :meth:`SubmissionLedger.resolve`
                                       settles it once someone has looked at the vendor's records
``uncertain``                          uncertain (until resolved)
=====================================  ==========================================================

FASHN, fal and ImagePipeline document no way to find a job from its request, so "uncertain" is
reported, not guessed. Runflow echoes the ``client_ref`` we send and documents a run list
(``GET /v1/runs`` by ``created_at``): a lookup there is possible but not built yet (see
docs/reliability.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from airflow_bgreplace.database import ProviderDatabase
from airflow_bgreplace.vendors.errors import BgReplaceError, SubmissionUncertainError
from airflow_bgreplace.vendors.inputs import load_local_image
from airflow_bgreplace.vendors.status import JobState, SubmittedJob

log = logging.getLogger(__name__)

TABLE = "bgreplace_submissions"
#: How long a try waits for another live try's intent to get its job id (a POST with its retries).
DEFAULT_OWNER_WAIT_S = 120.0
#: Reattach window of vendors without a documented result lifetime (the local engine).
DEFAULT_VALID_FOR_S = 24 * 3600.0


class LedgerState(str, Enum):
    submitting = "submitting"  # intent written; the POST may be in flight
    submitted = "submitted"  # the vendor answered with a job id
    succeeded = "succeeded"  # the result is stored
    failed = "failed"  # the job ended without a result: a later try may submit anew
    not_submitted = "not_submitted"  # the vendor refused the POST for sure (4xx, 429): nothing billed
    uncertain = "uncertain"  # the POST may have reached the vendor, no id came back


class Decision(str, Enum):
    submit = "submit"
    reattach = "reattach"
    uncertain = "uncertain"


@dataclass(frozen=True)
class LedgerScope:
    """The task instance a submission belongs to (its tries share it; other runs do not)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1
    #: Not part of the key: shown in the row, and tells this try from an earlier one in the same process.
    try_number: int | None = None

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> LedgerScope | None:
        ti = context.get("ti")
        if ti is None:
            return None
        map_index = getattr(ti, "map_index", -1)
        return cls(
            dag_id=str(ti.dag_id),
            run_id=str(ti.run_id),
            task_id=str(ti.task_id),
            map_index=-1 if map_index is None else int(map_index),
            try_number=getattr(ti, "try_number", None),
        )


@dataclass(frozen=True)
class SubmissionKey:
    """What identifies one paid submission: task instance, vendor, endpoint, item, input content."""

    scope: LedgerScope
    vendor: str
    endpoint: str
    item_id: str
    input_hash: str

    @property
    def digest(self) -> str:
        parts = [
            self.scope.dag_id,
            self.scope.run_id,
            self.scope.task_id,
            self.scope.map_index,
            self.vendor,
            self.endpoint,
            self.item_id,
            self.input_hash,
        ]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _canonical(value: Any) -> Any:
    """Inputs as plain JSON, with every local image (path, data URI, bytes, ObjectStoragePath) as its hash."""
    if isinstance(value, bytes | bytearray):
        return "sha256:" + hashlib.sha256(bytes(value)).hexdigest()
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return value  # a remote image is named by its URL; fetching it here would cost a download
    try:
        return "sha256:" + hashlib.sha256(load_local_image(value).data).hexdigest()
    except (ValueError, OSError, TypeError):
        return str(value)


def input_hash(inputs: Mapping[str, Any]) -> str:
    """A stable hash of a request's inputs: the same photo and parameters give the same hash."""
    return hashlib.sha256(json.dumps(_canonical(inputs), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class LedgerEntry:
    key: str
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    item_id: str
    vendor: str
    endpoint: str
    input_hash: str
    state: LedgerState
    attempt: int
    job_id: str | None
    previous_job_ids: tuple[str, ...]
    owner: str
    created_at: datetime
    submitted_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    output_uri: str | None
    message: str | None

    def age_s(self, now: datetime | None = None) -> float:
        """Seconds since the vendor accepted the job (since the intent when there is no job)."""
        since = self.submitted_at or self.created_at
        return ((now or _utc_now()) - since).total_seconds()


@dataclass(frozen=True)
class Claim:
    """What :meth:`SubmissionLedger.claim` decided for one submission."""

    decision: Decision
    entry: LedgerEntry
    message: str = ""


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


def current_owner(scope: LedgerScope | None = None) -> str:
    """``host:pid:try``: who wrote an intent, so a later try can tell a dead writer from a live one."""
    try_number = scope.try_number if scope is not None and scope.try_number is not None else 0
    return f"{socket.gethostname()}:{os.getpid()}:{try_number}"


def _owner_state(owner: str, me: str) -> bool | None:
    """True/False when the writer of an intent is known to be alive/dead; None on another host."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    my_host = me.partition(":")[0]
    if host != my_host or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if pid == os.getpid():
        # This process claims one submission at a time: an intent of its own is from a call that
        # ended without recording (``dag.test`` also runs every try of a task in one process).
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    try:  # a killed child its parent has not reaped yet is a zombie: dead for our purpose
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class SubmissionLedger(ProviderDatabase):
    """The ``bgreplace_submissions`` table and the claim protocol (thread- and process-safe)."""

    schema_key: ClassVar[str] = TABLE

    def __init__(self, url: str | URL) -> None:
        super().__init__(url)
        self.rows = sa.Table(
            TABLE,
            self.metadata,
            sa.Column("key", sa.String(64), primary_key=True),
            sa.Column("dag_id", sa.String(250), nullable=False),
            sa.Column("run_id", sa.String(250), nullable=False),
            sa.Column("task_id", sa.String(250), nullable=False),
            sa.Column("map_index", sa.Integer, nullable=False),
            sa.Column("item_id", sa.String(255), nullable=False),
            sa.Column("vendor", sa.String(32), nullable=False),
            sa.Column("endpoint", sa.String(128), nullable=False),
            sa.Column("input_hash", sa.String(64), nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("attempt", sa.Integer, nullable=False),
            sa.Column("job_id", sa.String(255), nullable=True),
            sa.Column("previous_job_ids", sa.Text, nullable=False, default="[]"),
            sa.Column("owner", sa.String(300), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, index=True),
            sa.Column("output_uri", sa.Text, nullable=True),
            sa.Column("message", sa.Text, nullable=True),
            sa.Index(f"{TABLE}_job", "vendor", "job_id"),
            sa.Index(f"{TABLE}_run", "dag_id", "run_id"),
        )

    @classmethod
    def shared(cls) -> SubmissionLedger:
        """The process-wide ledger in the provider database."""
        from airflow_bgreplace import settings

        return cls.shared_at(settings.database_url())

    # -- reading -------------------------------------------------------------------------------------
    def _entry(self, row: Any) -> LedgerEntry:
        values = dict(row._asdict()) if hasattr(row, "_asdict") else dict(row)
        values["state"] = LedgerState(values["state"])
        values["previous_job_ids"] = tuple(json.loads(values["previous_job_ids"] or "[]"))
        for column in ("created_at", "submitted_at", "finished_at", "updated_at"):
            values[column] = _utc(values[column])
        return LedgerEntry(**values)

    def get(self, key: SubmissionKey | str) -> LedgerEntry | None:
        self.ensure_schema()
        digest = key.digest if isinstance(key, SubmissionKey) else key
        with self.transaction(write=False) as connection:
            row = connection.execute(sa.select(self.rows).where(self.rows.c.key == digest)).first()
        return self._entry(row) if row is not None else None

    def entries(
        self,
        *,
        dag_id: str | None = None,
        run_id: str | None = None,
        states: Sequence[LedgerState] | None = None,
        vendor: str | None = None,
    ) -> list[LedgerEntry]:
        self.ensure_schema()
        query = sa.select(self.rows).order_by(self.rows.c.created_at)
        if dag_id is not None:
            query = query.where(self.rows.c.dag_id == dag_id)
        if run_id is not None:
            query = query.where(self.rows.c.run_id == run_id)
        if states is not None:
            query = query.where(self.rows.c.state.in_([state.value for state in states]))
        if vendor is not None:
            query = query.where(self.rows.c.vendor == vendor)
        with self.transaction(write=False) as connection:
            return [self._entry(row) for row in connection.execute(query)]

    # -- the claim -----------------------------------------------------------------------------------
    def claim(
        self,
        key: SubmissionKey,
        *,
        valid_for_s: float = DEFAULT_VALID_FOR_S,
        owner: str | None = None,
        wait_for_owner_s: float = DEFAULT_OWNER_WAIT_S,
        poll_s: float = 0.5,
    ) -> Claim:
        """Decide, durably, what this try does for ``key``: submit (intent committed), reattach, or uncertain."""
        self.ensure_schema()
        owner = owner or current_owner(key.scope)
        deadline = time.monotonic() + wait_for_owner_s
        while True:
            try:
                claim = self._try_claim(
                    key, valid_for_s, owner, wait_for_owner_s, waited_out=time.monotonic() >= deadline
                )
            except IntegrityError:
                continue  # PostgreSQL: another writer inserted the same key first; read its row
            if claim is not None:
                return claim
            time.sleep(poll_s)

    def _try_claim(
        self, key: SubmissionKey, valid_for_s: float, owner: str, wait_for_owner_s: float, *, waited_out: bool
    ) -> Claim | None:
        table = self.rows
        now = _utc_now()
        with self.transaction(write=True) as connection:
            row = connection.execute(sa.select(table).where(table.c.key == key.digest).with_for_update()).first()
            if row is None:
                values = {
                    "key": key.digest,
                    "dag_id": key.scope.dag_id,
                    "run_id": key.scope.run_id,
                    "task_id": key.scope.task_id,
                    "map_index": key.scope.map_index,
                    "item_id": key.item_id,
                    "vendor": key.vendor,
                    "endpoint": key.endpoint,
                    "input_hash": key.input_hash,
                    "state": LedgerState.submitting.value,
                    "attempt": 1,
                    "job_id": None,
                    "previous_job_ids": "[]",
                    "owner": owner,
                    "created_at": now,
                    "submitted_at": None,
                    "finished_at": None,
                    "updated_at": now,
                    "output_uri": None,
                    "message": None,
                }
                connection.execute(table.insert().values(**values))
                return Claim(Decision.submit, self._entry(values))
            entry = self._entry(row)
            if entry.state in (LedgerState.submitted, LedgerState.succeeded) and entry.job_id:
                age = entry.age_s(now)
                if age < valid_for_s:
                    return Claim(
                        Decision.reattach,
                        entry,
                        f"{entry.vendor} job {entry.job_id} was submitted {age:.0f} s ago by an earlier try",
                    )
                return self._supersede(
                    connection, entry, owner, now, f"job {entry.job_id} is {age:.0f} s old: its result may be gone"
                )
            if entry.state in (LedgerState.failed, LedgerState.not_submitted):
                return self._supersede(connection, entry, owner, now, f"previous attempt {entry.state.value}")
            if entry.state is LedgerState.uncertain:
                return Claim(Decision.uncertain, entry, entry.message or "an earlier submit may have been accepted")
            # submitting: is its writer still at it?
            alive = _owner_state(entry.owner, owner)
            if alive is None:  # another host: give it the time a POST with retries may take
                alive = not waited_out and entry.age_s(now) < wait_for_owner_s
            elif alive:
                alive = not waited_out
            if alive:
                return None
            message = (
                f"{entry.vendor} {entry.endpoint} item {entry.item_id or '-'}: the try {entry.owner} wrote its "
                f"intent at {entry.created_at:%Y-%m-%d %H:%M:%S} UTC and ended before the vendor's answer was "
                "recorded; the job may exist and be billed. Not resubmitted automatically: check the vendor's "
                f"records, then resolve ledger key {entry.key}"
            )
            connection.execute(
                table.update()
                .where(table.c.key == entry.key, table.c.attempt == entry.attempt)
                .values(state=LedgerState.uncertain.value, message=message, updated_at=now)
            )
            return Claim(Decision.uncertain, replace(entry, state=LedgerState.uncertain, message=message), message)

    def _supersede(self, connection: Connection, entry: LedgerEntry, owner: str, now: datetime, why: str) -> Claim:
        previous = [*entry.previous_job_ids, *([entry.job_id] if entry.job_id else [])]
        values = {
            "state": LedgerState.submitting.value,
            "attempt": entry.attempt + 1,
            "job_id": None,
            "previous_job_ids": json.dumps(previous),
            "owner": owner,
            "created_at": now,
            "submitted_at": None,
            "finished_at": None,
            "updated_at": now,
            "output_uri": None,
            "message": why,
        }
        connection.execute(
            self.rows.update()
            .where(self.rows.c.key == entry.key, self.rows.c.attempt == entry.attempt)
            .values(**values)
        )
        fresh = replace(
            entry,
            state=LedgerState.submitting,
            attempt=entry.attempt + 1,
            job_id=None,
            previous_job_ids=tuple(previous),
            owner=owner,
            created_at=now,
            submitted_at=None,
            finished_at=None,
            updated_at=now,
            output_uri=None,
            message=why,
        )
        return Claim(Decision.submit, fresh, why)

    # -- after the POST ------------------------------------------------------------------------------
    def _update(self, key: str, attempt: int | None, allowed: Sequence[LedgerState], **values: Any) -> bool:
        self.ensure_schema()
        query = self.rows.update().where(
            self.rows.c.key == key, self.rows.c.state.in_([state.value for state in allowed])
        )
        if attempt is not None:
            query = query.where(self.rows.c.attempt == attempt)
        with self.transaction(write=True) as connection:
            return bool(connection.execute(query.values(updated_at=_utc_now(), **values)).rowcount)

    def record_job(self, entry: LedgerEntry, job: SubmittedJob) -> bool:
        """The vendor accepted: remember its job id (also over an ``uncertain`` a waiting try wrote meanwhile)."""
        return self._update(
            entry.key,
            entry.attempt,
            (LedgerState.submitting, LedgerState.uncertain),
            state=LedgerState.submitted.value,
            job_id=job.job_id,
            endpoint=job.endpoint,
            submitted_at=_utc(job.submitted_at) or _utc_now(),
            message=None,
        )

    def mark_not_submitted(self, entry: LedgerEntry, reason: str) -> bool:
        """The vendor refused the POST for sure (nothing billed): a later try may submit."""
        return self._update(
            entry.key, entry.attempt, (LedgerState.submitting,), state=LedgerState.not_submitted.value, message=reason
        )

    def mark_uncertain(self, entry: LedgerEntry, reason: str) -> bool:
        return self._update(
            entry.key, entry.attempt, (LedgerState.submitting,), state=LedgerState.uncertain.value, message=reason
        )

    def finish(
        self,
        vendor: str,
        job_id: str,
        *,
        succeeded: bool,
        output_uri: str | None = None,
        message: str | None = None,
    ) -> int:
        """The job's outcome is stored: ``succeeded`` (reattachable while valid) or ``failed`` (submit anew)."""
        self.ensure_schema()
        state = LedgerState.succeeded if succeeded else LedgerState.failed
        query = (
            self.rows.update()
            .where(self.rows.c.vendor == vendor, self.rows.c.job_id == job_id)
            .values(
                state=state.value, finished_at=_utc_now(), updated_at=_utc_now(), output_uri=output_uri, message=message
            )
        )
        with self.transaction(write=True) as connection:
            return int(connection.execute(query).rowcount or 0)

    # -- operators' tools ----------------------------------------------------------------------------
    def resolve(self, key: str, job_id: str | None) -> LedgerEntry:
        """Settle an ``uncertain`` submission after looking at the vendor's records.

        With the vendor's ``job_id``: the next try reattaches to it. With ``None`` (the vendor has
        no such job): the next try submits.
        """
        entry = self.get(key)
        if entry is None:
            raise KeyError(f"no ledger entry {key}")
        if job_id:
            values: dict[str, Any] = {
                "state": LedgerState.submitted.value,
                "job_id": job_id,
                "submitted_at": _utc_now(),
                "message": f"resolved by hand (was {entry.state.value})",
            }
        else:
            values = {"state": LedgerState.not_submitted.value, "message": "resolved by hand: not at the vendor"}
        self._update(key, None, tuple(LedgerState), **values)
        resolved = self.get(key)
        assert resolved is not None
        return resolved

    def purge(self, older_than: timedelta) -> int:
        """Delete rows untouched for ``older_than`` (keep it above every vendor's result lifetime)."""
        self.ensure_schema()
        cutoff = _utc_now() - older_than
        with self.transaction(write=True) as connection:
            return int(connection.execute(self.rows.delete().where(self.rows.c.updated_at < cutoff)).rowcount or 0)


# -- the protocol as one call --------------------------------------------------------------------------
def valid_for_s(vendor: str) -> float:
    """How long a submitted job may be reattached to: the vendor's result-URL lifetime."""
    from airflow_bgreplace.vendors.assumptions import BY_VENDOR

    assumed = BY_VENDOR.get(vendor)
    return assumed.result_url_ttl_s if assumed is not None else DEFAULT_VALID_FOR_S


def ledger_for(vendor: str) -> SubmissionLedger | None:
    """The shared ledger for a paid vendor; None for the local engine (nothing billed, jobs end inside submit)."""
    from airflow_bgreplace.vendors.assumptions import BY_VENDOR

    return SubmissionLedger.shared() if vendor in BY_VENDOR else None


def ledger_key(
    context: Mapping[str, Any], vendor: str, endpoint: str, item_id: str, inputs: Mapping[str, Any]
) -> SubmissionKey | None:
    """The submission key of an item in the running task, or None outside a task instance."""
    scope = LedgerScope.from_context(context)
    if scope is None:
        return None
    return SubmissionKey(scope, vendor, endpoint, item_id, input_hash(inputs))


@dataclass(frozen=True)
class Submission:
    job: SubmittedJob
    #: True: no POST was made, this is the job an earlier try submitted.
    reattached: bool
    message: str = ""


def submit_once(
    ledger: SubmissionLedger | None,
    key: SubmissionKey | None,
    submit: Callable[[], SubmittedJob],
    *,
    valid_for: float | None = None,
) -> Submission:
    """Submit through the ledger's protocol (intent, POST, job id); reattach or refuse when it says so.

    Raises :class:`SubmissionUncertainError` for an uncertain submission (an earlier try's, or this
    one's), and re-raises the submit's own errors after recording whether anything may be billed.
    Without a ledger or a key (no task instance) it just submits.
    """
    if ledger is None or key is None:
        return Submission(submit(), False)
    claim = ledger.claim(key, valid_for_s=valid_for if valid_for is not None else valid_for_s(key.vendor))
    entry = claim.entry
    if claim.decision is Decision.reattach:
        assert entry.job_id is not None
        job = SubmittedJob(
            vendor=key.vendor,
            endpoint=entry.endpoint,
            job_id=entry.job_id,
            fingerprint=key.input_hash,
            submitted_at=entry.submitted_at or entry.created_at,
            initial_state=JobState.queued,
        )
        return Submission(job, True, claim.message)
    if claim.decision is Decision.uncertain:
        raise SubmissionUncertainError(
            key.vendor, claim.message, submission_ref={"ledger_key": entry.key}, fingerprint=key.input_hash
        )
    try:
        job = submit()
    except SubmissionUncertainError as exc:
        _quietly(ledger.mark_uncertain, entry, f"{exc} (ledger key {entry.key})")
        raise
    except BgReplaceError as exc:  # refused before or by the vendor: nothing was created
        _quietly(ledger.mark_not_submitted, entry, f"{type(exc).__name__}: {exc}")
        raise
    except BaseException as exc:  # interrupted (a kill, a timeout) with the POST possibly sent
        _quietly(ledger.mark_uncertain, entry, f"submit interrupted by {type(exc).__name__}: {exc}")
        raise
    # The job id must survive this process: if the ledger cannot take it now, the caller still
    # saves it in the task state store, which is what the next try reads first.
    _quietly(ledger.record_job, entry, job)
    return Submission(job, False)


def finish_quietly(ledger: SubmissionLedger | None, vendor: str, job_id: str | None, **outcome: Any) -> None:
    """:meth:`SubmissionLedger.finish`, never failing the task over bookkeeping."""
    if ledger is not None and job_id:
        _quietly(ledger.finish, vendor, job_id, **outcome)


def _quietly(method: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    try:
        method(*args, **kwargs)
    except SQLAlchemyError as exc:
        log.error("submission ledger: %s failed: %s", getattr(method, "__name__", method), exc)


# -- command line --------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m airflow_bgreplace.ledger list|resolve``: inspect and settle submissions."""
    parser = argparse.ArgumentParser(prog="python -m airflow_bgreplace.ledger", description=main.__doc__)
    parser.add_argument("--database-url", help="default: [bgreplace] database_url")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="submissions as JSON lines")
    listing.add_argument("--state", choices=[state.value for state in LedgerState], action="append")
    listing.add_argument("--dag-id")
    listing.add_argument("--run-id")
    settle = commands.add_parser("resolve", help="settle an uncertain submission")
    settle.add_argument("key")
    found = settle.add_mutually_exclusive_group(required=True)
    found.add_argument("--job-id", help="the vendor job the submit created: the next try reattaches")
    found.add_argument("--not-at-vendor", action="store_true", help="no such job: the next try submits")
    args = parser.parse_args(argv)
    if args.database_url:
        ledger = SubmissionLedger(args.database_url)
    else:
        ledger = SubmissionLedger.shared()
    if args.command == "list":
        states = [LedgerState(state) for state in args.state] if args.state else None
        for entry in ledger.entries(dag_id=args.dag_id, run_id=args.run_id, states=states):
            print(json.dumps({**entry.__dict__, "state": entry.state.value}, default=str))
        return 0
    entry = ledger.resolve(args.key, None if args.not_at_vendor else args.job_id)
    print(f"{entry.key}: {entry.state.value} {entry.job_id or ''}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
