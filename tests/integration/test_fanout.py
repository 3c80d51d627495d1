"""booking -> outbox -> fanout -> every consumer, over real RabbitMQ and PostgreSQL."""

from __future__ import annotations

import json
from uuid import UUID

import aio_pika

from shared.messaging.topology import EVENTS_EXCHANGE
from tests.support.amqp import channel, take
from tests.support.infra import TestEnv
from tests.support.stack import (
    all_consumers,
    booking_api,
    booking_body,
    effects,
    equals,
    fetchval,
    wait_until,
)


async def test_a_booking_reaches_all_three_consumers_once_each(env: TestEnv) -> None:
    async with all_consumers(env), booking_api(env) as (client, _):
        response = await client.post("/bookings", json=booking_body())
        assert response.status_code == 201
        booking_id = response.json()["id"]
        for service in ("email", "voucher", "notification"):
            await wait_until(
                lambda s=service: equals(effects(env, s, booking_id), 1), what=f"{service} effect"
            )
    for service in ("email", "voucher", "notification"):
        assert await effects(env, service, booking_id) == 1
    published = await fetchval(
        env, "SELECT count(*) FROM booking.outbox WHERE published_at IS NOT NULL"
    )
    assert published == 1


async def test_the_published_message_carries_the_event_and_its_amqp_properties(
    env: TestEnv,
) -> None:
    async with booking_api(env) as (client, _):
        # A queue of the test's own on the fanout sees exactly what the consumers see.
        async with channel(env.amqp_url()) as ch:
            exchange = await ch.declare_exchange(
                EVENTS_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True
            )
            spy = await ch.declare_queue("test.spy", durable=True)
            await spy.bind(exchange)
        response = await client.post("/bookings", json=booking_body())
        booking = response.json()
        [message] = await take(env.amqp_url(), "test.spy", 1)
    body = json.loads(message.body)
    assert body["event_type"] == "BookingConfirmed"
    assert body["version"] == 1
    assert body["booking_id"] == booking["id"]
    assert body["guest_email"] == booking["guest_email"]
    assert body["total_price"] == booking["total_price"]
    assert UUID(body["event_id"])
    assert message.message_id == body["event_id"]
    assert message.correlation_id == booking["id"]
    assert message.type == "BookingConfirmed"
    assert message.content_type == "application/json"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.timestamp is not None
    assert "occurred_at" in body
