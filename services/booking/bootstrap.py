"""Wiring for the booking process: the one place its clients are built, in the same shape as
the consumers' (shared/process.py, shared/building.py). The FastAPI lifespan (app.py) calls
:func:`bootstrap`, runs the parts while the app serves, and closes them after.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncpg

from services.booking import placing
from services.booking.fulfilment import HANDLERS
from services.booking.placing import RoomFactsCache
from services.booking.rate_limit import BookingRateLimits, Rate
from services.booking.senders import SenderPolicy, parse_senders
from services.booking.settings import BookingSettings
from shared import building
from shared.db.migrate import prepare
from shared.db.pool import warm
from shared.db.retention import created_before
from shared.db.schemas import service_migrations
from shared.deadletters.audit import AuditStore
from shared.deadletters.groups import FailureGroups
from shared.deadletters.index import DeadLetterIndex
from shared.deadletters.operations import DeadLetterOps, OpsConfig
from shared.messaging.connection import broker_user
from shared.observability.health import Ops, database_check
from shared.observability.metrics import Metrics
from shared.outbox.backlog import OutboxProbe
from shared.outbox.relay import OutboxRelay
from shared.process import Parts

SERVICE = "booking"
MIGRATIONS = Path(__file__).parent / "migrations"
RELAY_POOL_SIZE = 2
ADMIN_POOL_SIZE = 2


@dataclass
class BookingProcess:
    """What the API's dependencies reach for (deps.py), and the parts that run beside it."""

    parts: Parts
    pool: asyncpg.Pool
    relay: OutboxRelay
    ops: Ops
    dead_letters: DeadLetterOps
    failure_groups: FailureGroups
    rate_limits: BookingRateLimits
    rooms: RoomFactsCache


async def prepare_schema(pool: asyncpg.Pool, settings: BookingSettings) -> None:
    """Migrate the booking schema (MIGRATE_ON_START) or refuse to start if it is not."""
    await prepare(pool, SERVICE, service_migrations(MIGRATIONS), apply=settings.migrate_on_start)


def sender_policy(settings: BookingSettings) -> SenderPolicy:
    """Each step's broker user; in DEV_MODE, also the user every service shares."""
    shared_user = broker_user(settings.amqp_url) if settings.dev_mode else None
    return SenderPolicy(parse_senders(settings.report_senders), shared_user)


async def bootstrap(settings: BookingSettings, pool: asyncpg.Pool | None = None) -> BookingProcess:
    """The booking process's parts; ``pool``, when given, is its owner's to close."""
    parts = Parts()
    async with parts.building():
        db = await building.schema_pool(parts, settings, SERVICE, MIGRATIONS, pool)
        metrics = Metrics()
        sender = building.publisher(parts, settings, SERVICE)
        # The relay has connections of its own: under a burst of requests, waiting in the
        # API's pool queue held events back for tens of seconds (bench scenario 5).
        relay_db = await building.pool(parts, settings, max_size=RELAY_POOL_SIZE)
        relay = building.relay(parts, settings, SERVICE, relay_db, sender, metrics)
        # The consumer of the fulfilment reports: shares the publishing connection (for its
        # retries and dead letters) but consumes on a connection of its own. Each report is
        # taken only from the service it speaks for (services/booking/senders.py).
        config = building.consumer_config(
            SERVICE, settings, report_progress=False, check_sender=sender_policy(settings)
        )
        building.consumer(parts, config, HANDLERS, db, sender, relay, metrics)
        keys = created_before("booking.idempotency_keys", "key", settings.idempotency_keys_max_age)
        building.retention(parts, settings, SERVICE, db, [keys])
        groups = await _failure_groups(parts, settings, db)
        if settings.db_pool_warm:
            await warm(db, placing.prepare, settings.db_acquire_timeout)
        return BookingProcess(
            parts,
            db,
            relay,
            _ops(db, metrics, settings.health_check_timeout),
            groups.ops,
            groups,
            BookingRateLimits(
                Rate.parse(settings.rate_limit_per_address),
                Rate.parse(settings.rate_limit_per_email),
            ),
            RoomFactsCache(),
        )


def _ops(pool: asyncpg.Pool, metrics: Metrics, timeout: float) -> Ops:
    """Ready means the database answers: with the broker down, bookings are still taken
    (the outbox holds their events), so the broker is not a readiness condition here."""
    metrics.on_scrape(OutboxProbe(pool, SERVICE, timeout=timeout))
    return Ops(SERVICE, metrics, {"database": database_check(pool, timeout)}, timeout=timeout)


async def _failure_groups(
    parts: Parts, settings: BookingSettings, db: asyncpg.Pool
) -> FailureGroups:
    """The admin API's dead-letter operations: they connect to the broker per request, as
    the operator (ADMIN_AMQP_URL), and check (or migrate) their audit schema at first use,
    as the ops schema's role when the admin API has one of its own (ADMIN_DATABASE_URL).
    The console's index of dead letters lives beside the audit table, in that schema."""
    audit_db = db
    if settings.admin_enabled and settings.admin_database_url:
        as_ops = settings.model_copy(update={"database_url": settings.admin_database_url})
        audit_db = await building.pool(parts, as_ops, max_size=ADMIN_POOL_SIZE)
    audit = AuditStore(audit_db, settings.db_acquire_timeout, migrate=settings.migrate_on_start)
    ops = DeadLetterOps(
        OpsConfig(
            amqp_url=settings.admin_amqp_url or settings.amqp_url,
            connect_timeout=settings.amqp_connect_timeout,
            publish_timeout=settings.amqp_publish_timeout,
        ),
        audit,
    )
    index = DeadLetterIndex(audit_db, audit, settings.db_acquire_timeout)
    return FailureGroups(ops, index, settings.admin_management_url)
