"""Dead-letter test helpers: park crafted messages in a dead-letter queue, and the operations
wired against a test's own vhost and database (the audit table included)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aio_pika

from shared.db.pool import create_pool
from shared.deadletters.audit import AuditStore
from shared.deadletters.operations import DeadLetterOps, OpsConfig
from shared.events import BookingCancelled, BookingConfirmed
from shared.messaging import retry
from shared.messaging.envelope import event_message
from shared.messaging.topology import consumer_topology, declare_all
from tests.support.amqp import channel
from tests.support.events import confirmed
from tests.support.infra import TestEnv


def cancelled() -> BookingCancelled:
    return BookingCancelled.model_validate(confirmed().model_dump())


async def park(
    url: str,
    service: str,
    events: list[BookingConfirmed] | list[BookingCancelled],
    *,
    reason: str = retry.REASON_EXHAUSTED,
    failed_at: datetime | None = None,
    attempts: int = 5,
) -> list[str]:
    """Put ``events`` in ``service``'s dead-letter queue as the runtime would have; return
    their message ids."""
    names = consumer_topology(service)
    headers = retry.failure_headers(
        {},
        error=RuntimeError("SMTP relay down"),
        attempts=attempts,
        service=service,
        queue=names.queue,
        reason=reason,
        now=failed_at or datetime.now(UTC),
    )
    connection = await aio_pika.connect(url, timeout=5)
    try:
        ch = await connection.channel(publisher_confirms=True)
        await declare_all(ch)
        for event in events:
            await ch.default_exchange.publish(
                event_message(event, dict(headers)), routing_key=names.dead_letter_queue
            )
    finally:
        await connection.close()
    return [str(e.event_id) for e in events]


async def message_ids(url: str, queue: str) -> list[str]:
    """Every message id in ``queue``, left in place (read unacked, returned on close)."""
    ids: list[str] = []
    async with channel(url) as ch:
        declared = await ch.declare_queue(queue, passive=True)
        while (message := await declared.get(fail=False, no_ack=False)) is not None:
            ids.append(str(message.message_id))
    return ids


@asynccontextmanager
async def dlq_ops(env: TestEnv, **config: Any) -> AsyncIterator[DeadLetterOps]:
    pool = await create_pool(env.database_url, max_size=2)
    try:
        defaults: dict[str, Any] = {
            "amqp_url": env.amqp_url(),
            "idle_timeout": 1.0,
            "batch_size": 50,
        }
        yield DeadLetterOps(OpsConfig(**(defaults | config)), AuditStore(pool))
    finally:
        await pool.close()
