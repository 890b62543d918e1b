"""Helpers for the sandbox tests: input images over loopback HTTP, a webhook receiver, polling.

The sandbox itself comes from the package's pytest plugin (``bgreplace_sandbox``), so these tests
also exercise the fixture users get.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import uuid
import zipfile
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx
import pytest
from PIL import Image, ImageDraw

from airflow_bgreplace.sandbox.server import SandboxServer

T = TypeVar("T")

PRODUCT_SIZE = (64, 48)
SUBJECT_COLOUR = (200, 30, 30)


def product_image(fmt: str = "PNG", size: tuple[int, int] = PRODUCT_SIZE) -> bytes:
    """A red disc on a white backdrop: what the border key of the renderer expects."""
    image = Image.new("RGB", size, (255, 255, 255))
    width, height = size
    ImageDraw.Draw(image).ellipse((width // 4, height // 6, 3 * width // 4, 5 * height // 6), fill=SUBJECT_COLOUR)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def reference_image() -> bytes:
    image = Image.linear_gradient("L").resize((80, 60)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def open_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def wait_until(check: Callable[[], T | None], timeout_s: float = 8.0, interval_s: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(interval_s)


class FileServer:
    """Serves registered bytes over http://127.0.0.1 (the sandbox's loopback input source)."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[int, bytes, str]] = {}
        files = self.files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body, content_type = files.get(self.path, (404, b"not found", "text/plain"))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def serve(self, data: bytes, content_type: str = "image/png", *, status: int = 200, name: str = "") -> str:
        path = f"/{uuid.uuid4().hex}/{name or 'file'}"
        self.files[path] = (status, data, content_type)
        return self.base_url + path

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """Records webhook POSTs; answers with queued status codes, then 200."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.responses: deque[int] = deque()
        self._condition = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._condition:
                    receiver.deliveries.append(
                        Delivery(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    status = receiver.responses.popleft() if receiver.responses else 200
                    receiver._condition.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook?token=secret-token"

    def respond_with(self, *statuses: int) -> None:
        self.responses.extend(statuses)

    def wait_for(self, count: int, timeout_s: float = 8.0) -> list[Delivery]:
        with self._condition:
            if not self._condition.wait_for(lambda: len(self.deliveries) >= count, timeout_s):
                raise AssertionError(f"expected {count} deliveries, got {len(self.deliveries)}")
            return list(self.deliveries)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="session")
def file_server() -> Iterator[FileServer]:
    server = FileServer()
    yield server
    server.close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver()
    yield hook
    hook.close()


@pytest.fixture
def sandbox(bgreplace_sandbox: SandboxServer) -> SandboxServer:
    return bgreplace_sandbox


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


@pytest.fixture
def product_url(file_server: FileServer) -> str:
    return file_server.serve(product_image(), name="product.png")
