"""The receiver inside Airflow: the plugin entry point, and a real api-server serving it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from airflow_bgreplace.hooks import FalHook
from airflow_bgreplace.serving import free_port, wait_until_healthy
from airflow_bgreplace.vendors import JobState
from airflow_bgreplace.vendors.webhooks import callback_url
from airflow_bgreplace.webhooks.store import WebhookStore
from tests.conftest import sandbox_connection

TOKEN = "api-server-token-Hh4"


def test_the_plugin_is_registered_through_the_airflow_plugins_entry_point() -> None:
    [entry] = [ep for ep in entry_points(group="airflow.plugins") if ep.name == "bgreplace_webhooks"]
    plugin = entry.load()

    [mounted] = plugin.fastapi_apps
    assert plugin.name == "bgreplace_webhooks"
    assert mounted["url_prefix"] == "/bgreplace" and isinstance(mounted["app"], FastAPI)
    # Importing the plugin opens nothing: the store is opened by the first delivery.
    assert mounted["app"].state.receiver._store is None


def _airflow(*args: str, env: dict[str, str], timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    airflow = str(Path(sys.executable).with_name("airflow"))
    return subprocess.run([airflow, *args], env=env, capture_output=True, text=True, timeout=timeout_s, check=False)


@pytest.mark.slow
def test_the_api_server_mounts_the_receiver_and_stores_a_signed_fal_callback(
    tmp_path: Path, bgreplace_sandbox: Any, monkeypatch: pytest.MonkeyPatch, product_photo: Path
) -> None:
    home = tmp_path / "airflow-home"
    store_url = f"sqlite:///{tmp_path}/webhooks.db"
    connection = sandbox_connection(bgreplace_sandbox, "fal")
    monkeypatch.setenv("AIRFLOW_CONN_BGREPLACE_FAL_DEFAULT", connection)  # for our hook, in this process
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__BGREPLACE__WEBHOOK_STORE_URL": store_url,
        "AIRFLOW_CONN_BGREPLACE_FAL_DEFAULT": connection,
        "AIRFLOW_CONN_BGREPLACE_FASHN_DEFAULT": sandbox_connection(
            bgreplace_sandbox, "fashn", {"webhook_token": TOKEN}
        ),
    }
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    migrated = _airflow("db", "migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr[-2000:]

    port = free_port()
    log = (tmp_path / "api-server.log").open("wb")
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("airflow")), "api-server", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # so that its workers stop with it
    )
    try:
        listed = _airflow("plugins", "--output", "json", env=env)  # while the api-server starts
        wait_until_healthy(f"http://127.0.0.1:{port}/bgreplace/health", server, timeout_s=40)

        job = FalHook().submit(
            "bria/replace-background",
            webhook_url=callback_url(f"http://127.0.0.1:{port}", "fal", "bgreplace_fal_default"),
            image_url=product_photo,
            prompt="on a wooden table",
        )
        store = WebhookStore(store_url)
        deadline = time.monotonic() + 15
        while (event := store.get("fal", job.job_id)) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        fashn = httpx.post(
            callback_url(f"http://127.0.0.1:{port}", "fashn", "bgreplace_fashn_default", TOKEN),
            content=b'{"id": "p-1", "status": "completed", "output": ["https://cdn.example/p-1.png"]}',
            trust_env=False,
        )
        time.sleep(0.5)  # the access log line is written after the answer
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(15)
        log.close()

    assert event is not None, (tmp_path / "api-server.log").read_text()[-3000:]
    assert event.verified_by == "ed25519" and event.status.state is JobState.succeeded
    assert [entry["status_code"] for entry in bgreplace_sandbox.job("fal", job.job_id)["webhook_deliveries"]] == [200]
    assert any(plugin["name"] == "bgreplace_webhooks" for plugin in json.loads(listed.stdout)), listed.stderr[-2000:]
    # An unsigned vendor through the api-server: accepted with its token, which the logs never show.
    assert fashn.json() == {"accepted": True, "duplicate": False}
    server_log = (tmp_path / "api-server.log").read_text()
    assert "/bgreplace/webhooks/fashn" in server_log and TOKEN not in server_log
