"""`python -m services.booking`: serve the booking API with uvicorn until SIGTERM or SIGINT."""

from shared import stop_signals

stop_signals.remember()  # before the imports below, which take a while

import asyncio  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402

import uvicorn  # noqa: E402

from services.booking.app import create_app  # noqa: E402
from services.booking.bootstrap import prepare_schema  # noqa: E402
from services.booking.settings import BookingSettings  # noqa: E402
from shared import heap  # noqa: E402
from shared.db.migrate import prepare  # noqa: E402
from shared.db.pool import close_pool  # noqa: E402
from shared.deadletters.audit import MIGRATIONS as AUDIT_MIGRATIONS  # noqa: E402
from shared.deadletters.audit import SCHEMA as AUDIT_SCHEMA  # noqa: E402
from shared.errors import SharedError  # noqa: E402
from shared.http.server import SignallessServer  # noqa: E402
from shared.logging_setup import configure_logging  # noqa: E402
from shared.observability.tracing import configure_tracing  # noqa: E402
from shared.settings import load_settings  # noqa: E402
from shared.startup import connect_database  # noqa: E402

log = logging.getLogger("services.booking")
STARTUP_FAILURE = 3  # uvicorn's exit code when the app's lifespan fails to start


async def _check_schemas(settings: BookingSettings) -> bool:
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
    return True


def _server(settings: BookingSettings) -> SignallessServer:
    config = uvicorn.Config(
        create_app(settings, started=heap.settle),
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
    return SignallessServer(config)


async def _serve(settings: BookingSettings, server: SignallessServer) -> None:
    """Check the schemas, then serve until a stop signal; one that arrives sooner (even
    during the imports) ends the process cleanly, with code 0."""
    stop = stop_signals.stop_event()
    if await stop_signals.unless_stopped(_check_schemas(settings), stop) is None:
        log.info("booking stopped cleanly before it had started")
        return
    loop = type(asyncio.get_running_loop())
    log.info("booking: event loop %s.%s", loop.__module__, loop.__qualname__)
    serving = asyncio.create_task(server.serve())
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([serving, stopped], return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    server.should_exit = True  # requests in flight get timeout_graceful_shutdown
    await serving
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)


def main() -> None:
    try:
        settings = load_settings(BookingSettings)
        configure_logging("booking", settings.log_level, settings.log_format)
        configure_tracing("booking", settings.otel_traces_exporter)
        server = _server(settings)  # the app only: its clients are built in its lifespan
        # The loop uvicorn.run would pick (uvloop when installed, as uvicorn[standard] has it).
        with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
            runner.run(_serve(settings, server))
    except SharedError as exc:
        print(f"error: booking cannot start: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc


if __name__ == "__main__":
    main()
