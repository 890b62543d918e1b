"""The URLs the provider fetches itself, and how: scheme, addresses, redirects, size and time.

The provider fetches URLs it did not choose: the result URLs a vendor answers with, image URLs
from a manifest or an operator argument (the local engine and Runflow's zip read them), the
upload URL fal hands out. Unchecked, such a URL makes a worker read its cloud metadata service
(``http://169.254.169.254/...``) or an internal admin page and store the answer as a "result",
or stream an endless body into memory. Every such request (``ApiRequest(external=True)``) goes
through :func:`fetch_sync` / :func:`fetch_async` under the connection's :class:`UrlPolicy`:

* **scheme**: https only; http when the connection sets ``allow_http``.
* **addresses**: the host is resolved and *every* address must be public (not private,
  loopback, link-local, multicast, reserved, unspecified or shared); the address actually
  connected to is checked again before the answer is read (DNS rebinding).
  ``allow_private_addresses`` lifts this (the local sandbox, an in-house image server).
* **redirects**: followed here, not by httpx: at most :data:`MAX_REDIRECTS`, every hop checked
  like the first.
* **size**: at most ``max_bytes``, counted while streaming (a missing or false
  Content-Length changes nothing).
* **time**: one wall-clock deadline over resolution, connection, redirects and body, not only
  a per-read timeout (a server trickling a byte every few seconds is cut off too).

The vendor's own API origin (the scheme, host and port of the connection's base URL) is trusted
like the API itself: the API key already goes there.

Behind an HTTP proxy (``HTTPS_PROXY``/``HTTP_PROXY`` without a matching ``NO_PROXY``), names are
not resolved here, since the proxy resolves them; literal addresses are still checked, and the
proxy's own rules must keep internal ranges out of reach.

The defaults below are the only place these bounds are set.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import socket
import threading
import time
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import httpx

from airflow_bgreplace.vendors.errors import (
    DownloadTimeoutError,
    DownloadTooLargeError,
    UrlNotAllowedError,
)

if TYPE_CHECKING:
    from airflow_bgreplace.vendors.transport import ApiRequest

#: Largest answer read from a URL we did not choose (a result image, a fetched input).
DEFAULT_MAX_DOWNLOAD_BYTES = 100 * 1024 * 1024
#: Wall-clock bound on one such fetch: resolution, connection, redirects and body together.
DEFAULT_DOWNLOAD_TIMEOUT_S = 120.0
#: Redirects followed per fetch (CDNs use one or two).
MAX_REDIRECTS = 3

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_TRUE = frozenset({"1", "true", "yes", "on"})

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _flag(value: Any) -> bool:
    """A connection extra that may arrive as a JSON boolean or as text from a form or an env var."""
    if isinstance(value, str):
        return value.strip().lower() in _TRUE
    return bool(value)


def origin_of(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an http(s) URL, the port filled in; None for anything else."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        return None
    return scheme, parts.hostname.lower(), port


def blocked_reason(address: Address) -> str | None:
    """Why an address is not public (None when it is)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    for reason, test in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("private", address.is_private),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("unspecified", address.is_unspecified),
    ):
        if test:
            return reason
    if not address.is_global:  # 100.64.0.0/10 (carrier-grade NAT) and the like
        return "not globally routable"
    return None


def _shown(url: str) -> str:
    """A URL for messages: presigned URLs carry their signature in the query."""
    return url.split("?", 1)[0][:200]


def _proxied(url: str, host: str) -> bool:
    """Whether httpx (trust_env) sends this URL through a proxy from the environment."""
    proxies = urllib.request.getproxies()
    scheme = urlsplit(url).scheme.lower()
    if not (proxies.get(scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(host)


@dataclass(frozen=True)
class Hop:
    """One checked URL of a fetch: whether its addresses must still be checked once connected."""

    url: str
    host: str
    port: int
    #: True when the peer address must be checked (not trusted, not allowed, not proxied).
    check_peer: bool


@dataclass(frozen=True)
class UrlPolicy:
    """What a connection allows the provider to fetch (see the module documentation)."""

    allow_http: bool = False
    allow_private_addresses: bool = False
    max_redirects: int = MAX_REDIRECTS
    #: The vendor API's own origin, trusted like the API (set from the connection's base URL).
    trusted_origin: tuple[str, str, int] | None = None
    #: Wall-clock bound of a fetch that sets no deadline of its own (image URLs, uploads);
    #: result downloads carry the operator's ``download_timeout``.
    fetch_timeout_s: float = DEFAULT_DOWNLOAD_TIMEOUT_S

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any], base_url: str | None = None) -> UrlPolicy:
        """A connection's policy: extras ``allow_http``, ``allow_private_addresses``, ``fetch_timeout_s``."""
        return cls(
            allow_http=_flag(extra.get("allow_http")),
            allow_private_addresses=_flag(extra.get("allow_private_addresses")),
            trusted_origin=origin_of(base_url) if base_url else None,
            fetch_timeout_s=float(extra.get("fetch_timeout_s") or DEFAULT_DOWNLOAD_TIMEOUT_S),
        )

    def with_origin(self, base_url: str) -> UrlPolicy:
        return dataclasses.replace(self, trusted_origin=origin_of(base_url))

    # -- checks (no I/O) ------------------------------------------------------------------------
    def check_url(self, url: str) -> Hop:
        """Scheme and literal-address checks; raises :class:`UrlNotAllowedError` naming the cause."""
        origin = origin_of(url)
        if origin is None:
            scheme = urlsplit(url).scheme or "no scheme"
            raise UrlNotAllowedError(f"{_shown(url)}: only http(s) URLs are fetched ({scheme} refused)")
        scheme, host, port = origin
        if origin == self.trusted_origin:
            return Hop(url, host, port, check_peer=False)
        literal = _literal_address(host)
        if literal is not None:  # the address is the more useful reason to give, so first
            self.check_addresses(url, [literal])
        if scheme == "http" and not self.allow_http:
            raise UrlNotAllowedError(
                f"{_shown(url)}: plain http refused (https only; the connection extra allow_http permits http)"
            )
        if self.allow_private_addresses or literal is not None:
            return Hop(url, host, port, check_peer=False)
        return Hop(url, host, port, check_peer=not _proxied(url, host))

    def check_addresses(self, url: str, addresses: Iterable[Address]) -> None:
        if self.allow_private_addresses:
            return
        for address in addresses:
            reason = blocked_reason(address)
            if reason is not None:
                host = urlsplit(url).hostname or ""
                where = f"{address} is" if _literal_address(host) == address else f"{host} resolves to {address},"
                raise UrlNotAllowedError(
                    f"{_shown(url)}: {where} a {reason} address (refused; the connection extra "
                    "allow_private_addresses permits it)"
                )

    def check_peer(self, hop: Hop, response: httpx.Response) -> None:
        """The address actually connected to must pass too (a name may resolve differently twice)."""
        if not hop.check_peer:
            return
        stream = response.extensions.get("network_stream")
        peer = stream.get_extra_info("server_addr") if stream is not None else None
        if not peer:
            return
        address = _literal_address(str(peer[0]))
        if address is not None:
            self.check_addresses(hop.url, [address])


def _literal_address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _addresses(infos: Iterable[tuple[Any, ...]]) -> list[Address]:
    found = []
    for info in infos:
        address = _literal_address(str(info[4][0]))
        if address is not None:
            found.append(address)
    return found


def _unresolvable(hop: Hop, exc: OSError) -> httpx.ConnectError:
    # Raised as httpx's own error so that it is retried and reported like any connection failure.
    return httpx.ConnectError(f"cannot resolve {hop.host}: {exc}")


def _resolve_sync(policy: UrlPolicy, hop: Hop) -> None:
    if not hop.check_peer:
        return
    try:  # getaddrinfo has no timeout of its own: the OS resolver's applies
        infos = socket.getaddrinfo(hop.host, hop.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise _unresolvable(hop, exc) from exc
    policy.check_addresses(hop.url, _addresses(infos))


async def _resolve_async(policy: UrlPolicy, hop: Hop) -> None:
    if not hop.check_peer:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(hop.host, hop.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise _unresolvable(hop, exc) from exc
    policy.check_addresses(hop.url, _addresses(infos))


# --------------------------------------------------------------------------- fetching


@dataclass
class _Fetch:
    """One external request being fetched: its bounds and where it has got to."""

    req: ApiRequest
    policy: UrlPolicy
    default_timeout_s: float
    deadline: float = 0.0
    max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES

    def __post_init__(self) -> None:
        if self.req.deadline is not None:
            self.deadline = self.req.deadline
        else:
            self.deadline = time.monotonic() + self.policy.fetch_timeout_s
        self.max_bytes = self.req.max_bytes or DEFAULT_MAX_DOWNLOAD_BYTES

    def remaining(self, url: str) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self.timed_out(url)
        return left

    def timed_out(self, url: str) -> DownloadTimeoutError:
        return DownloadTimeoutError(f"{_shown(url)}: not complete within the download deadline")

    def build(self, client: httpx.Client | httpx.AsyncClient, url: str, first: bool) -> httpx.Request:
        per_request = min(self.req.timeout_s or self.default_timeout_s, self.remaining(url))
        from airflow_bgreplace.vendors.transport import USER_AGENT

        return client.build_request(
            self.req.method if first else "GET",
            url,
            content=self.req.content if first else None,
            params=self.req.params if first else None,
            headers={"User-Agent": USER_AGENT, **self.req.headers},
            timeout=httpx.Timeout(per_request),
        )

    def next_hop(self, hop: Hop, response: httpx.Response, number: int) -> str | None:
        """The redirect target to follow, or None when this answer is the one to read."""
        location = response.headers.get("location")
        if response.status_code not in _REDIRECTS or not location or self.req.method not in ("GET", "HEAD"):
            return None
        if number >= self.policy.max_redirects:
            raise UrlNotAllowedError(f"{_shown(self.req.url)}: more than {self.policy.max_redirects} redirects")
        return urljoin(hop.url, location)

    def too_large(self, url: str, size: int) -> DownloadTooLargeError:
        return DownloadTooLargeError(f"{_shown(url)}: answer larger than {self.max_bytes} bytes (got {size}+)")

    def check_length(self, url: str, response: httpx.Response) -> None:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise DownloadTooLargeError(
                f"{_shown(url)}: answer larger than {self.max_bytes} bytes (Content-Length {int(declared)})"
            )


def fetch_sync(client: httpx.Client, req: ApiRequest, policy: UrlPolicy, default_timeout_s: float) -> httpx.Response:
    """``req`` under ``policy``: the answer with its body read, or an error naming the refused hop."""
    fetch = _Fetch(req, policy, default_timeout_s)
    url = req.url
    for number in range(policy.max_redirects + 1):
        hop = policy.check_url(url)
        fetch.remaining(url)
        _resolve_sync(policy, hop)
        response = client.send(fetch.build(client, url, number == 0), stream=True)
        try:
            policy.check_peer(hop, response)
            target = fetch.next_hop(hop, response, number)
            if target is not None:
                url = target
                continue
            fetch.check_length(url, response)
            response._content = _read_sync(fetch, url, response)
            return response
        finally:
            response.close()
    raise AssertionError("unreachable: next_hop raises past the redirect limit")  # pragma: no cover


def _read_sync(fetch: _Fetch, url: str, response: httpx.Response) -> bytes:
    # httpx has no deadline over a whole body: past it, a timer shuts the socket down, which
    # ends the blocked read at once; the flag makes sure a cut body is never taken as complete.
    expired = threading.Event()
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None

    def cut() -> None:
        expired.set()
        if sock is not None:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    timer = threading.Timer(fetch.remaining(url), cut)
    timer.daemon = True
    timer.start()
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > fetch.max_bytes:
                raise fetch.too_large(url, size)
            chunks.append(chunk)
            if expired.is_set() or time.monotonic() > fetch.deadline:
                raise fetch.timed_out(url)
    except httpx.HTTPError:
        if expired.is_set():
            raise fetch.timed_out(url) from None
        raise
    finally:
        timer.cancel()
    if expired.is_set():
        raise fetch.timed_out(url)
    return b"".join(chunks)


async def fetch_async(
    client: httpx.AsyncClient, req: ApiRequest, policy: UrlPolicy, default_timeout_s: float
) -> httpx.Response:
    """The async twin of :func:`fetch_sync`; the deadline is one ``asyncio`` timeout over it all."""
    fetch = _Fetch(req, policy, default_timeout_s)
    try:
        return await asyncio.wait_for(_fetch_async(client, fetch, policy), fetch.remaining(req.url))
    except asyncio.TimeoutError:
        raise fetch.timed_out(req.url) from None


async def _fetch_async(client: httpx.AsyncClient, fetch: _Fetch, policy: UrlPolicy) -> httpx.Response:
    url = fetch.req.url
    for number in range(policy.max_redirects + 1):
        hop = policy.check_url(url)
        await _resolve_async(policy, hop)
        response = await client.send(fetch.build(client, url, number == 0), stream=True)
        try:
            policy.check_peer(hop, response)
            target = fetch.next_hop(hop, response, number)
            if target is not None:
                url = target
                continue
            fetch.check_length(url, response)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > fetch.max_bytes:
                    raise fetch.too_large(url, size)
                chunks.append(chunk)
            response._content = b"".join(chunks)
            return response
        finally:
            await response.aclose()
    raise AssertionError("unreachable: next_hop raises past the redirect limit")  # pragma: no cover
