"""A caller's W3C trace context reaches the events of its booking even when the booking
service records no spans (OTEL_TRACES_EXPORTER=none, the default): the traceparent sent on
POST /bookings is stored with the outbox row and sent as the event's AMQP header, so a
consumer that traces joins the caller's trace. A real process: the tests that record spans
install a tracer provider in the test interpreter, for good."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest

from shared.messaging.topology import EVENTS_EXCHANGE
from tests.support.amqp import channel, take
from tests.support.infra import TestEnv
from tests.support.processes import booking_process
from tests.support.stack import booking_body, fetchval

pytestmark = pytest.mark.e2e
QUEUE = "test.trace-context"


async def test_a_traceparent_sent_with_a_booking_reaches_its_event_with_no_exporter(
    env: TestEnv, logs: Path
) -> None:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    sent = f"00-{trace_id}-{parent_id}-01"
    with booking_process(env, logs, OTEL_TRACES_EXPORTER="none") as base:
        async with channel(env.amqp_url()) as ch:  # a queue of our own on the fanout
            exchange = await ch.get_exchange(EVENTS_EXCHANGE)
            queue = await ch.declare_queue(QUEUE, durable=True)
            await queue.bind(exchange)
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            traced = await client.post(
                "/bookings", json=booking_body(), headers={"traceparent": sent}
            )
            untraced = await client.post("/bookings", json=booking_body())
        assert traced.status_code == untraced.status_code == 201, traced.text
        messages = await take(env.amqp_url(), QUEUE, expected=2)
    stored = await fetchval(
        env, "SELECT traceparent FROM booking.outbox WHERE booking_id = $1", traced.json()["id"]
    )
    assert stored is not None
    assert stored.split("-")[1] == trace_id
    headers = {str(m.correlation_id): (m.headers or {}).get("traceparent") for m in messages}
    carried = headers[traced.json()["id"]]
    assert isinstance(carried, str | bytes)
    carried_text = carried.decode() if isinstance(carried, bytes) else carried
    assert carried_text.split("-")[1] == trace_id
    assert headers[untraced.json()["id"]] is None  # no caller's trace: none is made up
