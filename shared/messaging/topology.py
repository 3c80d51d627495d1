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
    <service>.retry (direct) ──► <service>.retry.<n> ──(per-message TTL expires)──┐
          ▲                                                                     │
          └──────── dead-lettered with the work queue's name as routing key ────┘──► work queue

A retried message returns to its consumer's own queue through the service's own retry
exchange, never to the fanout and never through the default exchange (so no service needs
permission to publish to every queue of the vhost).

The topology is data (:func:`owned_by`, :func:`whole`): the declaring code below and the
broker definitions (deploy/rabbitmq/make_definitions.py) are both built from it. Each service
declares what it owns; what it relies on but does not own it declares only when missing
(on a developer's broker, as guest); in production the broker's definitions create it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel

from shared import registry

log = logging.getLogger(__name__)

EVENTS_EXCHANGE = "booking.events"
FULFILMENT_EXCHANGE = "fulfilment.events"
# The broker's name for the default exchange "" in permissions.
DEFAULT_EXCHANGE = "amq.default"
# The services that consume booking events, each on its own queue.
CONSUMER_SERVICES = registry.NAMES
# Attempt n waits in retry queue min(n, RETRY_LEVELS). One queue per level keeps delays in a
# queue alike, so per-message TTLs (which expire only at the head) barely block each other.
RETRY_LEVELS = 8
# Guards against a message that kills its consumer before it can be acked: the broker
# counts redeliveries and dead-letters the message past this limit.
DELIVERY_LIMIT = 20
# A dead-letter queue has no dead-letter target of its own: past a delivery limit, a message
# would be dropped. Every inspection (bookingctl list and show, a filtered replay or a dry
# run) returns messages to it, each return counting as a redelivery, and RabbitMQ 4.x gives
# quorum queues a default limit of 20. "-1" lifts the limit on 4.x but on 3.x drops a message
# at its first return (measured on 3.10.8), so the limit is one no inspection will reach, read
# the same way by both.
DEAD_LETTER_DELIVERY_LIMIT = 1_000_000_000


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

    @property
    def retry_exchange(self) -> str:
        return f"{self.service}.retry"

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
# The exchange each service's outbox relay publishes to.
PUBLISHES_TO = {
    "booking": EVENTS_EXCHANGE,
    **dict.fromkeys(CONSUMER_SERVICES, FULFILMENT_EXCHANGE),
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


@dataclass(frozen=True)
class Exchange:
    name: str
    type: Literal["fanout", "direct"]


@dataclass(frozen=True)
class Queue:
    name: str
    arguments: dict[str, Any] = field(hash=False)
    # The arguments of an older release, still accepted when a broker has the queue that
    # way (a queue's arguments cannot change without deleting it and its messages).
    legacy_arguments: dict[str, Any] | None = field(default=None, hash=False, compare=False)


@dataclass(frozen=True)
class Binding:
    exchange: str
    queue: str
    routing_key: str = ""


@dataclass(frozen=True)
class Topology:
    exchanges: tuple[Exchange, ...] = ()
    queues: tuple[Queue, ...] = ()
    bindings: tuple[Binding, ...] = ()

    def __add__(self, other: Topology) -> Topology:
        def merged(a: tuple[Any, ...], b: tuple[Any, ...]) -> tuple[Any, ...]:
            return (*a, *(item for item in b if item not in a))

        return Topology(
            merged(self.exchanges, other.exchanges),
            merged(self.queues, other.queues),
            merged(self.bindings, other.bindings),
        )


def _quorum(**extra: Any) -> dict[str, Any]:
    # at-least-once dead-lettering needs reject-publish overflow; it keeps a message in the
    # source queue until the dead-letter target has confirmed it.
    return {
        "x-queue-type": "quorum",
        "x-overflow": "reject-publish",
        "x-dead-letter-strategy": "at-least-once",
        **extra,
    }


def consumer_entities(names: ConsumerTopology) -> Topology:
    """A consuming service's own queues and exchanges (not the fanout it reads from)."""
    work = Queue(
        names.queue,
        _quorum(
            **{
                "x-dead-letter-exchange": names.dead_letter_exchange,
                "x-dead-letter-routing-key": names.queue,
                "x-delivery-limit": DELIVERY_LIMIT,
            }
        ),
    )
    retry_args = {"x-dead-letter-exchange": names.retry_exchange}
    retries = [
        Queue(q, _quorum(**retry_args, **{"x-dead-letter-routing-key": names.queue}))
        for q in names.retry_queues
    ]
    dead_letters = Queue(
        names.dead_letter_queue,
        {"x-queue-type": "quorum", "x-delivery-limit": DEAD_LETTER_DELIVERY_LIMIT},
        legacy_arguments={"x-queue-type": "quorum"},
    )
    return Topology(
        exchanges=(
            Exchange(names.dead_letter_exchange, "direct"),
            Exchange(names.retry_exchange, "direct"),
        ),
        # The dead-letter queue comes last: see declare_service.
        queues=(work, *retries, dead_letters),
        bindings=(
            Binding(names.dead_letter_exchange, names.dead_letter_queue, names.queue),
            Binding(names.source_exchange, names.queue),
            Binding(names.retry_exchange, names.queue, names.queue),
            *(Binding(names.retry_exchange, q.name, q.name) for q in retries),
        ),
    )


def owned_by(service: str) -> Topology:
    """What ``service`` creates and may delete: the booking service owns both fanouts."""
    owned = consumer_entities(consumer_topology(service))
    if service == "booking":
        fanouts = (Exchange(EVENTS_EXCHANGE, "fanout"), Exchange(FULFILMENT_EXCHANGE, "fanout"))
        owned = Topology(exchanges=fanouts) + owned
    return owned


def whole() -> Topology:
    topology = owned_by("booking")
    for service in CONSUMER_SERVICES:
        topology += owned_by(service)
    return topology


async def apply(channel: AbstractChannel, topology: Topology) -> None:
    """Declare (idempotently) every exchange of ``topology``, then each queue in order with
    its bindings right after it: once a queue exists, those before it are bound."""
    for exchange in topology.exchanges:
        await channel.declare_exchange(exchange.name, exchange.type, durable=True)
    for queue in topology.queues:
        arguments = await _arguments(channel, queue)
        declared = await channel.declare_queue(queue.name, durable=True, arguments=arguments)
        for binding in topology.bindings:
            if binding.queue == queue.name:
                await declared.bind(binding.exchange, routing_key=binding.routing_key)
    own = {queue.name for queue in topology.queues}
    for binding in topology.bindings:
        if binding.queue not in own:
            target = await channel.get_queue(binding.queue, ensure=False)
            await target.bind(binding.exchange, routing_key=binding.routing_key)


async def _arguments(channel: AbstractChannel, queue: Queue) -> dict[str, Any]:
    """The arguments to declare ``queue`` with: its own, or its legacy ones when the broker
    has it that way already. Redeclaring with other arguments fails (PRECONDITION_FAILED)
    and closes the channel, so a queue with legacy arguments is tried on a throwaway one."""
    if queue.legacy_arguments is None:
        return queue.arguments
    underlay = await channel.get_underlay_channel()
    probe = await underlay.connection.channel()
    try:
        await probe.queue_declare(queue.name, durable=True, arguments=queue.arguments)
    except aiormq.exceptions.ChannelPreconditionFailed as exc:
        log.warning(
            "%s was declared by an older release, without %s; kept as it is (deleting it "
            "would lose its messages). Before RabbitMQ 4.x, set them with a policy: see the "
            "README, Dead-letter operations (%s)",
            queue.name,
            ", ".join(sorted(set(queue.arguments) - set(queue.legacy_arguments))),
            exc,
        )
        return queue.legacy_arguments
    await probe.close()
    return queue.arguments


async def _missing(channel: AbstractChannel, kind: Literal["exchange", "queue"], name: str) -> bool:
    """Probe with a passive declare (no permission needed) on a throwaway channel, since a
    failed passive declare closes its channel."""
    underlay = await channel.get_underlay_channel()
    probe = await underlay.connection.channel()
    try:
        if kind == "queue":
            await probe.queue_declare(name, passive=True)
        else:
            await probe.exchange_declare(name, passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return True
    await probe.close()
    return False


async def _ensure_fanout(channel: AbstractChannel, name: str) -> None:
    if await _missing(channel, "exchange", name):
        await channel.declare_exchange(name, aio_pika.ExchangeType.FANOUT, durable=True)


async def declare_consumer(channel: AbstractChannel, names: ConsumerTopology) -> None:
    """What a consumer declares before consuming: its own entities, and its source fanout
    when that does not exist yet."""
    await _ensure_fanout(channel, names.source_exchange)
    await apply(channel, consumer_entities(names))


async def declare_service(channel: AbstractChannel, service: str) -> None:
    """What a service's publisher declares: what it owns, and what it relies on only when
    missing. The booking service makes sure every consumer's queue exists and is bound, so an
    event published before a consumer ever started waits for it.

    It probes for a consumer's dead-letter queue, not its work queue: a consumer declares
    the dead-letter queue last, so it exists only once the work queue is bound. Probing the
    work queue, a booking service starting while a consumer was between declaring that queue
    and binding it skipped it, and the fanout dropped that consumer's first events."""
    if service == "booking":
        await apply(channel, owned_by("booking"))
        for name in CONSUMER_SERVICES:
            names = consumer_topology(name)
            if await _missing(channel, "queue", names.dead_letter_queue):
                await declare_consumer(channel, names)
        return
    await _ensure_fanout(channel, PUBLISHES_TO[service])
    await declare_consumer(channel, consumer_topology(service))


async def declare_all(channel: AbstractChannel) -> None:
    """Declare the whole topology (for tools and tests running with full permissions)."""
    await apply(channel, whole())
