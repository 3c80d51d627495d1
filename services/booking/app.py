"""The booking API: the FastAPI app and its lifespan, the one wiring point of this process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.booking.access_log import AccessLog, route_path
from services.booking.api import admin, asyncapi, bookings, docs, hotels
from services.booking.api.refusals import invalid_request
from services.booking.errors import (
    BookingServiceError,
    IdempotencyKeyReused,
    InvalidBooking,
    NoAvailability,
    NotFound,
    RateLimited,
    TokenRequired,
    VoucherVoided,
)
from services.booking.fulfilment import HANDLERS
from services.booking.middleware import BodySizeLimit
from services.booking.rate_limit import BookingRateLimits, Rate
from services.booking.schemas import today
from services.booking.senders import SenderPolicy, parse_senders
from services.booking.settings import BookingSettings
from shared.consumer_service import consumer_config
from shared.db.migrate import prepare
from shared.db.pool import UNAVAILABLE_ERRORS, close_pool
from shared.db.retention import RetentionJob, created_before, processed_events, sent_outbox
from shared.db.schemas import service_migrations
from shared.deadletters.audit import AuditStore
from shared.deadletters.operations import DeadLetterOps, OpsConfig
from shared.errors import DatabaseUnavailable
from shared.http.ops import ops_routes
from shared.messaging.connection import broker_user
from shared.messaging.consumer import Consumer
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import EVENTS_EXCHANGE, declare_service
from shared.observability.health import Ops, database_check
from shared.observability.metrics import Metrics
from shared.outbox.backlog import OutboxProbe
from shared.outbox.relay import OutboxRelay
from shared.startup import connect_database

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
RELAY_POOL_SIZE = 2
ADMIN_POOL_SIZE = 2
STATUS = {
    NotFound: 404,
    TokenRequired: 401,
    RateLimited: 429,
    InvalidBooking: 422,
    IdempotencyKeyReused: 422,
    NoAvailability: 409,
    VoucherVoided: 410,
}


def create_app(settings: BookingSettings, *, pool: asyncpg.Pool | None = None) -> FastAPI:
    """Build the app. Clients are created in the lifespan, so importing this module (or
    building an app for a test) connects to nothing."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = pool or await connect_database(settings)
        await prepare_schema(db, settings)
        metrics = Metrics()
        publisher = ConfirmingPublisher(
            settings.amqp_url,
            name="booking-publisher",
            connect_timeout=settings.amqp_connect_timeout,
            publish_timeout=settings.amqp_publish_timeout,
            declare=lambda channel: declare_service(channel, "booking"),
        )
        # The relay has connections of its own: under a burst of requests, waiting in the
        # API's pool queue held events back for tens of seconds (bench scenario 5).
        relay_db = await connect_database(settings, max_size=RELAY_POOL_SIZE)
        relay = OutboxRelay(
            relay_db,
            publisher,
            schema="booking",
            exchange=EVENTS_EXCHANGE,
            batch_size=settings.outbox_batch_size,
            sweep_interval=settings.outbox_sweep_interval,
            retry_max_delay=settings.outbox_retry_max_delay,
            acquire_timeout=settings.db_acquire_timeout,
            metrics=metrics,
            user_id=broker_user(settings.amqp_url),
        )
        # The consumer of the fulfilment reports: shares the publishing connection (for its
        # retries and dead letters) but consumes on a connection of its own. Each report is
        # taken only from the service it speaks for (services/booking/senders.py).
        config = replace(
            consumer_config("booking", settings, report_progress=False),
            check_sender=sender_policy(settings),
        )
        reports = Consumer(config, HANDLERS, db, publisher, metrics=metrics)
        app.state.pool, app.state.relay, app.state.settings = db, relay, settings
        app.state.reports = reports
        app.state.rate_limits = BookingRateLimits(
            Rate.parse(settings.rate_limit_per_address), Rate.parse(settings.rate_limit_per_email)
        )
        app.state.ops = _ops(db, metrics, settings.health_check_timeout)
        # The admin API's dead-letter operations; they connect to the broker per request,
        # and check (or migrate) their audit schema at first use, as the ops schema's role.
        audit_db = await _audit_pool(settings) or db
        app.state.dlq = DeadLetterOps(
            OpsConfig(
                amqp_url=settings.admin_amqp_url or settings.amqp_url,
                connect_timeout=settings.amqp_connect_timeout,
                publish_timeout=settings.amqp_publish_timeout,
            ),
            AuditStore(audit_db, settings.db_acquire_timeout, migrate=settings.migrate_on_start),
        )
        app.state.retention = retention = _retention(db, settings)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(reports.run(stop)), asyncio.create_task(retention.run(stop))]
        if settings.relay_enabled:
            tasks.append(asyncio.create_task(relay.run(stop)))
        try:
            yield
        finally:
            stop.set()
            _, late = await asyncio.wait(
                tasks, timeout=settings.shutdown_grace + settings.amqp_publish_timeout
            )
            # Whatever is still running is cut short (its messages stay unacked and are
            # redelivered), so nothing can reopen the publisher after it is closed.
            for task in late:
                task.cancel()
            await asyncio.wait(tasks, timeout=settings.amqp_connect_timeout)
            await publisher.close()
            await close_pool(relay_db, settings.db_command_timeout)
            if audit_db is not db:
                await close_pool(audit_db, settings.db_command_timeout)
            if pool is None:
                await close_pool(db, settings.db_command_timeout)

    app = FastAPI(
        title="Hotel booking",
        version="1.0.0",
        summary="Book a room synchronously; fulfilment happens in independent consumers.",
        lifespan=lifespan,
        docs_url=None,  # served by api/docs.py, without a CDN
        # FastAPI's own OpenTelemetry server span per request (recorded when a tracer
        # provider is installed, see shared/observability/tracing.py). Health probes and
        # scrapes are left out: every few seconds, they would drown the traces.
        telemetry={"exclude": _is_ops_request},
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(AccessLog)  # outermost: it also sees what BodySizeLimit refuses
    app.include_router(hotels.router)
    app.include_router(bookings.router)
    app.include_router(asyncapi.router)
    app.include_router(docs.router)
    _refresh_openapi_daily(app)
    app.router.routes.extend(ops_routes())  # /health/live, /health/ready, /metrics
    app.include_router(admin.router)
    _add_error_handlers(app)
    return app


async def prepare_schema(pool: asyncpg.Pool, settings: BookingSettings) -> None:
    """Migrate the booking schema (MIGRATE_ON_START) or refuse to start if it is not."""
    directories = service_migrations(MIGRATIONS)
    await prepare(pool, "booking", directories, apply=settings.migrate_on_start)


def sender_policy(settings: BookingSettings) -> SenderPolicy:
    """Each step's broker user; in DEV_MODE, also the user every service shares."""
    shared_user = broker_user(settings.amqp_url) if settings.dev_mode else None
    return SenderPolicy(parse_senders(settings.report_senders), shared_user)


async def _audit_pool(settings: BookingSettings) -> asyncpg.Pool | None:
    """The ops schema's role, when the admin API has one of its own (ADMIN_DATABASE_URL)."""
    if not (settings.admin_enabled and settings.admin_database_url):
        return None
    ops = settings.model_copy(update={"database_url": settings.admin_database_url})
    return await connect_database(ops, max_size=ADMIN_POOL_SIZE)


def _refresh_openapi_daily(app: FastAPI) -> None:
    """FastAPI builds the OpenAPI document once; its examples carry dates relative to today
    (so "Try it out" books a future stay), so the document is rebuilt when the day changes."""
    build, built_on = app.openapi, [today()]

    def openapi() -> dict[str, Any]:
        if built_on[0] != today():
            app.openapi_schema, built_on[0] = None, today()
        return build()

    app.openapi = openapi  # type: ignore[method-assign]


def _retention(pool: asyncpg.Pool, settings: BookingSettings) -> RetentionJob:
    """Deletes the booking schema's rows past their use (shared/db/retention.py)."""
    rules = [
        sent_outbox("booking", settings.outbox_sent_max_age),
        processed_events("booking", settings.processed_events_max_age),
        created_before("booking.idempotency_keys", "key", settings.idempotency_keys_max_age),
    ]
    return RetentionJob(
        pool,
        rules,
        interval=settings.retention_interval,
        batch_size=settings.retention_batch_size,
        acquire_timeout=settings.db_acquire_timeout,
    )


def _is_ops_request(scope: MutableMapping[str, Any]) -> bool:
    path: str = scope.get("path", "")
    return path.startswith(("/health/", "/metrics"))


def _ops(pool: asyncpg.Pool, metrics: Metrics, timeout: float) -> Ops:
    """Ready means the database answers: with the broker down, bookings are still taken
    (the outbox holds their events), so the broker is not a readiness condition here."""
    metrics.on_scrape(OutboxProbe(pool, "booking", timeout=timeout))
    return Ops("booking", metrics, {"database": database_check(pool, timeout)}, timeout=timeout)


def _add_error_handlers(app: FastAPI) -> None:
    async def booking_error(request: Request, exc: Exception) -> JSONResponse:
        status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
        headers = {}
        if isinstance(exc, TokenRequired):
            # RFC 9110 wants a challenge with a 401; FastAPI's API key schemes say "APIKey".
            headers["WWW-Authenticate"] = "APIKey"
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        where = route_path(request.scope)  # the template: no booking id in the log
        log.warning("database unavailable during %s %s: %r", request.method, where, exc)
        return JSONResponse(
            {"detail": "the database is unavailable; try again shortly"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    app.add_exception_handler(BookingServiceError, booking_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    unavailable_errors: tuple[type[BaseException], ...] = (DatabaseUnavailable, *UNAVAILABLE_ERRORS)
    for error in unavailable_errors:
        if issubclass(error, Exception):
            app.add_exception_handler(error, unavailable)
