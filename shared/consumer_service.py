"""Wiring and entry point shared by the consumer services (notification, email, voucher).

Each service's ``bootstrap.py`` names its handlers and migrations; this module builds the
clients (never at import time), runs the consumer until SIGTERM/SIGINT and closes them.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from shared.db.migrate import CONSUMER_MIGRATIONS, migrate
from shared.errors import SharedError
from shared.logging_setup import configure_logging
from shared.messaging.consumer import Consumer, ConsumerConfig, Handler
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.retry import RetryPolicy
from shared.messaging.topology import PUBLISHES_TO, declare_service
from shared.outbox import OutboxRelay
from shared.settings import ConsumerSettings, ConsumingSettings
from shared.startup import connect_database

log = logging.getLogger(__name__)


@dataclass
class ConsumerProcess:
    consumer: Consumer
    relay: OutboxRelay
    pool: asyncpg.Pool
    publisher: ConfirmingPublisher

    async def run(self, stop: asyncio.Event) -> None:
        """Consume and relay until ``stop``; the relay outlives the consumer's drain so the
        last progress reports still go out."""
        relay_stop = asyncio.Event()
        relay = asyncio.create_task(self.relay.run(relay_stop))
        try:
            await self.consumer.run(stop)
        finally:
            self.relay.wake()
            relay_stop.set()
            await relay

    async def close(self) -> None:
        await self.publisher.close()
        await self.pool.close()


def consumer_config(
    service: str, settings: ConsumingSettings, *, report_progress: bool = True
) -> ConsumerConfig:
    latency_ms = settings.simulated_latency_ms if isinstance(settings, ConsumerSettings) else 0
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
    )


async def build_consumer_process(
    service: str,
    settings: ConsumerSettings,
    handlers: Mapping[str, Handler],
    migrations: Path,
    pool: asyncpg.Pool | None = None,
) -> ConsumerProcess:
    # A pool at least as large as the prefetch: each message in hand holds a connection
    # for its transaction.
    pool = pool or await connect_database(
        settings, max_size=max(settings.db_pool_size, settings.prefetch)
    )
    await migrate(pool, service, [CONSUMER_MIGRATIONS, migrations])
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
    )
    consumer = Consumer(
        consumer_config(service, settings), handlers, pool, publisher, on_outbox_write=relay.wake
    )
    return ConsumerProcess(consumer=consumer, relay=relay, pool=pool, publisher=publisher)


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
    service: str, settings: ConsumerSettings, process: Callable[[], Awaitable[ConsumerProcess]]
) -> None:
    """Entry point of a consumer process: exit 0 after a clean stop, 1 with one clear line
    when it cannot start."""
    configure_logging(service, settings.log_level)

    async def serve() -> None:
        await run_until_signalled(await process())

    try:
        asyncio.run(serve())
    except SharedError as exc:
        print(f"error: {service} cannot start: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
