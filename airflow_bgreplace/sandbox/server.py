"""Run the sandbox in a background thread, and drive any sandbox through its control API.

:class:`SandboxClient` talks HTTP to ``/_sandbox/...``, so it works against a sandbox in another
process (``bgreplace-sandbox``); :class:`SandboxServer` is a client that also owns a uvicorn
server in a daemon thread::

    with SandboxServer() as sandbox:                       # port 0: a free port
        url = sandbox.vendor_url("fal")                    # http://127.0.0.1:PORT/fal
        sandbox.configure(concurrency={"fal": 1})
        sandbox.inject_fault("fal", "5xx", route="status", count=2)
        ...
        sandbox.stats()["vendors"]["fal"]["submits_accepted"]
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any

import httpx

from airflow_bgreplace.sandbox.config import SandboxSettings
from airflow_bgreplace.serving import BackgroundServer

DEFAULT_API_KEY = "sandbox-key"
#: Connection extras of a sandbox connection: its URLs are http://127.0.0.1 (see connection_uri).
SANDBOX_URL_POLICY: dict[str, bool] = {"allow_http": True, "allow_private_addresses": True}


class SandboxClient:
    """Control-API client for a sandbox at ``base_url`` (e.g. ``http://127.0.0.1:8765``)."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s

    @property
    def base_url(self) -> str:
        return self._base_url

    def vendor_url(self, vendor: str) -> str:
        """Base URL that replaces the vendor's real API host, e.g. ``http://127.0.0.1:PORT/fal``."""
        return f"{self.base_url}/{vendor}"

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(
            method,
            f"{self.base_url}/_sandbox/{path}",
            json=body,
            timeout=self._timeout_s,
            trust_env=False,
        )
        if response.status_code >= 400:
            raise RuntimeError(f"sandbox control {method} /_sandbox/{path} -> {response.status_code}: {response.text}")
        return response.json()

    # --- control API --------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return dict(self._call("GET", "health"))

    def stats(self) -> dict[str, Any]:
        """``{"vendors": {vendor: counters}, "jobs": [...], "pending_faults": [...]}``."""
        return dict(self._call("GET", "stats"))

    def reset(self, *, restore_settings: bool = False) -> None:
        self._call("POST", "reset", {"restore_settings": restore_settings})

    def config(self) -> dict[str, Any]:
        return dict(self._call("GET", "config"))

    def configure(self, **options: Any) -> dict[str, Any]:
        """Change settings at runtime, e.g. ``configure(concurrency={"fal": 1}, latency_s=0.1)``."""
        return dict(self._call("POST", "config", options))

    def inject_fault(self, vendor: str, kind: str, *, route: str = "any", count: int = 1, **extra: Any) -> None:
        """Queue a scripted fault (see :mod:`airflow_bgreplace.sandbox.faults` for the kinds).

        ``extra``: ``slow_s``, ``status``, ``retry_after``, ``code``, ``message``.
        """
        self._call("POST", "faults", {"vendor": vendor, "kind": kind, "route": route, "count": count, **extra})

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def jobs(self, vendor: str | None = None) -> list[dict[str, Any]]:
        return list(self._call("GET", "jobs" + (f"?vendor={vendor}" if vendor else ""))["jobs"])

    def job(self, vendor: str, job_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"jobs/{vendor}/{job_id}"))

    def cancel_job(self, vendor: str, job_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"jobs/{vendor}/{job_id}/cancel"))

    def redeliver_webhook(self, vendor: str, job_id: str) -> None:
        self._call("POST", f"webhooks/redeliver/{vendor}/{job_id}")

    # --- Airflow connections --------------------------------------------------------------------------
    def _api_key(self, api_key: str | None) -> str:
        if api_key is not None:
            return api_key
        return self.config().get("api_key") or DEFAULT_API_KEY

    def connection_uri(self, vendor: str, api_key: str | None = None) -> str:
        """The value of an ``AIRFLOW_CONN_*`` variable for the vendor's hook (JSON form).

        The hooks read ``host`` as the base-URL override; ``api_key`` defaults to the sandbox's
        configured key, else ``sandbox-key``. The sandbox and the files next to it live on
        http://127.0.0.1, so the connection allows plain http and private addresses for the URLs
        the provider fetches itself (``vendors/url_policy.py``); a real vendor connection does not.
        """
        return json.dumps(
            {
                "conn_type": f"bgreplace_{vendor}",
                "host": self.vendor_url(vendor),
                "password": self._api_key(api_key),
                "extra": dict(SANDBOX_URL_POLICY),
            }
        )

    def connection_env(self, vendor: str, conn_id: str, api_key: str | None = None) -> dict[str, str]:
        """``{"AIRFLOW_CONN_<CONN_ID>": <json>}``, ready for ``os.environ.update`` or monkeypatch."""
        return {f"AIRFLOW_CONN_{conn_id.upper()}": self.connection_uri(vendor, api_key)}


class SandboxServer(SandboxClient):
    """A sandbox served by uvicorn in a daemon thread (a context manager, or start()/stop())."""

    def __init__(self, settings: SandboxSettings | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.settings = settings if settings is not None else SandboxSettings()
        self.host = host
        self._requested_port = port
        self._server: BackgroundServer | None = None
        super().__init__(f"http://{host}:{port}")

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sandbox server is not started")
        return self._server.port

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox server is not started")
        return self._server.base_url

    def start(self, timeout_s: float = 15.0) -> SandboxServer:
        from airflow_bgreplace.sandbox.app import create_app

        server = BackgroundServer(
            create_app(self.settings), self.host, self._requested_port, log_level=self.settings.log_level
        )
        self._server = server.start(timeout_s)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._server is not None:
            self._server.stop(timeout_s)
        self._server = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
