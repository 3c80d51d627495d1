"""Wiring and entry point shared by the consumer services (notification, email, voucher).

Each service's ``bootstrap.py`` names its handlers and migrations; this module builds the
clients (never at import time), runs the consumer until SIGTERM/SIGINT and closes them.
Every consumer process also serves /health/live, /health/ready and /metrics on its own
small HTTP server (HTTP_HOST, HTTP_PORT), with a metrics registry of its own.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import asyncpg
from starlette.routing import BaseRoute

from shared.db.migrate import prepare
from shared.db.pool import close_pool
from shared.db.retention import RetentionJob, Rule, processed_events, sent_outbox
from shared.db.schemas import service_migrations
from shared.errors import ConfigurationError, SharedError
from shared.http.server import OpsServer, bind, ops_app
from shared.logging_setup import configure_logging
from shared.messaging.config import ConsumerConfig
from shared.messaging.connection import broker_user
from shared.messaging.consumer import Consumer
from shared.messaging.handlers import Handler
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.retry import RetryPolicy
from shared.messaging.topology import PUBLISHES_TO, declare_service
from shared.observability.health import Ops, consuming_check, database_check, moving_check
from shared.observability.metrics import Metrics
from shared.observability.tracing import configure_tracing
from shared.outbox.backlog import OutboxProbe
from shared.outbox.relay import OutboxRelay
from shared.settings import ConsumerSettings, ConsumingSettings, load_settings
from shared.startup import connect_database

log = logging.getLogger(__name__)
Settings = TypeVar("Settings", bound=ConsumerSettings)
DB_CLOSE_TIMEOUT = 5.0
# Consumers whose handlers reach outside their database (SMTP, webhooks): never batched.
OUTSIDE_EFFECTS = frozenset({"email", "notification"})


@dataclass
class ConsumerProcess:
    consumer: Consumer
    relay: OutboxRelay
    pool: asyncpg.Pool
    publisher: ConfirmingPublisher
    ops: OpsServer
    metrics: Metrics
    retention: RetentionJob

    @property
    def ops_url(self) -> str:
        return self.ops.url

    async def run(self, stop: asyncio.Event) -> None:
        """Consume, relay and serve the ops endpoints until ``stop``. The relay outlives
        the consumer's drain so the last progress reports still go out; the ops server
        answers (unready) until the end. If the ops server fails, the process stops."""
        relay_stop, http_stop, retention_stop = asyncio.Event(), asyncio.Event(), asyncio.Event()
        relay = asyncio.create_task(self.relay.run(relay_stop))
        http = asyncio.create_task(self.ops.serve(http_stop), name="ops-http")
        http.add_done_callback(lambda _: stop.set())
        retention = asyncio.create_task(self.retention.run(retention_stop), name="retention")
        try:
            await self.consumer.run(stop)
        finally:
            try:
                self.relay.wake()
                relay_stop.set()
                retention_stop.set()  # it stops between two batches
                await relay
                await retention
            finally:
                http_stop.set()
                await http  # raises if the server failed

    async def close(self) -> None:
        try:
            await self.publisher.close()
            await close_pool(self.pool, DB_CLOSE_TIMEOUT)
        finally:
            self.ops.close()


def consumer_config(
    service: str, settings: ConsumingSettings, *, report_progress: bool = True
) -> ConsumerConfig:
    latency_ms = settings.simulated_latency_ms if isinstance(settings, ConsumerSettings) else 0
    if settings.batch_size > 1 and service in OUTSIDE_EFFECTS:
        # A failed batch runs its handlers again one by one: an email would go out twice.
        raise ConfigurationError(
            f"BATCH_SIZE must be 1 for {service}: its handlers have effects outside its "
            "database, which a rolled-back batch would repeat"
        )
    return ConsumerConfig(
        service=service,
        amqp_url=settings.amqp_url,
        prefetch=settings.prefetch,
        retry_policy=RetryPolicy(
            max_attempts=settings.max_attempts,
            base_delay=settings.retry_base_delay,
            max_delay=settings.retry_max_delay,
        ),
        connect_timeout=settings.amqp_connect_timeout,
        shutdown_grace=settings.shutdown_grace,
        db_acquire_timeout=settings.db_acquire_timeout,
        report_progress=report_progress,
        simulated_work=latency_ms / 1000,
        batch_size=settings.batch_size,
        max_message_bytes=settings.max_message_bytes,
        stall_timeout=settings.stall_timeout,
    )


async def build_consumer_process(
    service: str,
    settings: ConsumerSettings,
    handlers: Mapping[str, Handler],
    migrations: Path,
    pool: asyncpg.Pool | None = None,
    routes: Sequence[BaseRoute] = (),
    retention: Sequence[Rule] = (),
) -> ConsumerProcess:
    """Build a consumer process; ``routes`` are served beside the ops endpoints, and the
    ``retention`` rules of the service's own tables join those of its outbox and
    processed-event records."""
    # Bound first: a port in use is a start-up error before anything else is built.
    sock = bind(settings.http_host, settings.http_port)
    try:
        return await _build(service, settings, handlers, migrations, pool, routes, retention, sock)
    except BaseException:
        sock.close()
        raise


async def _build(
    service: str,
    settings: ConsumerSettings,
    handlers: Mapping[str, Handler],
    migrations: Path,
    pool: asyncpg.Pool | None,
    routes: Sequence[BaseRoute],
    retention: Sequence[Rule],
    sock: socket.socket,
) -> ConsumerProcess:
    # DB_POOL_SIZE bounds the transactions in progress, PREFETCH the messages in hand: a
    # step's slow work (simulated, rendering) happens before its transaction opens, so a
    # large prefetch does not need as many PostgreSQL connections (a server has ~100).
    config = consumer_config(service, settings)  # refused before anything is opened
    own_pool = pool is None
    pool = pool or await connect_database(settings)
    try:
        await prepare(
            pool, service, service_migrations(migrations), apply=settings.migrate_on_start
        )
    except BaseException:
        if own_pool:  # a process refused at start leaves no connection open
            await close_pool(pool, DB_CLOSE_TIMEOUT)
        raise
    metrics = Metrics()
    publisher = ConfirmingPublisher(
        settings.amqp_url,
        name=f"{service}-publisher",
        connect_timeout=settings.amqp_connect_timeout,
        publish_timeout=settings.amqp_publish_timeout,
        declare=lambda channel: declare_service(channel, service),
    )
    relay = OutboxRelay(
        pool,
        publisher,
        schema=service,
        exchange=PUBLISHES_TO[service],
        acquire_timeout=settings.db_acquire_timeout,
        metrics=metrics,
        # Its reports carry this service's broker user, which the booking service checks.
        user_id=broker_user(settings.amqp_url),
    )
    consumer = Consumer(
        config,
        handlers,
        pool,
        publisher,
        on_outbox_write=relay.wake,
        metrics=metrics,
    )
    timeout = settings.health_check_timeout
    metrics.on_scrape(OutboxProbe(pool, service, timeout=timeout))
    checks = {
        "database": database_check(pool, timeout),
        "consumer": consuming_check(lambda: consumer.consuming, consumer.names.queue),
        "deliveries": moving_check(consumer.stalled),
    }
    ops = Ops(service, metrics, checks, timeout=timeout)
    server = OpsServer(ops_app(ops, routes), sock)
    rules = [
        sent_outbox(service, settings.outbox_sent_max_age),
        processed_events(service, settings.processed_events_max_age),
        *retention,
    ]
    job = RetentionJob(
        pool,
        rules,
        interval=settings.retention_interval,
        batch_size=settings.retention_batch_size,
        acquire_timeout=settings.db_acquire_timeout,
    )
    return ConsumerProcess(
        consumer, relay, pool, publisher, ops=server, metrics=metrics, retention=job
    )


async def run_until_signalled(process: ConsumerProcess) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await process.run(stop)
    finally:
        await process.close()
    log.info("%s stopped cleanly", process.consumer.config.service)


def main(
    service: str,
    settings_class: type[Settings],
    process: Callable[[Settings], Awaitable[ConsumerProcess]],
) -> None:
    """Entry point of a consumer process: exit 0 after a clean stop, 1 with one clear line
    when it cannot start (a setting refused, a placeholder secret outside DEV_MODE, its
    schema not migrated, PostgreSQL unreachable...)."""
    try:
        settings = load_settings(settings_class)
    except SharedError as exc:
        print(f"error: {service} cannot start: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
    configure_logging(service, settings.log_level, settings.log_format)

    async def serve() -> None:
        await run_until_signalled(await process(settings))

    try:
        configure_tracing(service, settings.otel_traces_exporter)
        asyncio.run(serve())
    except SharedError as exc:
        print(f"error: {service} cannot start: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
