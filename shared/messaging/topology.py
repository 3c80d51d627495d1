"""Every AMQP name in the system, and the code that declares them. Nowhere else.

::

    booking.events (fanout, durable)
    ├── notification.booking-events ─┐
    ├── email.booking-events ────────┤  quorum queues, one per consumer service
    └── voucher.booking-events ──────┘
          │ x-dead-letter-exchange (delivery limit exceeded)
          ▼
    <service>.dlx (direct) ──► <service>.dlq           parked messages, with reason headers
    <service>.retry.<n> ──(per-message TTL expires)──► default exchange ──► <service>.booking-events

Retry wait queues dead-letter through the default exchange with the consumer's own queue
as routing key, so a retried message returns to that consumer only, never to the fanout.
Declaration is idempotent: whichever process starts first creates everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel

EVENTS_EXCHANGE = "booking.events"
CONSUMER_SERVICES = ("notification", "email", "voucher")
# Attempt n waits in retry queue min(n, RETRY_LEVELS). One queue per level keeps delays in a
# queue alike, so per-message TTLs (which expire only at the head) barely block each other.
RETRY_LEVELS = 8
# Guards against a message that kills its consumer before it can be acked: the broker
# counts redeliveries and dead-letters the message past this limit.
DELIVERY_LIMIT = 20


@dataclass(frozen=True)
class ConsumerTopology:
    """The names belonging to one consumer service."""

    service: str

    @property
    def queue(self) -> str:
        return f"{self.service}.booking-events"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.service}.dlx"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.service}.dlq"

    def retry_queue(self, attempt: int) -> str:
        return f"{self.service}.retry.{min(max(attempt, 1), RETRY_LEVELS)}"

    @property
    def retry_queues(self) -> list[str]:
        return [self.retry_queue(level) for level in range(1, RETRY_LEVELS + 1)]


def consumer_topology(service: str) -> ConsumerTopology:
    if service not in CONSUMER_SERVICES:
        raise ValueError(f"unknown consumer service {service!r}; known: {CONSUMER_SERVICES}")
    return ConsumerTopology(service)


def resolve_dead_letter_queue(name: str) -> str:
    """Accept a service name ('email') or a full queue name ('email.dlq')."""
    if name in CONSUMER_SERVICES:
        return ConsumerTopology(name).dead_letter_queue
    for service in CONSUMER_SERVICES:
        if name == ConsumerTopology(service).dead_letter_queue:
            return name
    raise ValueError(f"no dead-letter queue called {name!r}; use one of {CONSUMER_SERVICES}")


def _quorum(**extra: Any) -> dict[str, Any]:
    # at-least-once dead-lettering needs reject-publish overflow; it keeps a message in the
    # source queue until the dead-letter target has confirmed it.
    return {
        "x-queue-type": "quorum",
        "x-overflow": "reject-publish",
        "x-dead-letter-strategy": "at-least-once",
        **extra,
    }


async def declare_exchange(channel: AbstractChannel) -> aio_pika.abc.AbstractExchange:
    return await channel.declare_exchange(
        EVENTS_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True
    )


async def declare_consumer(channel: AbstractChannel, names: ConsumerTopology) -> None:
    exchange = await declare_exchange(channel)
    dlx = await channel.declare_exchange(
        names.dead_letter_exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    dlq = await channel.declare_queue(
        names.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await dlq.bind(dlx, routing_key=names.queue)
    work = await channel.declare_queue(
        names.queue,
        durable=True,
        arguments=_quorum(
            **{
                "x-dead-letter-exchange": names.dead_letter_exchange,
                "x-dead-letter-routing-key": names.queue,
                "x-delivery-limit": DELIVERY_LIMIT,
            }
        ),
    )
    await work.bind(exchange)
    for retry_queue in names.retry_queues:
        await channel.declare_queue(
            retry_queue,
            durable=True,
            arguments=_quorum(
                **{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": names.queue}
            ),
        )


async def declare_all(channel: AbstractChannel) -> None:
    """Declare the exchange and every consumer's queues (used by the publisher too, so an
    event published before any consumer ever started is still queued for each of them)."""
    await declare_exchange(channel)
    for service in CONSUMER_SERVICES:
        await declare_consumer(channel, ConsumerTopology(service))
