"""The API key never reaches a log: the nightly DAG against the fal sandbox, every log scanned.

A distinctive key is set in the connection (and required by the sandbox, so the run can only
succeed by sending it), the DAG runs under ``dag.test()`` with every logger at DEBUG, and then
every task log file under the test AIRFLOW_HOME, everything written to stdout/stderr (where
``dag.test()`` sends the task logs) and every log record (httpx's and httpcore's included) is
searched for the key in its plain and obvious encoded forms.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.airflow_support import airflow_db, run_dag, task_states, xcom_values  # noqa: F401
from tests.conftest import make_product_photo, sandbox_connection


def forbidden_forms(key: str) -> dict[str, str]:
    """The key as a log could show it: plain, in its auth header, and encoded."""
    raw = key.encode()
    return {
        "plain": key,
        "fal header": f"Key {key}",
        "bearer header": f"Bearer {key}",
        "base64": base64.b64encode(raw).decode(),
        "base64 of the header": base64.b64encode(f"Key {key}".encode()).decode(),
        "urlsafe base64": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "url-encoded": quote(key, safe=""),
        "hex": raw.hex(),
        # The middle of the key: a log that cut or masked only its ends still shows this.
        "middle": key[6:-6],
    }


@pytest.fixture
def debug_logging(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record at DEBUG, as a verbose deployment would log: httpx logs URLs, httpcore its steps."""
    for name in (None, "httpx", "httpcore", "airflow_bgreplace", "airflow.task"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def _log_files(home: Path, since: float) -> list[Path]:
    logs = home / "logs"
    if not logs.exists():
        return []
    return [path for path in logs.rglob("*") if path.is_file() and path.stat().st_mtime >= since - 1]


def test_the_api_key_is_in_no_log_of_a_nightly_run(
    airflow_db: None,  # noqa: F811
    bgreplace_sandbox: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    debug_logging: pytest.LogCaptureFixture,
) -> None:
    key = f"fal-key-{secrets.token_hex(12)}-do-not-log"
    bgreplace_sandbox.configure(api_key=key)  # any other key is refused: the run must send this one
    monkeypatch.setenv("AIRFLOW_CONN_BGREPLACE_FAL_DEFAULT", sandbox_connection(bgreplace_sandbox, "fal", key=key))
    monkeypatch.setenv("AIRFLOW__BGREPLACE__OUTPUT_BASE", f"file://{tmp_path / 'outputs'}")
    monkeypatch.setenv("AIRFLOW__BGREPLACE__DATABASE_URL", f"sqlite:///{tmp_path}/bgreplace.db")
    images = tmp_path / "catalog" / "images"
    images.mkdir(parents=True)
    rows = ["sku,image,treatment,color,prompt,reference,vendor,output_format"]
    for index in range(3):
        (images / f"p{index}.png").write_bytes(make_product_photo(colour=(60 * index, 90, 120)))
        rows.append(f"SECRET-SKU-{index},images/p{index}.png,scene,,on a marble counter,,,")
    rows.append("SECRET-BAD,images/missing.png,scene,,a beach,,,")
    manifest = tmp_path / "catalog" / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    started = time.time()

    run, _ = run_dag("nightly_catalog_refresh", manifest_uri=str(manifest), catalog="secrets", vendor="fal")

    captured = capfd.readouterr()
    assert str(run.state) == "success", task_states(run)
    [summary] = xcom_values(run, "publish")
    assert summary["succeeded"] == 3 and summary["invalid"] == 1
    assert bgreplace_sandbox.stats()["vendors"]["fal"]["submits_accepted"] == 3  # the key was sent, and accepted

    home = Path(os.environ["AIRFLOW_HOME"])
    sources = {"stdout": captured.out, "stderr": captured.err, "log records": debug_logging.text}
    for path in _log_files(home, started):
        sources[str(path.relative_to(home))] = path.read_bytes().decode("utf-8", "replace")
    everything = "\n".join(sources.values())
    # The capture saw the run, so a leak would have been seen: the operator's own log lines, the
    # job ids the sandbox issued, httpx's request lines and httpcore's DEBUG steps.
    assert "fal batch: 3 items" in everything
    assert "fal batch done" in everything
    job_ids = [job["id"] for job in bgreplace_sandbox.jobs("fal")]
    assert job_ids and all(str(job_id) in everything for job_id in job_ids)
    assert "HTTP Request: POST" in everything and "send_request_headers.started" in everything

    for source, text in sources.items():
        for form, value in forbidden_forms(key).items():
            assert value not in text, f"the API key ({form}) appears in {source}"
