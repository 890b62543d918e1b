"""Fault injection: random rates from the settings, and deterministic scripts queued through
``POST /_sandbox/faults``.

Request faults (``kind``), consumed by the next matching request of ``vendor`` on ``route``:

============================  =================================================================
``5xx``                       the vendor's 5xx error body (``status`` overrides the code); no job
``429``                       the vendor's 429 body; ``Retry-After`` where the vendor sends one,
                              or always when ``retry_after`` is given
``429_no_retry_after``        the vendor's 429 body without ``Retry-After``
``drop``                      connection closed without any response (on submit: no job)
``drop_mid_response``         handler runs, then the connection closes halfway through the body
``drop_after_accept``         handler runs (the job IS created), then closed without a response
``5xx_after_accept``          handler runs (the job IS created), the answer is a 5xx anyway
``slow``                      the answer is delayed by ``slow_s`` seconds (then normal)
``malformed_json``            handler runs (a submit IS accepted), the JSON body is cut in half
============================  =================================================================

Job faults: ``{"vendor": "fashn", "kind": "job_fail", "code": "ImageLoadError", "count": 1}``
makes the next ``count`` jobs of the vendor fail with that vendor code (``message`` optional).

``vendor`` may be ``"any"``; ``route`` is one of submit, status, result, cancel, file, any.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from airflow_bgreplace.sandbox.config import SandboxSettings

RouteKind = Literal["submit", "status", "result", "cancel", "file", "other"]
FaultRoute = Literal["submit", "status", "result", "cancel", "file", "any"]
RequestFaultKind = Literal[
    "5xx",
    "429",
    "429_no_retry_after",
    "drop",
    "drop_mid_response",
    "drop_after_accept",
    "5xx_after_accept",
    "slow",
    "malformed_json",
]
FaultKind = RequestFaultKind | Literal["job_fail"]

#: Kinds that let the handler run first and then spoil its answer.
AFTER_HANDLER_KINDS = frozenset({"drop_mid_response", "drop_after_accept", "5xx_after_accept", "malformed_json"})


class FaultSpec(BaseModel):
    """Body of ``POST /_sandbox/faults``."""

    model_config = ConfigDict(extra="forbid")

    vendor: str = "any"
    route: FaultRoute = "any"
    kind: FaultKind
    count: int = Field(default=1, ge=1)
    slow_s: float | None = Field(default=None, ge=0)
    status: int | None = Field(default=None, ge=500, le=599)
    retry_after: float | None = Field(default=None, ge=0)
    code: str | None = None
    message: str | None = None

    @model_validator(mode="after")
    def _route_fits_kind(self) -> FaultSpec:
        if self.kind in ("drop_after_accept", "5xx_after_accept") and self.route not in ("submit", "any"):
            raise ValueError(f"{self.kind} only makes sense on the submit route")
        if self.kind == "job_fail" and self.route != "any":
            raise ValueError("job_fail applies to jobs, not to a route")
        return self


@dataclass
class FaultAction:
    """One fault to apply now."""

    kind: FaultKind
    slow_s: float = 0.0
    status: int | None = None
    retry_after: float | None = None
    code: str | None = None
    message: str | None = None
    scripted: bool = True


@dataclass
class _Script:
    spec: FaultSpec
    remaining: int


def _route_matches(wanted: str, route: RouteKind) -> bool:
    return wanted == "any" or wanted == route


class FaultBook:
    """Queued scripts plus the seeded RNG behind the random rates (one per sandbox)."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed)
        self._scripts: list[_Script] = []

    def reset(self, seed: int | None) -> None:
        self.rng = random.Random(seed)
        self._scripts.clear()

    def add(self, spec: FaultSpec) -> None:
        self._scripts.append(_Script(spec, spec.count))

    def pending(self) -> list[dict[str, Any]]:
        return [{**script.spec.model_dump(), "remaining": script.remaining} for script in self._scripts]

    def _take(self, vendor: str, predicate: Any) -> FaultSpec | None:
        for script in self._scripts:
            if script.spec.vendor in ("any", vendor) and predicate(script.spec):
                script.remaining -= 1
                if script.remaining <= 0:
                    self._scripts.remove(script)
                return script.spec
        return None

    def request_fault(self, settings: SandboxSettings, vendor: str, route: RouteKind) -> FaultAction | None:
        """The fault for this request: the first matching script, else a random draw."""
        spec = self._take(vendor, lambda s: s.kind != "job_fail" and _route_matches(s.route, route))
        if spec is not None:
            slow_s = spec.slow_s if spec.slow_s is not None else settings.fault_slow_s
            return FaultAction(spec.kind, slow_s, spec.status, spec.retry_after, spec.code, spec.message)
        return self._random_request_fault(settings, vendor, route)

    def _rate(self, settings: SandboxSettings, name: str, vendor: str) -> float:
        return float(settings.for_vendor(name, vendor) or 0.0)

    def _random_request_fault(self, settings: SandboxSettings, vendor: str, route: RouteKind) -> FaultAction | None:
        draws: list[tuple[str, FaultKind]] = [("fault_drop_rate", "drop"), ("fault_5xx_rate", "5xx")]
        if route != "file":  # a CDN neither rate-limits per key nor answers JSON
            draws += [("fault_429_rate", "429"), ("fault_malformed_json_rate", "malformed_json")]
        draws.append(("fault_slow_rate", "slow"))
        for option, kind in draws:
            rate = self._rate(settings, option, vendor)
            if rate and self.rng.random() < rate:
                if kind == "drop" and self.rng.random() < 0.5:
                    kind = "drop_mid_response"  # half the drops happen while the body is on the wire
                return FaultAction(kind, slow_s=settings.fault_slow_s, scripted=False)
        return None

    def job_failure(self, settings: SandboxSettings, vendor: str, default_codes: tuple[str, ...]) -> FaultAction | None:
        """The failure a new job of ``vendor`` is doomed to, if any (scripts first)."""
        spec = self._take(vendor, lambda s: s.kind == "job_fail")
        if spec is not None:
            return FaultAction("job_fail", code=spec.code or default_codes[0], message=spec.message)
        rate = self._rate(settings, "job_fail_rate", vendor)
        if rate and self.rng.random() < rate:
            codes = settings.for_vendor("job_fail_codes", vendor) or default_codes
            return FaultAction("job_fail", code=self.rng.choice(list(codes)), scripted=False)
        return None

    def webhook_dropped(self, settings: SandboxSettings, vendor: str) -> bool:
        rate = self._rate(settings, "webhook_drop_rate", vendor)
        return bool(rate) and self.rng.random() < rate
