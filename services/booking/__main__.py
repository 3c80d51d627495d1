"""`python -m services.booking`: serve the booking API with uvicorn."""

import asyncio
import signal
import sys
from types import FrameType

import uvicorn

from services.booking.app import create_app
from services.booking.bootstrap import prepare_schema
from services.booking.settings import BookingSettings
from shared.db.migrate import prepare
from shared.db.pool import close_pool
from shared.deadletters.audit import MIGRATIONS as AUDIT_MIGRATIONS
from shared.deadletters.audit import SCHEMA as AUDIT_SCHEMA
from shared.errors import SharedError
from shared.logging_setup import configure_logging
from shared.observability.tracing import configure_tracing
from shared.settings import load_settings
from shared.startup import connect_database


def _already_stopped(signum: int, frame: FrameType | None) -> None:
    """uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown, which would end the
    process with -15 instead of 0; by then the work is done, so the re-raise is ignored."""


async def _check_schemas(settings: BookingSettings) -> None:
    """Before uvicorn starts: a schema that is not migrated (or PostgreSQL unreachable) is
    one line and exit 1 here, where the app's lifespan would end in uvicorn's traceback."""
    pool = await connect_database(settings, max_size=1)
    try:
        await prepare_schema(pool, settings)
        if settings.admin_enabled and settings.admin_database_url:
            ops = await connect_database(
                settings.model_copy(update={"database_url": settings.admin_database_url}),
                max_size=1,
            )
            try:
                await prepare(
                    ops, AUDIT_SCHEMA, [AUDIT_MIGRATIONS], apply=settings.migrate_on_start
                )
            finally:
                await close_pool(ops, settings.db_command_timeout)
    finally:
        await close_pool(pool, settings.db_command_timeout)


def _start() -> BookingSettings:
    """The settings, once everything the API needs is there; else one line and exit 1."""
    try:
        settings = load_settings(BookingSettings)
        configure_logging("booking", settings.log_level, settings.log_format)
        configure_tracing("booking", settings.otel_traces_exporter)
        asyncio.run(_check_schemas(settings))
    except SharedError as exc:
        print(f"error: booking cannot start: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
    return settings


if __name__ == "__main__":
    settings = _start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _already_stopped)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        # services/booking/access_log.py logs route templates instead: uvicorn's would log
        # the booking ids in the paths.
        access_log=False,
        # The client address (rate limits) from X-Forwarded-For, for these proxies only.
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=10,
    )
