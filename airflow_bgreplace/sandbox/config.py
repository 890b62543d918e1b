"""Sandbox settings: one pydantic model, filled from defaults, ``BGREPLACE_SANDBOX_*``, CLI flags and
the control API (``POST /_sandbox/config``), in that order of precedence at start-up.

Options marked *per vendor* take either one value for every vendor or a mapping
``{"fal": 50, "fashn": 2}`` (a ``"*"`` key covers the vendors not named); a vendor missing from
the mapping, or ``None``, falls back to the vendor's value in
:mod:`airflow_bgreplace.vendors.assumptions`. Text forms accepted from the environment and the
command line: JSON (``50``, ``{"fal": 50}``, ``["A", "B"]``) or ``fal=50,fashn=2``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ENV_PREFIX = "BGREPLACE_SANDBOX_"

LatencyDistribution = Literal["fixed", "uniform", "exponential", "lognormal"]
#: What a submit beyond the concurrency cap does (see ``assumptions.OVER_CONCURRENCY``).
OverConcurrency = Literal["queue", "reject", "fail"]


class SandboxSettings(BaseModel):
    """Every knob of the sandbox. ``None`` on a per-vendor option means "the vendor's assumption"."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # --- access -------------------------------------------------------------------------------
    api_key: str | None = Field(default=None, description="Accept only this key (default: any non-empty key).")
    public_url: str | None = Field(
        default=None, description="Origin written into URLs the sandbox hands out (default: each request's Host)."
    )
    outbound_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts beyond loopback the sandbox may call (input URLs, webhooks). Empty: loopback only, "
        "so an emulator never reaches the internet whatever URL a test hands it.",
    )

    # --- jobs ---------------------------------------------------------------------------------
    latency_s: float | dict[str, float] | None = Field(
        default=None, description="Per vendor: mean job time in seconds (default: assumptions typical_latency_s)."
    )
    latency_distribution: LatencyDistribution = "uniform"
    latency_spread: float = Field(
        default=0.25, ge=0, description="uniform: +/- fraction of the mean; lognormal: sigma; ignored otherwise."
    )
    concurrency: int | dict[str, int] | None = Field(
        default=None, description="Per vendor: jobs running at once per API key; 0 = unlimited."
    )
    over_concurrency: OverConcurrency | dict[str, OverConcurrency] | None = Field(
        default=None, description="Per vendor: queue | reject (429) | fail (job fails with the vendor's code)."
    )
    submit_rate: int | dict[str, int] | None = Field(
        default=None, description="Per vendor: submits per rate window per key; 0 = unlimited."
    )
    rate_window_s: float | dict[str, float] | None = None
    status_rate: int | dict[str, int] | None = Field(
        default=None, description="Per vendor: status calls per status window per key; 0 = unlimited."
    )
    status_rate_window_s: float | dict[str, float] | None = None
    balance: float | dict[str, float] = Field(
        default=1000.0, description="Per vendor: starting balance per key (FASHN: credits; others: USD)."
    )

    # --- results ------------------------------------------------------------------------------
    result_url_ttl_s: float | dict[str, float] | None = Field(
        default=None, description="Per vendor: lifetime of result URLs (default: assumptions result_url_ttl_s)."
    )
    result_expire_immediately: bool = Field(default=False, description="Every result URL answers 'expired'.")
    max_input_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    max_input_pixels: int = Field(default=40_000_000, gt=0)
    input_fetch_timeout_s: float = Field(default=10.0, gt=0)

    # --- webhooks -----------------------------------------------------------------------------
    webhook_time_scale: float = Field(default=1.0, ge=0, description="Multiplies every webhook retry delay.")
    webhook_timeout_s: float | dict[str, float] | None = None
    webhook_drop_rate: float | dict[str, float] = 0.0

    # --- random faults (seeded) ---------------------------------------------------------------
    seed: int | None = Field(default=None, description="Seed of the RNG behind latency and random faults.")
    fault_5xx_rate: float | dict[str, float] = 0.0
    fault_429_rate: float | dict[str, float] = 0.0
    fault_drop_rate: float | dict[str, float] = 0.0
    fault_slow_rate: float | dict[str, float] = 0.0
    fault_slow_s: float = Field(default=5.0, ge=0)
    fault_malformed_json_rate: float | dict[str, float] = 0.0
    job_fail_rate: float | dict[str, float] = 0.0
    job_fail_codes: list[str] | dict[str, list[str]] | None = Field(
        default=None, description="Per vendor: codes drawn by job_fail_rate (default: each vendor's usual set)."
    )

    # --- server -------------------------------------------------------------------------------
    log_level: str = "warning"

    @field_validator(
        "webhook_drop_rate",
        "fault_5xx_rate",
        "fault_429_rate",
        "fault_drop_rate",
        "fault_slow_rate",
        "fault_malformed_json_rate",
        "job_fail_rate",
    )
    @classmethod
    def _rates_are_fractions(cls, value: float | dict[str, float]) -> float | dict[str, float]:
        values = value.values() if isinstance(value, dict) else [value]
        if any(not 0.0 <= v <= 1.0 for v in values):
            raise ValueError("rates are fractions between 0 and 1")
        return value

    @field_validator("job_fail_codes", mode="before")
    @classmethod
    def _codes_from_text(cls, value: Any) -> Any:
        # "A,B" from the command line or the environment.
        return [code.strip() for code in value.split(",") if code.strip()] if isinstance(value, str) else value

    def for_vendor(self, name: str, vendor: str) -> Any:
        """The value of option ``name`` for ``vendor``, or ``None`` when unset for it."""
        value = getattr(self, name)
        if isinstance(value, dict):
            return value.get(vendor, value.get("*"))
        return value

    def updated(self, changes: Mapping[str, Any]) -> SandboxSettings:
        """A validated copy with ``changes`` applied (the control API's partial update)."""
        return type(self).model_validate({**self.model_dump(), **dict(changes)})

    @classmethod
    def parse_field(cls, name: str, text: str) -> Any:
        """Text from the environment or a flag, as a value for field ``name``."""
        if cls.model_fields[name].annotation in (str, str | None):
            return text  # a key such as "12345" must stay a string
        return parse_option_value(text)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> SandboxSettings:
        """Settings from ``BGREPLACE_SANDBOX_<NAME>`` variables, then ``overrides`` on top."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = environ.get(ENV_PREFIX + name.upper())
            if raw is not None:
                values[name] = cls.parse_field(name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)


def parse_option_value(text: str) -> Any:
    """Parse an option given as text: JSON first, then ``a=1,b=2``, else the string itself."""
    stripped = text.strip()
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    if "=" in stripped and not stripped.startswith(("http://", "https://")):
        mapping: dict[str, Any] = {}
        for part in stripped.split(","):
            key, _, raw_value = part.partition("=")
            mapping[key.strip()] = parse_option_value(raw_value) if raw_value.strip() else None
        return mapping
    return stripped
