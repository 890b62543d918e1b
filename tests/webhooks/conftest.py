"""Fixtures for the webhook tests: stores on SQLite and PostgreSQL, the receiver under real
uvicorn, vendor connections pointing at the sandbox, and job submission with a callback URL."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from airflow_bgreplace.hooks import HOOKS
from airflow_bgreplace.serving import BackgroundServer
from airflow_bgreplace.vendors.webhooks import callback_url, default_conn_id
from airflow_bgreplace.webhooks.app import create_server_app
from airflow_bgreplace.webhooks.store import StoredJobEvent, WebhookStore
from tests.airflow_support import airflow_db  # noqa: F401 - fixture
from tests.conftest import StaticServer, sandbox_connection
from tests.postgres_support import require_postgres, temporary_schema

VENDORS = ["runflow", "fashn", "fal", "imagepipeline"]
TOKENS = {"fashn": "fashn-token-Zq8", "imagepipeline": "ip-token-Xw3"}


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = require_postgres()
    return url


@pytest.fixture
def postgres_store_url(postgres_url: str) -> Iterator[str]:
    with temporary_schema(postgres_url) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WebhookStore]:
    """A fresh store, on each backend in turn."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/webhooks.db"
    else:
        url = request.getfixturevalue("postgres_store_url")
    opened = WebhookStore(url)
    yield opened
    opened.dispose()  # before the PostgreSQL schema is dropped


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[WebhookStore]:
    opened = WebhookStore(f"sqlite:///{tmp_path}/webhooks.db")
    yield opened
    opened.dispose()


@dataclass
class Receiver:
    """The receiver app (mounted at /bgreplace) on a free loopback port, with a clock to shift."""

    server: BackgroundServer
    store: WebhookStore
    clock_offset_s: float = 0.0
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10.0, trust_env=False))

    def url(self, vendor: str, *, conn_id: str | None = None, token: str | None = None) -> str:
        return callback_url(self.server.base_url, vendor, conn_id or default_conn_id(vendor), token)

    def post(
        self,
        vendor: str,
        body: bytes,
        headers: dict[str, str] | None = None,
        *,
        conn_id: str | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json", **(headers or {})}
        return self.client.post(self.url(vendor, conn_id=conn_id, token=token), content=body, headers=headers)

    def wait_for(self, vendor: str, job_id: str, count: int = 1, timeout_s: float = 15.0) -> StoredJobEvent:
        """The stored event once ``count`` deliveries of the job have been accepted."""
        deadline = time.monotonic() + timeout_s
        while True:
            event = self.store.get(vendor, job_id)
            if event is not None and event.delivery_count >= count:
                return event
            if time.monotonic() > deadline:
                raise AssertionError(f"{vendor} job {job_id}: {count} delivery(ies) not stored in {timeout_s} s")
            time.sleep(0.05)


def start_receiver(store: WebhookStore, **options: Any) -> Iterator[Receiver]:
    holder: dict[str, Receiver] = {}
    app = create_server_app(store=store, clock=lambda: time.time() + holder["receiver"].clock_offset_s, **options)
    with BackgroundServer(app) as server:
        holder["receiver"] = receiver = Receiver(server, store)
        yield receiver
        receiver.client.close()


@pytest.fixture
def receiver(store: WebhookStore) -> Iterator[Receiver]:
    """The receiver on each store backend."""
    yield from start_receiver(store)


@pytest.fixture
def sqlite_receiver(sqlite_store: WebhookStore) -> Iterator[Receiver]:
    """The receiver on SQLite only (checks that do not depend on the backend)."""
    yield from start_receiver(sqlite_store, max_body_bytes=64 * 1024)


def create_runflow_secret(sandbox: Any, label: str = "tests") -> str:
    """A callback signing secret from the sandbox, as ``POST /v1/callback-secrets`` gives it."""
    answer = httpx.post(
        f"{sandbox.vendor_url('runflow')}/v1/callback-secrets",
        json={"label": label},
        headers={"Authorization": "Bearer sandbox-key"},
        trust_env=False,
    )
    answer.raise_for_status()
    return str(answer.json()["plain_secret"])


@dataclass
class Connections:
    """The vendor connections of a test: extras per vendor, settable again (env vars)."""

    sandbox: Any
    static_server: StaticServer
    monkeypatch: pytest.MonkeyPatch
    extras: dict[str, dict[str, Any]]

    def set(self, vendor: str, **extra: Any) -> None:
        if vendor == "runflow":
            extra = {**self.static_server.staging_extra(), **extra}
        self.extras[vendor] = extra
        self.monkeypatch.setenv(
            f"AIRFLOW_CONN_{default_conn_id(vendor).upper()}", sandbox_connection(self.sandbox, vendor, extra)
        )

    def token(self, vendor: str) -> str | None:
        return self.extras.get(vendor, {}).get("webhook_token")


@pytest.fixture
def connections(bgreplace_sandbox: Any, static_server: StaticServer, monkeypatch: pytest.MonkeyPatch) -> Connections:
    """Runflow with a signing secret created at the sandbox, FASHN and ImagePipeline with URL tokens,
    fal with nothing (its JWKS is found beside the sandbox base URL)."""
    made = Connections(bgreplace_sandbox, static_server, monkeypatch, {})
    made.set("runflow", webhook_secret=create_runflow_secret(bgreplace_sandbox))
    made.set("fashn", webhook_token=TOKENS["fashn"])
    made.set("fal")
    made.set("imagepipeline", webhook_token=TOKENS["imagepipeline"])
    return made


def _png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 90), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def job_inputs(vendor: str, photo: Path, public: StaticServer) -> tuple[str, dict[str, Any]]:
    """(endpoint, inputs) of a small job per vendor."""
    if vendor == "runflow":
        url = public.put("webhook-product.png", photo.read_bytes())
        return "background-color", {"image_url": url, "color_red": 10, "color_green": 200, "color_blue": 30}
    if vendor == "fashn":
        return "background-change", {"image": photo, "prompt": "a beach at sunset"}
    if vendor == "fal":
        return "bria/replace-background", {"image_url": photo, "prompt": "marble kitchen counter"}
    return "background/change", {"input_image": photo, "prompt": "forest"}


@dataclass
class Submitter:
    receiver: Receiver
    connections: Connections
    photo: Path
    public: StaticServer

    def __call__(self, vendor: str, token: str | None = None) -> tuple[str, str]:
        """Submit a job through the vendor's hook with a callback to the receiver: (job id, callback URL).

        The URL carries ``token``, by default the connection's ``webhook_token`` (if any).
        """
        endpoint, inputs = job_inputs(vendor, self.photo, self.public)
        url = self.receiver.url(vendor, token=token or self.connections.token(vendor))
        job = HOOKS[vendor]().submit(endpoint, webhook_url=url, **inputs)
        return job.job_id, url


@pytest.fixture
def submit(receiver: Receiver, connections: Connections, product_photo: Path, static_server: StaticServer) -> Submitter:
    return Submitter(receiver, connections, product_photo, static_server)


@pytest.fixture
def sqlite_submit(
    sqlite_receiver: Receiver, connections: Connections, product_photo: Path, static_server: StaticServer
) -> Submitter:
    return Submitter(sqlite_receiver, connections, product_photo, static_server)


# --------------------------------------------------------------------------- Airflow on top of the receiver


@dataclass
class WebhookAirflow:
    """Airflow configured for webhooks: ``[bgreplace] webhook_base_url`` is the receiver's URL, and
    ``webhook_store_url`` its store, so operators, triggers and sensors read what the receiver stores."""

    receiver: Receiver
    connections: Connections
    outputs: Path

    @property
    def store(self) -> WebhookStore:
        return self.receiver.store


def configure_airflow(
    receiver: Receiver, connections: Connections, monkeypatch: pytest.MonkeyPatch, outputs: Path
) -> Iterator[WebhookAirflow]:
    monkeypatch.setenv("AIRFLOW__BGREPLACE__WEBHOOK_BASE_URL", receiver.server.base_url)
    monkeypatch.setenv(
        "AIRFLOW__BGREPLACE__WEBHOOK_STORE_URL", receiver.store.url.render_as_string(hide_password=False)
    )
    monkeypatch.setenv("AIRFLOW__BGREPLACE__OUTPUT_BASE", f"file://{outputs}")
    shared = WebhookStore.shared()
    assert shared.url == receiver.store.url
    yield WebhookAirflow(receiver, connections, outputs)
    shared.dispose()  # before a PostgreSQL schema is dropped


@pytest.fixture
def webhook_airflow(
    receiver: Receiver, connections: Connections, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[WebhookAirflow]:
    """Receiver, store (each backend in turn) and vendor connections, wired into Airflow's settings."""
    yield from configure_airflow(receiver, connections, monkeypatch, tmp_path / "outputs")


@pytest.fixture
def sqlite_webhook_airflow(
    sqlite_store: WebhookStore, connections: Connections, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[WebhookAirflow]:
    """The same on SQLite only (checks that do not depend on the backend)."""
    for receiver in start_receiver(sqlite_store):
        yield from configure_airflow(receiver, connections, monkeypatch, tmp_path / "outputs")
