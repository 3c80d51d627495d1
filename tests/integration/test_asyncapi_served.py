"""GET /asyncapi.json on the running booking service describes what really goes over the
wire: a message taken off the booking.events fanout matches its documented schema and
properties."""

from __future__ import annotations

import json

import aio_pika
import jsonschema

from shared.messaging import asyncapi
from shared.messaging.topology import EVENTS_EXCHANGE
from tests.support.amqp import channel, take
from tests.support.infra import TestEnv
from tests.support.stack import booking_api, booking_body


async def test_a_queue_bound_to_the_fanout_receives_exactly_what_the_document_describes(
    env: TestEnv,
) -> None:
    async with booking_api(env) as (client, _):
        response = await client.get("/asyncapi.json")
        assert response.status_code == 200
        document = response.json()
        assert document == asyncapi.build(env.amqp_url())
        # What the document tells a new team to do: a queue of its own on the fanout.
        async with channel(env.amqp_url()) as ch:
            # Declared as the document says (the service's publisher may not have connected
            # yet: it declares its exchanges at its first connection).
            await ch.declare_exchange(EVENTS_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True)
            queue = await ch.declare_queue("new-team.booking-events", durable=True)
            await queue.bind(EVENTS_EXCHANGE)
        booking = (await client.post("/bookings", json=booking_body())).json()
        [message] = await take(env.amqp_url(), "new-team.booking-events", 1)
    body = json.loads(message.body)
    # References in the document are from its root (#/components/schemas/StayDetails).
    schema = {
        **document["components"]["schemas"][message.type],
        "components": document["components"],
    }
    checker = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    assert list(checker.iter_errors(body)) == []
    assert message.type == body["event_type"] == "BookingConfirmed"
    assert message.type in document["channels"]["bookingEvents"]["messages"]
    assert message.message_id == body["event_id"]
    assert message.correlation_id == body["booking_id"] == booking["id"]
    assert message.content_type == document["defaultContentType"]
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert body["stay_details"]["room_type_name"] == "Standard double"
    assert body["stay_details"]["check_in_from"] == "15:00:00"
