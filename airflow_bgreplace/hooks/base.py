"""The one Airflow hook design every vendor shares: connection in, vendor client out.

A vendor hook is a five-line subclass naming its connection type and its
:class:`~airflow_bgreplace.vendors.base.VendorApi`. The hook offers the same verbs on every vendor
(``submit``, ``get_status``, ``cancel``, ``download`` and their async twins ``asubmit``,
``aget_status``, ``acancel``, ``adownload``), reads its connection synchronously on workers and
only through async access in the triggerer.

Connection fields (all vendors):

* **password**: the API key. Airflow masks it in logs; the clients never print it.
* **host**: base URL override, e.g. ``http://127.0.0.1:8765/fal`` for the local sandbox.
  Empty = the vendor's public API.
* **extra** (JSON): ``timeout_s`` (per request, default 30), ``retry_max_attempts`` (default 5),
  ``retry_deadline_s`` (default 120), ``staging_path`` + ``staging_public_url`` (an
  ``ObjectStoragePath`` URI and the public URL it is served at, for vendors that need a public
  URL for local images), ``use_vendor_upload`` (fal: upload local images to fal storage instead
  of sending them inline; ImagePipeline: its upload endpoint, on by default), ``rest_base_url``
  (fal storage host), and webhook settings (see ``docs/webhooks.md``).
* **extra**, URL policy (``vendors/url_policy.py``) for the URLs the provider fetches itself
  (results, image URLs it reads): ``allow_http`` (default false: https only),
  ``allow_private_addresses`` (default false: public addresses only) and ``fetch_timeout_s``
  (wall-clock bound on reading one image URL, default 120). The base URL's own origin is always
  trusted. The local sandbox's connections set the first two.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
from airflow.sdk import BaseHook

from airflow_bgreplace.vendors.base import AsyncVendorClient, VendorApi, VendorClient
from airflow_bgreplace.vendors.errors import BgReplaceError
from airflow_bgreplace.vendors.inputs import ObjectStorageStager, Stager
from airflow_bgreplace.vendors.retry import RetryPolicy
from airflow_bgreplace.vendors.status import JobStatus, SubmittedJob
from airflow_bgreplace.vendors.url_policy import UrlPolicy


class BgReplaceHook(BaseHook):
    """Base hook: subclasses set ``vendor_api``, ``conn_type``, ``default_conn_name`` and ``hook_name``."""

    vendor_api: ClassVar[type[VendorApi]]
    conn_type: ClassVar[str]
    default_conn_name: ClassVar[str]
    hook_name: ClassVar[str]
    conn_name_attr = "conn_id"

    def __init__(self, conn_id: str | None = None, *, retry: RetryPolicy | None = None) -> None:
        super().__init__()
        self.conn_id = conn_id or self.default_conn_name
        self._retry = retry

    @property
    def vendor(self) -> str:
        return self.vendor_api.vendor

    # The connection form is declared in provider_info.py (Airflow 3's declarative conn-fields).

    # -- building clients --------------------------------------------------------
    def retry_from_extra(self, extra: Mapping[str, Any]) -> RetryPolicy:
        return self._retry or RetryPolicy(
            max_attempts=int(extra.get("retry_max_attempts") or 5),
            base_delay_s=float(extra.get("retry_base_delay_s") or 1.0),
            deadline_s=float(extra.get("retry_deadline_s") or 120),
        )

    def _client_kwargs(self, conn: Any, extra: Mapping[str, Any]) -> dict[str, Any]:
        retry = self.retry_from_extra(extra)
        return {
            "api_key": conn.password or "",
            "base_url": _base_url(conn.host, conn.schema) or None,
            "timeout_s": float(extra.get("timeout_s") or 30),
            "retry": retry,
            "url_policy": UrlPolicy.from_extra(extra),
        }

    def make_api(self, extra: Mapping[str, Any], base_url: str | None) -> VendorApi:
        """The vendor contract with the stager the connection configures (vendors may override)."""
        stager = self.stager_from_extra(extra)
        return self.vendor_api() if stager is None else self.vendor_api(stager=stager)

    @staticmethod
    def stager_from_extra(extra: Mapping[str, Any]) -> Stager | None:
        path, public_url = extra.get("staging_path"), extra.get("staging_public_url")
        if not path and not public_url:
            return None
        if not (path and public_url):
            raise BgReplaceError("set both connection extras 'staging_path' and 'staging_public_url', or neither")
        from airflow.sdk import ObjectStoragePath

        return ObjectStorageStager(ObjectStoragePath(path), str(public_url))

    @functools.cached_property
    def client(self) -> VendorClient:
        """The synchronous client (workers). Reads the connection once."""
        conn = self.get_connection(self.conn_id)
        extra = conn.extra_dejson
        kwargs = self._client_kwargs(conn, extra)
        return VendorClient(self.make_api(extra, kwargs["base_url"]), **kwargs)

    async def aget_client(self, *, http_client: httpx.AsyncClient | None = None) -> AsyncVendorClient:
        """A new async client (triggerer): the connection is read only through async access.

        ``http_client``: the client to send with (the triggers' shared, paced one); it is closed
        with the vendor client.
        """
        from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson

        conn = await get_async_connection(self.conn_id, hook=self)
        extra = await get_async_extra_dejson(conn)
        kwargs = self._client_kwargs(conn, extra)
        return AsyncVendorClient(self.make_api(extra, kwargs["base_url"]), http_client=http_client, **kwargs)

    def webhook_url(self, public_base_url: str | None) -> str | None:
        """The callback URL to give the vendor for a job, or None when webhooks are not configured.

        Vendors that sign nothing (FASHN, ImagePipeline; Runflow without a signing secret) are
        authenticated by the connection's ``webhook_token``, which goes into the URL.
        """
        if not public_base_url:
            return None
        from airflow_bgreplace.vendors.webhooks import callback_url

        extra = self.get_connection(self.conn_id).extra_dejson
        return callback_url(public_base_url, self.vendor, self.conn_id, token=extra.get("webhook_token") or None)

    def get_conn(self) -> VendorClient:
        return self.client

    # -- the verbs, the same on every vendor ------------------------------------------
    def submit(self, endpoint: str | None = None, *, webhook_url: str | None = None, **inputs: Any) -> SubmittedJob:
        """Submit one job with the vendor's own documented input names."""
        job = self.client.submit(endpoint, webhook_url=webhook_url, **inputs)
        self.log.info("%s: submitted %s job %s", self.vendor, job.endpoint, job.job_id)
        return job

    def get_status(self, job_id: str, endpoint: str | None = None) -> JobStatus:
        return self.client.get_status(job_id, endpoint)

    def cancel(self, job_id: str, endpoint: str | None = None) -> bool:
        return self.client.cancel(job_id, endpoint)

    def download(self, url: str, **bounds: Any) -> bytes:
        return self.client.download(url, **bounds)

    async def asubmit(
        self, endpoint: str | None = None, *, webhook_url: str | None = None, **inputs: Any
    ) -> SubmittedJob:
        async with await self.aget_client() as client:
            return await client.submit(endpoint, webhook_url=webhook_url, **inputs)

    async def aget_status(self, job_id: str, endpoint: str | None = None) -> JobStatus:
        async with await self.aget_client() as client:
            return await client.get_status(job_id, endpoint)

    async def acancel(self, job_id: str, endpoint: str | None = None) -> bool:
        async with await self.aget_client() as client:
            return await client.cancel(job_id, endpoint)

    async def adownload(self, url: str, **bounds: Any) -> bytes:
        async with await self.aget_client() as client:
            return await client.download(url, **bounds)

    def test_connection(self) -> tuple[bool, str]:
        """A cheap authenticated call; never reveals the key."""
        try:
            self.client.check_auth()
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return True, f"{self.vendor_api.display_name}: the API key is accepted at {self.client.connection.base_url}"

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()
            del self.__dict__["client"]


def _base_url(host: str | None, schema: str | None) -> str:
    """The connection host is a full base URL; a bare host name gets https (or the schema field)."""
    if not host:
        return ""
    if "://" in host:
        return host.rstrip("/")
    return f"{schema or 'https'}://{host}".rstrip("/")
