"""The booking API: the FastAPI app, whose lifespan runs the process bootstrap.py builds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from services.booking.access_log import AccessLog
from services.booking.api import admin, admin_groups, asyncapi, bookings, docs, hotels, problems
from services.booking.api.docs import one_type_per_parameter
from services.booking.api.problem_docs import document
from services.booking.bootstrap import bootstrap
from services.booking.console import actions as console
from services.booking.console.jobs import Jobs
from services.booking.console.session import SignInRequired
from services.booking.deps import Desk
from services.booking.middleware import BodySizeLimit, CarriedTraceContext
from services.booking.schemas import today
from services.booking.settings import BookingSettings
from shared.http.ops import ops_routes

log = logging.getLogger(__name__)


def create_app(
    settings: BookingSettings,
    *,
    pool: asyncpg.Pool | None = None,
    started: Callable[[], None] = lambda: None,
) -> FastAPI:
    """Build the app. Clients are created in the lifespan, so importing this module (or
    building an app for a test) connects to nothing. ``started`` is called once they are
    (``python -m services.booking`` settles the heap then, shared/heap.py)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        process = await bootstrap(settings, pool)
        app.state.settings, app.state.pool, app.state.relay = settings, process.pool, process.relay
        app.state.ops, app.state.dlq = process.ops, process.dead_letters
        app.state.failure_groups = process.failure_groups
        app.state.console_jobs = jobs = Jobs()  # the console's background retries
        app.state.rate_limits = process.rate_limits
        app.state.desk = Desk(
            process.pool,
            process.relay,
            settings,
            process.ops.metrics,
            process.rate_limits,
            process.rooms,
        )
        stop = asyncio.Event()
        # Stage by stage at shutdown; whatever outlives its grace is cut short (its messages
        # stay unacked and are redelivered), so nothing reopens the publisher once closed.
        grace = settings.shutdown_grace + settings.amqp_publish_timeout
        running = asyncio.create_task(process.parts.run(stop, stage_timeout=grace))
        started()
        try:
            yield
        finally:
            stop.set()
            try:
                await jobs.close()
                await running
            finally:
                await process.parts.close()

    app = FastAPI(
        title="Hotel booking",
        version="1.0.0",
        summary="Book a room synchronously; fulfilment happens in independent consumers.",
        lifespan=lifespan,
        docs_url=None,  # served by api/docs.py, without a CDN
        openapi_url=None,  # served by api/docs.py too, with a bookable example
        # FastAPI's own OpenTelemetry server span per request (recorded when a tracer
        # provider is installed, see shared/observability/tracing.py). Health probes and
        # scrapes are left out: every few seconds, they would drown the traces.
        telemetry={"exclude": _is_ops_request},
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(CarriedTraceContext)
    app.add_middleware(AccessLog)  # outermost: it also sees what BodySizeLimit refuses
    app.include_router(hotels.router)
    app.include_router(bookings.router)
    app.include_router(asyncapi.router)
    app.include_router(docs.router)
    _refresh_openapi_daily(app)
    app.router.routes.extend(ops_routes())  # /health/live, /health/ready, /metrics
    app.include_router(admin_groups.router)  # before admin's /{queue}/... routes
    app.include_router(admin.router)
    app.include_router(console.router)  # the dead-letter console's pages and actions
    problems.install(app)
    app.add_exception_handler(SignInRequired, _sign_in)
    return app


def _refresh_openapi_daily(app: FastAPI) -> None:
    """FastAPI builds the OpenAPI document once; its examples carry dates relative to today
    (so "Try it out" books a future stay), so the document is rebuilt when the day changes.
    Its error responses are problems (api/problem_docs.py), whoever declared them, and each
    optional parameter has one type (api/docs.py)."""
    build, built_on = app.openapi, [today()]

    def openapi() -> dict[str, Any]:
        if built_on[0] != today():
            app.openapi_schema, built_on[0] = None, today()
        if app.openapi_schema is None:
            app.openapi_schema = one_type_per_parameter(document(build()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _is_ops_request(scope: MutableMapping[str, Any]) -> bool:
    path: str = scope.get("path", "")
    return path.startswith(("/health/", "/metrics"))


async def _sign_in(request: Request, exc: Exception) -> Response:
    """The console without a session: its sign-in page (htmx follows HX-Redirect)."""
    if request.headers.get("hx-request") == "true":
        return Response(status_code=401, headers={"HX-Redirect": "/admin/console/login"})
    return RedirectResponse("/admin/console/login", status_code=303)
