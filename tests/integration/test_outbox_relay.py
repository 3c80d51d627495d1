"""The outbox relay: several replicas side by side publish each row once; a row the broker
does not confirm stays for the next pass, with its error; its publisher names why a message
was refused."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from uuid import uuid4

import aio_pika
import asyncpg
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from services.booking.bootstrap import MIGRATIONS
from services.booking.schemas import Booking
from services.booking.use_cases import booking_event
from shared.db.migrate import migrate
from shared.db.schemas import service_migrations
from shared.events import BookingConfirmed
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import EVENTS_EXCHANGE, declare_all
from shared.outbox.relay import OutboxRelay
from shared.outbox.rows import OutboxRow, write_rows
from tests.support.amqp import channel, take
from tests.support.infra import TestEnv
from tests.support.stack import fetchval, wait_until


async def _fill_outbox(pool: asyncpg.Pool, count: int) -> None:
    booking = Booking.model_validate(
        {
            "id": "00000000-0000-4000-8000-000000000001",
            "status": "confirmed",
            "hotel_id": 1,
            "room_type": "standard",
            "check_in": "2030-01-01",
            "check_out": "2030-01-02",
            "guest_name": "Ada",
            "guest_email": "ada@example.com",
            "nights": 1,
            "total_price": "120.00",
            "currency": "EUR",
            "created_at": "2029-12-01T00:00:00Z",
        }
    )
    async with pool.acquire() as conn, conn.transaction():
        for _ in range(count):
            event = booking_event(BookingConfirmed, booking, "Hotel Aurora")
            await write_rows(conn, "booking", [OutboxRow.of(event)])


async def test_three_relays_side_by_side_publish_every_row_exactly_once(env: TestEnv) -> None:
    total = 600
    pool = await asyncpg.create_pool(env.database_url, min_size=1, max_size=6)
    assert pool is not None
    await migrate(pool, "booking", service_migrations(MIGRATIONS))
    async with channel(env.amqp_url()) as ch:
        await declare_all(ch)
        spy = await ch.declare_queue("test.spy", durable=True)
        await spy.bind(await ch.get_exchange(EVENTS_EXCHANGE))
    await _fill_outbox(pool, total)
    publishers = [
        ConfirmingPublisher(env.amqp_url(), name=f"relay-{i}", declare=declare_all)
        for i in range(3)
    ]
    relays = [
        OutboxRelay(
            pool, p, schema="booking", exchange=EVENTS_EXCHANGE, batch_size=50, sweep_interval=0.05
        )
        for p in publishers
    ]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(relay.run(stop)) for relay in relays]
    try:
        await wait_until(lambda: sum(r.published for r in relays) >= total, what="all relayed")
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for publisher in publishers:
            await publisher.close()
        await pool.close()
    messages = await take(env.amqp_url(), "test.spy", total + 10, timeout=3)
    ids = [m.message_id for m in messages]
    assert len(ids) == total
    assert len(set(ids)) == total
    assert all(r.published > 0 for r in relays), [r.published for r in relays]
    assert all(m.delivery_mode == aio_pika.DeliveryMode.PERSISTENT for m in messages)
    unsent = await fetchval(env, "SELECT count(*) FROM booking.outbox WHERE published_at IS NULL")
    assert unsent == 0


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    # The global provider can be set once per interpreter (tests/integration/test_tracing.py).
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield memory
    memory.shutdown()  # later tests' spans are dropped, not collected


async def test_a_row_the_broker_does_not_confirm_stays_unsent_with_its_error_for_the_next_pass(
    env: TestEnv, spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    pool = await asyncpg.create_pool(env.database_url, min_size=1, max_size=2)
    assert pool is not None
    await migrate(pool, "booking", service_migrations(MIGRATIONS))
    async with channel(env.amqp_url()) as ch:
        await declare_all(ch)
        spy = await ch.declare_queue("test.spy", durable=True)
        await spy.bind(await ch.get_exchange(EVENTS_EXCHANGE))
    await _fill_outbox(pool, 2)
    # A type longer than AMQP's 255-byte short string: this message alone cannot be encoded.
    [good] = await pool.fetch("SELECT * FROM booking.outbox ORDER BY id LIMIT 1")
    bad = OutboxRow(uuid4(), "X" * 300, good["booking_id"], good["occurred_at"], "{}", None)
    async with pool.acquire() as conn:
        await write_rows(conn, "booking", [bad])
    publisher = ConfirmingPublisher(env.amqp_url(), name="relay", declare=declare_all)
    relay = OutboxRelay(pool, publisher, schema="booking", exchange=EVENTS_EXCHANGE)
    caplog.set_level(logging.WARNING, logger="shared.outbox")
    try:
        first = await relay.relay_once()
        second = await relay.relay_once()
        rows = await pool.fetch(
            "SELECT event_id, published_at, publish_attempts, last_error FROM booking.outbox"
        )
    finally:
        await publisher.close()
        await pool.close()
    assert (first, second) == ((2, 1), (0, 1))
    unsent = [dict(r) for r in rows if r["published_at"] is None]
    assert unsent == [
        {
            "event_id": bad.event_id,
            "published_at": None,
            "publish_attempts": 2,
            "last_error": unsent[0]["last_error"],
        }
    ]
    assert unsent[0]["last_error"].startswith(f"message {bad.event_id} cannot be encoded")
    assert all(r["publish_attempts"] == 1 for r in rows if r["published_at"] is not None)
    assert len(await take(env.amqp_url(), "test.spy", 3, timeout=1)) == 2
    failed = [
        s
        for s in spans.get_finished_spans()
        if s.attributes and s.attributes.get("messaging.message.id") == str(bad.event_id)
    ]
    assert [s.status.status_code for s in failed] == [StatusCode.ERROR] * 2
    lines = [r.getMessage() for r in caplog.records]
    assert lines.count(f"outbox relay booking: not confirmed: {unsent[0]['last_error']}") == 2
    assert lines.count("outbox relay booking: 1 of 3 events not confirmed; will retry") == 1


async def test_the_publisher_tells_an_unroutable_message_from_one_the_broker_nacked(
    env: TestEnv,
) -> None:
    async with channel(env.amqp_url()) as ch:
        await ch.declare_exchange("nobody.listens", aio_pika.ExchangeType.FANOUT)
    publisher = ConfirmingPublisher(env.amqp_url(), name="test")
    try:
        message = aio_pika.Message(b"{}", message_id="m-1")
        [error] = await publisher.publish_many([message], exchange="nobody.listens", routing_key="")
    finally:
        await publisher.close()
    assert str(error) == "message m-1 was unroutable"
