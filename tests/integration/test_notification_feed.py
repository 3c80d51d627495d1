"""The per-booking notification feed, read by a real HTTP client from the notification
process's own server, fed by the real consumer over RabbitMQ and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx

from services.notification.feed_hub import FEED_CHANNEL
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
        feed = f"{process.ops_url}/feeds/{booking_id}"
        # The feed knows a booking once the service has notified something about it.
        await publish_raw(url, EVENTS_EXCHANGE, event_message(confirmed))
        await wait_until(lambda: equals(effects(env, "notification"), 1), what="confirmed")
        listener = await asyncpg.connect(env.database_url)
        await listener.add_listener(FEED_CHANNEL, lambda *args: notified.put_nowait(args[3]))
        async with httpx.AsyncClient(timeout=10) as client:
            async with client.stream("GET", feed) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                lines = response.aiter_lines()
                assert await anext(lines) == "retry: 2000"
                first = await asyncio.wait_for(next_event(lines), 10)  # already there
                await asyncio.wait_for(until_line(lines, ": heartbeat"), 5)  # idle: heartbeats
                await publish_raw(url, EVENTS_EXCHANGE, event_message(cancelled))
                second = await asyncio.wait_for(next_event(lines), 10)  # live
            assert await asyncio.wait_for(notified.get(), 5) == str(booking_id)

            # While nobody listens: another booking's notification.
            other = booking_event(BookingConfirmed, uuid4())
            await publish_raw(url, EVENTS_EXCHANGE, event_message(other))
            await wait_until(lambda: equals(effects(env, "notification"), 3), what="all handled")
            resume = {"Last-Event-ID": first["id"]}
            async with client.stream("GET", feed, headers=resume) as response:
                resumed = await asyncio.wait_for(next_event(response.aiter_lines()), 10)
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
    assert resumed == second
    assert history["booking_id"] == str(booking_id)
    assert [n["id"] for n in history["notifications"]] == [int(first["id"]), int(second["id"])]
    assert history["notifications"][0] == first_data
    assert malformed.status_code == 400


async def test_a_booking_the_service_has_not_notified_about_is_404_on_the_feed_and_history(
    env: TestEnv,
) -> None:
    known = booking_event(BookingConfirmed, uuid4())
    async with running_consumer("notification", env) as process:
        await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(known))
        await wait_until(lambda: equals(effects(env, "notification"), 1), what="handled")
        async with httpx.AsyncClient(base_url=process.ops_url, timeout=10) as client:
            feed = await client.get(f"/feeds/{uuid4()}")
            history = await client.get(f"/feeds/{uuid4()}/history")
            known_history = await client.get(f"/feeds/{known.booking_id}/history")
    assert (feed.status_code, history.status_code) == (404, 404)
    assert "no such booking" in feed.json()["detail"]
    # Errors here have the booking API's shape: RFC 9457 problem details.
    assert feed.headers["content-type"] == "application/problem+json"
    assert feed.json()["status"] == 404
    assert history.json()["title"] == "Not Found"
    assert known_history.status_code == 200


@asynccontextmanager
async def open_stream(url: str, source: str = "127.0.0.1") -> AsyncIterator[httpx.Response]:
    """A feed stream from the client address ``source`` (any of 127.0.0.0/8 reaches the
    server), with its first line read when it is a stream (so its slot is surely taken)."""
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with (
        httpx.AsyncClient(transport=transport, timeout=10) as client,
        client.stream("GET", url) as response,
    ):
        lines = response.aiter_lines()  # kept: dropped, it would close the stream
        if response.status_code == 200:
            assert await anext(lines) == "retry: 2000"
        yield response


async def test_streams_beyond_the_caps_get_429_per_client_and_503_in_all_with_retry_after(
    env: TestEnv,
) -> None:
    event = booking_event(BookingConfirmed, uuid4())
    async with running_consumer(
        "notification",
        env,
        notification_feed_max_streams_per_client=2,
        notification_feed_max_streams=3,
        notification_feed_heartbeat=60,  # a freed slot must not wait for a heartbeat
    ) as process:
        await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(event))
        await wait_until(lambda: equals(effects(env, "notification"), 1), what="handled")
        feed = f"{process.ops_url}/feeds/{event.booking_id}"
        async with (
            open_stream(feed) as first,
            open_stream(feed) as second,
            open_stream(feed) as third,
            open_stream(feed, source="127.0.0.2") as other_client,
            open_stream(feed, source="127.0.0.3") as over_total,
        ):
            statuses = [r.status_code for r in (first, second, third, other_client, over_total)]
            too_many, full = third, over_total
        async with open_stream(feed) as after_closing:  # every slot was given back
            reopened = after_closing.status_code
    assert statuses == [200, 200, 429, 200, 503]
    assert too_many.headers["retry-after"] == full.headers["retry-after"] == "5"
    assert reopened == 200
