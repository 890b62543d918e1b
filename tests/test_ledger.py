"""The submission ledger on SQLite and PostgreSQL: keys, the claim protocol, concurrent writers.

Submits go to the real sandbox; concurrent writers are separate processes.
"""

from __future__ import annotations

import multiprocessing
import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_bgreplace.ledger import (
    Decision,
    LedgerScope,
    LedgerState,
    SubmissionKey,
    SubmissionLedger,
    input_hash,
    main,
    submit_once,
)
from airflow_bgreplace.vendors import FalApi, VendorClient
from airflow_bgreplace.vendors.errors import InvalidInputError, RateLimitError, SubmissionUncertainError
from airflow_bgreplace.vendors.retry import RetryPolicy
from airflow_bgreplace.vendors.status import SubmittedJob
from tests.conftest import make_product_photo
from tests.postgres_support import require_postgres, temporary_schema

SCOPE = LedgerScope("nightly", "scheduled__2026-11-23", "process", 0, try_number=1)


@pytest.fixture(scope="module")
def postgres_url() -> str:
    return require_postgres()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/ledger.db"
    else:
        with temporary_schema(request.getfixturevalue("postgres_url")) as url:
            yield url


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[SubmissionLedger]:
    opened = SubmissionLedger(ledger_url)
    yield opened
    opened.dispose()  # before the PostgreSQL schema is dropped


def _url(ledger: SubmissionLedger) -> str:
    return ledger.url.render_as_string(hide_password=False)


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "sku-1.png"
    path.write_bytes(make_product_photo(colour=(30, 90, 200)))
    return path


def _key(photo: Path, scope: LedgerScope = SCOPE, item_id: str = "SKU-1", prompt: str = "on marble") -> SubmissionKey:
    return SubmissionKey(scope, "fal", "", item_id, input_hash({"image_url": str(photo), "prompt": prompt}))


def _job(job_id: str) -> SubmittedJob:
    return SubmittedJob(
        vendor="fal", endpoint="e", job_id=job_id, fingerprint="f", submitted_at=datetime.now(timezone.utc)
    )


def _client(sandbox: Any) -> VendorClient:
    return VendorClient(
        FalApi(), api_key="k", base_url=sandbox.vendor_url("fal"), retry=RetryPolicy(max_attempts=2, base_delay_s=0.01)
    )


# -- keys --------------------------------------------------------------------------------------------
def test_the_key_follows_content_and_task_instance_not_names_or_tries(photo: Path, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere.png"
    copy.write_bytes(photo.read_bytes())
    base = _key(photo)

    assert _key(copy).digest == base.digest  # same bytes under another name
    retry = LedgerScope(SCOPE.dag_id, SCOPE.run_id, SCOPE.task_id, SCOPE.map_index, try_number=3)
    assert _key(photo, scope=retry).digest == base.digest  # a retry of the same task instance
    assert input_hash({"a": 1, "b": [1, 2]}) == input_hash({"b": [1, 2], "a": 1})

    changed = tmp_path / "changed.png"
    changed.write_bytes(make_product_photo(colour=(31, 90, 200)))
    next_night = LedgerScope(SCOPE.dag_id, "scheduled__2026-11-24", SCOPE.task_id, SCOPE.map_index)
    assert (
        len(
            {
                base.digest,
                _key(changed).digest,  # the photo changed
                _key(photo, prompt="on a beach").digest,  # a parameter changed
                _key(photo, scope=next_night).digest,  # another run
                _key(photo, item_id="SKU-2").digest,  # another item
            }
        )
        == 5
    )


# -- the protocol ------------------------------------------------------------------------------------
def test_a_new_key_is_claimed_and_a_recorded_job_is_reattached(ledger: SubmissionLedger, photo: Path) -> None:
    key = _key(photo)
    first = ledger.claim(key, owner="worker-a:1:1")
    assert first.decision is Decision.submit and first.entry.state is LedgerState.submitting
    # The intent is committed before any POST: another connection sees it.
    seen = SubmissionLedger(ledger.url).get(key)
    assert seen is not None and seen.state is LedgerState.submitting and seen.job_id is None

    assert ledger.record_job(first.entry, _job("job-1"))

    again = ledger.claim(key, owner="worker-b:2:2")
    assert again.decision is Decision.reattach and again.entry.job_id == "job-1"
    assert "job-1" in again.message

    assert ledger.finish("fal", "job-1", succeeded=True, output_uri="file:///out/SKU-1.png") == 1
    assert ledger.claim(key, owner="worker-c:3:3").decision is Decision.reattach  # still within the TTL
    expired = ledger.claim(key, owner="worker-c:3:3", valid_for_s=0.0)
    assert expired.decision is Decision.submit and expired.entry.attempt == 2
    assert expired.entry.previous_job_ids == ("job-1",)


def test_a_failed_or_refused_submission_may_be_submitted_again(ledger: SubmissionLedger, photo: Path) -> None:
    key = _key(photo)
    claim = ledger.claim(key)
    ledger.record_job(claim.entry, _job("j1"))
    ledger.finish("fal", "j1", succeeded=False, message="failed: content policy")
    retry = ledger.claim(key)
    assert retry.decision is Decision.submit and retry.entry.attempt == 2

    assert ledger.mark_not_submitted(retry.entry, "HTTP 422")
    third = ledger.claim(key)
    assert third.decision is Decision.submit and third.entry.attempt == 3


def test_an_intent_whose_writer_died_is_uncertain_until_resolved(ledger: SubmissionLedger, photo: Path) -> None:
    key = _key(photo)
    process = multiprocessing.get_context("spawn").Process(target=_claim_and_exit, args=(_url(ledger), key))
    process.start()
    process.join(60)
    assert process.exitcode == 0
    intent = ledger.get(key)
    assert intent is not None and intent.state is LedgerState.submitting  # a writer that died mid-POST

    claim = ledger.claim(key)
    assert claim.decision is Decision.uncertain
    assert key.digest in claim.message and "not resubmitted" in claim.message.lower()
    assert ledger.claim(key).decision is Decision.uncertain  # stays so: never a silent resubmit

    resolved = ledger.resolve(key.digest, "job-found-at-vendor")
    assert resolved.state is LedgerState.submitted
    assert ledger.claim(key).decision is Decision.reattach
    ledger.resolve(key.digest, None)
    assert ledger.claim(key).decision is Decision.submit


def _claim_and_exit(url: str, key: SubmissionKey) -> None:
    SubmissionLedger(url).claim(key)  # then the process ends without a POST or a record


def test_an_intent_of_another_host_is_waited_for_then_uncertain(ledger: SubmissionLedger, photo: Path) -> None:
    key = _key(photo)
    ledger.claim(key, owner="other-host:123:1")
    claim = ledger.claim(key, wait_for_owner_s=0.3, poll_s=0.05)
    assert claim.decision is Decision.uncertain


# -- submit_once against the sandbox -----------------------------------------------------------------
def test_submit_once_reattaches_instead_of_posting_again(
    ledger: SubmissionLedger, photo: Path, bgreplace_sandbox: Any
) -> None:
    key = _key(photo)
    with _client(bgreplace_sandbox) as client:
        first = submit_once(ledger, key, lambda: client.submit(image_url=str(photo), prompt="on marble"))
        second = submit_once(ledger, key, lambda: client.submit(image_url=str(photo), prompt="on marble"))

    assert not first.reattached and second.reattached
    assert second.job.job_id == first.job.job_id
    stats = bgreplace_sandbox.stats()["vendors"]["fal"]
    assert stats["submits_accepted"] == 1 and stats["duplicate_submits"] == 0


def test_an_answer_lost_after_the_vendor_accepted_is_never_resent(
    ledger: SubmissionLedger, photo: Path, bgreplace_sandbox: Any
) -> None:
    bgreplace_sandbox.inject_fault("fal", "drop_after_accept", route="submit")
    key = _key(photo)
    with _client(bgreplace_sandbox) as client:
        with pytest.raises(SubmissionUncertainError):
            submit_once(ledger, key, lambda: client.submit(image_url=str(photo), prompt="on marble"))
        entry = ledger.get(key)
        assert entry is not None and entry.state is LedgerState.uncertain
        # The next try does not POST: it reports the same doubt, naming the ledger key.
        with pytest.raises(SubmissionUncertainError, match=key.digest) as raised:
            submit_once(ledger, key, lambda: client.submit(image_url=str(photo), prompt="on marble"))
    assert raised.value.submission_ref == {"ledger_key": key.digest}
    assert bgreplace_sandbox.stats()["vendors"]["fal"]["submits_accepted"] == 1


def test_a_refused_submit_leaves_the_item_free_to_submit(
    ledger: SubmissionLedger, photo: Path, bgreplace_sandbox: Any
) -> None:
    bgreplace_sandbox.inject_fault("fal", "429", route="submit", count=5)
    key = _key(photo)
    with _client(bgreplace_sandbox) as client:
        with pytest.raises(RateLimitError):
            submit_once(ledger, key, lambda: client.submit(image_url=str(photo), prompt="on marble"))
        entry = ledger.get(key)
        assert entry is not None and entry.state is LedgerState.not_submitted
        bgreplace_sandbox.clear_faults()
        done = submit_once(ledger, key, lambda: client.submit(image_url=str(photo), prompt="on marble"))
    assert not done.reattached
    assert bgreplace_sandbox.stats()["vendors"]["fal"]["submits_accepted"] == 1


def test_invalid_input_is_refused_before_any_post(
    ledger: SubmissionLedger, photo: Path, bgreplace_sandbox: Any
) -> None:
    key = _key(photo, prompt="")
    with _client(bgreplace_sandbox) as client, pytest.raises(InvalidInputError, match="steps_num"):
        submit_once(ledger, key, lambda: client.submit(image_url=str(photo), prompt="x", steps_num="many"))
    entry = ledger.get(key)
    assert entry is not None and entry.state is LedgerState.not_submitted
    assert bgreplace_sandbox.stats()["vendors"]["fal"]["submits_accepted"] == 0


# -- concurrent writers ------------------------------------------------------------------------------
def _race(url: str, key: SubmissionKey, base_url: str, photo: str, barrier: Any, results: Any) -> None:
    client = VendorClient(FalApi(), api_key="k", base_url=base_url)
    ledger = SubmissionLedger(url)
    barrier.wait()
    try:
        done = submit_once(ledger, key, lambda: client.submit(image_url=photo, prompt="on marble"))
        results.put((done.job.job_id, done.reattached))
    except Exception as exc:  # reported to the parent, which fails the test
        results.put((f"error: {type(exc).__name__}: {exc}", None))
    finally:
        client.close()
        ledger.dispose()


def test_concurrent_writers_submit_once_and_all_follow_that_job(
    ledger: SubmissionLedger, photo: Path, bgreplace_sandbox: Any
) -> None:
    """Eight processes claim the same item at once: one POSTs, the others wait for its id and reattach."""
    ledger.ensure_schema()  # the schema race is tested elsewhere; this one is about the claim
    # A slow submit answer keeps the winner's intent open while the others arrive.
    bgreplace_sandbox.inject_fault("fal", "slow", route="submit", slow_s=1.0)
    context = multiprocessing.get_context("spawn")
    writers = 8
    barrier = context.Barrier(writers)
    results = context.Queue()
    key = _key(photo)
    processes = [
        context.Process(
            target=_race,
            args=(_url(ledger), key, bgreplace_sandbox.vendor_url("fal"), str(photo), barrier, results),
        )
        for _ in range(writers)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(30)

    job_ids = {job_id for job_id, _ in outcomes}
    assert len(job_ids) == 1, outcomes
    assert sorted(reattached for _, reattached in outcomes) == [False] + [True] * (writers - 1)
    stats = bgreplace_sandbox.stats()["vendors"]["fal"]
    assert stats["submits_accepted"] == 1 and stats["duplicate_submits"] == 0


def test_concurrent_claims_of_many_keys_each_win_once(ledger: SubmissionLedger, tmp_path: Path) -> None:
    """Four processes claim the same 40 keys in different orders: every key has exactly one submitter."""
    ledger.ensure_schema()
    context = multiprocessing.get_context("spawn")
    keys = [SubmissionKey(SCOPE, "fal", "", f"SKU-{n}", f"{n:064d}") for n in range(40)]
    results = context.Queue()
    processes = [context.Process(target=_claim_all, args=(_url(ledger), keys, n, results)) for n in range(4)]
    for process in processes:
        process.start()
    won = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(30)
    flat = [digest for batch in won for digest in batch]
    assert sorted(flat) == sorted(key.digest for key in keys)  # each key: exactly one submit decision


def _claim_all(url: str, keys: list[SubmissionKey], seed: int, results: Any) -> None:
    ledger = SubmissionLedger(url)
    order = list(keys)
    random.Random(seed).shuffle(order)
    won = []
    for key in order:
        claim = ledger.claim(key, wait_for_owner_s=30, poll_s=0.02)
        if claim.decision is Decision.submit:
            won.append(key.digest)
            ledger.record_job(claim.entry, _job(f"job-{key.item_id}"))
        else:
            assert claim.decision is Decision.reattach, claim
    ledger.dispose()
    results.put(won)


# -- maintenance ---------------------------------------------------------------------------------------
def test_purge_and_the_command_line(ledger: SubmissionLedger, photo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = _key(photo)
    ledger.claim(key, owner="other-host:1:1")
    ledger.claim(key, wait_for_owner_s=0.0)  # -> uncertain
    url = _url(ledger)

    assert main(["--database-url", url, "list", "--state", "uncertain"]) == 0
    listed = capsys.readouterr().out
    assert key.digest in listed and '"state": "uncertain"' in listed
    assert main(["--database-url", url, "resolve", key.digest, "--job-id", "req-77"]) == 0
    assert "submitted req-77" in capsys.readouterr().out

    assert ledger.purge(timedelta(days=1)) == 0
    assert ledger.purge(timedelta(seconds=-1)) == 1
    assert ledger.get(key) is None
