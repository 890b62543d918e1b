"""The sandbox ASGI app: every vendor under ``/<vendor>``, result files, and the control API.

Control API (no auth; JSON in and out), under ``/_sandbox``:

=========================================  =========================================================
``GET  /_sandbox/health``                  ``{"status": "ok", "vendors": [...]}``
``GET  /_sandbox/stats``                   per-vendor counters, jobs, pending scripted faults
``POST /_sandbox/reset``                   clear jobs, files, counters, faults; body
                                           ``{"restore_settings": true}`` also restores settings
``GET  /_sandbox/config``                  current settings
``POST /_sandbox/config``                  partial settings update, e.g. ``{"concurrency": {"fal": 1}}``
``GET|POST|DELETE /_sandbox/faults``       list / queue (one spec or a list) / clear scripted faults
``GET  /_sandbox/jobs``                    job summaries (``?vendor=fal`` filters)
``GET  /_sandbox/jobs/{vendor}/{id}``      one job summary, with its webhook deliveries
``POST /_sandbox/jobs/{vendor}/{id}/cancel``  force-cancel (409 when already terminal)
``POST /_sandbox/webhooks/redeliver/{vendor}/{id}``  send the job's webhook again
=========================================  =========================================================

A fifth vendor is one module with a :class:`~airflow_bgreplace.sandbox.core.VendorEmulator`
subclass and one line in :data:`VENDOR_EMULATORS`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

from airflow_bgreplace.sandbox.config import SandboxSettings
from airflow_bgreplace.sandbox.core import RAW_SEND_KEY, Job, Sandbox, VendorEmulator, read_json
from airflow_bgreplace.sandbox.fal import FalEmulator
from airflow_bgreplace.sandbox.fashn import FashnEmulator
from airflow_bgreplace.sandbox.faults import FaultSpec
from airflow_bgreplace.sandbox.imagepipeline import ImagePipelineEmulator
from airflow_bgreplace.sandbox.runflow import RunflowEmulator

VENDOR_EMULATORS: tuple[type[VendorEmulator], ...] = (
    RunflowEmulator,
    FashnEmulator,
    FalEmulator,
    ImagePipelineEmulator,
)


class SandboxApp(Starlette):
    """A Starlette app that keeps the server's own ``send`` so faults can cut the connection."""

    sandbox: Sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[RAW_SEND_KEY] = send
        await super().__call__(scope, receive, send)


def _problem(status: int, detail: Any) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


class ControlApi:
    """Handlers of ``/_sandbox/...``."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/health", self.health),
            Route("/stats", self.stats),
            Route("/reset", self.reset, methods=["POST"]),
            Route("/config", self.get_config),
            Route("/config", self.update_config, methods=["POST"]),
            Route("/faults", self.faults, methods=["GET", "POST", "DELETE"]),
            Route("/jobs", self.list_jobs),
            Route("/jobs/{vendor}/{job_id}", self.get_job),
            Route("/jobs/{vendor}/{job_id}/cancel", self.cancel_job, methods=["POST"]),
            Route("/webhooks/redeliver/{vendor}/{job_id}", self.redeliver, methods=["POST"]),
        ]

    async def _body(self, request: Request) -> Any:
        try:
            return await read_json(request)
        except ValueError as exc:
            raise _BadRequest(str(exc)) from exc

    def _job(self, request: Request) -> tuple[VendorEmulator, Job]:
        vendor = request.path_params["vendor"]
        emulator = self.sandbox.vendors.get(vendor)
        job = self.sandbox.jobs.get((vendor, request.path_params["job_id"]))
        if emulator is None or job is None:
            raise _NotFound(f"no job {vendor}/{request.path_params['job_id']}")
        return emulator, job

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "vendors": sorted(self.sandbox.vendors)})

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.sandbox.stats())

    async def reset(self, request: Request) -> Response:
        body = await self._body(request)
        restore = bool(body.get("restore_settings")) if isinstance(body, dict) else False
        self.sandbox.reset(restore_settings=restore)
        return JSONResponse({"status": "reset", "settings": self.sandbox.settings.model_dump(mode="json")})

    async def get_config(self, request: Request) -> Response:
        return JSONResponse(self.sandbox.settings.model_dump(mode="json"))

    async def update_config(self, request: Request) -> Response:
        body = await self._body(request)
        if not isinstance(body, dict):
            return _problem(400, "body must be a JSON object of settings")
        try:
            settings = self.sandbox.configure(body)
        except ValidationError as exc:
            return _problem(422, json.loads(exc.json(include_url=False)))
        except ValueError as exc:
            return _problem(422, str(exc))
        return JSONResponse(settings.model_dump(mode="json"))

    async def faults(self, request: Request) -> Response:
        book = self.sandbox.faults
        if request.method == "POST":
            body = await self._body(request)
            specs_in = body if isinstance(body, list) else [body]
            try:
                specs = [FaultSpec.model_validate(spec) for spec in specs_in]
            except ValidationError as exc:
                return _problem(422, json.loads(exc.json(include_url=False)))
            unknown = {spec.vendor for spec in specs} - set(self.sandbox.vendors) - {"any"}
            if unknown:
                return _problem(422, f"unknown vendor(s) {sorted(unknown)}")
            for spec in specs:
                book.add(spec)
        elif request.method == "DELETE":
            book.reset(self.sandbox.settings.seed)
        return JSONResponse({"pending": book.pending()})

    async def list_jobs(self, request: Request) -> Response:
        vendor = request.query_params.get("vendor")
        jobs = [job.summary() for job in self.sandbox.jobs.values() if vendor in (None, job.vendor)]
        return JSONResponse({"jobs": jobs})

    async def get_job(self, request: Request) -> Response:
        _, job = self._job(request)
        return JSONResponse(job.summary())

    async def cancel_job(self, request: Request) -> Response:
        emulator, job = self._job(request)
        if not self.sandbox.cancel_job(emulator, job):
            return _problem(409, f"job {job.vendor}/{job.id} already ended as {job.state}")
        return JSONResponse(job.summary())

    async def redeliver(self, request: Request) -> Response:
        emulator, job = self._job(request)
        if not job.terminal or emulator.webhook(job) is None:
            return _problem(409, f"job {job.vendor}/{job.id} has no webhook to deliver (state {job.state})")
        self.sandbox.spawn(self.sandbox.deliver_webhook(emulator, job))
        return JSONResponse({"scheduled": True, "vendor": job.vendor, "id": job.id}, status_code=202)


class _BadRequest(Exception):
    pass


class _NotFound(Exception):
    pass


async def _bad_request(request: Request, exc: Exception) -> Response:
    return _problem(400, str(exc))


async def _not_found(request: Request, exc: Exception) -> Response:
    return _problem(404, str(exc))


def create_app(settings: SandboxSettings | None = None) -> SandboxApp:
    """The sandbox app; ``settings`` default to :meth:`SandboxSettings.from_env`."""
    settings = settings if settings is not None else SandboxSettings.from_env()
    sandbox = Sandbox(settings, VENDOR_EMULATORS)
    routes: list[BaseRoute] = [
        Mount(f"/{name}", routes=emulator.routes()) for name, emulator in sandbox.vendors.items()
    ]
    routes += [
        Route("/files/{file_id}/{filename}", sandbox.serve_file, methods=["GET", "HEAD"]),
        Mount("/_sandbox", routes=ControlApi(sandbox).routes()),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await sandbox.shutdown()

    app = SandboxApp(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={_BadRequest: _bad_request, _NotFound: _not_found},
    )
    app.sandbox = sandbox
    app.state.sandbox = sandbox
    return app
