"""What a consumer holds and for how long, against real RabbitMQ, PostgreSQL and SMTP: a
stuck delivery turns the process unready, a busy pool costs no attempt, an email waiting for
the SMTP server holds no database connection, and a cancellation that overtakes its
confirmation is the only email the guest gets."""

from __future__ import annotations

import asyncio

import httpx

from shared.db.pool import Connection
from shared.events import BookingCancelled, BookingConfirmed
from shared.messaging.envelope import event_message
from shared.messaging.handlers import route
from shared.messaging.topology import EVENTS_EXCHANGE
from tests.support.amqp import publish_raw
from tests.support.events import booking_event, confirmed
from tests.support.infra import TestEnv
from tests.support.smtp import smtp_server
from tests.support.stack import effects, equals, fetchval, running_consumer, wait_until


async def _ready(client: httpx.AsyncClient) -> tuple[int, dict[str, str]]:
    response = await client.get("/health/ready")
    return response.status_code, response.json()["checks"]


async def _metric(client: httpx.AsyncClient, name: str) -> float:
    text = (await client.get("/metrics")).text
    [line] = [row for row in text.splitlines() if row.startswith(name + "{")]
    return float(line.rsplit(" ", 1)[1])


async def test_a_consumer_whose_deliveries_stop_moving_turns_unready_and_says_why(
    env: TestEnv,
) -> None:
    release = asyncio.Event()

    async def stuck(event: BookingConfirmed, tx: Connection) -> None:
        await release.wait()  # a handler that never returns, as a hung call would

    handlers = dict([route(BookingConfirmed, stuck)])
    async with (
        running_consumer("voucher", env, handlers=handlers, stall_timeout=0.5) as process,
        httpx.AsyncClient(base_url=process.ops_url) as client,
    ):
        assert (await _ready(client))[0] == 200
        await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(confirmed()))
        await wait_until(lambda: _unready(client), what="unready while the delivery is stuck")
        status, checks = await _ready(client)
        assert status == 503
        assert "1 deliveries in hand" in checks["deliveries"]
        assert "STALL_TIMEOUT" in checks["deliveries"]
        assert await _metric(client, "hotel_deliveries_in_hand") == 1
        assert await _metric(client, "hotel_oldest_delivery_in_hand_seconds") > 0.5
        release.set()
        await wait_until(lambda: _is_ready(client), what="ready again once it moved")
        assert await _metric(client, "hotel_deliveries_in_hand") == 0


async def _unready(client: httpx.AsyncClient) -> bool:
    return (await _ready(client))[0] == 503


async def _is_ready(client: httpx.AsyncClient) -> bool:
    return (await _ready(client))[0] == 200


async def test_waiting_for_a_busy_pool_is_not_a_failed_attempt(env: TestEnv) -> None:
    event = confirmed()
    async with running_consumer(
        "voucher", env, db_pool_size=1, db_acquire_timeout=0.2, batch_size=1
    ) as process:
        async with process.pool.acquire():  # the pool's only connection, held
            await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(event))
            await asyncio.sleep(1.5)  # several acquire timeouts pass meanwhile
            assert process.consumer.stats["retried"] == 0
        await wait_until(lambda: equals(effects(env, "voucher"), 1), what="vouchered")
        assert process.consumer.stats["retried"] == 0
        attempts = await fetchval(  # the done report: the VoucherIssued, stamped
            env,
            "SELECT (body::jsonb ->> 'attempts')::int FROM voucher.outbox "
            "WHERE event_type = 'VoucherIssued'",
        )
        assert attempts == 1


async def test_an_email_waiting_for_the_smtp_server_holds_no_database_connection(
    env: TestEnv,
) -> None:
    async with smtp_server() as smtp:
        smtp.data_delay = 0.5
        # Without the relay: its two lanes may each hold a connection of the same pool for a
        # pass, which made three in use now and then when the suite ran on several workers.
        async with running_consumer(
            "email",
            env,
            smtp_port=smtp.port,
            smtp_pool_size=1,
            db_pool_size=5,
            prefetch=20,
            relay_enabled=False,
        ) as process:
            for _ in range(6):
                await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(confirmed()))
            in_use: list[int] = []
            while len(smtp.messages) < 6:
                in_use.append(process.pool.get_size() - process.pool.get_idle_size())
                await asyncio.sleep(0.05)
    # One email at a time talks to the server, inside its transaction; the others wait for
    # the SMTP slot before they open one (the retention job's first pass, at start, may hold
    # a second briefly).
    assert max(in_use) <= 2, in_use


async def test_a_cancellation_that_overtakes_its_confirmation_is_the_only_email(
    env: TestEnv,
) -> None:
    confirmation = confirmed()
    cancellation = booking_event(BookingCancelled, booking_id=confirmation.booking_id)
    async with smtp_server() as smtp, running_consumer("email", env, smtp_port=smtp.port):
        await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(cancellation))
        await wait_until(lambda: len(smtp.messages) == 1, what="the cancellation email")
        await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, event_message(confirmation))
        await wait_until(
            lambda: _processed(env, str(confirmation.event_id)), what="confirmation handled"
        )
        await asyncio.sleep(0.3)
    assert len(smtp.messages) == 1
    assert "cancel" in str(smtp.messages[0]["Subject"]).lower()


async def _processed(env: TestEnv, event_id: str) -> bool:
    found = await fetchval(
        env, "SELECT count(*) FROM email.processed_events WHERE event_id = $1::uuid", event_id
    )
    return bool(found)
