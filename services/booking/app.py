"""The booking API: the FastAPI app and its lifespan, the one wiring point of this process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.booking.api import admin, bookings, hotels
from services.booking.errors import (
    BookingServiceError,
    IdempotencyKeyReused,
    InvalidBooking,
    NoAvailability,
    NotFound,
    VoucherVoided,
)
from services.booking.fulfilment import HANDLERS
from services.booking.middleware import BodySizeLimit
from services.booking.settings import BookingSettings
from services.dlq.audit import AuditStore
from services.dlq.operations import DeadLetterOps, OpsConfig
from shared.consumer_service import consumer_config
from shared.db.migrate import CONSUMER_MIGRATIONS, migrate
from shared.db.pool import UNAVAILABLE_ERRORS
from shared.errors import DatabaseUnavailable
from shared.messaging.consumer import Consumer
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import EVENTS_EXCHANGE, declare_all
from shared.outbox import OutboxRelay
from shared.startup import connect_database

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
STATUS = {
    NotFound: 404,
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
        await migrate(db, "booking", [CONSUMER_MIGRATIONS, MIGRATIONS])
        publisher = ConfirmingPublisher(
            settings.amqp_url,
            name="booking-publisher",
            connect_timeout=settings.amqp_connect_timeout,
            publish_timeout=settings.amqp_publish_timeout,
            declare=declare_all,
        )
        relay = OutboxRelay(
            db,
            publisher,
            schema="booking",
            exchange=EVENTS_EXCHANGE,
            batch_size=settings.outbox_batch_size,
            sweep_interval=settings.outbox_sweep_interval,
            retry_max_delay=settings.outbox_retry_max_delay,
            acquire_timeout=settings.db_acquire_timeout,
        )
        # The consumer of the fulfilment reports: shares the publishing connection (for its
        # retries and dead letters) but consumes on a connection of its own.
        reports = Consumer(
            consumer_config("booking", settings, report_progress=False), HANDLERS, db, publisher
        )
        app.state.pool, app.state.relay, app.state.settings = db, relay, settings
        app.state.reports = reports
        # The admin API's dead-letter operations; they connect per request, and migrate
        # their audit schema at first use.
        app.state.dlq = DeadLetterOps(
            OpsConfig(
                amqp_url=settings.amqp_url,
                connect_timeout=settings.amqp_connect_timeout,
                publish_timeout=settings.amqp_publish_timeout,
            ),
            AuditStore(db, settings.db_acquire_timeout),
        )
        stop = asyncio.Event()
        tasks = [asyncio.create_task(reports.run(stop))]
        if settings.relay_enabled:
            tasks.append(asyncio.create_task(relay.run(stop)))
        try:
            yield
        finally:
            stop.set()
            await asyncio.wait(
                tasks, timeout=settings.shutdown_grace + settings.amqp_publish_timeout
            )
            await publisher.close()
            if pool is None:
                await db.close()

    app = FastAPI(
        title="Hotel booking",
        version="1.0.0",
        summary="Book a room synchronously; fulfilment happens in independent consumers.",
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.include_router(hotels.router)
    app.include_router(bookings.router)
    app.include_router(admin.router)
    _add_error_handlers(app)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    async def booking_error(request: Request, exc: Exception) -> JSONResponse:
        status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
        return JSONResponse({"detail": str(exc)}, status_code=status)

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable during %s %s: %r", request.method, request.url.path, exc)
        return JSONResponse(
            {"detail": "the database is unavailable; try again shortly"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    app.add_exception_handler(BookingServiceError, booking_error)
    unavailable_errors: tuple[type[BaseException], ...] = (DatabaseUnavailable, *UNAVAILABLE_ERRORS)
    for error in unavailable_errors:
        if issubclass(error, Exception):
            app.add_exception_handler(error, unavailable)
