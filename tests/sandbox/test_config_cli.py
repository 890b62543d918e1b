"""Settings from the environment and the command line, and the console script itself."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from airflow_bgreplace.sandbox.cli import build_parser, settings_from_args
from airflow_bgreplace.sandbox.config import SandboxSettings, parse_option_value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0.3", 0.3),
        ("true", True),
        ('{"fal": 50}', {"fal": 50}),
        ("fal=50,fashn=2", {"fal": 50, "fashn": 2}),
        ("lognormal", "lognormal"),
        ("http://127.0.0.1:9/x?a=b", "http://127.0.0.1:9/x?a=b"),
    ],
)
def test_parse_option_value(text: str, value: object) -> None:
    assert parse_option_value(text) == value


def test_settings_from_env() -> None:
    settings = SandboxSettings.from_env(
        {
            "BGREPLACE_SANDBOX_CONCURRENCY": "fal=50",
            "BGREPLACE_SANDBOX_LATENCY_S": "0.25",
            "BGREPLACE_SANDBOX_JOB_FAIL_CODES": "A,B",
            "BGREPLACE_SANDBOX_RESULT_EXPIRE_IMMEDIATELY": "true",
        }
    )
    assert settings.concurrency == {"fal": 50} and settings.latency_s == 0.25
    assert settings.job_fail_codes == ["A", "B"] and settings.result_expire_immediately is True
    assert settings.for_vendor("concurrency", "fal") == 50
    assert settings.for_vendor("concurrency", "fashn") is None


def test_star_key_covers_other_vendors() -> None:
    settings = SandboxSettings(concurrency={"fal": 1, "*": 9})
    assert (settings.for_vendor("concurrency", "fal"), settings.for_vendor("concurrency", "fashn")) == (1, 9)


def test_cli_flags_override_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BGREPLACE_SANDBOX_LATENCY_S", "9")
    monkeypatch.setenv("BGREPLACE_SANDBOX_API_KEY", "from-env")
    args = build_parser().parse_args(
        ["--latency-s", "0.5", "--concurrency", "fal=1", "--result-expire-immediately", "--seed", "3"]
    )
    settings = settings_from_args(args)
    assert (settings.latency_s, settings.concurrency, settings.seed) == (0.5, {"fal": 1}, 3)
    assert settings.result_expire_immediately is True and settings.api_key == "from-env"


def test_every_setting_has_a_flag() -> None:
    flags = {action.dest for action in build_parser()._actions}
    assert set(SandboxSettings.model_fields) <= flags


def test_console_script_serves(tmp_path: object) -> None:
    env = {**os.environ, "BGREPLACE_SANDBOX_API_KEY": "cli-key"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_bgreplace.sandbox",
            "--port",
            "0",
            "--latency-s",
            "0.1",
            "--concurrency",
            "fal=1",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("bgreplace-sandbox listening on http://127.0.0.1:")
        base = line.rsplit(" ", 1)[1]

        def ready() -> httpx.Response | None:
            try:
                return httpx.get(f"{base}/_sandbox/config", timeout=2)
            except httpx.TransportError:
                return None

        from tests.sandbox.conftest import wait_until

        config = wait_until(ready).json()
        assert (config["latency_s"], config["concurrency"], config["api_key"]) == (0.1, {"fal": 1}, "cli-key")
        denied = httpx.get(f"{base}/fashn/v1/credits", headers={"Authorization": "Bearer other"})
        assert denied.status_code == 401
    finally:
        process.terminate()
        process.wait(10)


def test_text_options_stay_text() -> None:
    settings = settings_from_args(build_parser().parse_args(["--api-key", "12345", "--log-level", "info"]))
    assert settings.api_key == "12345" and settings.log_level == "info"
    assert SandboxSettings.from_env({"BGREPLACE_SANDBOX_API_KEY": "true"}).api_key == "true"
