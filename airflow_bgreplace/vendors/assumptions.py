"""Every value the vendors do not document, in one place.

``../shared/vendors/*.md`` marks these lines "Undocumented — assumption". The clients, the
sandbox and the operators all read them from here, so that when a vendor publishes the real
number, one edit changes every place that depends on it. Each constant names its source section.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class VendorAssumptions:
    """What we assume about one vendor where its public docs are silent."""

    #: Jobs the vendor runs at once per account/key (runflow.md §9, fashn.md §8, fal.md §9, imagepipeline.md §8).
    concurrency: int
    #: Submits allowed per ``rate_window_s`` per key; ``None`` = no documented or assumed limit.
    submit_rate: int | None
    rate_window_s: float
    #: Status calls allowed per ``status_rate_window_s`` (only FASHN documents one).
    status_rate: int | None
    status_rate_window_s: float
    #: How long a result URL stays downloadable.
    result_url_ttl_s: float
    #: Price per request in USD (documented for Runflow; assumed elsewhere).
    price_usd: dict[str, float]
    #: Webhook delivery retry delays in seconds between attempts (len + 1 attempts in all).
    webhook_retry_delays_s: tuple[float, ...]
    #: Per-attempt webhook delivery timeout.
    webhook_timeout_s: float
    #: Typical job latency in seconds, per endpoint (the sandbox default; seeds where known).
    typical_latency_s: dict[str, float] = field(default_factory=dict)
    #: First poll delay and poll interval cap that respect the vendor's status limits.
    poll_interval_s: float = 2.0
    #: 429 answers carry Retry-After.
    sends_retry_after: bool = False


RUNFLOW = VendorAssumptions(
    concurrency=5,  # runflow.md §9: "5 concurrent running runs per model"
    submit_rate=120,  # runflow.md §9: "120 requests/minute per key"
    rate_window_s=60.0,
    status_rate=None,
    status_rate_window_s=60.0,
    result_url_ttl_s=3600.0,  # runflow.md §6: signed URL TTL 1 hour
    price_usd={"background-replace": 0.35, "background-color": 0.12},  # documented (seeds 000/001)
    webhook_retry_delays_s=(1.0, 2.0),  # runflow.md §10: seeds win, 3 attempts
    webhook_timeout_s=10.0,
    typical_latency_s={"background-replace": 20.0, "background-color": 8.0},
    poll_interval_s=2.0,  # runflow-js SDK default
    sends_retry_after=False,  # runflow.md §9: newest page says no rate-limit headers
)

FASHN = VendorAssumptions(
    concurrency=6,  # fashn.md §8: third-party OpenAPI says 6
    submit_rate=50,  # documented: /v1/run 50 / 60 s
    rate_window_s=60.0,
    status_rate=50,  # documented: /v1/status 50 / 10 s
    status_rate_window_s=10.0,
    result_url_ttl_s=72 * 3600.0,  # documented: CDN 72 h (base64 outputs: 60 min)
    price_usd={"background-change": 0.075},  # 1 credit; assumption: $0.075 per credit (on-demand price)
    webhook_retry_delays_s=(10.0, 20.0, 40.0, 80.0, 150.0),  # fashn.md §10
    webhook_timeout_s=10.0,
    typical_latency_s={"background-change": 12.0},  # seed: "Processing Time: 12 seconds"
    poll_interval_s=1.0,
    sends_retry_after=False,  # fashn.md §7.1
)

FAL = VendorAssumptions(
    concurrency=2,  # fal.md §9: new accounts 2 IN_PROGRESS (up to 40)
    submit_rate=None,  # fal.md §9: queue submits are never rejected
    rate_window_s=60.0,
    status_rate=None,
    status_rate_window_s=60.0,
    result_url_ttl_s=7 * 24 * 3600.0,  # fal.md §7: >= 7 days
    price_usd={"bria/replace-background": 0.04},  # fal.md §4: third-party catalogue price
    # fal.md §11: 10 retries over ~2 h, exponential.
    webhook_retry_delays_s=(15.0, 30.0, 60.0, 120.0, 240.0, 480.0, 900.0, 1200.0, 1800.0, 2400.0),
    webhook_timeout_s=15.0,
    typical_latency_s={"bria/replace-background": 6.0},
    poll_interval_s=1.0,
    sends_retry_after=False,
)

IMAGEPIPELINE = VendorAssumptions(
    concurrency=4,  # imagepipeline.md §8
    submit_rate=60,  # imagepipeline.md §8: 60 submits/minute
    rate_window_s=60.0,
    status_rate=None,
    status_rate_window_s=60.0,
    result_url_ttl_s=24 * 3600.0,  # documented: expires within 24 h
    price_usd={"background/change": 0.02, "background/remove": 0.02},  # imagepipeline.md §11
    webhook_retry_delays_s=(5.0, 25.0),  # imagepipeline.md §10: 3 attempts
    webhook_timeout_s=10.0,
    typical_latency_s={"background/change": 31.5, "background/remove": 12.8},  # seed examples
    poll_interval_s=2.0,  # docs: poll every 1-2 s
    sends_retry_after=True,  # the SDK reads Retry-After
)

BY_VENDOR: dict[str, VendorAssumptions] = {
    "runflow": RUNFLOW,
    "fashn": FASHN,
    "fal": FAL,
    "imagepipeline": IMAGEPIPELINE,
}

#: Status reads a second one triggerer process allows itself per connection of a vendor that
#: documents no status limit (fal, Runflow, ImagePipeline): an assumption, chosen so that 10,000
#: jobs in flight cost the vendor 20 reads a second and the triggerer a fraction of a core
#: (bench/RESULTS.md, "Triggerer footprint"). Up to 20 x 15 s = 300 jobs per connection, each job
#: is still read at its own backoff; past that, each is read less often.
STATUS_READS_PER_S = 20.0
#: The share of a documented status limit (FASHN: 50 per 10 s) that reads are paced to: a fixed
#: window admits a burst at its edges, so pacing at the full rate would meet 429 answers.
STATUS_RATE_MARGIN = 0.9

#: fal webhook signature tolerance (documented, fal.md §11) and the receivers' replay window for
#: ImagePipeline's unsigned ``timestamp`` (assumption, imagepipeline.md §10).
WEBHOOK_TIMESTAMP_TOLERANCE_S = 300.0

#: Runflow: what a failed run's callback ``output`` holds (assumption, runflow.md §10).
RUNFLOW_CALLBACK_FAILURE_KEYS = ("code", "message")
#: Runflow run records say ``canceled``; callbacks say ``cancelled`` (assumption, runflow.md §5).
RUNFLOW_RECORD_CANCELLED = "canceled"
RUNFLOW_CALLBACK_CANCELLED = "cancelled"

#: fal: after a cancel the status is COMPLETED with this error_type (assumption, fal.md §10).
FAL_CANCELLED_ERROR_TYPE = "client_cancelled"
#: fal: ``steps_num`` range the emulator and the request model enforce (assumption, fal.md §4).
FAL_STEPS_RANGE = (1, 50)

#: ImagePipeline: without ``recolor`` a remove job's result_url equals its cutout_url (assumption).
IMAGEPIPELINE_REMOVE_RESULT_IS_CUTOUT = True

#: What a submit beyond ``concurrency`` does, per vendor: ``queue`` = waits in the queued state
#: (documented: runflow.md §9, fal.md §9); ``reject`` = answered 429 and not created (documented for
#: FASHN, fashn.md §8; assumption for ImagePipeline, imagepipeline.md §8 "over-limit submits → 429
#: with Retry-After"). The sandbox also knows ``fail`` (job created, then failed with the vendor's
#: concurrency code), ImagePipeline's other documented form (imagepipeline.md §7).
OVER_CONCURRENCY: dict[str, str] = {
    "runflow": "queue",
    "fashn": "reject",
    "fal": "queue",
    "imagepipeline": "reject",
}
#: FASHN ``GET /v1/credits``: 30 requests per 10 s (documented, fashn.md §8).
FASHN_CREDITS_RATE: tuple[int, float] = (30, 10.0)
#: FASHN: credits one background-change/remove prediction costs (documented "Credits: 1", fashn.md §4).
FASHN_CREDITS_PER_JOB = 1

#: Runflow: failure codes of a failed run worth submitting again. vendors/README.md §10 assumes
#: "5xx / MODEL_UNAVAILABLE only"; any other code is treated as not retryable.
RUNFLOW_RETRYABLE_FAILURE_CODES: frozenset[str] = frozenset({"MODEL_UNAVAILABLE"})
#: Runflow: the run record's ``cost`` (documented only as ``"<string>"``, runflow.md §3) is read as
#: a decimal amount in USD, the currency of every published Runflow price.
RUNFLOW_RUN_COST_IS_USD = True

#: FASHN: runtime ``error.name`` values of a failed prediction worth submitting again
#: (vendors/README.md §10; fashn.md §7.2 says "retry" for PipelineError).
FASHN_RETRYABLE_ERROR_NAMES: frozenset[str] = frozenset({"PipelineError", "ThirdPartyError", "InternalServerError"})
