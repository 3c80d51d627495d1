"""Every AMQP name in the system, and the code that declares them. Nowhere else.

::

    booking.events (fanout, durable)          events of bookings, from the booking service
    ├── notification.booking-events ─┐
    ├── email.booking-events ────────┤  quorum queues, one per consumer service
    └── voucher.booking-events ──────┘
    fulfilment.events (fanout, durable)       progress and vouchers, from the consumers
    └── booking.fulfilment-events             consumed by the booking service
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
FULFILMENT_EXCHANGE = "fulfilment.events"
# The services that consume booking events, each on its own queue.
CONSUMER_SERVICES = ("notification", "email", "voucher")
# Attempt n waits in retry queue min(n, RETRY_LEVELS). One queue per level keeps delays in a
# queue alike, so per-message TTLs (which expire only at the head) barely block each other.
RETRY_LEVELS = 8
# Guards against a message that kills its consumer before it can be acked: the broker
# counts redeliveries and dead-letters the message past this limit.
DELIVERY_LIMIT = 20


@dataclass(frozen=True)
class ConsumerTopology:
    """The names belonging to one consuming service."""

    service: str
    source_exchange: str = EVENTS_EXCHANGE

    @property
    def queue(self) -> str:
        source = "booking" if self.source_exchange == EVENTS_EXCHANGE else "fulfilment"
        return f"{self.service}.{source}-events"

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


# Every consuming service: the three fulfilment consumers and the booking service, which
# consumes their progress reports.
CONSUMERS = {
    **{service: ConsumerTopology(service) for service in CONSUMER_SERVICES},
    "booking": ConsumerTopology("booking", FULFILMENT_EXCHANGE),
}


def consumer_topology(service: str) -> ConsumerTopology:
    if service not in CONSUMERS:
        raise ValueError(f"unknown consumer service {service!r}; known: {sorted(CONSUMERS)}")
    return CONSUMERS[service]


def resolve_dead_letter_queue(name: str) -> str:
    """Accept a service name ('email') or a full queue name ('email.dlq')."""
    for service, names in CONSUMERS.items():
        if name in (service, names.dead_letter_queue):
            return names.dead_letter_queue
    raise ValueError(f"no dead-letter queue called {name!r}; use one of {sorted(CONSUMERS)}")


def _quorum(**extra: Any) -> dict[str, Any]:
    # at-least-once dead-lettering needs reject-publish overflow; it keeps a message in the
    # source queue until the dead-letter target has confirmed it.
    return {
        "x-queue-type": "quorum",
        "x-overflow": "reject-publish",
        "x-dead-letter-strategy": "at-least-once",
        **extra,
    }


async def declare_exchange(
    channel: AbstractChannel, name: str = EVENTS_EXCHANGE
) -> aio_pika.abc.AbstractExchange:
    return await channel.declare_exchange(name, aio_pika.ExchangeType.FANOUT, durable=True)


async def declare_consumer(channel: AbstractChannel, names: ConsumerTopology) -> None:
    exchange = await declare_exchange(channel, names.source_exchange)
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
    """Declare both exchanges and every consumer's queues (used by the publishers too, so an
    event published before its consumer ever started is still queued for it)."""
    for names in CONSUMERS.values():
        await declare_consumer(channel, names)
