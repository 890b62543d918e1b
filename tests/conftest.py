"""Test setup: an isolated AIRFLOW_HOME, set before anything imports Airflow."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_HOME = Path(tempfile.mkdtemp(prefix="bgreplace-tests-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME}/airflow.db"
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).resolve().parent.parent / "dags_examples"))

import pytest  # noqa: E402


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


import functools  # noqa: E402
import http.server  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import threading  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402

from PIL import Image, ImageDraw  # noqa: E402


def make_product_photo(size: tuple[int, int] = (160, 120), colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A product on a near-white studio background: a filled ellipse with a darker rim."""
    image = Image.new("RGB", size, (246, 246, 244))
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.ellipse((w * 0.25, h * 0.2, w * 0.75, h * 0.85), fill=colour, outline=(90, 20, 20), width=3)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class StaticServer:
    """A folder served over http on 127.0.0.1: the tests' stand-in for a public bucket."""

    root: Path
    base_url: str

    def staging_extra(self) -> dict[str, str]:
        """Connection extras that stage local images into this folder (Runflow needs public URLs)."""
        return {"staging_path": str(self.root / "staged"), "staging_public_url": f"{self.base_url}/staged"}

    def put(self, name: str, data: bytes) -> str:
        (self.root / name).write_bytes(data)
        return f"{self.base_url}/{name}"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def static_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticServer]:
    root = tmp_path_factory.mktemp("public")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield StaticServer(root=root, base_url=f"http://127.0.0.1:{server.server_address[1]}")
    server.shutdown()


@pytest.fixture
def product_photo(tmp_path: Path) -> Path:
    path = tmp_path / "product.png"
    path.write_bytes(make_product_photo())
    return path


def sandbox_connection(
    sandbox: object, vendor: str, extra: dict[str, object] | None = None, key: str = "sandbox-key"
) -> str:
    """The AIRFLOW_CONN_* JSON of a vendor connection pointing at the sandbox.

    Like the sandbox's own ``connection_uri``, it lets the provider fetch http://127.0.0.1 URLs
    (the sandbox, ``static_server``); ``extra`` may override that.
    """
    from airflow_bgreplace.sandbox.server import SANDBOX_URL_POLICY

    return json.dumps(
        {
            "conn_type": f"bgreplace_{vendor}",
            "host": sandbox.vendor_url(vendor),  # type: ignore[attr-defined]
            "password": key,
            "extra": {**SANDBOX_URL_POLICY, **(extra or {})},
        }
    )
