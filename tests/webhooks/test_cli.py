"""``bgreplace-webhooks``: the retention command and the standalone server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from airflow_bgreplace.serving import free_port, wait_until_healthy
from airflow_bgreplace.vendors import JobState, JobStatus
from airflow_bgreplace.webhooks.cli import main, parse_duration
from airflow_bgreplace.webhooks.store import WebhookStore


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("90m", timedelta(minutes=90)),
     ("3600s", timedelta(seconds=3600)), ("2w", timedelta(weeks=2)), ("7", timedelta(days=7))],
)  # fmt: skip
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_purge_command_removes_what_is_older_than_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/w.db"
    store = WebhookStore(url)
    status = JobStatus(vendor="fal", endpoint="e", job_id="old", state=JobState.succeeded)
    long_ago = datetime.now(timezone.utc) - timedelta(days=31)
    store.record("fal", "old", b"{}", {}, status, "ed25519", received_at=long_ago)
    store.record("fal", "new", b"{}", {}, status.model_copy(update={"job_id": "new"}), "ed25519")

    assert main(["purge", "--older-than", "30d", "--store-url", url]) == 0
    assert "purged 2 row(s)" in capsys.readouterr().out
    assert store.get("fal", "old") is None and store.get("fal", "new") is not None
    monkeypatch.setenv("AIRFLOW__BGREPLACE__WEBHOOK_STORE_URL", url)  # the Airflow setting, no flag
    assert main(["purge", "--older-than", "0s"]) == 0
    assert store.counts() == {"deliveries": 0, "job_events": 0}


def test_bad_duration_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["purge", "--older-than", "soon"])
    assert "not a duration" in capsys.readouterr().err


def test_standalone_server_receives_and_never_logs_the_token(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/w.db"
    token = "standalone-token-Qv7"
    env = {
        **os.environ,
        "AIRFLOW_CONN_BGREPLACE_FASHN_DEFAULT": json.dumps(
            {"conn_type": "bgreplace_fashn", "extra": {"webhook_token": token}}
        ),
    }
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "airflow_bgreplace.webhooks.cli", "--port", str(port), "--store-url", url],
            env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}/bgreplace"
            wait_until_healthy(f"{base}/health", process)
            body = b'{"id": "p-1", "status": "completed", "output": ["https://cdn/x.png"]}'
            accepted = httpx.post(f"{base}/webhooks/fashn?token={token}", content=body, trust_env=False)
            refused = httpx.post(f"{base}/webhooks/fashn?token=wrong-{token}", content=body, trust_env=False)
        finally:
            process.terminate()
            process.wait(10)

    assert accepted.json() == {"accepted": True, "duplicate": False} and refused.status_code == 401
    assert WebhookStore(url).get("fashn", "p-1") is not None
    text = log.read_text()
    assert "fashn webhook accepted: job p-1" in text and "refused (401)" in text
    assert token not in text

