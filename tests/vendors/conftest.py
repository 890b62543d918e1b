"""Helpers for the pure contract tests: drive a sans-IO operation by hand with canned answers.

The answers are built from the vendors' documented example bodies; what is exercised is our
parsing of them, not a stand-in for our own client.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Generator
from typing import Any

import httpx
import pytest
from PIL import Image

Reply = Callable[..., httpx.Response]
Finish = Callable[[Generator[Any, httpx.Response, Any], httpx.Response], Any]


def _image_bytes(fmt: str, colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format=fmt)  # our inputs need 8 px a side
    return buffer.getvalue()


@pytest.fixture(scope="session")
def png_bytes() -> bytes:
    return _image_bytes("PNG", (250, 250, 250))


@pytest.fixture(scope="session")
def jpeg_bytes() -> bytes:
    return _image_bytes("JPEG", (120, 80, 40))


@pytest.fixture
def reply() -> Reply:
    """``reply(status, json=..., headers=..., content=...)``: an answer as a driver would receive it."""

    def build(
        status: int = 200,
        json: Any = None,
        *,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        request = httpx.Request("GET", "http://x")
        if content is not None:
            return httpx.Response(status, content=content, headers=headers, request=request)
        return httpx.Response(status, json=json, headers=headers, request=request)

    return build


@pytest.fixture
def finish() -> Finish:
    """Send the last answer into an operation and return its result (it must ask for nothing more)."""

    def run(operation: Generator[Any, httpx.Response, Any], response: httpx.Response) -> Any:
        try:
            extra = operation.send(response)
        except StopIteration as done:
            return done.value
        raise AssertionError(f"the operation made another request: {extra}")

    return run
