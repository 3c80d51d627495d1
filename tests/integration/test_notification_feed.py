"""The per-booking notification feed, read by a real HTTP client from the notification
process's own server, fed by the real consumer over RabbitMQ and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx

from services.notification.feed_hub import FEED_CHANNEL
from services.notification.process import NotificationProcess
from shared.events import BookingCancelled, BookingConfirmed
from shared.messaging.envelope import event_message
from shared.messaging.topology import EVENTS_EXCHANGE
from tests.support.amqp import publish_raw
from tests.support.infra import TestEnv
from tests.support.stack import effects, equals, running_consumer, wait_until


def booking_event(
    kind: type[BookingConfirmed] | type[BookingCancelled], booking_id: UUID
) -> BookingConfirmed | BookingCancelled:
    return kind(
        booking_id=booking_id,
        hotel_id=1,
        hotel_name="Hotel Aurora",
        room_type="standard",
        check_in=date.today() + timedelta(days=10),
        check_out=date.today() + timedelta(days=12),
        nights=2,
        total_price=Decimal("240.00"),
        currency="EUR",
        guest_name="Ada Lovelace",
        guest_email="ada@example.com",
    )


async def next_event(lines: AsyncIterator[str]) -> dict[str, str]:
    """The fields of the next SSE event, skipping comments (heartbeats)."""
    fields: dict[str, str] = {}
    async for line in lines:
        if not line:
            if "data" in fields:
                return fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
    raise AssertionError("the stream ended")


async def until_line(lines: AsyncIterator[str], expected: str) -> None:
    async for line in lines:
        if line == expected:
            return
    raise AssertionError(f"the stream ended before {expected!r}")


async def test_the_feed_streams_what_is_published_after_connecting_and_resumes_at_last_event_id(
    env: TestEnv,
) -> None:
    booking_id = uuid4()
    confirmed = booking_event(BookingConfirmed, booking_id)
    cancelled = booking_event(BookingCancelled, booking_id)
    url = env.amqp_url()
    notified: asyncio.Queue[str] = asyncio.Queue()
    async with running_consumer(
        "notification", env, notification_http_port=0, notification_feed_heartbeat=0.2
    ) as process:
        assert isinstance(process, NotificationProcess)
        feed = f"{process.feed_url}/feeds/{booking_id}"
        listener = await asyncpg.connect(env.database_url)
        await listener.add_listener(FEED_CHANNEL, lambda *args: notified.put_nowait(args[3]))
        async with httpx.AsyncClient(timeout=10) as client:
            async with client.stream("GET", feed) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                lines = response.aiter_lines()
                assert await anext(lines) == "retry: 2000"
                await asyncio.wait_for(until_line(lines, ": heartbeat"), 5)  # idle: heartbeats
                await publish_raw(url, EVENTS_EXCHANGE, event_message(confirmed))
                first = await asyncio.wait_for(next_event(lines), 10)
            assert await asyncio.wait_for(notified.get(), 5) == str(booking_id)

            # While nobody listens: another booking's notification, then this one's next.
            other = booking_event(BookingConfirmed, uuid4())
            for event in (other, cancelled):
                await publish_raw(url, EVENTS_EXCHANGE, event_message(event))
            await wait_until(lambda: equals(effects(env, "notification"), 3), what="all handled")
            resume = {"Last-Event-ID": first["id"]}
            async with client.stream("GET", feed, headers=resume) as response:
                second = await asyncio.wait_for(next_event(response.aiter_lines()), 10)
            history = (await client.get(f"{feed}/history")).json()
            malformed = await client.get(feed, headers={"Last-Event-ID": "abc"})
        await listener.close()

    assert first["event"] == "notification"
    first_data: dict[str, Any] = json.loads(first["data"])
    assert first_data["id"] == int(first["id"])
    assert first_data["event_id"] == str(confirmed.event_id)
    assert first_data["booking_id"] == str(booking_id)
    assert first_data["event_type"] == "BookingConfirmed"
    assert first_data["message"].startswith("Booking confirmed: Hotel Aurora")
    second_data: dict[str, Any] = json.loads(second["data"])
    assert second_data["event_type"] == "BookingCancelled"
    assert int(second["id"]) > int(first["id"])
    assert history["booking_id"] == str(booking_id)
    assert [n["id"] for n in history["notifications"]] == [int(first["id"]), int(second["id"])]
    assert history["notifications"][0] == first_data
    assert malformed.status_code == 400
