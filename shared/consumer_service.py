"""Wiring and entry point shared by the consumer services (those of shared/registry.py).

Each service's ``bootstrap.py`` builds its own parts (an SMTP pool, a feed hub...) into a
Parts (shared/process.py) and adds the ones every consumer has with
:func:`build_consumer_process`: the database pool, publisher, outbox relay, consumer runtime,
retention job and the small HTTP server of /health/live, /health/ready and /metrics
(HTTP_HOST, HTTP_PORT), with a metrics registry of its own. Nothing is built at import time;
:func:`main` runs the process until SIGTERM/SIGINT and closes it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import asyncpg
from starlette.routing import BaseRoute

from shared import building, heap, priority, registry, stop_signals
from shared.db.retention import Rule
from shared.errors import SharedError
from shared.http.server import OpsServer, bind, ops_app
from shared.logging_setup import configure_logging
from shared.messaging.consumer import Consumer
from shared.messaging.handlers import Handler
from shared.messaging.publisher import ConfirmingPublisher
from shared.observability.health import Ops, consuming_check, database_check, moving_check
from shared.observability.metrics import Metrics
from shared.observability.tracing import configure_tracing
from shared.outbox.backlog import OutboxProbe
from shared.outbox.relay import OutboxRelay
from shared.process import SERVING, Parts
from shared.settings import ConsumerSettings, load_settings

log = logging.getLogger(__name__)
Settings = TypeVar("Settings", bound=ConsumerSettings)


@dataclass
class ConsumerProcess:
    """A consumer service's process: its parts, and the ones tests and services reach for."""

    parts: Parts
    consumer: Consumer
    pool: asyncpg.Pool
    publisher: ConfirmingPublisher
    relay: OutboxRelay
    metrics: Metrics
    ops: OpsServer

    @property
    def ops_url(self) -> str:
        return self.ops.url

    async def run(self, stop: asyncio.Event) -> None:
        """Consume, relay and serve the ops endpoints until ``stop`` (Parts.run): the relay
        outlives the consumer's drain, the ops server answers (unready) to the end, and if
        it fails the process stops."""
        await self.parts.run(stop)

    async def close(self) -> None:
        await self.parts.close()


async def build_consumer_process(
    parts: Parts,
    service: str,
    settings: ConsumerSettings,
    handlers: Mapping[str, Handler],
    migrations: Path,
    pool: asyncpg.Pool | None = None,
    routes: Sequence[BaseRoute] = (),
    retention: Sequence[Rule] = (),
) -> ConsumerProcess:
    """The parts every consumer process has, added to ``parts`` (which may hold the
    service's own already): ``routes`` are served beside the ops endpoints, and the
    ``retention`` rules of the service's own tables join those of its outbox and
    processed-event records. Call it inside ``parts.building()``."""
    # Bound first: a port in use is a start-up error before anything else is built.
    port = settings.http_port
    if port is None:
        port = registry.consumer_service(service).http_port
    sock = parts.closes(bind(settings.http_host, port), socket.socket.close)
    # DB_POOL_SIZE bounds the transactions in progress, PREFETCH the messages in hand: a
    # step's slow work (simulated, rendering) happens before its transaction opens, so a
    # large prefetch does not need as many PostgreSQL connections (a server has ~100).
    config = building.consumer_config(service, settings)  # refused before anything opens
    building.check_handled(service, handlers)
    db = await building.schema_pool(parts, settings, service, migrations, pool)
    metrics = Metrics()
    sender = building.publisher(parts, settings, service)
    outbox = building.relay(parts, settings, service, db, sender, metrics)
    consumer = building.consumer(parts, config, handlers, db, sender, outbox, metrics)
    building.retention(parts, settings, service, db, retention)
    timeout = settings.health_check_timeout
    metrics.on_scrape(OutboxProbe(db, service, timeout=timeout))
    checks = {
        "database": database_check(db, timeout),
        "consumer": consuming_check(lambda: consumer.consuming, consumer.names.queue),
        "deliveries": moving_check(consumer.stalled),
    }
    server = OpsServer(ops_app(Ops(service, metrics, checks, timeout=timeout), routes), sock)
    parts.closes(server, OpsServer.close)
    parts.runs(f"{service}-ops-http", server.serve, stage=SERVING)
    return ConsumerProcess(parts, consumer, db, sender, outbox, metrics, server)


Bootstrap = Callable[..., Awaitable[ConsumerProcess]]


def bootstrap_for(
    service: str,
    make_handlers: Callable[[Settings], Mapping[str, Handler]],
    migrations: Path,
) -> Bootstrap:
    """The bootstrap of a consumer with no parts of its own, only handlers: what
    ``python -m services.<service>`` runs, and what tests call with handlers of their own
    (``bootstrap(settings, handlers=..., pool=...)``)."""

    async def bootstrap(
        settings: Settings,
        *,
        handlers: Mapping[str, Handler] | None = None,
        pool: asyncpg.Pool | None = None,
    ) -> ConsumerProcess:
        parts = Parts()
        async with parts.building():
            chosen = handlers or make_handlers(settings)
            return await build_consumer_process(parts, service, settings, chosen, migrations, pool)

    return bootstrap


async def run_until_signalled(
    service: str, start: Callable[[], Awaitable[ConsumerProcess]]
) -> None:
    """Build the process and run it until SIGTERM or SIGINT. A signal that arrives while it
    is still being built (or before, see shared/stop_signals.py) stops the building, which
    closes what was built: a clean stop, not a death by signal."""
    stop = stop_signals.stop_event()
    process = await stop_signals.unless_stopped(start(), stop)
    if process is None:
        log.info("%s stopped cleanly before it had started", service)
        return
    heap.settle()
    try:
        await process.run(stop)
    finally:
        await process.close()
    log.info("%s stopped cleanly", service)


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
    priority.lower(settings.niceness)

    async def serve() -> None:
        await run_until_signalled(service, lambda: process(settings))

    try:
        configure_tracing(service, settings.otel_traces_exporter)
        asyncio.run(serve())
    except SharedError as exc:
        print(f"error: {service} cannot start: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
