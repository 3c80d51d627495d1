"""Scenarios 6 and 7: poison messages straight to the exchange, and every event twice."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable

import aio_pika
import asyncpg
import httpx
import pytest

from shared.messaging.connection import broker_user
from shared.messaging.envelope import outbox_message
from shared.messaging.topology import EVENTS_EXCHANGE, FULFILMENT_EXCHANGE
from tests.chaos.conftest import Launcher
from tests.chaos.drain import POISON_HEADER
from tests.chaos.figures import Figures
from tests.chaos.invariants import check
from tests.chaos.system import CONSUMER_SERVICES, Service, System
from tests.support.hostile import publish_raw
from tests.support.load import LoadDriver
from tests.support.poison import POISON, poison_message
from tests.support.size import Size
from tests.support.stack import at_least, effects, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]


def _poison(n: int, real_body: bytes) -> aio_pika.Message:
    """The n-th well-formed poison message: each kind of invalid message in turn."""
    event_id = str(uuid.uuid4())
    bodies: list[tuple[bytes, str | None]] = [
        (b"\x00\xff not json", event_id),
        (b"[1, 2, 3]", event_id),
        (
            json.dumps(
                {"event_type": "BookingConfirmed", "version": 1, "event_id": event_id}
            ).encode(),
            event_id,
        ),
        (json.dumps({"event_type": "BookingConfirmed", "version": 99}).encode(), event_id),
        (json.dumps({"event_type": "BookingConfirmed", "version": 1}).encode(), None),
        (real_body, event_id),  # a real event under another message_id
    ]
    body, message_id = bodies[n % len(bodies)]
    return aio_pika.Message(
        body,
        message_id=message_id,
        type="BookingConfirmed",
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers={POISON_HEADER: f"poison-{n}"},
    )


async def _publish_poison(url: str, count: int, spread: float, real_body: bytes) -> set[str]:
    """``count`` well-formed poison messages (each kind in turn), then every hostile kind
    (tests/support/poison.py: huge integers, deep nesting, bodies over the size limit,
    headers and properties that are not UTF-8 or out of range, wrong header types), sent
    byte by byte. Returns the labels of all of them."""
    connection = await aio_pika.connect(url, timeout=10)
    try:
        channel = await connection.channel()  # publisher confirms: each poison is in
        exchange = await channel.get_exchange(EVENTS_EXCHANGE)
        for n in range(count):
            await exchange.publish(_poison(n, real_body), routing_key="", timeout=10)
            await asyncio.sleep(spread / count)
    finally:
        await connection.close()
    hostile = [f"hostile-{kind}" for kind in POISON]
    await publish_raw(
        url,
        EVENTS_EXCHANGE,
        [poison_message(label[8:], str(uuid.uuid4()), POISON_HEADER, label) for label in hostile],
    )
    return {f"poison-{n}" for n in range(count)} | set(hostile)


async def _held_and_lost(service: Service) -> tuple[float, float]:
    """Deliveries the consumer holds now, and subscriptions it lost, from its /metrics."""
    async with httpx.AsyncClient(base_url=service.ops_url(), timeout=5) as client:
        text = (await client.get("/metrics")).text
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("hotel_"))

    def value(prefix: str) -> float:
        return sum(float(v) for k, v in samples.items() if k.startswith(prefix))

    return value("hotel_deliveries_in_hand{"), value("hotel_consumer_subscriptions_lost_total{")


async def _a_real_event_body(system: System) -> bytes:
    conn = await asyncpg.connect(system.env.database_url, timeout=10)
    try:
        body: str = await conn.fetchval("SELECT body FROM booking.outbox ORDER BY id LIMIT 1")
    finally:
        await conn.close()
    return body.encode()


async def test_poison_messages_reach_every_dead_letter_queue_once_while_good_ones_flow(
    system_factory: Launcher, size: Size, report: Callable[[Figures], None]
) -> None:
    started = time.monotonic()
    total = size.pick(150, 2000)
    count = max(6, total // 100)  # 1%, and every kind at least once
    async with system_factory() as system:
        pids = {name: service.pid for name, service in system.services.items()}
        load = LoadDriver(system.base_url, concurrency=6)
        await load.run(5)
        spread = size.pick(3.0, 20.0)
        driving = asyncio.create_task(load.run(total - 5, first=5, rate=total / spread))
        real_body = await _a_real_event_body(system)
        poison = await _publish_poison(system.amqp_url, count, spread, real_body)
        record = await driving
        figures = await check(
            system,
            record,
            scenario="6. 1% poison messages",
            faults=len(poison),
            started=started,
            poison=frozenset(poison),
        )
        assert {name: s.pid for name, s in system.services.items()} == pids, "a process restarted"
        assert all(s.alive for s in system.services.values())
        for consumer in system.consumers:  # nothing held, no connection lost to a message
            assert await _held_and_lost(consumer) == (0.0, 0.0), consumer.name
    report(figures)


async def _duplicate_published_rows(system: System, stop: asyncio.Event, sent: set[str]) -> None:
    """Publish a second copy (same message_id) of every outbox row once the relay has sent
    it: booking events to their fanout, consumers' reports to theirs."""
    sources = {"booking": EVENTS_EXCHANGE, **dict.fromkeys(CONSUMER_SERVICES, FULFILMENT_EXCHANGE)}
    conn = await asyncpg.connect(system.env.database_url, timeout=10)
    broker = await aio_pika.connect(system.amqp_url, timeout=10)
    try:
        channel = await broker.channel()
        exchanges = {name: await channel.get_exchange(name) for name in set(sources.values())}
        while True:
            finished = stop.is_set()  # read before the pass, so the last pass is complete
            for schema, exchange in sources.items():
                # Not "id > the last one copied": rows commit (and are sent) out of id order.
                rows = await conn.fetch(
                    f"""SELECT id, event_id, event_type, booking_id, occurred_at, body
                        FROM "{schema}".outbox
                        WHERE published_at IS NOT NULL AND NOT event_id = ANY($1::uuid[])
                        ORDER BY id""",
                    [uuid.UUID(event_id) for event_id in sent],
                )
                for row in rows:
                    message = outbox_message(
                        event_id=row["event_id"],
                        event_type=row["event_type"],
                        booking_id=row["booking_id"],
                        occurred_at=row["occurred_at"],
                        body=row["body"].encode(),
                        # As the relay sends it: a report's user_id is its sender's broker
                        # user (the shared guest, in DEV_MODE), or the booking service
                        # refuses it (services/booking/senders.py).
                        user_id=broker_user(system.amqp_url),
                    )
                    await exchanges[exchange].publish(message, routing_key="", timeout=10)
                    sent.add(str(row["event_id"]))
            if finished:
                return
            await asyncio.sleep(0.2)
    finally:
        await broker.close()
        await conn.close()


async def _no_unpublished_rows(system: System) -> None:
    conn = await asyncpg.connect(system.env.database_url, timeout=10)
    try:
        while True:
            counts = [
                await conn.fetchval(f'SELECT count(*) FROM "{s}".outbox WHERE published_at IS NULL')
                for s in ("booking", *CONSUMER_SERVICES)
            ]
            if not any(counts):
                return
            await asyncio.sleep(0.3)
    finally:
        await conn.close()


async def test_every_event_delivered_twice_has_each_effect_exactly_once(
    system_factory: Launcher, size: Size, report: Callable[[Figures], None]
) -> None:
    started = time.monotonic()
    total = size.pick(60, 1000)
    async with system_factory() as system:
        load = LoadDriver(system.base_url, concurrency=6)
        stop, sent = asyncio.Event(), set[str]()
        duplicating = asyncio.create_task(_duplicate_published_rows(system, stop, sent))
        await load.run(total, rate=total / size.pick(3, 15))
        # Every row gets its copy, including the reports of bookings still queued now.
        for name in CONSUMER_SERVICES:
            await wait_until(
                lambda n=name: at_least(effects(system.env, n), total), timeout=120, what=name
            )
        await asyncio.wait_for(_no_unpublished_rows(system), 60)
        await asyncio.sleep(1.0)
        await asyncio.wait_for(_no_unpublished_rows(system), 60)
        stop.set()
        await asyncio.wait_for(duplicating, 60)
        figures = await check(
            system,
            load.record,
            scenario="7. every event delivered twice",
            faults=len(sent),
            started=started,
        )
    # Each booking event reached three consumers twice, each report the booking service twice.
    # Per booking: BookingConfirmed, two FulfilmentProgressed and a VoucherIssued (the
    # voucher's done report).
    assert len(sent) == 4 * figures.committed, len(sent)
    expected = 3 * figures.committed + (len(sent) - figures.committed)
    assert figures.redeliveries_absorbed >= expected, (figures.redeliveries_absorbed, expected)
    report(figures)
