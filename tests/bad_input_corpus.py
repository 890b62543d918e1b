"""The bad-input corpus (tests/data/bad_inputs/, see its README.md) and a hostile HTTP server.

The committed files are small; what must be big or endless is served at test time by
:class:`HostileServer`, a real HTTP server on 127.0.0.1 that redirects to private addresses,
streams endless or oversized bodies and trickles bytes, for the URL policy to refuse.
"""

from __future__ import annotations

import contextlib
import http.server
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest

CORPUS = Path(__file__).resolve().parent / "data" / "bad_inputs"

#: Files that are fine (the content decides the format, not the name; CMYK and 16-bit convert).
ACCEPTED = ("good.png", "png_named.jpg", "cmyk.jpg", "grey16.png", "rgb48.png")
#: Files refused, with the words the error must contain (the engine's cause in brackets).
REFUSED: dict[str, tuple[str, str]] = {
    "truncated.png": ("truncated", "truncated"),
    "truncated.jpg": ("truncated", "truncated"),
    "corrupt.png": ("corrupt", "decode"),
    "text_named.png": ("not an image (it looks like text)", "decode"),
    "animated.gif": ("animated GIF (3 frames)", "animated"),
    "animated.png": ("animated PNG (3 frames)", "animated"),
    "animated.webp": ("animated WEBP (3 frames)", "animated"),
    "one_pixel.png": ("1x1", "too_small"),
    "bomb_50000x50000.png": ("2500000000 pixels", "too_large"),
}

#: Addresses a result or image URL may try to reach through a redirect.
PRIVATE_TARGETS = {
    "private": "http://10.0.0.1/internal/admin.png",
    "link-local": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "loopback": "http://[::1]/secret.png",
}


def corpus(name: str) -> Path:
    return CORPUS / name


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` RGB pixels and carries none (as generate.py makes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(
        b"IEND", b""
    )


class _Handler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.0: a body without Content-Length ends when the connection closes (endless bodies).
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        self.server.hits.append(parts.path)
        route = getattr(self, "route_" + parts.path.strip("/").split("/", 1)[0].replace("-", "_"), None)
        if route is None:
            self.send_error(404)
            return
        # The client giving up is what these routes are for.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            route(query)

    def route_photo(self, query: dict[str, list[str]]) -> None:
        data = corpus("good.png").read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def route_file(self, query: dict[str, list[str]]) -> None:
        data = corpus(query["name"][0]).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def route_redirect(self, query: dict[str, list[str]]) -> None:
        self.send_response(302)
        self.send_header("Location", query["to"][0])
        self.send_header("Content-Length", "0")
        self.end_headers()

    def route_loop(self, query: dict[str, list[str]]) -> None:
        self.route_redirect({"to": ["/loop"]})

    def route_endless(self, query: dict[str, list[str]]) -> None:
        """200 with no Content-Length, then bytes until the client hangs up."""
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        chunk = b"\0" * 65536
        while True:
            self.wfile.write(chunk)

    def route_huge(self, query: dict[str, list[str]]) -> None:
        """Declares 10 GiB up front, then streams."""
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(10 * 1024**3))
        self.end_headers()
        chunk = b"\0" * 65536
        while True:
            self.wfile.write(chunk)

    def route_trickle(self, query: dict[str, list[str]]) -> None:
        """One byte every 0.2 s for ever: no read ever times out, only a total deadline stops it."""
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        while True:
            self.wfile.write(b"\0")
            self.wfile.flush()
            time.sleep(0.2)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    hits: list[str]


@dataclass
class HostileServer:
    base_url: str
    server: _Server

    def url(self, route: str) -> str:
        return f"{self.base_url}/{route.lstrip('/')}"

    def redirect_to(self, target: str) -> str:
        return self.url(f"redirect?to={quote(target, safe='')}")

    @property
    def hits(self) -> list[str]:
        return self.server.hits


@pytest.fixture(scope="session")
def hostile_server() -> Iterator[HostileServer]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.hits = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield HostileServer(f"http://127.0.0.1:{server.server_address[1]}", server)
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
