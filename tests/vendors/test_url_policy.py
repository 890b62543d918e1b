"""The URL policy: which URLs the provider fetches itself, against a real hostile HTTP server.

The server (tests/bad_input_corpus.py) runs on 127.0.0.1 and plays a vendor whose result URLs
redirect to private addresses, stream endless or oversized bodies, or trickle bytes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_bgreplace.results import download_result
from airflow_bgreplace.vendors import (
    AsyncVendorClient,
    DownloadError,
    DownloadTimeoutError,
    DownloadTooLargeError,
    FalApi,
    JobState,
    JobStatus,
    TransientError,
    UrlNotAllowedError,
    VendorClient,
)
from airflow_bgreplace.vendors.inputs import FalStorageStager, LocalImage
from airflow_bgreplace.vendors.retry import RetryPolicy
from airflow_bgreplace.vendors.transport import ApiRequest
from airflow_bgreplace.vendors.url_policy import (
    DEFAULT_DOWNLOAD_TIMEOUT_S,
    DEFAULT_MAX_DOWNLOAD_BYTES,
    MAX_REDIRECTS,
    Hop,
    UrlPolicy,
    blocked_reason,
)
from tests.bad_input_corpus import PRIVATE_TARGETS, HostileServer, closed_port, corpus, hostile_server  # noqa: F401

FAST = RetryPolicy(max_attempts=2, base_delay_s=0.01, deadline_s=5)


# --------------------------------------------------------------------------- the rules (no I/O)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped IPv6 is the IPv4 address
        ("::ffff:169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "private"),  # Python counts 0.0.0.0/8 as private
        ("240.0.0.1", "private"),
        ("100.64.0.1", "not globally routable"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_every_non_public_range_is_named(address: str, reason: str | None) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://files.example.com/a.png", "javascript:alert(1)", "data:image/png;base64,AAAA",
     "gopher://x/", "http:///no-host"],
)
def test_only_http_urls_are_fetched(url: str) -> None:
    with pytest.raises(UrlNotAllowedError, match="only http"):
        UrlPolicy(allow_http=True, allow_private_addresses=True).check_url(url)


def test_plain_http_needs_the_connection_to_allow_it() -> None:
    with pytest.raises(UrlNotAllowedError, match=r"plain http refused .*allow_http"):
        UrlPolicy().check_url("http://cdn.example.com/result.png")
    assert UrlPolicy(allow_http=True).check_url("http://cdn.example.com/result.png").check_peer


@pytest.mark.parametrize("url", [*PRIVATE_TARGETS.values(), "https://[::ffff:a00:1]/x", "https://[fe80::1%25eth0]/x"])
def test_literal_private_addresses_are_refused_without_resolving(url: str) -> None:
    with pytest.raises(UrlNotAllowedError, match="address"):
        UrlPolicy(allow_http=True).check_url(url)
    UrlPolicy(allow_http=True, allow_private_addresses=True).check_url(url)  # the opt-in lifts it


def test_the_vendor_origin_is_trusted_and_nothing_else_on_that_host() -> None:
    policy = UrlPolicy().with_origin("http://127.0.0.1:8765/fal")
    assert not policy.check_url("http://127.0.0.1:8765/files/r.png").check_peer
    with pytest.raises(UrlNotAllowedError):
        policy.check_url("http://127.0.0.1:8766/other")  # another port is another origin
    with pytest.raises(UrlNotAllowedError):
        policy.check_url("https://127.0.0.1:8765/x")  # and so is another scheme


def test_connection_extras_arrive_as_booleans_or_text() -> None:
    assert UrlPolicy.from_extra({"allow_http": "true", "allow_private_addresses": "False"}) == UrlPolicy(
        allow_http=True
    )
    assert UrlPolicy.from_extra({"allow_http": True, "allow_private_addresses": 1}) == UrlPolicy(True, True)
    assert UrlPolicy.from_extra({}) == UrlPolicy()


def test_defaults_live_in_one_place() -> None:
    from airflow_bgreplace.operators.batch import BgReplaceBatchOperator
    from airflow_bgreplace.vendors import base

    assert base.DEFAULT_MAX_DOWNLOAD_BYTES == DEFAULT_MAX_DOWNLOAD_BYTES == 100 * 1024 * 1024
    assert base.DEFAULT_DOWNLOAD_TIMEOUT_S == DEFAULT_DOWNLOAD_TIMEOUT_S == 120.0
    batch = BgReplaceBatchOperator(task_id="t", vendor="local", items=[])
    assert batch.max_download_bytes == DEFAULT_MAX_DOWNLOAD_BYTES
    assert batch.download_timeout == DEFAULT_DOWNLOAD_TIMEOUT_S
    assert MAX_REDIRECTS == 3


def test_hooks_build_the_policy_from_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from airflow_bgreplace.hooks import FalHook
    from airflow_bgreplace.hooks.local import LocalHook

    extra = {"allow_http": "true", "allow_private_addresses": False, "fetch_timeout_s": 5}
    fal = {"conn_type": "bgreplace_fal", "password": "k", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_BGREPLACE_FAL_DEFAULT", json.dumps(fal))
    assert FalHook().client.connection.url_policy == UrlPolicy(
        allow_http=True, fetch_timeout_s=5, trusted_origin=("https", "queue.fal.run", 443)
    )
    assert LocalHook().client.connection.url_policy == UrlPolicy(trusted_origin=None)  # no connection: the defaults
    local = {"conn_type": "bgreplace_local", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_BGREPLACE_LOCAL_DEFAULT", json.dumps(local))
    assert LocalHook().client.connection.url_policy.allow_http


# --------------------------------------------------------------------------- fetching, for real


@pytest.fixture
def vendor(hostile_server: HostileServer) -> Iterator[VendorClient]:  # noqa: F811
    """A client whose vendor origin is the hostile server: its own URLs are trusted, nothing else."""
    with VendorClient(FalApi(), api_key="k", base_url=hostile_server.base_url, retry=FAST) as client:
        yield client


def test_a_result_on_the_vendor_origin_downloads(vendor: VendorClient, hostile_server: HostileServer) -> None:  # noqa: F811
    assert vendor.download(hostile_server.url("photo")) == corpus("good.png").read_bytes()
    # A redirect that stays on the origin is followed.
    assert vendor.download(hostile_server.redirect_to("/photo")) == corpus("good.png").read_bytes()


@pytest.mark.parametrize("kind", sorted(PRIVATE_TARGETS))
def test_a_redirect_to_a_private_address_is_refused_at_that_hop(
    kind: str, vendor: VendorClient, hostile_server: HostileServer  # noqa: F811
) -> None:
    target = PRIVATE_TARGETS[kind]
    with pytest.raises(UrlNotAllowedError) as caught:
        vendor.download(hostile_server.redirect_to(target))
    message = str(caught.value)
    assert kind in message and target.split("/")[2].strip("[]") in message


def test_a_redirect_to_another_scheme_is_refused(vendor: VendorClient, hostile_server: HostileServer) -> None:  # noqa: F811
    with pytest.raises(UrlNotAllowedError, match="only http"):
        vendor.download(hostile_server.redirect_to("file:///etc/passwd"))


def test_redirects_are_bounded(vendor: VendorClient, hostile_server: HostileServer) -> None:  # noqa: F811
    before = hostile_server.hits.count("/loop")
    with pytest.raises(UrlNotAllowedError, match=f"more than {MAX_REDIRECTS} redirects"):
        vendor.download(hostile_server.url("loop"))
    assert hostile_server.hits.count("/loop") - before == MAX_REDIRECTS + 1


def test_an_endless_body_stops_at_the_size_bound(vendor: VendorClient, hostile_server: HostileServer) -> None:  # noqa: F811
    with pytest.raises(DownloadTooLargeError, match="larger than 1048576 bytes"):
        vendor.download(hostile_server.url("endless"), max_bytes=1024 * 1024)


def test_a_declared_huge_body_is_refused_before_reading(vendor: VendorClient, hostile_server: HostileServer) -> None:  # noqa: F811
    with pytest.raises(DownloadTooLargeError, match="Content-Length 10737418240"):
        vendor.download(hostile_server.url("huge"))


def test_a_trickling_body_stops_at_the_wall_clock_deadline(
    vendor: VendorClient, hostile_server: HostileServer  # noqa: F811
) -> None:
    # No single read waits long (a byte comes every 0.2 s): only a total deadline ends this.
    started = time.monotonic()
    with pytest.raises(DownloadTimeoutError, match="deadline"):
        vendor.download(hostile_server.url("trickle"), timeout_s=1.0)
    assert time.monotonic() - started < 10  # bounded, not endless (not a performance figure)


def test_non_http_result_locations_are_refused(vendor: VendorClient) -> None:
    for url in ("file:///etc/passwd", "ftp://files.example.com/r.png", "javascript:alert(1)"):
        with pytest.raises(DownloadError, match="not an http"):
            vendor.download(url)
    with pytest.raises(DownloadError, match="not valid base64"):
        vendor.download("data:text/plain,hello")


def test_an_unreachable_result_url_is_a_transient_error_naming_it(vendor: VendorClient) -> None:
    url = f"http://127.0.0.1:{closed_port()}/result.png"
    strict = VendorClient(FalApi(), api_key="k", retry=FAST, url_policy=UrlPolicy(True, True))
    with strict, pytest.raises(TransientError, match="ConnectError") as caught:
        strict.download(url)
    assert url in str(caught.value)


def test_another_origin_needs_both_opt_ins(hostile_server: HostileServer) -> None:  # noqa: F811
    photo = hostile_server.url("photo")
    for policy, refusal in (
        (UrlPolicy(), "127.0.0.1 is a loopback address"),
        (UrlPolicy(allow_private_addresses=True), "plain http refused"),
        (UrlPolicy(allow_http=True), "127.0.0.1 is a loopback address"),
    ):
        client = VendorClient(FalApi(), api_key="k", retry=FAST, url_policy=policy)
        with client, pytest.raises(UrlNotAllowedError, match=refusal):
            client.download(photo)
    with VendorClient(FalApi(), api_key="k", retry=FAST, url_policy=UrlPolicy(True, True)) as client:
        assert client.download(photo) == corpus("good.png").read_bytes()


@pytest.mark.parametrize("host", ["localhost", "127.1", "2130706433", "0x7f.0.0.1"])
def test_names_are_resolved_and_every_address_checked(host: str, hostile_server: HostileServer) -> None:  # noqa: F811
    # Short, decimal and hex forms are names to ipaddress but 127.0.0.1 to the resolver.
    url = hostile_server.url("photo").replace("127.0.0.1", host)
    client = VendorClient(FalApi(), api_key="k", retry=FAST, url_policy=UrlPolicy(allow_http=True))
    with client, pytest.raises(UrlNotAllowedError, match=rf"{host} resolves to .*loopback"):
        client.download(url)


def test_the_connected_address_is_checked_again(hostile_server: HostileServer) -> None:  # noqa: F811
    # A name that resolved to a public address once and to 127.0.0.1 on connection (DNS
    # rebinding) ends here: the peer of the real connection is checked before the body is read.
    hop = Hop(url=hostile_server.url("photo"), host="127.0.0.1", port=0, check_peer=True)
    with httpx.Client() as http, http.stream("GET", hop.url) as response, pytest.raises(
        UrlNotAllowedError, match="loopback"
    ):
        UrlPolicy(allow_http=True).check_peer(hop, response)


def test_a_refused_result_is_not_fetched_again_through_a_status_read(
    vendor: VendorClient, hostile_server: HostileServer  # noqa: F811
) -> None:
    # download_result re-reads the status only for an expired URL: here that read would hit the
    # hostile server (404, NotFoundError), so getting UrlNotAllowedError shows it did not happen.
    job = JobStatus(
        vendor="fal",
        endpoint="bria/replace-background",
        job_id="j-1",
        state=JobState.succeeded,
        result_urls=[hostile_server.redirect_to(PRIVATE_TARGETS["link-local"])],
    )
    with pytest.raises(UrlNotAllowedError, match="link-local"):
        download_result(vendor, job)


def test_fal_upload_urls_are_external_and_the_sandbox_upload_still_works(
    bgreplace_sandbox: Any, tmp_path: Path
) -> None:
    # The PUT goes to a URL from fal's answer: it is fetched under the URL policy.
    photo = corpus("good.png").read_bytes()
    stage = FalStorageStager("https://rest.fal.ai").stage(LocalImage(photo, "p.png", "image/png"))
    next(stage)
    initiated = httpx.Response(
        200,
        json={"upload_url": PRIVATE_TARGETS["link-local"], "file_url": "https://v3.fal.media/p.png"},
        request=httpx.Request("POST", "https://rest.fal.ai/storage/upload/initiate"),
    )
    put = stage.send(initiated)
    assert isinstance(put, ApiRequest) and put.external and not put.authenticated
    # Against the sandbox the upload URL is on the connection's own origin: trusted, no opt-in needed.
    base = bgreplace_sandbox.vendor_url("fal")
    image = tmp_path / "p.png"
    image.write_bytes(photo)
    with VendorClient(FalApi(stager=FalStorageStager(base)), api_key="sandbox-key", base_url=base) as client:
        job = client.submit(None, image_url=image, prompt="a shelf")
    stats = bgreplace_sandbox.stats()["vendors"]["fal"]
    assert job.job_id and stats["submits_accepted"] == 1 and stats["uploads"] == 1


# --------------------------------------------------------------------------- the async twin


def _async_download(hostile_server: HostileServer, url: str, **bounds: Any) -> bytes:  # noqa: F811
    async def run() -> bytes:
        async with AsyncVendorClient(FalApi(), api_key="k", base_url=hostile_server.base_url, retry=FAST) as client:
            return await client.download(url, **bounds)

    return asyncio.run(run())


def test_async_downloads_follow_the_same_rules(hostile_server: HostileServer) -> None:  # noqa: F811
    assert _async_download(hostile_server, hostile_server.redirect_to("/photo")) == corpus("good.png").read_bytes()
    for kind, target in PRIVATE_TARGETS.items():
        with pytest.raises(UrlNotAllowedError, match=kind):
            _async_download(hostile_server, hostile_server.redirect_to(target))
    with pytest.raises(DownloadTooLargeError):
        _async_download(hostile_server, hostile_server.url("endless"), max_bytes=1024 * 1024)
    with pytest.raises(DownloadTimeoutError):
        _async_download(hostile_server, hostile_server.url("trickle"), timeout_s=1.0)
