"""The parts every process is built from, each made from the process's settings in one
place: its database pool (schema checked or migrated), the publisher, the outbox relay, the
consumer runtime and the retention job. The consumer services (shared/consumer_service.py)
and the booking service's lifespan (services/booking/app.py) both assemble their process
from these, registering each in the process's Parts (shared/process.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg

from shared import registry
from shared.db.migrate import prepare
from shared.db.pool import close_pool
from shared.db.retention import RetentionJob, Rule, processed_events, sent_outbox
from shared.db.schemas import service_migrations
from shared.errors import ConfigurationError
from shared.messaging.config import ConsumerConfig
from shared.messaging.connection import broker_user
from shared.messaging.consumer import Consumer
from shared.messaging.handlers import Handler
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.retry import RetryPolicy
from shared.messaging.topology import PUBLISHES_TO, declare_service
from shared.observability.metrics import Metrics
from shared.outbox.relay import OutboxRelay
from shared.process import CONSUMING, RELAYING, Parts
from shared.settings import CommonSettings, ConsumerSettings, ConsumingSettings
from shared.startup import connect_database

DB_CLOSE_TIMEOUT = 5.0
OUTSIDE_EFFECTS = frozenset(s.name for s in registry.CONSUMERS if s.outside_effects)


async def pool(
    parts: Parts, settings: CommonSettings, *, max_size: int | None = None
) -> asyncpg.Pool:
    """A pool of the process's own, closed with it."""
    opened = await connect_database(settings, max_size=max_size)
    return parts.closes(opened, lambda p: close_pool(p, DB_CLOSE_TIMEOUT))


async def schema_pool(
    parts: Parts,
    settings: ConsumingSettings,
    service: str,
    migrations: Path,
    given: asyncpg.Pool | None = None,
) -> asyncpg.Pool:
    """The service's main pool (or ``given``, which its owner closes), with the service's
    schema migrated (MIGRATE_ON_START) or checked: an unmigrated schema refuses the start."""
    db = given or await pool(parts, settings)
    await prepare(db, service, service_migrations(migrations), apply=settings.migrate_on_start)
    return db


def publisher(parts: Parts, settings: CommonSettings, service: str) -> ConfirmingPublisher:
    made = ConfirmingPublisher(
        settings.amqp_url,
        name=f"{service}-publisher",
        connect_timeout=settings.amqp_connect_timeout,
        publish_timeout=settings.amqp_publish_timeout,
        declare=lambda channel: declare_service(channel, service),
    )
    return parts.closes(made, ConfirmingPublisher.close)


def relay(
    parts: Parts,
    settings: ConsumingSettings,
    service: str,
    db: asyncpg.Pool,
    sender: ConfirmingPublisher,
    metrics: Metrics,
) -> OutboxRelay:
    """The relay of the service's outbox; it runs past the consumers' drain, so their last
    reports still go out."""
    made = OutboxRelay(
        db,
        sender,
        schema=service,
        exchange=PUBLISHES_TO[service],
        batch_size=settings.outbox_batch_size,
        sweep_interval=settings.outbox_sweep_interval,
        retry_max_delay=settings.outbox_retry_max_delay,
        acquire_timeout=settings.db_acquire_timeout,
        metrics=metrics,
        # Its events carry this service's broker user, which consumers can check.
        user_id=broker_user(settings.amqp_url),
    )
    if settings.relay_enabled:
        parts.runs(f"{service}-relay", made.run, stage=RELAYING)
    return made


def consumer_config(service: str, settings: ConsumingSettings, **overrides: Any) -> ConsumerConfig:
    """The consumer runtime's configuration, from the service's settings."""
    latency_ms = settings.simulated_latency_ms if isinstance(settings, ConsumerSettings) else 0
    if settings.batch_size > 1 and service in OUTSIDE_EFFECTS:
        # A failed batch runs its handlers again one by one: an email would go out twice.
        raise ConfigurationError(
            f"BATCH_SIZE must be 1 for {service}: its handlers have effects outside its "
            "database, which a rolled-back batch would repeat"
        )
    config = ConsumerConfig(
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
        simulated_work=latency_ms / 1000,
        batch_size=settings.batch_size,
        batch_linger=settings.batch_linger_ms / 1000,
        max_message_bytes=settings.max_message_bytes,
        stall_timeout=settings.stall_timeout,
    )
    return replace(config, **overrides)


def check_handled(service: str, handlers: Mapping[str, Handler]) -> None:
    """A consumer service handles only what the registry says it does: what it handles is
    what other teams read there (and in the AsyncAPI document)."""
    unknown = set(handlers) - set(registry.consumer_service(service).handles)
    if unknown:
        raise ConfigurationError(
            f"{service} has handlers for {', '.join(sorted(unknown))}, which shared/registry.py "
            "does not list for it"
        )


def consumer(
    parts: Parts,
    config: ConsumerConfig,
    handlers: Mapping[str, Handler],
    db: asyncpg.Pool,
    sender: ConfirmingPublisher,
    outbox: OutboxRelay,
    metrics: Metrics,
) -> Consumer:
    made = Consumer(config, handlers, db, sender, on_outbox_write=outbox.wake, metrics=metrics)
    parts.runs(f"{config.service}-consumer", made.run, stage=CONSUMING)
    return made


def retention(
    parts: Parts, settings: ConsumingSettings, service: str, db: asyncpg.Pool, rules: Sequence[Rule]
) -> RetentionJob:
    """Deletes the service's rows past their use: its sent outbox rows, its processed-event
    records, and ``rules`` for its own tables."""
    every = [
        sent_outbox(service, settings.outbox_sent_max_age),
        processed_events(service, settings.processed_events_max_age),
        *rules,
    ]
    job = RetentionJob(
        db,
        every,
        interval=settings.retention_interval,
        batch_size=settings.retention_batch_size,
        acquire_timeout=settings.db_acquire_timeout,
    )
    parts.runs(f"{service}-retention", job.run, stage=RELAYING)
    return job
